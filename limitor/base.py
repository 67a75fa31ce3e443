"""Rate-limit protocols (the limitor 0.6 names) and the bucket code every algorithm shares.

A bucket is an engine (pure arithmetic, :mod:`limitor.engines`) plus its state, a short
``threading.Lock`` and a clock. Every verb works the same way: under the lock, read the
clock once and let the engine decide and commit; then, outside the lock, sleep until the
committed time. Nothing ever sleeps or awaits while holding the lock, so one bucket serves
threads and any number of event loops at once, waiters are served in order, and a
saturated bucket admits at exactly its rate.

:class:`SyncBucket` and :class:`AsyncBucket` differ only in how they wait.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    asynccontextmanager,
    contextmanager,
)
from contextvars import ContextVar
from types import TracebackType
from typing import Any, ClassVar, Protocol, TypeVar

from limitor._checks import check_amount, check_count, check_quantity, check_timeout
from limitor._gate import ConcurrencyGate
from limitor.clock import MONOTONIC, Clock
from limitor.configs import BucketConfig, Capacity
from limitor.engines import Engine
from limitor.errors import AcquireTimeout, ConfigTypeError, QueueFull, ReservationError
from limitor.results import Reservation, Stats, Status

__all__ = ("AsyncBucket", "AsyncRateLimit", "Bucket", "HasCapacity", "SyncBucket", "SyncRateLimit")

SB = TypeVar("SB", bound="SyncBucket")
AB = TypeVar("AB", bound="AsyncBucket")

_CURRENT: ContextVar[Reservation | None] = ContextVar("limitor_reservation", default=None)
"""The reservation of the innermost ``acquire_ctx`` block, for ``reconcile``."""


class HasCapacity(Protocol):
    """Anything with a ``capacity`` (limitor 0.6)."""

    capacity: float


class SyncRateLimit(Protocol):
    """A blocking rate limit (limitor 0.6 protocol, with ``timeout`` added)."""

    def acquire(self, amount: float = 1, timeout: float | None = None) -> None:
        """Block until ``amount`` may go."""
        ...

    def acquire_ctx(self, amount: float = 1) -> AbstractContextManager[Any]:
        """A context manager that acquires ``amount`` on entry."""
        ...

    def reconcile(self, actual: float, estimated: float) -> None:
        """Correct an earlier estimate: refund or charge the difference."""
        ...

    def __enter__(self) -> Any: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None: ...


class AsyncRateLimit(Protocol):
    """An awaiting rate limit (limitor 0.6 protocol)."""

    async def acquire(self, amount: float = 1, timeout: float | None = None) -> None:
        """Wait until ``amount`` may go."""
        ...

    def acquire_ctx(
        self, amount: float = 1, timeout: float | None = None
    ) -> AbstractAsyncContextManager[Any]:
        """An async context manager that acquires ``amount`` on entry."""
        ...

    async def reconcile(self, actual: float, estimated: float) -> None:
        """Correct an earlier estimate: refund or charge the difference."""
        ...

    async def __aenter__(self) -> Any: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None: ...


class Bucket:
    """The state, lock, clock and counters of one limit; the verbs that never wait.

    Subclasses set ``engine_type`` (the algorithm) and add the waiting verbs.
    """

    __slots__ = (
        "__weakref__",
        "_admitted",
        "_burst",
        "_cancelled",
        "_clock",
        "_config",
        "_engine",
        "_lock",
        "_max_waiting",
        "_now",
        "_rejected",
        "_reserve",
        "_state",
        "_wait_total",
        "_waited",
        "_waiting",
    )

    engine_type: ClassVar[type[Engine[Any]]]

    def __init__(
        self, bucket_config: BucketConfig | None = None, *, clock: Clock | None = None
    ) -> None:
        config = BucketConfig() if bucket_config is None else bucket_config
        if not isinstance(config, BucketConfig):
            raise ConfigTypeError(f"bucket_config must be a BucketConfig, got {config!r}")
        if clock is None:
            clock = MONOTONIC
        elif not isinstance(clock, Clock):
            raise ConfigTypeError(f"clock must have now(), sleep() and asleep(), got {clock!r}")
        self._config = config
        self._engine = self.engine_type(config.rate, config.max_burst)
        self._state = self._engine.new_state()
        self._reserve = self._engine.reserve
        self._burst = self._engine.burst
        self._lock = threading.Lock()
        self._clock = clock
        self._now = clock.now
        self._max_waiting: int | None = None
        self._admitted = self._waited = self._rejected = self._cancelled = self._waiting = 0
        self._wait_total = 0.0

    # -- read-only views -----------------------------------------------------------

    @property
    def config(self) -> BucketConfig:
        """The configuration this bucket was made with."""
        return self._config

    @property
    def capacity(self) -> float:
        """Units per ``seconds`` (limitor 0.6)."""
        return self._config.capacity

    @property
    def seconds(self) -> float:
        """The period of ``capacity`` (limitor 0.6)."""
        return self._config.seconds

    @property
    def rate(self) -> float:
        """Units per second."""
        return self._engine.rate

    @property
    def burst(self) -> float:
        """The most units admitted at once."""
        return self._burst

    @property
    def clock(self) -> Clock:
        """The clock this bucket reads and sleeps on."""
        return self._clock

    @property
    def engine(self) -> Engine[Any]:
        """The algorithm's engine."""
        return self._engine

    @property
    def stats(self) -> Stats:
        """Counters since the bucket was made or :meth:`reset`."""
        with self._lock:
            return Stats(
                admitted=self._admitted,
                waited=self._waited,
                total_wait=self._wait_total,
                rejected=self._rejected,
                cancelled=self._cancelled,
                waiting=self._waiting,
            )

    def status(self, amount: float = 1) -> Status:
        """The live state (for ``RateLimit-*`` and ``Retry-After`` headers); changes nothing."""
        amount = check_quantity("amount", amount)
        with self._lock:
            now = self._now()
            wait = self._engine.wait_time(self._state, now, amount)
            remaining = self._engine.remaining(self._state, now)
            full_at = self._engine.full_at(self._state)
        return Status(
            limit=self._burst,
            remaining=max(remaining, 0.0),
            retry_after=max(wait, 0.0),
            reset_after=max(full_at - now, 0.0),
        )

    def capacity_info(self, amount: float = 1) -> Capacity:
        """Whether ``amount`` would be admitted now and how many units it lacks (read-only)."""
        amount = check_quantity("amount", amount)
        with self._lock:
            now = self._now()
            wait = self._engine.wait_time(self._state, now, amount)
            remaining = self._engine.remaining(self._state, now)
        return Capacity(has_capacity=wait <= 0, needed_capacity=amount - remaining)

    def reset(self) -> None:
        """Forget all admissions and counters: the bucket is full again."""
        with self._lock:
            self._state = self._engine.new_state()
            self._admitted = self._waited = self._rejected = self._cancelled = 0
            self._wait_total = 0.0

    def __repr__(self) -> str:
        with self._lock:
            remaining = self._engine.remaining(self._state, self._now())
            waiting = self._waiting
        return (
            f"<{type(self).__name__} rate={self.rate:g}/s burst={self._burst:g} "
            f"remaining={remaining:.6g} waiting={waiting}>"
        )

    # -- deciding -------------------------------------------------------------------

    def _try_now(self, amount: float) -> bool:
        """Admit a validated, positive ``amount`` if it fits now (policing)."""
        with self._lock:
            if self._reserve(self._state, self._now(), amount, 0.0) >= 0.0:
                self._admitted += 1
                return True
            self._rejected += 1
            return False

    def _commit(self, amount: float, max_wait: float, *, waiter: bool) -> Reservation:
        """Reserve a validated, positive ``amount``; raise if it would wait beyond ``max_wait``.

        ``waiter`` marks a caller that will sleep inside the bucket (counted in ``waiting``
        until :meth:`_done_waiting`, and bounded by ``_max_waiting``).
        """
        engine = self._engine
        state = self._state
        with self._lock:
            now = self._now()
            before = engine.snapshot(state)
            delay = engine.reserve(state, now, amount, max_wait)
            if delay < 0:
                self._rejected += 1
                raise AcquireTimeout(
                    f"amount {amount:g} would wait {-delay:.6g}s, more than the timeout "
                    f"({max_wait:g}s)",
                    retry_after=-delay,
                )
            if delay > 0:
                if waiter:
                    if self._max_waiting is not None and self._waiting >= self._max_waiting:
                        engine.restore(state, before)
                        self._rejected += 1
                        raise QueueFull(
                            f"{self._waiting} callers are already waiting (max_size)",
                            retry_after=delay,
                        )
                    self._waiting += 1
                self._waited += 1
                self._wait_total += delay
            self._admitted += 1
            after = engine.snapshot(state) if delay > 0 else ()
        return Reservation(self, None, amount, now, delay, before, after)

    def _done_waiting(self) -> None:
        with self._lock:
            self._waiting -= 1

    def _zero(self) -> Reservation:
        return Reservation(self, None, 0.0, self._now(), 0.0)

    # -- giving back ---------------------------------------------------------------

    def _cancel_reservation(self, reservation: Reservation) -> float:
        if reservation.amount == 0:
            return 0.0
        with self._lock:
            now = self._now()
            if reservation.time_to_act <= now:
                return 0.0
            given = self._engine.cancel(
                self._state,
                now,
                reservation.amount,
                reservation.time_to_act,
                reservation._before,
                reservation._after,
            )
            self._admitted -= 1
            self._cancelled += 1
            return given

    def _reconcile_reservation(self, reservation: Reservation, actual: float) -> None:
        if not reservation.ok:
            raise ReservationError("cannot reconcile a cancelled reservation")
        actual = check_quantity("actual", actual)
        self._adjust(actual - reservation.amount, reservation.time_to_act)
        reservation.amount = actual

    def _adjust(self, extra: float, admit_time: float | None) -> None:
        """Charge ``extra`` units as debt (positive) or refund them (negative)."""
        if extra == 0:
            return
        engine = self._engine
        with self._lock:
            now = self._now()
            if extra > 0:
                engine.charge(self._state, now, extra)
            else:
                when = self._state.last if admit_time is None else admit_time
                engine.refund(self._state, now, -extra, when)

    def _reconcile(self, actual: float, estimated: float) -> None:
        actual = check_quantity("actual", actual)
        estimated = check_quantity("estimated", estimated)
        current = _CURRENT.get()
        if current is not None and current._owner is self and current.ok:
            current.reconcile(max(current.amount + (actual - estimated), 0.0))
        else:
            # Without its reservation, treat the estimate as the latest admission: exact
            # for one caller at a time; use reserve()/acquire_ctx() when calls overlap.
            self._adjust(actual - estimated, None)


