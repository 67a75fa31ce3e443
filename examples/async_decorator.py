"""An ``async def`` function limited by ``@rate_limit``, on asyncio and on trio.

The decorator sees a coroutine function and makes an async bucket: waiting tasks are
suspended (``anyio.sleep``), never the event loop. The bucket is made at import time,
before any event loop exists, and the same decorated function then runs under
``asyncio`` and under ``trio`` (through ``anyio.run(..., backend="trio")``).

Six tasks ask at once for a limit of 8 calls per second with bursts of 2: two go at
once, the rest one every 0.125 s, in the order they asked. The trio run shares the same
limit, so it starts with the burst already spent and goes at the steady pace.

Run it with::

    python examples/async_decorator.py

It takes about 1.5 seconds. The trio part needs ``trio`` (``pip install trio``) and is
skipped without it.
"""

from __future__ import annotations

import importlib.util

import anyio
import anyio.lowlevel

from limitor import limiter_of, rate_limit


@rate_limit(capacity=8, seconds=1, burst=2)  # decorated at import time: no loop needed
async def call_api(task: int) -> str:
    """Pretend to call an API."""
    await anyio.sleep(0)  # real work would await I/O here
    return f"reply {task}"


async def main(backend: str) -> None:
    print(f"{backend}:")
    start = anyio.current_time()

    async def worker(task: int) -> None:
        reply = await call_api(task)
        print(f"  task {task} got {reply!r} at +{anyio.current_time() - start:.3f} s")

    async with anyio.create_task_group() as tg:
        for task in range(1, 7):
            tg.start_soon(worker, task)
            await anyio.lowlevel.checkpoint()  # let it ask before the next one starts


if __name__ == "__main__":
    anyio.run(main, "asyncio")
    if importlib.util.find_spec("trio") is None:
        print("trio is not installed: skipping the trio run")
    else:
        anyio.run(main, "trio", backend="trio")
    stats = limiter_of(call_api).stats
    print(f"one limiter for both loops: admitted {stats.admitted}, {stats.waited} waited")
