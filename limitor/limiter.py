"""The one limiter: every public verb, over any backend.

A :class:`Limiter` validates what callers ask, lets its backend's store make the decision
(one call per decision: :mod:`limitor.backends.base`), and then sleeps, outside any lock,
until the time the store gave. Buckets, per-user limiters and LLM limiters are thin
classes over it: a key of ``None``, a user's key, or several limits at once.

Each verb is written once as prepare -> one store call -> finish; only the waiting and
that store call exist twice (a thread sleeps and calls the sync verb; a task awaits and
calls the store's async twin, so an event loop is never blocked). The fail-open policy
(``on_backend_error="allow"``) wraps that one call for every verb: reserve, give back,
charge, peek, hold and reset.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable, Hashable, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import replace
from typing import Any, overload

import anyio

from limitor import _fork
from limitor._checks import INF, check_name, check_on_backend_error, check_quantity, check_timeout
from limitor._checks import OnBackendError as OnBackendError  # its former home
from limitor._fair import FairQueue
from limitor._gate import ConcurrencyGate
from limitor.amounts import Amounts, ScalarAmounts
from limitor.backends.base import ALL_KEYS, Backend, Grant, LimitSpec, PartStatus, Store
from limitor.backends.memory import MEMORY
from limitor.clock import Clock, check_clock
from limitor.engines import ENGINES, Engine
from limitor.errors import (
    AcquireTimeout,
    BackendError,
    ConfigError,
    ConfigTypeError,
    QueueFull,
    RateLimitExceeded,
    ReservationError,
)
from limitor.listeners import LimitEvent, Listener, check_listener, notify
from limitor.results import Reservation, Stats, Status

__all__ = ("Limiter", "Verbs", "async_reservation_scope", "reservation_scope")

log = logging.getLogger("limitor")

_CURRENT: ContextVar[Reservation | None] = ContextVar("limitor_reservation", default=None)
"""The reservation of the innermost ``acquire_ctx`` block, for ``reconcile``."""

_FAIL_OPEN_LOG_INTERVAL = 60.0
"""Seconds between two log lines about a backend failing open."""

_FAILED: object = object()
"""What a store call that failed open returns, where its caller must tell."""


def check_backend(backend: object) -> Backend:
    """``backend`` if it can bind limits (``None``: the in-memory default)."""
    if backend is None:
        return MEMORY
    if not callable(getattr(backend, "bind", None)):
        raise ConfigTypeError(f"backend must be a limitor backend, got {backend!r}")
    return backend  # type: ignore[return-value]


class Limiter:
    """One limit (or several at once) over a backend, with every verb's machinery.

    What an amount is (one number, or an LLM cost over several parts) is the ``amounts``
    policy's business (:mod:`limitor.amounts`); subclasses say which public signatures
    they offer. Keys are ``None`` (one shared state) or a user's.

    Args:
        spec: the limit, as the backend sees it.
        clock: the time source (``None``: monotonic); the in-memory backend decides on it.
        backend: where the state lives (``None``: this process's memory).
        on_backend_error: ``"raise"`` a :class:`~limitor.errors.BackendError` when the
            backend fails, or ``"allow"`` the call (fail open: counted and logged).
        amounts: what an amount is (default: one number, at most the smallest burst).
    """

    # "__dict__": tests patch a limiter's verbs (mock.patch.object), users tag it
    # (limiter.tag = ...) and read vars(limiter), as limitor 0.6 allowed; the slots keep
    # the hot attributes' access as fast as before.
    __slots__ = (
        "__dict__",
        "__weakref__",
        "_admit_now",
        "_amounts",
        "_backend_errors",
        "_burst",
        "_clock",
        "_fail_open",
        "_fair",
        "_listeners",
        "_logged_at",
        "_max_waiting",
        "_now",
        "_spec",
        "_store",
        "_wait_lock",
        "_waiting",
    )

    def __init__(
        self,
        spec: LimitSpec,
        clock: object = None,
        *,
        backend: object = None,
        on_backend_error: object = "raise",
        amounts: Amounts | None = None,
    ) -> None:
        fail_open = check_on_backend_error(on_backend_error) == "allow"
        self._clock = check_clock(clock)
        self._now = self._clock.now
        self._spec = spec
        self._store: Store = check_backend(backend).bind(spec, self._clock)
        self._burst = spec.parts[0].burst
        self._amounts: Amounts = (
            ScalarAmounts(min(part.burst for part in (spec.parts[0], *spec.totals)))
            if amounts is None
            else amounts
        )
        self._listeners: tuple[Listener, ...] = ()
        self._fair: FairQueue | None = None
        """The waiting room of a limiter with ``fair=True`` (see :mod:`limitor._fair`)."""
        self._admit_now = self._fast_path()
        self._fail_open = fail_open
        self._max_waiting: int | None = None
        self._waiting = self._backend_errors = 0
        self._logged_at = -INF
        self._wait_lock = threading.Lock()
        _fork.register(self, type(self)._after_fork)

    def _after_fork(self) -> None:
        self._wait_lock = threading.Lock()
        if self._fair is not None:
            self._fair.after_fork()

    def _poke(self) -> None:
        """Line was given back: fair waiters may go sooner."""
        if self._fair is not None:
            self._fair.poke()

    async def _poke_async(self) -> None:
        """:meth:`_poke` for tasks.

        With a store that does I/O the fair queue's decisions are made in a worker
        thread, so a slow backend never blocks the event loop.
        """
        fair = self._fair
        if fair is not None:
            if self._store.does_io:
                await anyio.to_thread.run_sync(fair.poke)
            else:
                fair.poke()

    def _fast_path(self) -> Any:
        """The store's admit-now shortcut, when there is one and nothing listens.

        Only for amounts of one plain number (:class:`ScalarAmounts`): the shortcut takes
        a positive number as the store's amount without asking the policy.
        """
        store = self._store
        if type(self._amounts) is not ScalarAmounts:
            return None
        if self._listeners or len(self._spec.parts) > 1 or self._fair is not None:
            return None  # a fair queue decides who goes: admitting at once would pass it
        return getattr(store, "admit_now", None)  # a store that has one says so

    def _make_fair(self, weight: Callable[[Hashable], float] | None) -> None:
        """Serve waiters across keys in weighted turns (``fair=True``, with totals)."""
        self._fair = FairQueue(self, weight)
        self._admit_now = None

    # -- listeners (see limitor.listeners) ---------------------------------------------
    # Every decision goes through _decide / _decide_async, which notify the listeners
    # outside any lock. While one is attached the fast path is off (it would decide
    # without telling them); with none, nothing here costs anything.

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener`` on every decision from now on (see :mod:`limitor.listeners`).

        Raises:
            ConfigTypeError: ``listener`` lacks one of the
                :class:`~limitor.listeners.Listener` methods.
        """
        listener = check_listener(listener)
        with self._wait_lock:
            self._listeners = (*self._listeners, listener)
            self._admit_now = None

    def remove_listener(self, listener: Listener) -> None:
        """Stop calling ``listener`` (nothing happens if it was not attached)."""
        with self._wait_lock:
            self._listeners = tuple(other for other in self._listeners if other is not listener)
            self._admit_now = self._fast_path()

    @property
    def listeners(self) -> tuple[Listener, ...]:
        """The attached listeners, in the order they are called."""
        return self._listeners

    def _notify(self, key: Hashable, amount: Any, grant: Grant) -> None:
        name = self._spec.name
        if grant.admitted:
            event = LimitEvent(name, key, amount, wait=grant.delay)
            notify(self._listeners, "on_admitted", event)
            if grant.delay > 0.0:
                notify(self._listeners, "on_waited", event)
        else:
            event = LimitEvent(name, key, amount, retry_after=grant.retry_after)
            notify(self._listeners, "on_rejected", event)

    # -- read-only views -------------------------------------------------------------

    @property
    def amounts(self) -> Amounts:
        """What an amount is for this limiter (see :mod:`limitor.amounts`)."""
        return self._amounts

    @property
    def clock(self) -> Clock:
        """The clock this limiter sleeps on."""
        return self._clock

    @property
    def verbs(self) -> Verbs:
        """Every verb once, with ``key=`` a keyword (see :class:`Verbs`)."""
        return Verbs(self)

    @property
    def store(self) -> Store:
        """The backend's handle on this limit."""
        return self._store

    @property
    def backend_spec(self) -> LimitSpec:
        """The limit as its backend sees it."""
        return self._spec

    @property
    def name(self) -> str | None:
        """The limit's identity in a shared backend and in listener events (``None``: none).

        Set it at construction (``name=``); on a limiter kept in memory it may also be set
        later, to label its events.
        """
        return self._spec.name

    @name.setter
    def name(self, value: str | None) -> None:
        if self._store.does_io:  # a shared backend: the name is the limit's identity
            raise ConfigError(
                f"name={value!r}: the name of a limit in a shared backend is its identity "
                f"there ({self._spec.name!r}), set when the limiter is made "
                "(PerUserLimiter(..., backend=..., name=...))"
            )
        self._spec = replace(self._spec, name=check_name(value))

    @property
    def engine(self) -> Engine[Any]:
        """The algorithm's engine (of the first limit, for several)."""
        engines: tuple[Engine[Any], ...] | None = getattr(self._store, "engines", None)
        if engines is not None:
            return engines[0]
        part = self._spec.parts[0]
        return ENGINES[self._spec.algorithm](part.rate, part.burst)

    def __len__(self) -> int:
        """How many keys' states this process holds (in memory; 0 for shared backends)."""
        store: Any = self._store  # a store that counts its keys has a length
        return len(store) if hasattr(type(store), "__len__") and not store.does_io else 0

    def __contains__(self, key: object) -> bool:
        store: Any = self._store
        return hasattr(type(store), "__contains__") and not store.does_io and key in store

    @property
    def rate(self) -> float:
        """Units per second (of the first limit, for several)."""
        return self._spec.parts[0].rate

    @property
    def burst(self) -> float:
        """The most units admitted at once (of the first limit, for several)."""
        return self._burst

    def _stats(self, *, keyed: bool) -> Stats:
        counts = self._store.counts()
        with self._wait_lock:
            waiting = self._waiting
        if self._fair is not None:
            waiting += self._fair.waiting
        return Stats(
            admitted=counts.admitted,
            waited=counts.waited,
            total_wait=counts.total_wait,
            rejected=counts.rejected,
            cancelled=counts.cancelled,
            waiting=waiting,
            users=counts.users if keyed else 0,
            evictions=counts.evictions if keyed else 0,
            overflows=counts.overflows if keyed else 0,
            backend_errors=self._backend_errors,
        )

    @overload
    def _peek(self, key: Hashable, amount: Any) -> tuple[PartStatus, ...]: ...

    @overload
    def _peek(
        self, key: Hashable, amount: Any, *, unknown: None
    ) -> tuple[PartStatus, ...] | None: ...

    def _peek(self, key: Hashable, amount: Any, *, unknown: Any = _FAILED) -> Any:
        """The store's peek; failing open, ``unknown`` (default: every part full)."""
        fallback = self._unknown() if unknown is _FAILED else unknown
        return self._call(key, amount, fallback, "peek", key, self._amounts.vector(amount))

    @overload
    async def _peek_async(self, key: Hashable, amount: Any) -> tuple[PartStatus, ...]: ...

    @overload
    async def _peek_async(
        self, key: Hashable, amount: Any, *, unknown: None
    ) -> tuple[PartStatus, ...] | None: ...

    async def _peek_async(self, key: Hashable, amount: Any, *, unknown: Any = _FAILED) -> Any:
        """:meth:`_peek` for tasks."""
        fallback = self._unknown() if unknown is _FAILED else unknown
        return await self._acall(key, amount, fallback, "peek", key, self._amounts.vector(amount))

    def _unknown(self) -> tuple[PartStatus, ...]:
        """What a peek reports when the backend failed open: every part full."""
        return tuple(PartStatus(part.burst, 0.0, 0.0) for part in self._spec.parts)

    def _as_status(self, parts: tuple[PartStatus, ...]) -> Status:
        part = parts[0]
        return Status(
            limit=self._burst,
            remaining=part.remaining,
            retry_after=part.retry_after,
            reset_after=part.reset_after,
        )

    def _status(self, key: Hashable, amount: object) -> Status:
        return self._as_status(self._peek(key, self._amounts.probe(amount)))

    async def _status_async(self, key: Hashable, amount: object) -> Status:
        return self._as_status(await self._peek_async(key, self._amounts.probe(amount)))

    # -- the one store call of each verb, under the backend-failure policy ---------------

    def _failed(self, key: Hashable, amount: Any, error: BackendError) -> Grant:
        """Fail open (``on_backend_error="allow"``) or raise ``error``.

        Returns the grant a reservation gets when failing open (admitted now).
        """
        if self._listeners:
            event = LimitEvent(self._spec.name, key, amount, error=error)
            notify(self._listeners, "on_backend_error", event)
        with self._wait_lock:
            self._backend_errors += 1
        if not self._fail_open:
            raise error
        now = self._now()
        with self._wait_lock:
            quiet = now - self._logged_at < _FAIL_OPEN_LOG_INTERVAL
            if not quiet:
                self._logged_at = now
        if not quiet:
            log.warning("rate limit backend failed, allowing calls: %s", error)
        return Grant(True, 0.0, 0.0, None, now)

    def _call(
        self, key: Hashable, amount: Any, fallback: Any, verb: str, *args: Any, **kwargs: Any
    ) -> Any:
        """The store's ``verb``; ``fallback`` when it fails and the policy is to allow."""
        try:
            return getattr(self._store, verb)(*args, **kwargs)
        except BackendError as error:
            self._failed(key, amount, error)
            return fallback

    async def _acall(
        self, key: Hashable, amount: Any, fallback: Any, verb: str, *args: Any, **kwargs: Any
    ) -> Any:
        """:meth:`_call` for tasks: the store's async twin when it does I/O."""
        store = self._store
        try:
            if store.does_io:
                return await getattr(store, "a" + verb)(*args, **kwargs)
            return getattr(store, verb)(*args, **kwargs)
        except BackendError as error:
            self._failed(key, amount, error)
            return fallback

    def _decide(self, key: Hashable, amount: Any, max_wait: float) -> Grant:
        try:
            if self._fair is not None:  # no future slot: now, or a refusal with an estimate
                grant = self._fair.police(key, amount)
            else:
                grant = self._store.reserve(key, self._amounts.vector(amount), max_wait)
        except BackendError as error:
            return self._failed(key, amount, error)
        if self._listeners:
            self._notify(key, amount, grant)
        return grant

    async def _decide_async(self, key: Hashable, amount: Any, max_wait: float) -> Grant:
        store = self._store
        if self._fair is not None and store.does_io:  # its queue's lock and sync verbs
            return await anyio.to_thread.run_sync(self._decide, key, amount, max_wait)
        if not store.does_io or self._fair is not None:
            return self._decide(key, amount, max_wait)
        try:
            grant = await store.areserve(key, self._amounts.vector(amount), max_wait)
        except BackendError as error:
            return self._failed(key, amount, error)
        if self._listeners:
            self._notify(key, amount, grant)
        return grant

    # -- deciding -------------------------------------------------------------------

    def _admit_at_once(self, key: Hashable, amount: Any, timeout: object) -> bool:
        """The fast path: admit a plain positive ``amount`` if it fits now (no timeout).

        False means "take the full path": it did not fit, it needs validating, or the
        backend has no fast path.
        """
        admit = self._admit_now
        if admit is not None and timeout is None:
            try:
                if amount > 0 and amount is not True:
                    admitted: bool = admit(key, amount)
                    return admitted
            except (TypeError, ArithmeticError):  # not a plain number: validate it
                pass
        return False

    def _police(self, key: Hashable, amount: Any) -> float:
        """Admit a validated, positive ``amount`` now, or refuse it.

        Returns:
            0.0 when admitted; else the seconds until it would be (``retry_after``).
        """
        grant = self._decide(key, amount, 0.0)
        return 0.0 if grant.admitted else grant.retry_after

    def _police_or_raise(self, key: Hashable, amount: object) -> bool:
        """``try_acquire``: True if admitted now, False if not (nothing taken).

        Raises:
            AmountError: an amount that is invalid or could never be admitted.
        """
        if self._admit_at_once(key, amount, None):
            return True
        return self._police_slow(key, amount)

    def _police_slow(self, key: Hashable, amount: object) -> bool:
        """``try_acquire`` once the fast path said no: validate, then decide."""
        n = self._amounts.check(amount)
        return self._amounts.is_nothing(n) or self._police(key, n) == 0.0

    async def _police_or_raise_async(self, key: Hashable, amount: object) -> bool:
        """``try_acquire`` for tasks: the store's async verb when it does I/O."""
        if self._admit_at_once(key, amount, None):
            return True
        n = self._amounts.check(amount)
        if self._amounts.is_nothing(n):
            return True
        return (await self._decide_async(key, n, 0.0)).admitted

    def _reservation(
        self,
        key: Hashable,
        amount: Any,
        grant: Grant,
        max_wait: float,
        *,
        waiter: bool,
        refusal: type[RateLimitExceeded],
    ) -> Reservation:
        """The reservation for ``grant``, or the refusal it stands for.

        ``waiter`` marks a caller that will sleep inside the limiter: it is counted in
        ``waiting`` until :meth:`_done_waiting` and bounded by ``_max_waiting``.
        """
        if not grant.admitted:
            shown = self._amounts.describe(amount)
            if self._fair is not None and refusal is not QueueFull:
                raise RateLimitExceeded(
                    f"amount {shown} cannot go now without passing a "
                    f"waiter or exceeding a limit (fair=True books no future slot); retry "
                    f"in about {grant.retry_after:.6g}s",
                    retry_after=grant.retry_after,
                )
            if refusal is QueueFull:
                raise QueueFull(
                    f"{self._waiting} callers are already waiting (max_size)",
                    retry_after=grant.retry_after,
                )
            raise refusal(
                f"amount {shown} would wait {grant.retry_after:.6g}s, more "
                + (f"than the timeout ({max_wait:g}s)" if max_wait else "than allowed (policing)")
                + f": retry in {grant.retry_after:.6g}s",
                retry_after=grant.retry_after,
            )
        reservation = Reservation(self, key, amount, grant.now, grant.delay, grant.ticket)
        if waiter and grant.delay > 0.0:
            with self._wait_lock:
                self._waiting += 1
        return reservation

    def _queue_is_full(self) -> bool:
        with self._wait_lock:
            return self._max_waiting is not None and self._waiting >= self._max_waiting

    def _commit(
        self,
        key: Hashable,
        amount: Any,
        max_wait: float,
        *,
        waiter: bool,
        refusal: type[RateLimitExceeded] = AcquireTimeout,
    ) -> Reservation:
        """Reserve a validated, positive ``amount``; raise if it would wait beyond ``max_wait``."""
        full = waiter and self._queue_is_full()  # then only a caller that needs no wait may go
        grant = self._decide(key, amount, 0.0 if full else max_wait)
        return self._reservation(
            key, amount, grant, max_wait, waiter=waiter, refusal=QueueFull if full else refusal
        )

    async def _commit_async(
        self,
        key: Hashable,
        amount: Any,
        max_wait: float,
        *,
        waiter: bool,
        refusal: type[RateLimitExceeded] = AcquireTimeout,
    ) -> Reservation:
        """:meth:`_commit` with the store's async verb when it does I/O."""
        full = waiter and self._queue_is_full()  # then only a caller that needs no wait may go
        grant = await self._decide_async(key, amount, 0.0 if full else max_wait)
        return self._reservation(
            key, amount, grant, max_wait, waiter=waiter, refusal=QueueFull if full else refusal
        )

    def _done_waiting(self) -> None:
        with self._wait_lock:
            self._waiting -= 1

    def _zero(self, key: Hashable, amount: Any = 0.0) -> Reservation:
        return Reservation(self, key, amount, self._now(), 0.0, None)

    def _acquire_sync(self, key: Hashable, amount: object, timeout: object) -> Reservation:
        """Validate, commit, and block the thread until the admission time."""
        n = self._amounts.check(amount)
        max_wait = INF if timeout is None else check_timeout(timeout)
        if self._amounts.is_nothing(n):
            return self._zero(key, n)
        if self._fair is not None:
            try:
                grant = self._fair.acquire(key, n, max_wait)
            except BackendError as error:
                grant = self._failed(key, n, error)
            return self._fair_turn(key, n, grant)
        reservation = self._commit(key, n, max_wait, waiter=True)
        if reservation.delay > 0:
            try:
                reservation.wait()
            finally:
                self._done_waiting()
        return reservation

    async def _acquire_async(self, key: Hashable, amount: object, timeout: object) -> Reservation:
        """Validate, commit, and await the admission time (cancellation gives back)."""
        n = self._amounts.check(amount)
        max_wait = INF if timeout is None else check_timeout(timeout)
        if self._amounts.is_nothing(n):
            return self._zero(key, n)
        if self._fair is not None:
            try:
                grant = await self._fair.acquire_async(key, n, max_wait)
            except BackendError as error:
                grant = self._failed(key, n, error)
            return self._fair_turn(key, n, grant)
        reservation = await self._commit_async(key, n, max_wait, waiter=True)
        if reservation.delay > 0:
            try:
                await reservation.wait_async()
            finally:
                self._done_waiting()
        return reservation

    def _fair_turn(self, key: Hashable, amount: Any, grant: Grant) -> Reservation:
        """The reservation of a fair waiter's grant, taken at its turn (it goes now)."""
        if self._listeners:
            self._notify(key, amount, grant)
        return Reservation(self, key, amount, grant.now, 0.0, grant.ticket)

    def _reserve_for(self, key: Hashable, amount: object, timeout: object) -> Reservation:
        n = self._amounts.check(amount)
        max_wait = check_timeout(timeout)
        if self._amounts.is_nothing(n):
            return self._zero(key, n)
        return self._commit(key, n, max_wait, waiter=False)

    async def _reserve_for_async(
        self, key: Hashable, amount: object, timeout: object
    ) -> Reservation:
        n = self._amounts.check(amount)
        max_wait = check_timeout(timeout)
        if self._amounts.is_nothing(n):
            return self._zero(key, n)
        return await self._commit_async(key, n, max_wait, waiter=False)

    def _police_checked(self, key: Hashable, amount: object, *, hold: bool) -> Reservation | None:
        """Admit ``amount`` now or raise :class:`RateLimitExceeded` (nothing taken).

        With ``hold``, return the reservation (to reconcile later).
        """
        n = self._amounts.check(amount)
        if self._amounts.is_nothing(n):
            return self._zero(key, n)
        return self._policed(key, n, self._decide(key, n, 0.0), hold=hold)

    async def _police_checked_async(
        self, key: Hashable, amount: object, *, hold: bool
    ) -> Reservation | None:
        """:meth:`_police_checked` for tasks."""
        n = self._amounts.check(amount)
        if self._amounts.is_nothing(n):
            return self._zero(key, n)
        return self._policed(key, n, await self._decide_async(key, n, 0.0), hold=hold)

    def _policed(self, key: Hashable, n: Any, grant: Grant, *, hold: bool) -> Reservation | None:
        if hold:
            return self._reservation(key, n, grant, 0.0, waiter=False, refusal=RateLimitExceeded)
        if not grant.admitted:
            retry_after = grant.retry_after
            raise RateLimitExceeded(
                f"rate limit exceeded; retry in {retry_after:.6g}s", retry_after=retry_after
            )
        return None

    # -- giving back, debt and holds ------------------------------------------------------

    def _cancel_reservation(self, reservation: Reservation) -> float:
        ticket = reservation.ticket
        if ticket is None or self._amounts.is_nothing(reservation.amount):
            return 0.0
        amount = reservation.amount
        given, _ = self._call(
            reservation.key, amount, (0.0, ticket), "give_back",
            reservation.key, self._amounts.vector(amount), ticket, cancel=True,
        )  # fmt: skip
        self._poke()
        return float(given)

    async def _cancel_reservation_async(self, reservation: Reservation) -> float:
        ticket = reservation.ticket
        if ticket is None or self._amounts.is_nothing(reservation.amount):
            return 0.0
        amount = reservation.amount
        given, _ = await self._acall(
            reservation.key, amount, (0.0, ticket), "give_back",
            reservation.key, self._amounts.vector(amount), ticket, cancel=True,
        )  # fmt: skip
        await self._poke_async()
        return float(given)

    def _reconcile_plan(self, reservation: Reservation, actual: object) -> tuple[Any, Any, Any]:
        """``(extra, unused, checked)`` for reconciling ``reservation`` to ``actual``."""
        if not reservation.ok:
            raise ReservationError("cannot reconcile a cancelled reservation")
        checked = self._amounts.check_actual(actual, reservation.amount)
        return (*self._amounts.split(checked, reservation.amount), checked)

    def _reconcile_reservation(self, reservation: Reservation, actual: object) -> None:
        extra, unused, checked = self._reconcile_plan(reservation, actual)
        self._adjust(reservation, reservation.key, extra, unused)
        reservation.amount = checked

    async def _reconcile_reservation_async(self, reservation: Reservation, actual: object) -> None:
        extra, unused, checked = self._reconcile_plan(reservation, actual)
        await self._adjust_async(reservation, reservation.key, extra, unused)
        reservation.amount = checked

    def _estimate_plan(
        self, actual: object, estimated: object
    ) -> tuple[Reservation | None, Hashable, Any, Any]:
        """The 0.6 ``reconcile(actual, estimated)``: what to refund or charge, and where.

        Inside ``acquire_ctx`` it is exact for that block's reservation. Outside, the
        refund is taken from the end of the schedule (as if the estimate were the latest
        admission): exact for one caller at a time (use ``reserve()`` or ``acquire_ctx``
        when calls overlap).
        """
        current = _CURRENT.get()
        if current is not None and current.limiter is self and current.ok:
            estimate = self._amounts.check_actual(estimated, current.amount)
            target = self._amounts.check_actual(actual, estimate)
            return (current, current.key, *self._amounts.split(target, estimate))
        estimate = self._amounts.check_estimate(estimated)
        target = self._amounts.check_actual(actual, estimate)
        return (None, None, *self._amounts.split(target, estimate))

    def _reconcile_estimate(self, actual: object, estimated: object) -> None:
        """The 0.6 ``reconcile(actual, estimated)`` (see :meth:`_estimate_plan`)."""
        self._adjust(*self._estimate_plan(actual, estimated))

    async def _reconcile_estimate_async(self, actual: object, estimated: object) -> None:
        """:meth:`_reconcile_estimate` for tasks."""
        await self._adjust_async(*self._estimate_plan(actual, estimated))

    def _adjust(
        self, reservation: Reservation | None, key: Hashable, extra: Any, unused: Any
    ) -> None:
        """Charge ``extra`` as debt and refund ``unused`` (either may be None).

        A refund comes out of ``reservation``'s spans; a reservation that holds nothing
        (made while the backend failed open) refunds nothing. Without a reservation (the
        0.6 ``reconcile(actual, estimated)``) it comes off the end of the schedule.
        """
        if unused is not None and (reservation is None or reservation.ticket is not None):
            ticket = None if reservation is None else reservation.ticket
            _, after = self._call(
                key, unused, (0.0, ticket), "give_back",
                key, self._amounts.vector(unused), ticket, cancel=False,
            )  # fmt: skip
            if reservation is not None:
                reservation.ticket = after
            self._poke()
        if extra is not None:
            self._call(key, extra, None, "charge", *self._debt_args(reservation, key, extra))

    async def _adjust_async(
        self, reservation: Reservation | None, key: Hashable, extra: Any, unused: Any
    ) -> None:
        """:meth:`_adjust` for tasks."""
        if unused is not None and (reservation is None or reservation.ticket is not None):
            ticket = None if reservation is None else reservation.ticket
            _, after = await self._acall(
                key, unused, (0.0, ticket), "give_back",
                key, self._amounts.vector(unused), ticket, cancel=False,
            )  # fmt: skip
            if reservation is not None:
                reservation.ticket = after
            await self._poke_async()
        if extra is not None:
            await self._acall(key, extra, None, "charge", *self._debt_args(reservation, key, extra))

    def _debt_args(
        self, reservation: Reservation | None, key: Hashable, extra: Any
    ) -> tuple[Any, ...]:
        """The store's charge arguments for a reconcile's overrun.

        With the grant's ticket while its time has not come: the debt then goes no
        earlier than the grant's own time (charged from now, it could fill free line
        before the admission and let others over-admit around it). Else the plain debt.
        """
        args: tuple[Any, ...] = (key, self._amounts.vector(extra))
        if (
            reservation is not None
            and reservation.ticket is not None
            and reservation.time_to_act > self._now()
        ):
            args += (reservation.ticket,)
        return args

    def _debt(self, amount: object) -> Any:
        """A valid amount to charge, or None for nothing."""
        n = self._amounts.check_actual(amount, self._amounts.check_estimate(0))
        return None if self._amounts.is_nothing(n) else n

    def _charge(self, key: Hashable, amount: object) -> None:
        """Consume ``amount`` now without any check (debt)."""
        n = self._debt(amount)
        if n is not None:
            self._call(key, n, None, "charge", key, self._amounts.vector(n))

    async def _charge_async(self, key: Hashable, amount: object) -> None:
        """:meth:`_charge` for tasks."""
        n = self._debt(amount)
        if n is not None:
            await self._acall(key, n, None, "charge", key, self._amounts.vector(n))

    def _hold(self, key: Hashable, seconds: object) -> None:
        """Admit nothing for ``key`` during the next ``seconds``."""
        duration = check_quantity("seconds", seconds)
        if duration > 0:
            self._call(key, None, None, "hold", key, duration)

    async def _hold_async(self, key: Hashable, seconds: object) -> None:
        """:meth:`_hold` for tasks."""
        duration = check_quantity("seconds", seconds)
        if duration > 0:
            await self._acall(key, None, None, "hold", key, duration)

    def _reset(self, key: object = ALL_KEYS) -> None:
        self._after_reset(key, self._call(key, None, _FAILED, "reset", key))

    async def _reset_async(self, key: object = ALL_KEYS) -> None:
        outcome = await self._acall(key, None, _FAILED, "reset", key)
        await self._poke_async()
        self._after_reset(key, outcome, poke=False)

    def _after_reset(self, key: object, outcome: object, *, poke: bool = True) -> None:
        if poke:
            self._poke()
        if key is ALL_KEYS and outcome is not _FAILED:  # a failed reset forgot nothing
            with self._wait_lock:
                self._backend_errors = 0


class Verbs:
    """Every verb of one limiter once, with ``key=`` a keyword, and its async twin.

    ``limiter.verbs`` is what code that drives any limitor limiter calls (the decorators,
    the ``acquire_ctx`` scopes): the public classes keep the signatures of limitor 0.6
    (``bucket.acquire(amount, timeout)``, ``per_user.acquire(key, amount)``...) and go
    through the same machinery. Each verb validates, makes one store call (the async
    twin's is the store's async verb) under the backend-failure policy, and finishes.

    Example:
        >>> from limitor import SyncLeakyBucket
        >>> from limitor.testing import FakeClock
        >>> verbs = SyncLeakyBucket(rate="10/s", clock=FakeClock()).verbs
        >>> verbs.try_acquire(4)
        True
        >>> round(verbs.status(key=None).remaining, 9)
        6.0
    """

    __slots__ = ("_limiter",)

    def __init__(self, limiter: Limiter) -> None:
        self._limiter = limiter

    @property
    def limiter(self) -> Limiter:
        """The limiter these verbs act on."""
        return self._limiter

    def admit_now(self, amount: Any = 1, *, key: Hashable = None) -> bool:
        """The fast path: True when a plain positive ``amount`` was admitted at once.

        False means "use :meth:`acquire`": it did not fit, it needs validating, or the
        store has no fast path. Never waits, never raises.
        """
        return self._limiter._admit_at_once(key, amount, None)

    def acquire(
        self, amount: object = 1, *, key: Hashable = None, timeout: float | None = None
    ) -> Reservation:
        """Block the thread until ``amount`` may go; the reservation (to reconcile)."""
        return self._limiter._acquire_sync(key, amount, timeout)

    async def acquire_async(
        self, amount: object = 1, *, key: Hashable = None, timeout: float | None = None
    ) -> Reservation:
        """Await, never blocking the event loop, until ``amount`` may go."""
        return await self._limiter._acquire_async(key, amount, timeout)

    def try_acquire(self, amount: object = 1, *, key: Hashable = None) -> bool:
        """Take ``amount`` now if it fits (True), else nothing (False)."""
        return self._limiter._police_or_raise(key, amount)

    async def try_acquire_async(self, amount: object = 1, *, key: Hashable = None) -> bool:
        """:meth:`try_acquire` for tasks."""
        return await self._limiter._police_or_raise_async(key, amount)

    def police(
        self, amount: object = 1, *, key: Hashable = None, hold: bool = False
    ) -> Reservation | None:
        """Admit ``amount`` now or raise ``RateLimitExceeded``; with ``hold``, the reservation."""
        return self._limiter._police_checked(key, amount, hold=hold)

    async def police_async(
        self, amount: object = 1, *, key: Hashable = None, hold: bool = False
    ) -> Reservation | None:
        """:meth:`police` for tasks."""
        return await self._limiter._police_checked_async(key, amount, hold=hold)

    def reserve(
        self, amount: object = 1, *, key: Hashable = None, timeout: float | None = None
    ) -> Reservation:
        """Commit ``amount`` for the earliest time it fits; return at once."""
        return self._limiter._reserve_for(key, amount, timeout)

    async def reserve_async(
        self, amount: object = 1, *, key: Hashable = None, timeout: float | None = None
    ) -> Reservation:
        """:meth:`reserve` for tasks."""
        return await self._limiter._reserve_for_async(key, amount, timeout)

    def reconcile(self, actual: object, estimated: object) -> None:
        """The 0.6 ``reconcile(actual, estimated)``: refund or charge the difference."""
        self._limiter._reconcile_estimate(actual, estimated)

    async def reconcile_async(self, actual: object, estimated: object) -> None:
        """:meth:`reconcile` for tasks."""
        await self._limiter._reconcile_estimate_async(actual, estimated)

    def status(self, amount: object = 1, *, key: Hashable = None) -> Status:
        """The live state of ``key`` (of the first limit, for several); changes nothing."""
        return self._limiter._status(key, amount)

    async def status_async(self, amount: object = 1, *, key: Hashable = None) -> Status:
        """:meth:`status` for tasks."""
        return await self._limiter._status_async(key, amount)

    def hold(self, seconds: object, *, key: Hashable = None) -> None:
        """Admit nothing for ``key`` during the next ``seconds``."""
        self._limiter._hold(key, seconds)

    async def hold_async(self, seconds: object, *, key: Hashable = None) -> None:
        """:meth:`hold` for tasks."""
        await self._limiter._hold_async(key, seconds)

    def charge(self, amount: object, *, key: Hashable = None) -> None:
        """Consume ``amount`` for ``key`` now without any check (debt)."""
        self._limiter._charge(key, amount)

    async def charge_async(self, amount: object, *, key: Hashable = None) -> None:
        """:meth:`charge` for tasks."""
        await self._limiter._charge_async(key, amount)

    def reset(self, *, key: object = ALL_KEYS) -> None:
        """Forget ``key``'s state (default: every key's, and the counters)."""
        self._limiter._reset(key)

    async def reset_async(self, *, key: object = ALL_KEYS) -> None:
        """:meth:`reset` for tasks."""
        await self._limiter._reset_async(key)

    def cancel_reservation(self, reservation: Reservation) -> float:
        """Give ``reservation`` back (what :meth:`Reservation.cancel` calls); the units."""
        return self._limiter._cancel_reservation(reservation)

    async def cancel_reservation_async(self, reservation: Reservation) -> float:
        """:meth:`cancel_reservation` for tasks."""
        return await self._limiter._cancel_reservation_async(reservation)

    def reconcile_reservation(self, reservation: Reservation, actual: object) -> None:
        """Refund or charge the difference (what :meth:`Reservation.reconcile` calls)."""
        self._limiter._reconcile_reservation(reservation, actual)

    async def reconcile_reservation_async(self, reservation: Reservation, actual: object) -> None:
        """:meth:`reconcile_reservation` for tasks."""
        await self._limiter._reconcile_reservation_async(reservation, actual)

    def __repr__(self) -> str:
        return f"<Verbs of {self._limiter!r}>"


@contextmanager
def reservation_scope(limiter: Limiter, amount: object, timeout: object) -> Iterator[None]:
    """Acquire ``amount`` (blocking) for a ``with`` block; ``reconcile`` inside it is exact."""
    reservation = limiter._acquire_sync(None, amount, timeout)
    token = _CURRENT.set(reservation)
    try:
        yield
    finally:
        _CURRENT.reset(token)


@asynccontextmanager
async def async_reservation_scope(
    limiter: Limiter, gate: ConcurrencyGate | None, amount: object, timeout: object
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
