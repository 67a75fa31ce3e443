"""The queue-flavoured async leaky bucket (limitor 0.6 import path).

In limitor 0.6 this class ran a worker task that served a queue of waiters; a full queue
blocked its callers. Here waiters are served in order by the same reservation mechanism
as every other bucket (no worker task, no event loop bound at construction), and
``max_size`` bounds how many callers hold a place in the queue at once. As in 0.6, a
caller that finds the queue full waits for room, first come first served: shaping drops
nothing. Only a ``timeout`` bounds that wait: when the queue cannot open for the caller
in time it raises :class:`~limitor.errors.AcquireTimeout` at once (with ``retry_after``),
and a caller that gets in too late to meet its timeout raises then.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Hashable

from limitor._checks import check_count, check_timeout
from limitor._gate import ConcurrencyGate
from limitor.base import AsyncBucket
from limitor.clock import Clock
from limitor.configs import BucketConfig
from limitor.engines import LeakyBucket
from limitor.errors import AcquireTimeout
from limitor.leaky_bucket.core import LeakRate
from limitor.listeners import LimitEvent, notify
from limitor.results import Reservation

__all__ = ("AsyncLeakyBucket",)


class AsyncLeakyBucket(LeakRate, AsyncBucket):
    """Async leaky bucket with a bounded number of waiters.

    Args:
        bucket_config: the limit.
        max_size: the most callers waiting at once; 0 (the default) means no bound.
        max_concurrent: the most ``async with`` bodies running at once.
        clock: the time source (tests pass a ``FakeClock``).
    """

    __slots__ = ("_admissions", "_room", "_room_lock")

    engine_type = LeakyBucket

    def __init__(
        self,
        bucket_config: BucketConfig | str | None = None,
        max_size: int = 0,
        *,
        max_concurrent: int | None = None,
        rate: str | None = None,
        burst: float | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(bucket_config, max_concurrent, rate=rate, burst=burst, clock=clock)
        size = check_count("max_size", max_size, minimum=0)
        self._room = ConcurrencyGate(size) if size else None
        self._room_lock = threading.Lock()
        self._admissions: list[float] = []  # the queue's admission times, in order

    @property
    def max_size(self) -> int:
        """The most callers in the queue at once, or 0 for no bound."""
        return 0 if self._room is None else self._room.limit

    def _room_opens(self) -> float:
        """The earliest time a caller arriving now can get into the queue (lower bound)."""
        room = self._room
        assert room is not None
        with self._room_lock:
            if room.active < room.limit and not room.waiting:
                return -math.inf
            times = self._admissions
            if not times:
                return -math.inf
            return times[min(room.waiting, len(times) - 1)]

    async def _acquire_async(self, key: Hashable, amount: object, timeout: object) -> Reservation:
        """Wait for room in the queue (FIFO), then for the admission time, as in 0.6."""
        room = self._room
        if room is None:
            return await super()._acquire_async(key, amount, timeout)
        n = self._amounts.check(amount)
        max_wait = check_timeout(timeout)
        if self._amounts.is_nothing(n):
            return self._zero(key, n)
        start = self._now()
        if max_wait < math.inf:
            # The earliest this caller can go: when the queue has room for it, and not
            # before the slot it would get if it were in the queue already.
            soonest = max(self._room_opens() - start, self._peek(key, n)[0].retry_after)
            if soonest > max_wait:
                if self._listeners:
                    event = LimitEvent(self._spec.name, key, n, retry_after=soonest)
                    notify(self._listeners, "on_rejected", event)
                raise AcquireTimeout(
                    f"amount {self._amounts.describe(n)} would wait at least {soonest:.6g}s "
                    f"(the queue is full, max_size={room.limit}), more than the timeout "
                    f"({max_wait:g}s): retry in {soonest:.6g}s",
                    retry_after=soonest,
                )
        await room.acquire()
        try:
            left = max(0.0, max_wait - (self._now() - start))
            reservation = await self._commit_async(key, n, left, waiter=True)
            if reservation.delay <= 0:
                return reservation
            admission = self._now() + reservation.delay
            with self._room_lock:
                bisect.insort(self._admissions, admission)
            try:
                await reservation.wait_async()
            finally:
                with self._room_lock:
                    self._admissions.remove(admission)
                self._done_waiting()
            return reservation
        finally:
            room.release()

    async def shutdown(self) -> None:
        """Kept for limitor 0.6 code; there is no worker task to stop."""
