"""Policing an HTTP API: refuse at once with 429, and say when to come back.

A server should not make a client's request wait for a slot: it answers at once, and
says in headers how much is left (``RateLimit-Limit``, ``RateLimit-Remaining``,
``RateLimit-Reset``) and, when refused, when to retry (``Retry-After``). This example
has no web framework: ``handle`` takes a small request object and returns a status, the
headers and a body, as any framework's handler would.

* ``@rate_limit_per_user(on_limit="raise", key=...)`` refuses a call over the limit with
  ``RateLimitExceeded``, whose ``retry_after`` says how many seconds until it would fit.
  Nothing is consumed by a refused call.
* ``limiter.status(key).headers()`` turns the live state into the headers.
* A single shared bucket polices the same way with ``try_acquire()`` and ``status()``.

Run it with::

    python examples/policing_http.py

It takes about half a second.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from limitor import (
    BucketConfig,
    PerUserLimiter,
    RateLimitExceeded,
    SyncTokenBucket,
    rate_limit_per_user,
)

PER_CLIENT = PerUserLimiter(BucketConfig(capacity=3, seconds=1), ttl=60)  # 3/s per client
SEARCH = SyncTokenBucket(BucketConfig(capacity=2, seconds=1))  # 2/s for everyone together


@dataclass
class Request:
    client_ip: str
    path: str


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: str


@rate_limit_per_user(limiter=PER_CLIENT, on_limit="raise", key=lambda request: request.client_ip)
def list_items(request: Request) -> str:
    return "['apple', 'pear']"


def handle(request: Request) -> Response:
    """The HTTP handler: 200 with the remaining quota, or 429 with Retry-After."""
    try:
        body, status = list_items(request), 200
    except RateLimitExceeded as error:
        body, status = f"too many requests, retry in {error.retry_after:.2f} s", 429
    headers = PER_CLIENT.status(request.client_ip).headers(refused=status == 429)
    return Response(status, headers, body)


def handle_search(request: Request) -> Response:
    """The same with one bucket shared by every client, without a decorator."""
    if SEARCH.try_acquire():
        return Response(200, SEARCH.status().headers(), "results")
    return Response(429, SEARCH.status().headers(refused=True), "too many searches")


def show(response: Response) -> None:
    headers = ", ".join(f"{name}: {value}" for name, value in response.headers.items())
    print(f"  {response.status} {response.body}\n      {headers}")


def main() -> None:
    alice = Request("203.0.113.7", "/items")
    print("alice sends 5 requests at once (3 per second allowed):")
    for _ in range(5):
        show(handle(alice))

    print("bob is another client: his own quota")
    show(handle(Request("198.51.100.2", "/items")))

    wait = PER_CLIENT.status(alice.client_ip).retry_after  # exact; the header rounds up
    print(f"alice waits {wait:.2f} s, as retry_after says, and tries again:")
    time.sleep(wait)
    show(handle(alice))

    print("search: one bucket for everyone, policed with try_acquire():")
    for _ in range(3):
        show(handle_search(Request("192.0.2.1", "/search")))


if __name__ == "__main__":
    main()
