"""The floor as a row of its own: what a minimal correct bucket achieves in each section."""

from __future__ import annotations

from typing import Any

from benchmarks.floor import FloorBucket, floor_keyed_hit
from benchmarks.libraries.base import ASYNC_ACQUIRE, SYNC_ACQUIRE, Case, Keyed, Shaper, Timed

LIBRARY = "floor"
DISTRIBUTIONS: tuple[str, ...] = ()
ALGORITHM = "token bucket"
HUGE = 1e12


def _huge() -> dict[str, Any]:
    return {"bucket": FloorBucket(HUGE, HUGE)}


def timed_cases() -> list[Case]:
    return [
        Timed(SYNC_ACQUIRE, ALGORITHM, stmt="bucket.acquire()", setup=_huge),
        Timed(
            ASYNC_ACQUIRE,
            ALGORITHM,
            stmt="await bucket.acquire_async()",
            setup=_huge,
            is_async=True,
            note="the sync floor inside an async def",
        ),
    ]


def shapers() -> list[Case]:
    return [
        Shaper("", ALGORITHM, make=lambda r, b: FloorBucket(r, b).acquire),
        Shaper("", ALGORITHM, make=lambda r, b: FloorBucket(r, b).acquire_async, is_async=True),
    ]


def keyed() -> list[Case]:
    return [Keyed("", "dict of minimal buckets", make=floor_keyed_hit)]
