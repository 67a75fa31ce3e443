"""aiolimiter: one asyncio leaky bucket (``AsyncLimiter``); async only, no decorator.

Its burst is ``max_rate``, so "rate r, burst b" is ``AsyncLimiter(b, b / r)``. Waiters are
woken smallest amount first, which matters for a large request queued behind small ones.
"""

from __future__ import annotations

from typing import Any

from benchmarks.libraries.base import (
    ASYNC_ACQUIRE,
    ASYNC_DECORATOR,
    PER_KEY_DECORATOR,
    SYNC_ACQUIRE,
    SYNC_DECORATOR,
    Case,
    Keyed,
    Shaper,
    Timed,
    Unavailable,
)

LIBRARY = "aiolimiter"
DISTRIBUTIONS = ("aiolimiter",)
ALGORITHM = "leaky bucket"
HUGE = 1e12


def _limiter(rate: float, burst: float) -> Any:
    from aiolimiter import AsyncLimiter

    return AsyncLimiter(burst, burst / rate)


def _describe(rate: float, burst: float) -> str:
    return f"AsyncLimiter({burst:g}, {burst / rate:g})"


def timed_cases() -> list[Case]:
    return [
        Unavailable(SYNC_ACQUIRE, ALGORITHM, status="n/a", note="async only"),
        Timed(
            ASYNC_ACQUIRE,
            ALGORITHM,
            stmt="await limiter.acquire()",
            setup=lambda: {"limiter": _limiter(HUGE, HUGE)},
            is_async=True,
        ),
        Unavailable(SYNC_DECORATOR, ALGORITHM, status="n/a", note="no decorator"),
        Unavailable(ASYNC_DECORATOR, ALGORITHM, status="n/a", note="no decorator"),
        Unavailable(PER_KEY_DECORATOR, ALGORITHM, status="n/a", note="no per-key limiter"),
    ]


def shapers() -> list[Case]:
    return [
        Shaper(
            "",
            ALGORITHM,
            make=lambda rate, burst: _limiter(rate, burst).acquire,
            is_async=True,
            config=_describe,
        )
    ]


def keyed() -> list[Case]:
    def make(rate: float, burst: float):  # type: ignore[no-untyped-def]
        from aiolimiter import AsyncLimiter

        limiters: dict[str, Any] = {}
        get = limiters.get
        period = burst / rate

        async def hit(key: str) -> None:
            limiter = get(key)
            if limiter is None:
                limiter = limiters[key] = AsyncLimiter(burst, period)
            await limiter.acquire()

        return hit

    return [
        Keyed(
            "",
            ALGORITHM,
            make=make,
            is_async=True,
            note="dict of AsyncLimiter (by hand; no per-key limiter)",
        )
    ]
