"""The floor: the smallest correct locked token bucket, timed before every repeat.

This machine's speed drifts by up to 2x from one minute to the next, so absolute
microseconds from different moments (or different worker processes) cannot be compared.
Every worker therefore times :class:`FloorBucket` right before each repeat of each
measurement and reports the measurement as a ratio to it. The floor is what "about one
lock plus one clock read" costs in pure Python: one ``threading.Lock``, one
``time.monotonic()`` and a few float operations.
"""

from __future__ import annotations

import asyncio
import threading
import time
from time import monotonic

__all__ = ("FloorBucket", "floor_keyed_hit", "time_floor")

FLOOR_STMT = "bucket.acquire()"


class FloorBucket:
    """A minimal token bucket: reserve under a lock, sleep outside it (FIFO, exact)."""

    __slots__ = ("_burst", "_lock", "_rate", "_stamp", "_tokens")

    def __init__(self, rate: float, burst: float) -> None:
        self._lock = threading.Lock()
        self._rate = float(rate)
        self._burst = float(burst)
        self._tokens = float(burst)
        self._stamp = monotonic()

    def reserve(self, amount: float = 1.0) -> float:
        """Take ``amount`` tokens (the count may go negative); return the wait in seconds."""
        with self._lock:
            now = monotonic()
            tokens = self._tokens + (now - self._stamp) * self._rate
            if tokens > self._burst:
                tokens = self._burst
            tokens -= amount
            self._tokens = tokens
            self._stamp = now
        return -tokens / self._rate if tokens < 0.0 else 0.0

    def acquire(self, amount: float = 1.0) -> None:
        """Block until ``amount`` may go (the timed hot path)."""
        with self._lock:
            now = monotonic()
            tokens = self._tokens + (now - self._stamp) * self._rate
            if tokens > self._burst:
                tokens = self._burst
            tokens -= amount
            self._tokens = tokens
            self._stamp = now
        if tokens < 0.0:
            time.sleep(-tokens / self._rate)

    async def acquire_async(self, amount: float = 1.0) -> None:
        """Await until ``amount`` may go."""
        delay = self.reserve(amount)
        if delay > 0.0:
            await asyncio.sleep(delay)


def floor_keyed_hit(rate: float, burst: float):  # type: ignore[no-untyped-def]
    """A per-key floor: a dict of :class:`FloorBucket`, one made on each key's first hit."""
    buckets: dict[object, FloorBucket] = {}
    get = buckets.get

    def hit(key: object) -> None:
        bucket = get(key)
        if bucket is None:
            bucket = buckets[key] = FloorBucket(rate, burst)
        bucket.acquire()

    return hit


_FLOOR_CALLS = 0


def time_floor(target: float = 0.02) -> float:
    """Seconds per uncontended ``FloorBucket.acquire()`` right now (a fresh, huge bucket)."""
    from benchmarks.measure import calibrate, time_sync

    global _FLOOR_CALLS
    namespace = {"bucket": FloorBucket(1e12, 1e12)}
    if not _FLOOR_CALLS:
        _FLOOR_CALLS = calibrate(lambda n: time_sync(FLOOR_STMT, namespace, n), target)
    return time_sync(FLOOR_STMT, namespace, _FLOOR_CALLS) / _FLOOR_CALLS
