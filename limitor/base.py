"""Rate-limit protocols (the limitor 0.6 names) and the bucket code every algorithm shares.

A bucket is one limit over a backend (:class:`limitor.limiter.Limiter`, which holds every
verb); the algorithm names the in-memory bookkeeping. :class:`SyncBucket` and
:class:`AsyncBucket` differ only in how they wait.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    asynccontextmanager,
    contextmanager,
)
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypedDict, TypeVar

from limitor._checks import check_count, check_quantity
from limitor._checks import check_name as check_name  # its former home
from limitor._gate import ConcurrencyGate
from limitor._keywords import Keywords
from limitor.backends.base import Backend, LimitSpec, Part
from limitor.clock import Clock
from limitor.configs import BucketConfig, Capacity, as_config
from limitor.engines import Engine
from limitor.limiter import Limiter, OnBackendError, async_reservation_scope, reservation_scope
from limitor.results import Reservation, Stats, Status

__all__ = ("AsyncBucket", "AsyncRateLimit", "Bucket", "HasCapacity", "SyncBucket", "SyncRateLimit")

if TYPE_CHECKING:
    from typing_extensions import Unpack

SF = TypeVar("SF", bound="SyncFace")
AF = TypeVar("AF", bound="AsyncFace")


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


class BucketKeywords(TypedDict, total=False):
    """The keywords every bucket takes after its config (see :class:`Bucket`)."""

    rate: str | None
    burst: float | None
    clock: Clock | None
    backend: Backend | None
    name: str | None
    on_backend_error: OnBackendError


BUCKET = Keywords(BucketKeywords, {"on_backend_error": "raise"})
"""The buckets' keywords and their defaults (``on_backend_error="raise"``; others ``None``)."""


class SyncFace:
    """``with limiter:`` for the sync 0.6 facades (the buckets and the LLM token buckets).

    Entering calls ``acquire()`` (the default amount; a patched ``acquire`` is the one
    called); leaving gives nothing back.
    """

    __slots__ = ()

    if TYPE_CHECKING:

        def acquire(self) -> object: ...

    def __enter__(self: SF) -> SF:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        return None


def gate_for(max_concurrent: int | None) -> ConcurrencyGate | None:
    """The gate that bounds ``async with`` bodies to ``max_concurrent`` at once.

    Returns:
        The gate, or ``None`` for ``max_concurrent=None`` (no bound).

    Raises:
        ConfigTypeError: ``max_concurrent`` is not a whole number.
        ConfigError: ``max_concurrent`` is below 1.
    """
    if max_concurrent is None:
        return None
    return ConcurrencyGate(check_count("max_concurrent", max_concurrent))


class AsyncFace:
    """``async with limiter:`` and ``max_concurrent`` for the async 0.6 facades.

    Entering takes a ``max_concurrent`` place (when bounded), then awaits ``acquire()``;
    the place is given back on exit, or at once if the acquire fails or is cancelled.
    The class that mixes this in has the slot ``_gate``, set from :func:`gate_for`.
    """

    __slots__ = ()

    _gate: ConcurrencyGate | None

    if TYPE_CHECKING:

        async def acquire(self) -> object: ...

    @property
    def max_concurrent(self) -> int | None:
        """The most ``async with`` bodies running at once, or ``None`` for no bound."""
        return None if self._gate is None else self._gate.limit

    @property
    def gate(self) -> ConcurrencyGate | None:
        """What bounds the ``async with`` bodies (``None`` without ``max_concurrent``)."""
        return self._gate

    async def __aenter__(self: AF) -> AF:
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


