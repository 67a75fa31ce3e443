"""The limiter's first layer: its state, the fast path, listeners, views, the store call.

:class:`LimiterBase` is built once per limiter: it binds the backend's store, picks the
store's admit-now shortcut (the fast path) while nothing listens, keeps the listeners and
the read-only views, and makes the one store call of every verb under the
backend-failure policy (:meth:`LimiterBase._call`, :meth:`LimiterBase._decide`). The
layers above (:mod:`limitor._limiter_decide`, :mod:`limitor._limiter_give`) add the
verbs; :class:`limitor.limiter.Limiter` is the last.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable
from dataclasses import asdict, replace
from typing import Any, overload

import anyio

from limitor import _fork
from limitor._checks import INF, check_name, check_on_backend_error
from limitor._fair import FairQueue
from limitor.amounts import Amounts, ScalarAmounts
from limitor.backends.base import Backend, Grant, LimitSpec, PartStatus, Store
from limitor.backends.memory import MEMORY
from limitor.clock import Clock, check_clock
from limitor.engines import ENGINES, Engine
from limitor.errors import BackendError, ConfigError, ConfigTypeError
from limitor.listeners import LimitEvent, Listener, check_listener, notify
from limitor.results import ReservationVerbs, Stats, Status

log = logging.getLogger("limitor")

_FAIL_OPEN_LOG_INTERVAL = 60.0
"""Seconds between two log lines about a backend failing open."""

FAILED: object = object()
"""What a store call that failed open returns, where its caller must tell."""


def check_backend(backend: object) -> Backend:
    """``backend`` if it can bind limits (``None``: the in-memory default)."""
    if backend is None:
        return MEMORY
    if not callable(getattr(backend, "bind", None)):
        raise ConfigTypeError(f"backend must be a limitor backend, got {backend!r}")
    return backend  # type: ignore[return-value]


class LimiterBase:
    """A limiter's state, fast path, listeners, views and guarded store call.

    Its arguments are :class:`limitor.limiter.Limiter`'s (the public class documents them).
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
    def verbs(self) -> ReservationVerbs:
        """Every verb once, with ``key=`` a keyword (:class:`limitor.limiter.Verbs`).

        Reservations call back through them; :class:`limitor.limiter.Limiter`, the last
        layer, makes them.
        """
        raise NotImplementedError  # pragma: no cover (the final class overrides it)

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
        known = asdict(counts)  # every StoreCounts field is a Stats field
        if not keyed:  # one shared state: no keys to count
            known.update(users=0, evictions=0, overflows=0)
        return Stats(**known, waiting=waiting, backend_errors=self._backend_errors)

    @overload
    def _peek(self, key: Hashable, amount: Any) -> tuple[PartStatus, ...]: ...

    @overload
    def _peek(
        self, key: Hashable, amount: Any, *, unknown: None
    ) -> tuple[PartStatus, ...] | None: ...

    def _peek(self, key: Hashable, amount: Any, *, unknown: Any = FAILED) -> Any:
        """The store's peek; failing open, ``unknown`` (default: every part full)."""
        fallback = self._unknown() if unknown is FAILED else unknown
        return self._call(key, amount, fallback, "peek", key, self._amounts.vector(amount))

    @overload
    async def _peek_async(self, key: Hashable, amount: Any) -> tuple[PartStatus, ...]: ...

    @overload
    async def _peek_async(
        self, key: Hashable, amount: Any, *, unknown: None
    ) -> tuple[PartStatus, ...] | None: ...

    async def _peek_async(self, key: Hashable, amount: Any, *, unknown: Any = FAILED) -> Any:
        """:meth:`_peek` for tasks."""
        fallback = self._unknown() if unknown is FAILED else unknown
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
