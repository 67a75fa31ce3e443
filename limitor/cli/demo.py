"""``limitor demo``: each algorithm shaping the same calls made back to back, live.

Then tasks waiting in order on an async bucket, while a ticker task shows that the event
loop is never blocked. With a :class:`~limitor.testing.FakeClock` it runs instantly.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

import anyio
import anyio.lowlevel

from limitor.base import SyncBucket
from limitor.clock import Clock
from limitor.configs import BucketConfig
from limitor.generic_cell_rate.core import SyncLeakyBucketGCRA, SyncVirtualSchedulingGCRA
from limitor.leaky_bucket.core import AsyncLeakyBucket, SyncLeakyBucket
from limitor.token_bucket.core import SyncTokenBucket

__all__ = ("ALGORITHMS", "ASYNC_EXTRA_TASKS", "demo", "demo_seconds")

ALGORITHMS: tuple[tuple[str, type[SyncBucket]], ...] = (
    ("leaky bucket", SyncLeakyBucket),
    ("token bucket", SyncTokenBucket),
    ("GCRA (virtual scheduling)", SyncVirtualSchedulingGCRA),
    ("GCRA (leaky bucket form)", SyncLeakyBucketGCRA),
)

ASYNC_EXTRA_TASKS = 4
"""The async part of the demo: ``burst + 4`` tasks, so four of them wait."""


def _bar(offset: float, scale: float, width: int = 36) -> str:
    filled = min(width, round(offset / scale * width)) if scale > 0 else 0
    return "#" * filled + "." * (width - filled)


def demo_seconds(calls: int = 10, rate: float = 5.0, burst: int = 4) -> float:
    """How long the live demo takes by its schedule (each algorithm, then the async part)."""
    per_algorithm = max(calls - burst, 0) / rate
    return len(ALGORITHMS) * per_algorithm + ASYNC_EXTRA_TASKS / rate


def demo(
    calls: int = 10,
    rate: float = 5.0,
    burst: int = 4,
    *,
    out: TextIO = sys.stdout,
    clock: Clock | None = None,
) -> float:
    """Shape ``calls`` calls made back to back through each algorithm, printing each one.

    Returns the total (clock) time the demonstration took.
    """
    config = BucketConfig(capacity=rate, seconds=1, burst=burst)
    span = max(calls - burst, 0) / rate
    now = time.monotonic if clock is None else clock.now
    print(
        f"limitor demo: one thread makes {calls} calls back to back against {rate:g} "
        f"calls/s with bursts of {burst}.\nEach algorithm lets the burst through at once, "
        f"then one call every {1 / rate:.3g} s: the same schedule, kept by different "
        f"bookkeeping. About {demo_seconds(calls, rate, burst):.1f} s in all.\n",
        file=out,
        flush=True,
    )
    begun = now()
    for name, bucket_type in ALGORITHMS:
        bucket = bucket_type(config, clock=clock)
        print(f"{name}", file=out, flush=True)
        start = now()
        for call in range(1, calls + 1):
            bucket.acquire()
            offset = now() - start
            print(f"  call {call:2d}  +{offset:6.3f} s  {_bar(offset, span)}", file=out, flush=True)
        stats = bucket.stats
        print(
            f"  admitted {stats.admitted}, {stats.waited} waited "
            f"(mean {stats.mean_wait:.3f} s each, as scheduled)\n",
            file=out,
            flush=True,
        )
    _demo_async(rate, burst, out=out, clock=clock)
    took = now() - begun
    print(f"the demo took {took:.1f} s", file=out, flush=True)
    return took


def _demo_async(rate: float, burst: int, *, out: TextIO, clock: Clock | None) -> None:
    bucket = AsyncLeakyBucket(BucketConfig(capacity=rate, seconds=1, burst=burst), clock=clock)
    now = time.monotonic if clock is None else clock.now
    tasks = burst + ASYNC_EXTRA_TASKS
    print(
        f"async: {tasks} tasks ask at once and go in the order they asked; the event "
        "loop is never blocked",
        file=out,
        flush=True,
    )
    ticks = 0

    async def caller(index: int, start: float) -> None:
        await bucket.acquire()
        print(f"  task {index:2d}  +{now() - start:6.3f} s", file=out, flush=True)

    async def ticker(done: anyio.Event) -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await anyio.sleep(0.01)

    async def main() -> None:
        start = now()
        done = anyio.Event()
        async with anyio.create_task_group() as outer:
            outer.start_soon(ticker, done)
            async with anyio.create_task_group() as tg:
                for index in range(1, tasks + 1):
                    tg.start_soon(caller, index, start)
                    await anyio.lowlevel.checkpoint()
            done.set()

    anyio.run(main)
    if clock is None:
        print(f"  meanwhile a ticker task ran {ticks} times", file=out, flush=True)
    print(file=out, flush=True)
