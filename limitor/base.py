"""Rate-limit protocols (the limitor 0.6 names) and the bucket code every algorithm shares.

A bucket is an engine (pure arithmetic, :mod:`limitor.engines`) plus its state, a short
``threading.Lock`` and a clock (see ``limitor._core`` for how every verb uses them).
:class:`SyncBucket` and :class:`AsyncBucket` differ only in how they wait.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    asynccontextmanager,
    contextmanager,
)
from types import TracebackType
from typing import Any, ClassVar, Protocol, TypeVar

from limitor._checks import check_count, check_quantity
from limitor._core import _CURRENT, LimiterCore
from limitor._gate import ConcurrencyGate
from limitor.clock import Clock
from limitor.configs import BucketConfig, Capacity
from limitor.engines import Engine, EngineState
from limitor.errors import ConfigTypeError
from limitor.results import Reservation, Stats, Status

__all__ = ("AsyncBucket", "AsyncRateLimit", "Bucket", "HasCapacity", "SyncBucket", "SyncRateLimit")

SB = TypeVar("SB", bound="SyncBucket")
AB = TypeVar("AB", bound="AsyncBucket")


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


class Bucket(LimiterCore):
    """One limit: an engine's state plus the lock, clock and counters; the verbs that never wait.

    Subclasses set ``engine_type`` (the algorithm); :class:`SyncBucket` and
    :class:`AsyncBucket` add the verbs that wait.
    """

    __slots__ = ("_config", "_state")

    engine_type: ClassVar[type[Engine[Any]]]

    def __init__(
        self, bucket_config: BucketConfig | None = None, *, clock: Clock | None = None
    ) -> None:
        config = BucketConfig() if bucket_config is None else bucket_config
        if not isinstance(config, BucketConfig):
            raise ConfigTypeError(f"bucket_config must be a BucketConfig, got {config!r}")
        super().__init__(self.engine_type(config.rate, config.max_burst), clock)
        self._config = config
        self._state = self._engine.new_state()

    def _state_for(self, key: Any, now: float) -> EngineState:
        state: EngineState = self._state
        return state

    def _existing_state(self, key: Any) -> EngineState | None:
        state: EngineState = self._state
        return state

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
            return status_of(self._engine, self._state, self._now(), amount)

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
            self._unwindable.clear()
            self._admitted = self._waited = self._rejected = self._cancelled = 0
            self._wait_total = 0.0

    def __repr__(self) -> str:
        with self._lock:
            remaining = self._engine.remaining(self._state, self._now())
            waiting = self._waiting
        return (
            f"<{type(self).__name__} rate={self.rate:g}/s burst={self._burst:g} "
            f"remaining={round(remaining, 9) + 0.0:.6g} waiting={waiting}>"
        )


@contextmanager
def reservation_scope(limiter: LimiterCore, amount: object, timeout: object) -> Iterator[None]:
    """Acquire ``amount`` (blocking) for a ``with`` block; ``reconcile`` inside it is exact."""
    reservation = limiter._acquire_sync(None, amount, timeout)
    token = _CURRENT.set(reservation)
    try:
        yield
    finally:
        _CURRENT.reset(token)


@asynccontextmanager
async def async_reservation_scope(
    limiter: LimiterCore, gate: ConcurrencyGate | None, amount: object, timeout: object
) -> AsyncIterator[None]:
    """Take a ``max_concurrent`` place, then ``amount``, for an ``async with`` block."""
    if gate is not None:
        await gate.acquire()
    try:
        reservation = await limiter._acquire_async(None, amount, timeout)
        token = _CURRENT.set(reservation)
        try:
            yield
        finally:
            _CURRENT.reset(token)
    finally:
        if gate is not None:
            gate.release()


async def gated_enter(gate: ConcurrencyGate | None, acquire: Callable[[], Awaitable[Any]]) -> None:
    """Take a ``max_concurrent`` place, then ``acquire()``, for ``__aenter__``.

    The place is given back if the acquire fails or is cancelled.
    """
    if gate is not None:
        await gate.acquire()
    try:
        await acquire()
    except BaseException:
        if gate is not None:
            gate.release()
        raise


def status_of(engine: Engine[Any], state: EngineState, now: float, amount: float) -> Status:
    """The :class:`Status` of ``state`` at ``now`` for ``amount``."""
    wait = engine.wait_time(state, now, amount)
    return Status(
        limit=engine.burst,
        remaining=max(0.0, engine.remaining(state, now)),
        retry_after=max(0.0, wait),
        reset_after=max(0.0, engine.full_at(state) - now),
    )


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
        self._acquire_sync(None, amount, timeout)

    def try_acquire(self, amount: float = 1) -> bool:
        """Take ``amount`` if it fits right now and return True; else take nothing, False.

        Raises:
            AmountError: ``amount`` is negative, NaN, not a number, or above the burst.
        """
        try:
            if 0 < amount <= self._burst and amount is not True:
                with self._lock:
                    delay = self._reserve(self._state, self._now(), amount, 0.0)
                    if delay >= 0.0:
                        self._admitted += 1
                        return True
                    if delay < 0.0:  # not NaN: NaN means listeners, see _core._defer
                        self._rejected += 1
                        return False
        except TypeError:
            pass
        return self._police_or_raise(None, amount)

    def reserve(self, amount: float = 1, timeout: float | None = None) -> Reservation:
        """Commit ``amount`` for the earliest time it fits and return at once.

        The caller should wait ``reservation.delay`` seconds (or call ``wait()``), or
        ``cancel()`` it.

        Raises:
            AcquireTimeout: the delay would exceed ``timeout``; nothing is committed.
        """
        return self._reserve_for(None, amount, timeout)

    def reconcile(self, actual: float, estimated: float) -> None:
        """Correct an estimate once the real amount is known; never waits or raises for debt.

        Unused units are refunded; units beyond the estimate become debt that delays later
        callers. Inside ``acquire_ctx`` it applies to that block's reservation.
        """
        self._reconcile_estimate(actual, estimated)

    @contextmanager
    def acquire_ctx(self, amount: float = 1, timeout: float | None = None) -> Iterator[SyncBucket]:
        """Acquire ``amount`` on entry (``with bucket.acquire_ctx(amount): ...``).

        ``reconcile`` inside the block corrects that block's reservation exactly.
        """
        with reservation_scope(self, amount, timeout):
            yield self

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
        """The most ``async with`` bodies running at once, or ``None`` for no bound."""
        return self._max_concurrent

    async def acquire(self, amount: float = 1, timeout: float | None = None) -> None:
        """Wait until ``amount`` units may go, without blocking the event loop.

        Raises:
            AmountError: ``amount`` is negative, NaN, not a number, or above the burst.
            AcquireTimeout: the wait would exceed ``timeout``; raised at once, nothing taken.
        """
        if not self._admit_at_once(None, amount, timeout):
            await self._acquire_async(None, amount, timeout)

    async def try_acquire(self, amount: float = 1) -> bool:
        """Take ``amount`` if it fits right now and return True; else take nothing, False.

        Raises:
            AmountError: ``amount`` is negative, NaN, not a number, or above the burst.
        """
        return self._police_or_raise(None, amount)

    async def reserve(self, amount: float = 1, timeout: float | None = None) -> Reservation:
        """Commit ``amount`` for the earliest time it fits and return at once.

        Raises:
            AcquireTimeout: the delay would exceed ``timeout``; nothing is committed.
        """
        return self._reserve_for(None, amount, timeout)

    async def reconcile(self, actual: float, estimated: float) -> None:
        """Correct an estimate once the real amount is known; never waits or raises for debt."""
        self._reconcile_estimate(actual, estimated)

    @asynccontextmanager
    async def acquire_ctx(
        self, amount: float = 1, timeout: float | None = None
    ) -> AsyncIterator[AsyncBucket]:
        """Acquire ``amount`` (and a ``max_concurrent`` place) on entry.

        ``async with bucket.acquire_ctx(amount): ...``; ``reconcile`` inside the block
        corrects that block's reservation exactly.
        """
        async with async_reservation_scope(self, self._gate, amount, timeout):
            yield self

    async def __aenter__(self: AB) -> AB:
        await gated_enter(self._gate, self.acquire)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        if self._gate is not None:
            self._gate.release()
