"""The largest stall of an event loop while an action runs (real time, for a few tests)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import anyio


async def largest_gap(action: Callable[[], Awaitable[object]], tick: float = 0.005) -> float:
    """The largest gap between two ticks of a ``tick``-second ticker task while ``action``
    runs on the same loop (a blocking call shows as a gap as long as it blocks)."""
    gaps: list[float] = []

    async def ticker() -> None:
        last = time.perf_counter()
        while True:
            await anyio.sleep(tick)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(ticker)
        await anyio.sleep(2 * tick)
        await action()
        tasks.cancel_scope.cancel()
    return max(gaps)


async def best_of_three(action: Callable[[], Awaitable[object]], bound: float) -> list[float]:
    """:func:`largest_gap` of up to three runs, until one is below ``bound``: blocking code
    stalls every run, while a busy machine's scheduling stalls one now and then."""
    runs: list[float] = []
    while len(runs) < 3 and (not runs or runs[-1] >= bound):
        runs.append(await largest_gap(action))
    return runs
