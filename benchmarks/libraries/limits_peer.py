"""limits: policing strategies (fixed window, moving window, sliding window counter).

``limits`` only answers "may this hit go now?", so the blocking cases drive it as a user
would: hit, and when refused sleep until the reset time that ``get_window_stats`` reports
(at least 1 ms, at most 1 s), then try again. Windows are whole seconds and there is no
separate burst, so "rate r, burst b" can only be written ``r per 1 second`` (a burst of r).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from benchmarks.libraries.base import (
    ASYNC_ACQUIRE,
    ASYNC_DECORATOR,
    PER_KEY_DECORATOR,
    SYNC_ACQUIRE,
    SYNC_DECORATOR,
    Case,
    Keyed,
    RedisCase,
    Shaper,
    Timed,
    Unavailable,
)

LIBRARY = "limits"
DISTRIBUTIONS = ("limits",)
HUGE = 10**12
KEY = "bench"

# (algorithm label, strategy class name)
STRATEGIES = (
    ("fixed window", "FixedWindowRateLimiter"),
    ("moving window", "MovingWindowRateLimiter"),
    ("sliding window counter", "SlidingWindowCounterRateLimiter"),
)


def _item(rate: float) -> Any:
    from limits import RateLimitItemPerSecond

    return RateLimitItemPerSecond(max(int(rate), 1))


def _describe(rate: float, burst: float) -> str:
    return f"{max(int(rate), 1)} per second (no burst setting)"


def _sync(name: str) -> Any:
    import limits.storage
    import limits.strategies

    return getattr(limits.strategies, name)(limits.storage.MemoryStorage())


def _async(name: str) -> Any:
    import limits.aio.storage
    import limits.aio.strategies

    return getattr(limits.aio.strategies, name)(limits.aio.storage.MemoryStorage())


def _pause(reset: float) -> float:
    return min(max(reset - time.time(), 0.001), 1.0)


def timed_cases() -> list[Case]:
    cases: list[Case] = []
    for algorithm, name in STRATEGIES:

        def setup(name: str = name) -> dict[str, Any]:
            return {"limiter": _sync(name), "item": _item(HUGE)}

        cases.append(
            Timed(
                SYNC_ACQUIRE,
                algorithm,
                stmt="limiter.hit(item, 'bench')",
                setup=setup,
                note="hit() (policing)",
            )
        )
    for algorithm, name in STRATEGIES:

        def asetup(name: str = name) -> dict[str, Any]:
            return {"limiter": _async(name), "item": _item(HUGE)}

        cases.append(
            Timed(
                ASYNC_ACQUIRE,
                algorithm,
                stmt="await limiter.hit(item, 'bench')",
                setup=asetup,
                is_async=True,
                note="limits.aio hit() (policing)",
            )
        )
    for measure in (SYNC_DECORATOR, ASYNC_DECORATOR, PER_KEY_DECORATOR):
        cases.append(Unavailable(measure, "moving window", status="n/a", note="no decorator"))
    return cases


def shapers() -> list[Case]:
    cases: list[Case] = []
    for algorithm, name in STRATEGIES:

        def make_sync(rate: float, burst: float, name: str = name):  # type: ignore[no-untyped-def]
            limiter = _sync(name)
            item = _item(rate)

            def acquire(amount: int = 1) -> None:
                while not limiter.hit(item, KEY, cost=amount):
                    time.sleep(_pause(limiter.get_window_stats(item, KEY).reset_time))

            return acquire

        def make_async(rate: float, burst: float, name: str = name):  # type: ignore[no-untyped-def]
            limiter = _async(name)
            item = _item(rate)

            async def acquire(amount: int = 1) -> None:
                while not await limiter.hit(item, KEY, cost=amount):
                    stats = await limiter.get_window_stats(item, KEY)
                    await asyncio.sleep(_pause(stats.reset_time))

            return acquire

        cases.append(Shaper("", algorithm, make=make_sync, config=_describe))
        cases.append(Shaper("", algorithm, make=make_async, is_async=True, config=_describe))
    return cases


def keyed() -> list[Case]:
    cases: list[Case] = []
    for algorithm, name in STRATEGIES:

        def make(rate: float, burst: float, name: str = name):  # type: ignore[no-untyped-def]
            limiter = _sync(name)
            item = _item(rate)
            hit = limiter.hit
            return lambda key: hit(item, key)

        cases.append(Keyed("", algorithm, make=make, note="MemoryStorage"))
    return cases


def redis_cases(url: str) -> list[Case]:
    cases: list[Case] = []
    for algorithm, name in STRATEGIES:

        def make(url: str, rate: float, burst: float, name: str = name):  # type: ignore[no-untyped-def]
            import limits.storage
            import limits.strategies

            limiter = getattr(limits.strategies, name)(limits.storage.RedisStorage(url))
            item = _item(rate)
            hit = limiter.hit
            return lambda key: bool(hit(item, key))

        cases.append(RedisCase("", algorithm, make=make, note="RedisStorage", config=_describe))
    return cases
