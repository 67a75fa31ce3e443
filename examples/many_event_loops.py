"""One async bucket shared by several threads, each running its own event loop.

A limitor bucket binds to no event loop: it computes each caller's admission time under
a short ``threading.Lock`` and lets the caller sleep on its own loop. So one
``AsyncLeakyBucket``, made at import time, can limit tasks in several threads at once,
each thread running ``asyncio`` or ``trio``: the limit holds for all of them together.
``max_concurrent`` works across the loops too.

Three threads (two asyncio loops and one trio loop when trio is installed) make 8 calls
each against 20 calls per second with bursts of 2, and at most 2 bodies at once.

Run it with::

    python examples/many_event_loops.py

It takes a little over one second.
"""

from __future__ import annotations

import importlib.util
import threading
import time

import anyio

from limitor import AsyncLeakyBucket, BucketConfig

BUCKET = AsyncLeakyBucket(BucketConfig(capacity=20, seconds=1, burst=2), max_concurrent=2)
CALLS_PER_THREAD = 8

lock = threading.Lock()
running = peak = 0


async def calls(name: str) -> None:
    global running, peak
    for _ in range(CALLS_PER_THREAD):
        async with BUCKET:  # waits for the rate and for one of the 2 places
            with lock:
                running += 1
                peak = max(peak, running)
            await anyio.sleep(0.01)  # the work
            with lock:
                running -= 1
    print(f"  {name}: {CALLS_PER_THREAD} calls done")


def main() -> None:
    backends = ["asyncio", "asyncio"]
    backends.append("trio" if importlib.util.find_spec("trio") else "asyncio")
    threads = [
        threading.Thread(
            target=anyio.run,
            args=(calls, f"{backend} loop in thread {i}"),
            kwargs={"backend": backend},
        )
        for i, backend in enumerate(backends, start=1)
    ]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - start

    total = BUCKET.stats.admitted
    needed = (total - BUCKET.burst) / BUCKET.rate  # a burst of 2, then 20 per second
    print(f"{total} calls from {len(threads)} event loops took {elapsed:.2f} s")
    print(f"the limit needs at least ({total} - 2) / 20 = {needed:.2f} s for them: kept")
    print(f"at most {peak} bodies ran at once (max_concurrent=2)")
    assert elapsed >= needed - 0.01
    assert peak <= 2


if __name__ == "__main__":
    main()
