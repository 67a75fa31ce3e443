"""The embedded backend (the default): limits in this process's memory, nothing to start.

A :class:`MemoryStore` keeps one engine state per key (in one slot, or for per-user
limits in a ``cachetools`` LRU cache) and decides under one short
``threading.Lock``, reading the limiter's clock once per decision. Times are kept relative
to the moment the store was made, so a clock that reads like ``time.time()`` (1.7e9) keeps
the same precision as one that starts at zero.

Giving back works on the schedule line of :mod:`limitor.backends.base`, with the pure
arithmetic of :mod:`limitor.engines.schedule`: a grant's ticket holds the pieces it
occupies, giving back frees exactly those, and later requests are admitted in the free
pieces at the earliest time the free line of one burst window holds them. The free pieces
before a part's end (*holes*) and a hold live in a small object hung on the state only
while there are any (``state.extra``), so the common case costs nothing and sees no
pieces at all: it is each algorithm's own arithmetic; they go with the key.

A per-key state is never forgotten while it is below full (refilling, in debt, holding
reservations or holes): forgetting a full state changes nothing, since a fresh one is the
same. ``max_keys`` bounds memory by dropping the least recently used *full* states; if
none is full, a new key does not grow the cache past ``max_keys``: it is decided by one
*overflow* state that every such key shares, with the limit's own rate and burst (that
admits less, never more), and ``overflows`` counts those decisions. While the overflow
state is still refilling, a key that gets a state of its own starts from a copy of it (it
may have been one of those keys), so moving out of the overflow never hands out a burst.
Long keys are kept as digests (:mod:`limitor.backends._keys`), so a key holds a bounded
number of bytes.
With ``ttl``, a state that is full and has not been used for ``ttl`` seconds is dropped
too: lazily, by a sweep after every so many new keys (O(1) per key on average), so no
per-key timer or heap entry is kept.
The store is fork-safe: a child process gets fresh locks.
"""

from __future__ import annotations

import copy
import logging
import math
import threading
from collections.abc import Callable, Hashable
from typing import Any, ClassVar

from cachetools import Cache, LRUCache

from limitor import _fork
from limitor.backends._keys import SHORT_STR, bounded_key, unhashable
from limitor.backends.base import (
    ALL_KEYS,
    TOTAL,
    Amount,
    Grant,
    LimitSpec,
    PartStatus,
    StoreCounts,
    SyncStoreAsyncTwins,
    Ticket,
    check_fits_totals,
    total_parts_of,
)
from limitor.clock import Clock
from limitor.engines import ENGINES, Engine, EngineState
from limitor.engines import schedule as sch
from limitor.errors import ConfigError

__all__ = ("MEMORY", "MemoryBackend", "MemoryStore", "TotalStore")

_log = logging.getLogger("limitor")

INF = math.inf

_SWEEP_EVERY = 1024
"""New keys between two sweeps for expired states (at least; or the cache's size)."""


class _Extra:
    """The rare part of a state: holes per part and a hold."""

    __slots__ = ("hold", "holes")

    def __init__(self, parts: int) -> None:
        self.holes: list[list[tuple[float, float]]] = [[] for _ in range(parts)]
        """Per part, free pieces ``(start, end)`` before its end, sorted and disjoint."""
        self.hold = -INF
        """Nothing is admitted before this time."""

    def __repr__(self) -> str:
        return f"_Extra(hold={self.hold!r}, holes={self.holes!r})"


class MultiState(EngineState):
    """The states of several parts for one key (an LLM call's requests and tokens)."""

    __slots__ = ("parts",)

    fields: ClassVar[tuple[str, ...]] = ("parts",)

    def __init__(self, parts: tuple[EngineState, ...]) -> None:
        super().__init__()
        self.parts = parts


class _Keys(LRUCache[Hashable, EngineState]):
    """The per-key cache: a ``cachetools`` LRU cache that answers a missing key with None.

    Raising and catching ``KeyError`` for every new key would double its first hit.
    """

    def __missing__(self, key: Hashable) -> Any:
        return None


def _epoch_of(clock: Clock) -> float:
    """The clock's reading now, the zero of a store's times (keeps them small and precise).

    A clock that cannot be read yet (an event loop's, before the loop runs: limiters are
    made at import time) counts from its own zero.
    """
    try:
        return float(clock.now())
    except Exception:
        return 0.0


# -- fast paths -----------------------------------------------------------------------
# The uncontended call admitted at once is the hot path of every limiter: one lock, one
# clock read and a few float operations. Each function below is the "fits now" branch of
# its engine's ``reserve`` written out inside the lock, which saves a Python call per
# acquire (a wait within the engine's ``slack``, float rounding, is no wait there either);
# anything else (a wait, holes, a hold, a bad amount) returns False and takes the
# general path. tests/backends/test_fast_paths.py keeps each equal to its engine.


def _fast_path(store: MemoryStore) -> Callable[[Hashable, Any], bool]:
    engine = store._engine
    if store._parts > 1:
        return lambda key, amount: False
    make = _FAST_PATHS.get(type(engine).name, _generic_fast_path)
    return make(store, engine)


def _generic_fast_path(store: MemoryStore, engine: Engine[Any]) -> Callable[[Hashable, Any], bool]:
    reserve, epoch, now_of, state_for = (
        engine.reserve,
        store._epoch,
        store._clock_now,
        store._state_for,
    )

    def admit(key: Hashable, amount: Any) -> bool:
        with store._lock:
            now = now_of() - epoch
            state = store._shared if key is None else state_for(key, now)
            if state.extra is None and reserve(state, now, amount, 0.0) >= 0.0:
                store._admitted += 1
                return True
        return False

    return admit