class Bucket(Limiter):
    """One limit over a backend; the verbs that never wait.

    :class:`SyncBucket` and :class:`AsyncBucket` add the verbs that wait; the classes at
    the limitor 0.6 import paths only name the algorithm, in their class line
    (``class SyncTokenBucket(FillRate, SyncBucket, engine=TokenBucket)``), and add no
    attributes (the base's ``__dict__`` holds users' own, as in 0.6), so they declare no
    ``__slots__``.

    Args:
        bucket_config: the limit (default: 10 per second), or a rate string such as
            ``"100/minute"``.
        rate: the limit as a rate string (instead of ``bucket_config``).
        burst: the burst that goes with ``rate`` (default: its amount).
        clock: the time source (tests pass a :class:`~limitor.testing.FakeClock`).
        backend: where the state lives (default: this process's memory; a
            :class:`~limitor.backends.redis.RedisBackend` shares it between processes).
        name: the limit's identity in a shared backend (every process that uses the
            same name and backend shares the limit).
        on_backend_error: ``"raise"`` (default) or ``"allow"`` (fail open).
    """

    __slots__ = ("_config",)

    engine_type: ClassVar[type[Engine[Any]]]
    """The algorithm (set by ``engine=`` in a subclass's class line)."""

    def __init_subclass__(cls, engine: type[Engine[Any]] | None = None, **kwargs: Any) -> None:
        """Take the algorithm from the class line: ``class X(SyncBucket, engine=TokenBucket)``."""
        super().__init_subclass__(**kwargs)
        if engine is not None:
            cls.engine_type = engine

    @BUCKET.signature
    def __init__(
        self, bucket_config: BucketConfig | str | None = None, **options: Unpack[BucketKeywords]
    ) -> None:
        given = BUCKET.fill(options, f"{type(self).__name__}.__init__")
        config = as_config(bucket_config, rate=given["rate"], burst=given["burst"])
        spec = LimitSpec(
            parts=(Part(config.rate, config.max_burst),),
            name=check_name(given["name"]),
            algorithm=self.engine_type.name,
        )
        super().__init__(
            spec,
            given["clock"],
            backend=given["backend"],
            on_backend_error=given["on_backend_error"],
        )
        self._config = config

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
        """Counters since the bucket was made or :meth:`reset` (this process's decisions)."""
        return self._stats(keyed=False)

    def status(self, amount: float = 1) -> Status:
        """The live state (for ``RateLimit-*`` and ``Retry-After`` headers); changes nothing."""
        return self._status(None, amount)

    def capacity_info(self, amount: float = 1) -> Capacity:
        """Whether ``amount`` would be admitted now and how many units it lacks (read-only)."""
        units = check_quantity("amount", amount)
        part = self._peek(None, units)[0]
        return Capacity(has_capacity=part.retry_after <= 0, needed_capacity=units - part.remaining)

    def hold(self, seconds: float) -> None:
        """Admit nothing during the next ``seconds`` (a server's ``Retry-After``).

        Reservations already made keep their times; afterwards the bucket is as it would
        have been.
        """
        self._hold(None, seconds)

    def charge(self, amount: float) -> None:
        """Consume ``amount`` now without any check: debt that delays later callers."""
        self._charge(None, amount)

    def reset(self) -> None:
        """Forget all admissions and counters: the bucket is full again."""
        self._reset()

    # -- the async twins (never block an event loop, on any backend); an AsyncBucket's
    # -- acquire, try_acquire, reserve and reconcile are these same functions -----------

    async def acquire_async(self, amount: float = 1, timeout: float | None = None) -> None:
        """Wait, without blocking the event loop, until ``amount`` units may go.

        Raises:
            AmountError: ``amount`` is negative, NaN, not a number, or above the burst.
            AcquireTimeout: the wait would exceed ``timeout``; raised at once, nothing taken.
        """
        if not self._admit_at_once(None, amount, timeout):
            await self._acquire_async(None, amount, timeout)

    async def try_acquire_async(self, amount: float = 1) -> bool:
        """Take ``amount`` if it fits right now and return True; else take nothing, False.

        Never blocks the event loop.

        Raises:
            AmountError: ``amount`` is negative, NaN, not a number, or above the burst.
        """
        return await self._police_or_raise_async(None, amount)

    async def reserve_async(self, amount: float = 1, timeout: float | None = None) -> Reservation:
        """Commit ``amount`` for the earliest time it fits and return at once (never blocking).

        Raises:
            AcquireTimeout: the delay would exceed ``timeout``; nothing is committed.
        """
        return await self._reserve_for_async(None, amount, timeout)

    async def reconcile_async(self, actual: float, estimated: float) -> None:
        """Correct an estimate once the real amount is known: refund or charge the difference.

        Never blocks, waits or raises for debt.
        """
        await self._reconcile_estimate_async(actual, estimated)

    async def status_async(self, amount: float = 1) -> Status:
        """:meth:`status` for tasks."""
        return await self._status_async(None, amount)

    async def hold_async(self, seconds: float) -> None:
        """:meth:`hold` for tasks."""
        await self._hold_async(None, seconds)

    async def charge_async(self, amount: float) -> None:
        """:meth:`charge` for tasks."""
        await self._charge_async(None, amount)

    async def reset_async(self) -> None:
        """:meth:`reset` for tasks."""
        await self._reset_async()

    def __repr__(self) -> str:
        if self._store.does_io:  # a repr never reads a shared backend
            state = f"name={self._spec.name!r}"
        else:
            remaining = self._peek(None, 0.0)[0].remaining
            state = f"remaining={round(remaining, 9) + 0.0:.6g}"
        return (
            f"<{type(self).__name__} rate={self.rate:g}/s burst={self._burst:g} "
            f"{state} waiting={self._waiting}>"
        )


class SyncBucket(Bucket, SyncFace):
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
        admit = self._admit_now
        if admit is not None and timeout is None:
            try:
                if amount > 0 and amount is not True and admit(None, amount):
                    return
            except (TypeError, ArithmeticError):  # not a plain number: validate it
                pass
        self._acquire_sync(None, amount, timeout)

    def try_acquire(self, amount: float = 1) -> bool:
        """Take ``amount`` if it fits right now and return True; else take nothing, False.

        Raises:
            AmountError: ``amount`` is negative, NaN, not a number, or above the burst.
        """
        admit = self._admit_now
        if admit is not None:
            try:
                if amount > 0 and amount is not True and admit(None, amount):
                    return True
            except (TypeError, ArithmeticError):  # not a plain number: validate it
                pass
        return self._police_slow(None, amount)

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


class AsyncBucket(Bucket, AsyncFace):
    """A bucket for tasks (asyncio or trio): ``await acquire()`` suspends until it may go.

    It binds to no event loop, so it can be made at import time and shared by several
    loops and threads. ``max_concurrent`` bounds how many ``async with`` bodies run at once.
    Its ``acquire``, ``try_acquire``, ``reserve`` and ``reconcile`` are the async twins
    every bucket has (``acquire_async``, ...).
    """

    __slots__ = ("_gate",)

    @BUCKET.signature
    def __init__(
        self,
        bucket_config: BucketConfig | str | None = None,
        max_concurrent: int | None = None,
        **options: Unpack[BucketKeywords],
    ) -> None:
        super().__init__(bucket_config, **options)
        self._gate = gate_for(max_concurrent)

    acquire = Bucket.acquire_async
    try_acquire = Bucket.try_acquire_async
    reserve = Bucket.reserve_async
    reconcile = Bucket.reconcile_async

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