class SyncBucket(Bucket):
    """A bucket for threads: ``acquire`` blocks the calling thread until it may go.

    Most callers want :meth:`acquire` (or ``with bucket:``); :meth:`try_acquire` refuses
    at once instead of waiting; :meth:`reserve` commits and leaves the waiting to you.
    """

    __slots__ = ()

    def acquire(self, amount: float = 1, timeout: float | None = None) -> None:
        """Block until ``amount`` units may go.

        Args:
            amount: units to take (0 does nothing).
            timeout: the longest wait accepted, in seconds (``None``: no limit).

        Raises:
            AmountError: ``amount`` is negative, NaN, not a number, or above the burst.
            AcquireTimeout: the wait would exceed ``timeout``; raised at once, nothing taken.
        """
        try:
            if timeout is None and amount > 0 and amount is not True:
                with self._lock:
                    if self._reserve(self._state, self._now(), amount, 0.0) >= 0.0:
                        self._admitted += 1
                        return
        except TypeError:
            pass
        self._acquire_blocking(amount, timeout)

    def _acquire_blocking(self, amount: object, timeout: object) -> Reservation:
        n = check_amount(amount, self._burst)
        max_wait = check_timeout(timeout)
        if n == 0:
            return self._zero()
        reservation = self._commit(n, max_wait, waiter=True)
        if reservation.delay > 0:
            try:
                reservation.wait()
            finally:
                self._done_waiting()
        return reservation

    def try_acquire(self, amount: float = 1) -> bool:
        """Take ``amount`` if it fits right now and return True; else take nothing, False."""
        n = check_amount(amount, self._burst)
        return True if n == 0 else self._try_now(n)

    def reserve(self, amount: float = 1, timeout: float | None = None) -> Reservation:
        """Commit ``amount`` for the earliest time it fits and return at once.

        The caller should wait ``reservation.delay`` seconds (or call ``wait()``), or
        ``cancel()`` it.

        Raises:
            AcquireTimeout: the delay would exceed ``timeout``; nothing is committed.
        """
        n = check_amount(amount, self._burst)
        max_wait = check_timeout(timeout)
        return self._zero() if n == 0 else self._commit(n, max_wait, waiter=False)

    def reconcile(self, actual: float, estimated: float) -> None:
        """Correct an estimate once the real amount is known; never waits or raises for debt.

        Unused units are refunded; units beyond the estimate become debt that delays later
        callers. Inside ``acquire_ctx`` it applies to that block's reservation.
        """
        self._reconcile(actual, estimated)

    @contextmanager
    def acquire_ctx(self, amount: float = 1, timeout: float | None = None) -> Iterator[SyncBucket]:
        """Acquire ``amount`` on entry (``with bucket.acquire_ctx(amount): ...``).

        ``reconcile`` inside the block corrects that block's reservation exactly.
        """
        reservation = self._acquire_blocking(amount, timeout)
        token = _CURRENT.set(reservation)
        try:
            yield self
        finally:
            _CURRENT.reset(token)

    def __enter__(self: SB) -> SB:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        return None