def _leaky_fast_path(store: MemoryStore, engine: Engine[Any]) -> Callable[[Hashable, Any], bool]:
    rate, burst, epoch, now_of = engine.rate, engine.burst, store._epoch, store._clock_now
    interval, slack = engine.interval, engine.slack
    state_for = store._state_for

    def admit(key: Hashable, amount: Any) -> bool:
        with store._lock:
            now = now_of() - epoch
            state: Any = store._shared if key is None else state_for(key, now)
            if state.extra is None:
                level = state.level - (now - state.stamp) * rate
                if level < 0.0:
                    level = 0.0
                level += amount
                if level <= burst or (level - burst) * interval <= slack:
                    state.level = level
                    state.stamp = now
                    store._admitted += 1
                    return True
        return False

    return admit


def _token_fast_path(store: MemoryStore, engine: Engine[Any]) -> Callable[[Hashable, Any], bool]:
    rate, burst, epoch, now_of = engine.rate, engine.burst, store._epoch, store._clock_now
    interval, slack = engine.interval, engine.slack
    state_for = store._state_for

    def admit(key: Hashable, amount: Any) -> bool:
        with store._lock:
            now = now_of() - epoch
            state: Any = store._shared if key is None else state_for(key, now)
            if state.extra is None:
                tokens = state.tokens + (now - state.stamp) * rate
                if tokens > burst:
                    tokens = burst
                tokens -= amount
                if tokens >= 0.0 or -tokens * interval <= slack:
                    state.tokens = tokens
                    state.stamp = now
                    store._admitted += 1
                    return True
        return False

    return admit


def _gcra_fast_path(store: MemoryStore, engine: Engine[Any]) -> Callable[[Hashable, Any], bool]:
    interval, tolerance, slack = engine.interval, engine.tolerance, engine.slack
    epoch, now_of, state_for = store._epoch, store._clock_now, store._state_for

    def admit(key: Hashable, amount: Any) -> bool:
        with store._lock:
            now = now_of() - epoch
            state: Any = store._shared if key is None else state_for(key, now)
            if state.extra is None:
                ahead = state.tat - now
                if ahead < 0.0:
                    ahead = 0.0
                ahead += amount * interval
                if ahead <= tolerance or ahead - tolerance <= slack:
                    state.tat = now + ahead
                    state.stamp = now
                    store._admitted += 1
                    return True
        return False

    return admit


def _lct_fast_path(store: MemoryStore, engine: Engine[Any]) -> Callable[[Hashable, Any], bool]:
    interval, tolerance, slack = engine.interval, engine.tolerance, engine.slack
    epoch, now_of, state_for = store._epoch, store._clock_now, store._state_for

    def admit(key: Hashable, amount: Any) -> bool:
        with store._lock:
            now = now_of() - epoch
            state: Any = store._shared if key is None else state_for(key, now)
            if state.extra is None:
                x = state.x - (now - state.stamp)
                if x < 0.0:
                    x = 0.0
                x += amount * interval
                if x <= tolerance or x - tolerance <= slack:
                    state.x = x
                    state.stamp = now
                    store._admitted += 1
                    return True
        return False

    return admit


_FAST_PATHS: dict[str, Callable[[MemoryStore, Engine[Any]], Callable[[Hashable, Any], bool]]] = {
    "leaky_bucket": _leaky_fast_path,
    "token_bucket": _token_fast_path,
    "gcra": _gcra_fast_path,
    "gcra_leaky_bucket": _lct_fast_path,
}


class MemoryBackend:
    """Limits kept in this process's memory (the default backend).

    Every limiter bound to it gets a store of its own; nothing is shared between
    processes (use :mod:`limitor.backends.redis` for that).
    """

    __slots__ = ()

    def bind(self, spec: LimitSpec, clock: Clock) -> MemoryStore:
        """A new in-memory store for ``spec``, deciding on ``clock``."""
        if spec.totals:
            return TotalStore(spec, clock)
        return MemoryStore(spec, clock)

    def __repr__(self) -> str:
        return "MemoryBackend()"


MEMORY = MemoryBackend()
"""The default backend."""


