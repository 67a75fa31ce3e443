"""Timing loops and small statistics shared by the sections.

Timed statements are compiled into a loop the way :mod:`timeit` does (the garbage collector
is off while a loop runs, names are function locals), so every library, the floor
included, pays the same loop overhead. Async statements run in one function on one event
loop, timed inside it.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

__all__ = (
    "calibrate",
    "jain",
    "max_in_window",
    "median",
    "time_async",
    "time_sync",
)

_SYNC_TEMPLATE = """
def __bench(__n, {args}):
    __r = range(__n)
    __t0 = __pc()
    for _ in __r:
        {stmt}
    return __pc() - __t0
"""

_ASYNC_TEMPLATE = """
async def __bench(__n, {args}):
    __r = range(__n)
    __t0 = __pc()
    for _ in __r:
        {stmt}
    return __pc() - __t0
"""

_COMPILED: dict[tuple[str, str, bool], Callable[..., Any]] = {}


def _compile(stmt: str, names: Sequence[str], is_async: bool) -> Callable[..., Any]:
    key = (stmt, ",".join(names), is_async)
    function = _COMPILED.get(key)
    if function is None:
        template = _ASYNC_TEMPLATE if is_async else _SYNC_TEMPLATE
        source = template.format(args=", ".join(names) or "__unused=None", stmt=stmt)
        scope: dict[str, Any] = {"__pc": time.perf_counter}
        exec(compile(source, f"<bench {stmt!r}>", "exec"), scope)
        function = _COMPILED[key] = scope["__bench"]
    return function


def time_sync(stmt: str, namespace: dict[str, Any], n: int) -> float:
    """Seconds taken by ``n`` runs of ``stmt``, with the names of ``namespace`` as locals."""
    function = _compile(stmt, list(namespace), is_async=False)
    enabled = gc.isenabled()
    gc.disable()
    try:
        return float(function(n, **namespace))
    finally:
        if enabled:
            gc.enable()


def time_async(
    stmt: str, namespace: dict[str, Any], n: int, loop: asyncio.AbstractEventLoop
) -> float:
    """Seconds taken by ``n`` runs of the awaiting ``stmt``, timed inside ``loop``."""
    function = _compile(stmt, list(namespace), is_async=True)
    enabled = gc.isenabled()
    gc.disable()
    try:
        return float(loop.run_until_complete(function(n, **namespace)))
    finally:
        if enabled:
            gc.enable()


def calibrate(run: Callable[[int], float], target: float) -> int:
    """The number of calls that makes ``run(n)`` last about ``target`` seconds."""
    n = 1
    while True:
        elapsed = run(n)
        if elapsed >= target / 4 or n >= 10_000_000:
            break
        n *= 4 if elapsed < target / 40 else 2
    return max(int(n * target / max(elapsed, 1e-9)), 1)


def median(values: Sequence[float]) -> float:
    """The median (NaN for no values)."""
    return statistics.median(values) if values else float("nan")


def jain(shares: Sequence[float]) -> float:
    """Jain's fairness index: 1.0 when every worker got the same share, 1/n at worst."""
    total = sum(shares)
    squares = sum(share * share for share in shares)
    if not shares or squares == 0:
        return float("nan")
    return total * total / (len(shares) * squares)


def max_in_window(times: Sequence[float], window: float, weights: Sequence[float] = ()) -> float:
    """The most admitted (weighted) in any closed window ``[t, t + window]`` of sorted times."""
    order = sorted(range(len(times)), key=times.__getitem__)
    ts = [times[i] for i in order]
    ws = [weights[i] for i in order] if weights else [1.0] * len(ts)
    best = 0.0
    total = 0.0
    start = 0
    for end, t in enumerate(ts):
        total += ws[end]
        while ts[start] < t - window:
            total -= ws[start]
            start += 1
        best = max(best, total)
    return best


async def gather_all(*aws: Awaitable[Any]) -> list[Any]:
    """``asyncio.gather`` that cancels the rest when one fails."""
    tasks = [asyncio.ensure_future(aw) for aw in aws]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        raise