class AsyncBucket(Bucket):
    """A bucket for tasks (asyncio or trio): ``await acquire()`` suspends until it may go.

    It binds to no event loop, so it can be made at import time and shared by several
    loops and threads. ``max_concurrent`` bounds how many ``async with`` bodies run at once.
    """

    __slots__ = ("_gate", "_max_concurrent")

    def __init__(
        self,
        bucket_config: BucketConfig | None = None,
        max_concurrent: int | None = None,
        *,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(bucket_config, clock=clock)
        self._max_concurrent = (
            None if max_concurrent is None else check_count("max_concurrent", max_concurrent)
        )
        self._gate = None if self._max_concurrent is None else ConcurrencyGate(self._max_concurrent)

    @property
    def max_concurrent(self) -> int | None:
        """The most ``async with`` bodies running at once (``None``: no bound)."""
        return self._max_concurrent

    async def acquire(self, amount: float = 1, timeout: float | None = None) -> None:
        """Wait until ``amount`` units may go, without blocking the event loop.

        Raises:
            AmountError: ``amount`` is negative, NaN, not a number, or above the burst.
            AcquireTimeout: the wait would exceed ``timeout``; raised at once, nothing taken.
        """
        try:
            if timeout is None and amount > 0 and amount is not True:
                with self._lock:
                    if self._reserve(self._state, self._now(), amount, 0.0) >= 0.0:
                        self._admitted += 1
                        return
        except TypeError:
            pass
        await self._acquire_waiting(amount, timeout)

    async def _acquire_waiting(self, amount: object, timeout: object) -> Reservation:
        n = check_amount(amount, self._burst)
        max_wait = check_timeout(timeout)
        if n == 0:
            return self._zero()
        reservation = self._commit(n, max_wait, waiter=True)
        if reservation.delay > 0:
            try:
                await reservation.wait_async()
            finally:
                self._done_waiting()
        return reservation

    async def try_acquire(self, amount: float = 1) -> bool:
        """Take ``amount`` if it fits right now and return True; else take nothing, False."""
        n = check_amount(amount, self._burst)
        return True if n == 0 else self._try_now(n)

    async def reserve(self, amount: float = 1, timeout: float | None = None) -> Reservation:
        """Commit ``amount`` for the earliest time it fits and return at once.

        Raises:
            AcquireTimeout: the delay would exceed ``timeout``; nothing is committed.
        """
        n = check_amount(amount, self._burst)
        max_wait = check_timeout(timeout)
        return self._zero() if n == 0 else self._commit(n, max_wait, waiter=False)

    async def reconcile(self, actual: float, estimated: float) -> None:
        """Correct an estimate once the real amount is known; never waits or raises for debt."""
        self._reconcile(actual, estimated)

    @asynccontextmanager
    async def acquire_ctx(
        self, amount: float = 1, timeout: float | None = None
    ) -> AsyncIterator[AsyncBucket]:
        """Acquire ``amount`` (and a ``max_concurrent`` place) on entry.

        ``async with bucket.acquire_ctx(amount): ...``; ``reconcile`` inside the block
        corrects that block's reservation exactly.
        """
        gate = self._gate
        if gate is not None:
            await gate.acquire()
        try:
            reservation = await self._acquire_waiting(amount, timeout)
            token = _CURRENT.set(reservation)
            try:
                yield self
            finally:
                _CURRENT.reset(token)
        finally:
            if gate is not None:
                gate.release()

    async def __aenter__(self: AB) -> AB:
        gate = self._gate
        if gate is not None:
            await gate.acquire()
        try:
            await self.acquire()
        except BaseException:
            if gate is not None:
                gate.release()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        if self._gate is not None:
            self._gate.release()