class MemoryStore(SyncStoreAsyncTwins):
    """One limit's states in memory: one slot, or one per key in a cache."""

    piece_cap: ClassVar[int] = sch.CAP
    """Free pieces kept per part and key at most (past it the earliest are dropped)."""

    __slots__ = (
        "__weakref__",
        "_admitted",
        "_cache",
        "_cancelled",
        "_clock_now",
        "_engine",
        "_engines",
        "_epoch",
        "_evicted",
        "_inserts",
        "_lock",
        "_max_keys",
        "_overflow",
        "_overflow_key",
        "_overflow_logged",
        "_overflows",
        "_parts",
        "_rejected",
        "_shared",
        "_spec",
        "_sweep_every",
        "_ttl",
        "_wait_total",
        "_waited",
        "admit_now",
    )

    does_io = False

    def __init__(self, spec: LimitSpec, clock: Clock) -> None:
        engine_type = ENGINES.get(spec.algorithm)
        if engine_type is None:
            raise ConfigError(f"algorithm must be one of {sorted(ENGINES)}, got {spec.algorithm!r}")
        if not spec.parts:
            raise ConfigError("a limit needs at least one part")
        self._spec = spec
        self._engines: tuple[Engine[Any], ...] = tuple(
            engine_type(part.rate, part.burst) for part in spec.parts
        )
        self._parts = len(self._engines)
        self._engine = self._engines[0]
        self._clock_now = clock.now
        self._epoch = _epoch_of(clock)
        self._lock = threading.Lock()
        self._max_keys = spec.max_keys
        self._ttl = spec.ttl
        self._shared = self._new_state()
        self._cache = _Keys(maxsize=math.inf)
        self._overflow: EngineState | None = None
        """The state new keys share while the cache is full of states still refilling."""
        self._overflow_logged = False
        self._overflow_key: Hashable = None
        self._inserts = 0
        self._sweep_every = _SWEEP_EVERY
        self._admitted = self._waited = self._rejected = self._cancelled = 0
        self._evicted = self._overflows = 0
        self._wait_total = 0.0
        self.admit_now: Callable[[Hashable, Any], bool] = _fast_path(self)
        """The fast path of a one-part limit: admit ``amount`` if it fits right now.

        ``amount`` must be a positive number of at most the burst; anything else (or a
        state with holes or a hold) returns False, and the caller takes :meth:`reserve`.
        """
        _fork.register(self, type(self)._after_fork)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()

    @property
    def spec(self) -> LimitSpec:
        """The limit this store decides."""
        return self._spec

    @property
    def engines(self) -> tuple[Engine[Any], ...]:
        """One engine per part."""
        return self._engines

    def now(self) -> float:
        """The store's time: seconds since it was made, on the limiter's clock."""
        return self._clock_now() - self._epoch

    # -- where states live (under the lock) -------------------------------------------

    def _new_state(self) -> EngineState:
        if self._parts == 1:
            state: EngineState = self._engine.new_state()
            return state
        return MultiState(tuple(engine.new_state() for engine in self._engines))

    def _state_for(self, key: Hashable, now: float) -> EngineState:
        if key is None:
            return self._shared
        kind = type(key)
        if kind is str:
            if len(key) > SHORT_STR:  # type: ignore[arg-type]
                key = bounded_key(key)
        elif kind is not int:
            key = bounded_key(key)
        cache = self._cache
        try:
            found: EngineState | None = cache[key]
        except TypeError:
            raise unhashable(key) from None
        if found is not None:
            return found
        overflow = self._overflow
        if overflow is not None and self._full_at(overflow) <= now:
            overflow = self._overflow = None  # full again: the same as none
        if len(cache) >= self._max_keys and not self._make_room(now):
            return self._overflowed(key, overflow)
        if self._ttl is not None and self._inserts >= self._sweep_every:
            self._sweep(now)
        self._inserts += 1
        # While the overflow state refills, this key may have been one of its users:
        # starting from a copy of it admits less, never more.
        state = self._new_state() if overflow is None else copy.deepcopy(overflow)
        cache[key] = state
        return state

    def _overflowed(self, key: Hashable, overflow: EngineState | None) -> EngineState:
        """The shared state of new keys that find no room (every state still refilling).

        Counted once per run of lookups for the same key (a fast path that does not fit
        and the general path after it are one decision).
        """
        if overflow is None:
            overflow = self._overflow = self._new_state()
        if key != self._overflow_key:
            self._overflow_key = key
            self._overflows += 1
        if not self._overflow_logged:
            self._overflow_logged = True
            name = self._spec.name
            _log.warning(
                "limitor: the keyed limit %s holds max_keys=%d states, all still refilling: "
                "new keys share one overflow bucket until room frees (stats.overflows)",
                repr(name) if name else f"at {self._engine.rate:g}/s",
                self._max_keys,
            )
        return overflow

    def _existing(self, key: Hashable) -> EngineState | None:
        if key is None:
            return self._shared
        try:
            found: EngineState | None = self._cache[bounded_key(key)]
        except TypeError:
            raise unhashable(key) from None
        return found

    def _given_back_to(
        self, key: Hashable, ticket: Ticket | None, now: float
    ) -> EngineState | None:
        """The state a give-back for ``key`` goes to: its own, or the overflow state.

        A key without a state of its own whose ticket still runs was decided by the
        overflow state; a refund without a ticket is dropped there (admits less).
        """
        state = self._existing(key)
        if state is None and ticket is not None and ticket.at > now:
            state = self._overflow
        return state

    def _unknown(self) -> EngineState:
        """The state an unknown key would be decided by now (peek)."""
        return self._new_state() if self._overflow is None else self._overflow

    def _full_at(self, state: EngineState) -> float:
        if self._parts == 1:
            full = self._engine.full_at(state)
        else:
            assert isinstance(state, MultiState)
            full = max(e.full_at(p) for e, p in zip(self._engines, state.parts, strict=True))
        extra = state.extra
        if extra is not None and extra.hold > full:
            full = extra.hold
        return full

    def _expired(self, state: EngineState, now: float) -> bool:
        """True for a state that ``ttl`` lets go: full, and untouched for ``ttl`` seconds."""
        ttl = self._ttl
        if ttl is None or self._full_at(state) > now:
            return False
        if self._parts == 1:
            touched = state.stamp
        else:
            assert isinstance(state, MultiState)
            touched = max(part.stamp for part in state.parts)
        return touched + ttl <= now

    def _sweep(self, now: float) -> None:
        """Drop every expired state (run after enough new keys: O(1) per key on average)."""
        cache = self._cache
        peek = Cache.__getitem__  # reads without touching the LRU order
        expired = [key for key in list(cache) if self._expired(peek(cache, key), now)]
        for key in expired:
            del cache[key]
        self._evicted += len(expired)
        self._inserts = 0
        self._sweep_every = max(_SWEEP_EVERY, len(cache))

    def _make_room(self, now: float) -> bool:
        """Drop full states, least recently used first, until below ``max_keys``.

        Returns False (and drops nothing more) at the first state still refilling: it
        goes back to the cache, and the new key takes the overflow state instead.
        """
        cache = self._cache
        while len(cache) >= self._max_keys:
            key, state = cache.popitem()  # the least recently used
            if self._full_at(state) <= now:
                self._evicted += 1  # a full state is the same as none: nothing lost
                continue
            cache[key] = state  # still refilling: keep it (next time the next one is tried)
            return False
        return True

    def _parts_of(self, state: EngineState) -> tuple[EngineState, ...]:
        if self._parts == 1:
            return (state,)
        assert isinstance(state, MultiState)
        return state.parts

    # -- the verbs ---------------------------------------------------------------------

    def reserve(self, key: Hashable, amount: Amount, max_wait: float) -> Grant:
        """See :meth:`limitor.backends.base.Store.reserve`."""
        with self._lock:
            now_abs = self._clock_now()
            now = now_abs - self._epoch
            state = self._state_for(key, now)
            if self._parts == 1 and state.extra is None:
                engine = self._engine
                start = engine.full_at(state)
                if start < now:
                    start = now
                delay = engine.reserve(state, now, amount[0], max_wait)
                if delay < 0.0:
                    self._rejected += 1
                    return Grant(False, 0.0, -delay, None, now_abs)
                ticket = Ticket(now + delay, (((start, engine.full_at(state)),),), delay)
                slack = engine.slack
            else:
                delay, found = self._reserve_general(state, now, amount, max_wait)
                if found is None:
                    self._rejected += 1
                    return Grant(False, 0.0, delay, None, now_abs)
                ticket = found
                slack = self._slack()
            if delay <= slack:
                delay = 0.0  # a delay within float rounding is no delay
                ticket = Ticket(ticket.at, ticket.pieces)
            else:
                self._waited += 1
                self._wait_total += delay
            self._admitted += 1
            return Grant(True, delay, 0.0, ticket, now_abs)

    def give_back(
        self, key: Hashable, amount: Amount, ticket: Ticket | None, *, cancel: bool
    ) -> tuple[float, Ticket | None]:
        """See :meth:`limitor.backends.base.Store.give_back`."""
        with self._lock:
            now = self._clock_now() - self._epoch
            state = self._given_back_to(key, ticket, now)
            if state is None:
                return 0.0, ticket  # forgotten because it was full: nothing to give
            parts = self._parts_of(state)
            if ticket is None:
                if cancel:
                    return 0.0, None
                self._give_back_at_end(state, parts, amount, now)
                return float(sum(amount)), None
            if cancel and ticket.at <= now:
                return 0.0, ticket  # its time has come: its caller may have gone
            pieces = list(ticket.pieces)
            given = 0.0
            for index, units in enumerate(amount):
                held = list(pieces[index])
                if units <= 0.0 or not held:
                    continue
                engine, part = self._engines[index], parts[index]
                length = units * engine.interval
                kept, freed = sch.split_latest(held, length, engine.slack)
                holds = sum(e - s for s, e in held)
                if length <= holds + engine.slack:
                    given += units
                else:  # a refund of more than the grant holds gives what it holds
                    given += holds * engine.rate
                extra: _Extra | None = state.extra
                holes = [] if extra is None else extra.holes[index]
                tat = sch.release(holes, engine.full_at(part), freed, now, engine.interval)
                self._set_tat(engine, part, now, tat)
                if holes and extra is None:  # the first piece freed before the end
                    self._extra(state).holes[index] = holes
                pieces[index] = tuple(kept)
            if cancel:
                self._cancelled += 1
                self._admitted -= 1  # a cancelled waiter was not admitted after all
                if ticket.delay > 0.0:
                    self._waited -= 1
                    self._wait_total -= ticket.delay
            self._tidy(state, now)
            return given, Ticket(ticket.at, tuple(pieces), ticket.delay)

    def charge(self, key: Hashable, amount: Amount, ticket: Ticket | None = None) -> None:
        """See :meth:`limitor.backends.base.Store.charge`.

        Debt fills the earliest free line from now on (free pieces first, then the end),
        or from the ticket's time when that is later: see :mod:`limitor.engines.schedule`
        for why.
        """
        with self._lock:
            now = self._clock_now() - self._epoch
            state = self._state_for(key, now)
            start = None if ticket is None or ticket.at <= now else ticket.at
            for index, (engine, part, units) in enumerate(
                zip(self._engines, self._parts_of(state), amount, strict=True)
            ):
                if units <= 0.0:
                    continue
                extra: _Extra | None = state.extra
                tat = engine.full_at(part)
                if (extra is None or not extra.holes[index]) and (start is None or tat >= start):
                    engine.charge(part, now, units)  # no pieces: the engine's own charge
                else:
                    holes = self._extra(state).holes[index]
                    need = units * engine.interval
                    tat = sch.charge(holes, tat, now, need, engine.interval, start)
                    self._set_tat(engine, part, now, tat)
            self._tidy(state, now)

    def hold(self, key: Hashable, seconds: float) -> None:
        """See :meth:`limitor.backends.base.Store.hold`."""
        with self._lock:
            now = self._clock_now() - self._epoch
            state = self._state_for(key, now)
            extra = self._extra(state)
            if now + seconds > extra.hold:
                extra.hold = now + seconds

    def peek(self, key: Hashable, amount: Amount) -> tuple[PartStatus, ...]:
        """See :meth:`limitor.backends.base.Store.peek`."""
        with self._lock:
            now = self._clock_now() - self._epoch
            state = self._existing(key)
            if state is None:
                state = self._unknown()
            extra = state.extra
            hold = -INF if extra is None else extra.hold
            statuses = []
            for index, (engine, part) in enumerate(
                zip(self._engines, self._parts_of(state), strict=True)
            ):
                holes = [] if extra is None else extra.holes[index]
                if hold > now or holes:
                    t0 = hold if hold > now else now
                    tat = engine.full_at(part)
                    need = amount[index] * engine.interval
                    fit = sch.earliest(holes, tat, engine.tolerance, need, t0, engine.interval)
                    wait = fit - now
                    free = sch.free_in(holes, tat, now, now + engine.tolerance)
                    remaining = 0.0 if hold > now else free * engine.rate
                else:  # the engine's own arithmetic, to the last digit
                    wait = engine.wait_time(part, now, amount[index])
                    remaining = engine.remaining(part, now)
                full = engine.full_at(part)
                statuses.append(
                    PartStatus(
                        remaining=max(0.0, remaining),
                        retry_after=max(0.0, wait),
                        reset_after=max(0.0, full - now, hold - now),
                    )
                )
            return tuple(statuses)

    def reset(self, key: object) -> None:
        """See :meth:`limitor.backends.base.Store.reset`."""
        with self._lock:
            if key is ALL_KEYS:
                self._cache = _Keys(maxsize=math.inf)
                self._overflow = self._overflow_key = None
                self._inserts = 0
                self._shared = self._new_state()
                self._admitted = self._waited = self._rejected = self._cancelled = 0
                self._evicted = self._overflows = 0
                self._wait_total = 0.0
            elif key is None:
                self._shared = self._new_state()
            else:
                try:
                    self._cache.pop(bounded_key(key), None)
                except TypeError:
                    raise unhashable(key) from None

    def counts(self) -> StoreCounts:
        """See :meth:`limitor.backends.base.Store.counts`."""
        with self._lock:
            return StoreCounts(
                admitted=self._admitted,
                waited=self._waited,
                total_wait=self._wait_total,
                rejected=self._rejected,
                cancelled=self._cancelled,
                users=len(self._cache),
                evictions=self._evicted,
                overflows=self._overflows,
            )

    def __len__(self) -> int:
        return len(self._cache)

    def __contains__(self, key: object) -> bool:
        """True if ``key``'s state is held (an expired one is dropped on the way)."""
        key = bounded_key(key)
        with self._lock:
            cache = self._cache
            try:
                missing = key not in cache
            except TypeError:
                raise unhashable(key) from None
            if missing:
                return False
            if self._expired(Cache.__getitem__(cache, key), self._clock_now() - self._epoch):
                del cache[key]
                self._evicted += 1
                return False
            return True

    # -- the schedule: fitting, placing and freeing spans (under the lock) --------------

    def _extra(self, state: EngineState) -> _Extra:
        extra: _Extra | None = state.extra
        if extra is None:
            extra = state.extra = _Extra(self._parts)
        return extra

    def _slack(self) -> float:
        """Seconds within which two times are the same (relative to the finest interval)."""
        return min(engine.slack for engine in self._engines)

    @staticmethod
    def _set_tat(engine: Engine[Any], part: EngineState, now: float, tat: float) -> None:
        """Re-express ``part`` as of ``now`` so that its schedule ends at ``tat``."""
        if part.stamp < now:
            part.stamp = now
        engine.set_full_at(part, now, tat)

    def _tidy(self, state: EngineState, now: float) -> None:
        """Bound the free pieces (see :func:`limitor.engines.schedule.tidy`); none: None."""
        extra: _Extra | None = state.extra
        if extra is None:
            return
        empty = True
        for engine, part, holes in zip(
            self._engines, self._parts_of(state), extra.holes, strict=True
        ):
            if holes:
                tat = engine.full_at(part)
                after = sch.tidy(holes, tat, now, self.piece_cap, engine.interval)
                if after != tat:
                    self._set_tat(engine, part, now, after)
                if holes:
                    empty = False
        if extra.hold <= now and empty:
            state.extra = None

    def _give_back_at_end(
        self, state: EngineState, parts: tuple[EngineState, ...], amount: Amount, now: float
    ) -> None:
        """A refund without a ticket: off the end of each part's schedule, not below now."""
        extra: _Extra | None = state.extra
        for index, (engine, part, units) in enumerate(
            zip(self._engines, parts, amount, strict=True)
        ):
            if units <= 0.0:
                continue
            if extra is None or not extra.holes[index]:
                engine.give_back(part, now, units)
            else:
                tat = engine.full_at(part)
                freed = [(max(tat - units * engine.interval, now), tat)]
                tat = sch.release(extra.holes[index], tat, freed, now, engine.interval)
                self._set_tat(engine, part, now, tat)
        self._tidy(state, now)

    def _reserve_general(
        self, state: EngineState, now: float, amount: Amount, max_wait: float
    ) -> tuple[float, Ticket | None]:
        """Reserve with free pieces, a hold or several parts (:mod:`~limitor.engines.schedule`).

        Returns ``(delay, ticket)``, or ``(retry_after, None)`` for a refusal.
        """
        parts = self._parts_of(state)
        self._tidy(state, now)
        extra: _Extra | None = state.extra
        start = now
        if extra is not None and extra.hold > start:
            start = extra.hold
        if extra is None:
            ticket = self._all_at_once(parts, now, amount)
            if ticket is not None:
                return 0.0, ticket
        engines = self._engines
        holes = [[] for _ in engines] if extra is None else extra.holes
        tats = [engine.full_at(part) for engine, part in zip(engines, parts, strict=True)]
        needs = [units * engine.interval for engine, units in zip(engines, amount, strict=True)]
        taus = [engine.tolerance for engine in engines]
        intervals = [engine.interval for engine in engines]
        at = sch.earliest_all(holes, tats, taus, needs, start, intervals)
        delay = at - now
        if delay > max_wait + self._slack():
            return delay, None
        if extra is None and self._parts > 1:
            holes = self._extra(state).holes  # a part that could go sooner leaves a piece
        pieces: list[tuple[tuple[float, float], ...]] = []
        for index, need in enumerate(needs):
            if need <= 0.0:
                pieces.append(())
                continue
            tat, taken = sch.occupy(
                holes[index], tats[index], at, taus[index], need, start, intervals[index]
            )
            self._set_tat(engines[index], parts[index], now, tat)
            pieces.append(tuple(taken))
        self._tidy(state, now)
        return delay, Ticket(at, tuple(pieces), delay)

    def _all_at_once(
        self, parts: tuple[EngineState, ...], now: float, amount: Amount
    ) -> Ticket | None:
        """Several parts with no free pieces and no hold, every one fitting now: a ticket.

        What :func:`~limitor.engines.schedule.earliest_all` and
        :func:`~limitor.engines.schedule.occupy` decide in that case, to the last digit
        (each part is plain GCRA: its units go at the end of its schedule), without
        building their lists: the common decision of an LLM call. ``None``: some part
        does not fit now, and the general path decides.
        """
        engines = self._engines
        for engine, part, units in zip(engines, parts, amount, strict=True):
            if units > 0.0:
                begin = engine.full_at(part)
                if begin < now:
                    begin = now
                tol = engine.interval * sch.REL
                if begin + units * engine.interval > now + engine.tolerance + tol:
                    return None
        pieces: list[tuple[tuple[float, float], ...]] = []
        for engine, part, units in zip(engines, parts, amount, strict=True):
            need = units * engine.interval
            if need <= 0.0:
                pieces.append(())
                continue
            tat = engine.full_at(part)
            if need > engine.interval * sch.REL:
                begin = tat if tat > now else now
                tat = begin + need
                pieces.append(((begin, tat),))
            else:  # within rounding of nothing: occupies nothing
                pieces.append(())
            self._set_tat(engine, part, now, tat)
        return Ticket(now, tuple(pieces), 0.0)

    def __repr__(self) -> str:
        return f"<MemoryStore {self._spec!r}>"


