"""A plain function limited by ``@rate_limit``: a burst at once, then a steady pace.

``fetch`` may run 5 times per second with bursts of up to 3. Eight calls in a row: the
first three go at once, the others wait their turn (the thread sleeps) one every 0.2 s.
A second function shows ``timeout=``: a call that would wait longer fails at once with
``AcquireTimeout`` (a ``TimeoutError``) and ``retry_after``, without sleeping.

Run it with::

    python examples/sync_decorator.py

It takes about one second.
"""

from __future__ import annotations

import time

from limitor import AcquireTimeout, limiter_of, rate_limit


@rate_limit(capacity=5, seconds=1, burst=3)
def fetch(url: str) -> str:
    """Pretend to fetch ``url``."""
    return f"<contents of {url}>"


@rate_limit(capacity=2, seconds=1, timeout=0.1)
def ping() -> str:
    """A call that will not wait more than 0.1 s for its turn."""
    return "pong"


def main() -> None:
    start = time.monotonic()
    for page in range(1, 9):
        fetch(f"https://example.invalid/page/{page}")
        print(f"fetch page {page}  at +{time.monotonic() - start:.2f} s")

    stats = limiter_of(fetch).stats
    print(f"admitted {stats.admitted}, {stats.waited} waited, mean wait {stats.mean_wait:.2f} s")

    print(ping(), ping())  # the burst of 2
    try:
        ping()  # the next slot is 0.5 s away: more than the 0.1 s timeout
    except AcquireTimeout as error:
        print(f"third ping refused at once: retry after {error.retry_after:.2f} s")


if __name__ == "__main__":
    main()