Line = tuple[Engine[Any], EngineState, EngineState, int]
"""One schedule line of a decision: its engine, its state, the state that owns its
free pieces and hold (a key's, or the totals'), and its index there."""


def _no_fast_path(key: Hashable, amount: Any) -> bool:
    return False


class TotalStore(MemoryStore):
    """Per-key limits under totals that every key shares, in memory.

    Each decision checks the key's lines and the totals' lines together, under the
    store's one lock, with :func:`limitor.engines.schedule.earliest_all`: a request is
    admitted at the earliest time every line has room, all or nothing, and occupies
    pieces on each (its ticket holds the key's pieces, then the totals'). Giving back
    frees exactly those pieces on both; debt is charged to both; the key ``None`` is one
    more key. The totals' state is never evicted.
    """

    __slots__ = ("_total", "_total_engines", "_total_of")

    def __init__(self, spec: LimitSpec, clock: Clock) -> None:
        super().__init__(spec, clock)
        self._total_of = total_parts_of(spec)
        """For each total, the index of the key's part whose units it counts."""
        engine_type = ENGINES[spec.algorithm]
        self._total_engines: tuple[Engine[Any], ...] = tuple(
            engine_type(part.rate, part.burst) for part in spec.totals
        )
        self._total = self._new_state_of(self._total_engines)
        self.admit_now = _no_fast_path

    @staticmethod
    def _new_state_of(engines: tuple[Engine[Any], ...]) -> EngineState:
        if len(engines) == 1:
            state: EngineState = engines[0].new_state()
            return state
        return MultiState(tuple(engine.new_state() for engine in engines))

    def _total_parts(self) -> tuple[EngineState, ...]:
        total = self._total
        if len(self._total_engines) == 1:
            return (total,)
        assert isinstance(total, MultiState)
        return total.parts

    def _units(self, amount: Amount) -> tuple[float, ...]:
        """Each line's units of ``amount``: the key's parts', then the totals'."""
        return (*amount, *(amount[index] for index in self._total_of))

    def _lines(self, state: EngineState) -> list[Line]:
        """The key's lines, then the totals' (under the lock)."""
        lines: list[Line] = [
            (engine, part, state, index)
            for index, (engine, part) in enumerate(
                zip(self._engines, self._parts_of(state), strict=True)
            )
        ]
        total = self._total
        for index, (engine, part) in enumerate(
            zip(self._total_engines, self._total_parts(), strict=True)
        ):
            lines.append((engine, part, total, index))
        return lines

    @staticmethod
    def _holes_of(owner: EngineState, index: int) -> list[tuple[float, float]]:
        extra: _Extra | None = owner.extra
        return [] if extra is None else extra.holes[index]

    def _slack(self) -> float:
        return min(engine.slack for engine in (*self._engines, *self._total_engines))

    def _tidy_all(self, state: EngineState | None, now: float) -> None:
        if state is not None:
            self._tidy(state, now)
        total = self._total
        extra: _Extra | None = total.extra
        if extra is None:
            return
        empty = True
        totals = len(self._total_engines)
        for engine, part, holes in zip(
            self._total_engines, self._total_parts(), extra.holes[:totals], strict=True
        ):
            if holes:
                tat = engine.full_at(part)
                after = sch.tidy(holes, tat, now, self.piece_cap, engine.interval)
                if after != tat:
                    self._set_tat(engine, part, now, after)
                if holes:
                    empty = False
        if extra.hold <= now and empty:
            total.extra = None

    # -- the verbs ---------------------------------------------------------------------

    def reserve(self, key: Hashable, amount: Amount, max_wait: float) -> Grant:
        """See :meth:`limitor.backends.base.Store.reserve`: the key and the totals at once."""
        with self._lock:
            now_abs = self._clock_now()
            now = now_abs - self._epoch
            state = self._state_for(key, now)
            if state.extra is None and self._total.extra is None and self._parts == 1:
                grant = self._admit_plain(state, now, now_abs, amount[0])
                if grant is not None:
                    return grant
            check_fits_totals(self._spec, self._total_of, amount)
            self._tidy_all(state, now)
            start = now
            for owner in (state, self._total):
                extra: _Extra | None = owner.extra
                if extra is not None and extra.hold > start:
                    start = extra.hold
            lines = self._lines(state)
            units = self._units(amount)
            holes = [self._holes_of(owner, index) for _, _, owner, index in lines]
            tats = [engine.full_at(part) for engine, part, _, _ in lines]
            needs = [n * line[0].interval for n, line in zip(units, lines, strict=True)]
            taus = [line[0].tolerance for line in lines]
            intervals = [line[0].interval for line in lines]
            at = sch.earliest_all(holes, tats, taus, needs, start, intervals)
            delay = at - now
            slack = self._slack()
            if delay > max_wait + slack:
                self._rejected += 1
                return Grant(False, 0.0, delay, None, now_abs)
            pieces: list[tuple[tuple[float, float], ...]] = []
            for i, (engine, part, owner, index) in enumerate(lines):
                if needs[i] <= 0.0:
                    pieces.append(())
                    continue
                line_holes = self._extra(owner).holes[index]
                tat, taken = sch.occupy(
                    line_holes, tats[i], at, taus[i], needs[i], start, intervals[i]
                )
                self._set_tat(engine, part, now, tat)
                pieces.append(tuple(taken))
            self._tidy_all(state, now)
            if delay <= slack:
                delay = 0.0
                ticket = Ticket(at, tuple(pieces))
            else:
                ticket = Ticket(at, tuple(pieces), delay)
                self._waited += 1
                self._wait_total += delay
            self._admitted += 1
            return Grant(True, delay, 0.0, ticket, now_abs)

    def _admit_plain(
        self, state: EngineState, now: float, now_abs: float, units: float
    ) -> Grant | None:
        """The common case, admitted now: no free pieces nor holds, one part, both fit.

        Each line's ``earliest`` is ``now`` and ``occupy`` takes ``[max(tat, now), +n*T)``:
        the general path's result, without building its lists. None: take that path.
        """
        key_engine, total_engine = self._engine, self._total_engines[0]
        total = self._total
        key_tat = key_engine.full_at(state)
        total_tat = total_engine.full_at(total)
        key_x = key_tat if key_tat > now else now
        total_x = total_tat if total_tat > now else now
        key_end = key_x + units * key_engine.interval
        total_end = total_x + units * total_engine.interval
        if (
            key_end > now + key_engine.tolerance + key_engine.slack
            or total_end > now + total_engine.tolerance + total_engine.slack
        ):
            return None
        if units <= 0.0:
            return None
        self._set_tat(key_engine, state, now, key_end)
        self._set_tat(total_engine, total, now, total_end)
        self._admitted += 1
        ticket = Ticket(now, (((key_x, key_end),), ((total_x, total_end),)))
        return Grant(True, 0.0, 0.0, ticket, now_abs)

    def give_back(
        self, key: Hashable, amount: Amount, ticket: Ticket | None, *, cancel: bool
    ) -> tuple[float, Ticket | None]:
        """See :meth:`limitor.backends.base.Store.give_back`: to the key and the totals."""
        with self._lock:
            now = self._clock_now() - self._epoch
            state = self._given_back_to(key, ticket, now)
            if ticket is None:
                if cancel:
                    return 0.0, None
                if state is not None:
                    self._give_back_at_end(state, self._parts_of(state), amount, now)
                self._total_at_end(amount, now)
                return float(sum(amount)), None
            if cancel and ticket.at <= now:
                return 0.0, ticket  # its time has come: its caller may have gone
            keyed = self._parts
            lines: list[Line | None]
            if state is None:  # forgotten because full: its pieces are past
                lines = [None] * keyed + list(self._lines(self._new_state())[keyed:])
            else:
                lines = list(self._lines(state))
            pieces = list(ticket.pieces)
            given = 0.0
            for i, units in enumerate(self._units(amount)):
                held = list(pieces[i])
                if units <= 0.0 or not held:
                    continue
                line = lines[i]
                engine = self._engines[i] if i < keyed else self._total_engines[i - keyed]
                length = units * engine.interval
                kept, freed = sch.split_latest(held, length, engine.slack)
                if i < keyed:
                    holds = sum(e - s for s, e in held)
                    given += units if length <= holds + engine.slack else holds * engine.rate
                if line is not None:
                    _, part, owner, index = line
                    line_holes = self._extra(owner).holes[index]
                    tat = sch.release(line_holes, engine.full_at(part), freed, now, engine.interval)
                    self._set_tat(engine, part, now, tat)
                pieces[i] = tuple(kept)
            if cancel:
                self._cancelled += 1
                self._admitted -= 1
                if ticket.delay > 0.0:
                    self._waited -= 1
                    self._wait_total -= ticket.delay
            self._tidy_all(state, now)
            return given, Ticket(ticket.at, tuple(pieces), ticket.delay)

    def _total_at_end(self, amount: Amount, now: float) -> None:
        """A refund without a ticket, off the end of each total's schedule."""
        total = self._total
        for index, (engine, part, units) in enumerate(
            zip(
                self._total_engines,
                self._total_parts(),
                self._units(amount)[self._parts :],
                strict=True,
            )
        ):
            if units <= 0.0:
                continue
            holes = self._holes_of(total, index)
            if not holes:
                engine.give_back(part, now, units)
            else:
                tat = engine.full_at(part)
                freed = [(max(tat - units * engine.interval, now), tat)]
                tat = sch.release(holes, tat, freed, now, engine.interval)
                self._set_tat(engine, part, now, tat)
        self._tidy_all(None, now)

    def charge(self, key: Hashable, amount: Amount, ticket: Ticket | None = None) -> None:
        """See :meth:`limitor.backends.base.Store.charge`: debt on the key and the totals.

        :data:`TOTAL` charges the totals only (a provider reporting less than they hold).
        """
        with self._lock:
            now = self._clock_now() - self._epoch
            only_totals = key is TOTAL
            state = self._new_state() if only_totals else self._state_for(key, now)
            start = None if ticket is None or ticket.at <= now else ticket.at
            for i, ((engine, part, owner, index), units) in enumerate(
                zip(self._lines(state), self._units(amount), strict=True)
            ):
                if units <= 0.0 or (only_totals and i < self._parts):
                    continue
                tat = engine.full_at(part)
                if not self._holes_of(owner, index) and (start is None or tat >= start):
                    engine.charge(part, now, units)
                else:
                    holes = self._extra(owner).holes[index]
                    need = units * engine.interval
                    tat = sch.charge(holes, tat, now, need, engine.interval, start)
                    self._set_tat(engine, part, now, tat)
            self._tidy_all(None if only_totals else state, now)

    def hold(self, key: Hashable, seconds: float) -> None:
        """See :meth:`limitor.backends.base.Store.hold`; :data:`TOTAL` holds the totals."""
        if key is not TOTAL:
            super().hold(key, seconds)
            return
        with self._lock:
            now = self._clock_now() - self._epoch
            extra = self._extra(self._total)
            if now + seconds > extra.hold:
                extra.hold = now + seconds

    def peek(self, key: Hashable, amount: Amount) -> tuple[PartStatus, ...]:
        """The key's parts' states, then the totals' (see :class:`LimitSpec`)."""
        with self._lock:
            now = self._clock_now() - self._epoch
            state = self._existing(key)
            if state is None:
                state = self._unknown()
            statuses = []
            for (engine, part, owner, index), units in zip(
                self._lines(state), self._units(amount), strict=True
            ):
                extra: _Extra | None = owner.extra
                hold = -INF if extra is None else extra.hold
                holes = self._holes_of(owner, index)
                if hold > now or holes:
                    t0 = hold if hold > now else now
                    tat = engine.full_at(part)
                    need = units * engine.interval
                    fit = sch.earliest(holes, tat, engine.tolerance, need, t0, engine.interval)
                    wait = fit - now
                    free = sch.free_in(holes, tat, now, now + engine.tolerance)
                    remaining = 0.0 if hold > now else free * engine.rate
                else:
                    wait = engine.wait_time(part, now, units)
                    remaining = engine.remaining(part, now)
                full = engine.full_at(part)
                statuses.append(
                    PartStatus(
                        remaining=max(0.0, remaining),
                        retry_after=max(0.0, wait),
                        reset_after=max(0.0, full - now, hold - now),
                    )
                )
            return tuple(statuses)

    def reset(self, key: object) -> None:
        """See :meth:`limitor.backends.base.Store.reset`.

        A key's reset leaves the totals as they are (what the key used still counts
        there); :data:`TOTAL` forgets the totals only; :data:`ALL_KEYS` forgets all.
        """
        if key is TOTAL or key is ALL_KEYS:
            with self._lock:
                self._total = self._new_state_of(self._total_engines)
            if key is TOTAL:
                return
        super().reset(key)

    def __repr__(self) -> str:
        return f"<TotalStore {self._spec!r}>"
