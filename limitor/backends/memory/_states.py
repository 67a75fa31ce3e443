"""The engine states of one limit in memory, and where they live (:class:`StateTable`).

A state is one engine state per part (:class:`MultiState` for several); its rare part,
free pieces and a hold, hangs on it as :class:`Extra` only while there is any.
"""

from __future__ import annotations

import copy
import logging
import math
import threading
from collections.abc import Hashable
from typing import Any, ClassVar

from cachetools import Cache, LRUCache

from limitor import _fork
from limitor.backends._keys import SHORT_STR, bounded_key, unhashable
from limitor.backends.base import ALL_KEYS, LimitSpec, PartStatus, Ticket
from limitor.clock import Clock
from limitor.engines import ENGINES, Engine, EngineState
from limitor.engines import schedule as sch
from limitor.errors import ConfigError

_log = logging.getLogger("limitor")

INF = math.inf

SWEEP_EVERY = 1024
"""New keys between two sweeps for expired states (at least; or the cache's size)."""


class Extra:
    """The rare part of a state: holes per part and a hold."""

    __slots__ = ("hold", "holes")

    def __init__(self, parts: int) -> None:
        self.holes: list[list[tuple[float, float]]] = [[] for _ in range(parts)]
        """Per part, free pieces ``(start, end)`` before its end, sorted and disjoint."""
        self.hold = -INF
        """Nothing is admitted before this time."""

    def __repr__(self) -> str:
        return f"Extra(hold={self.hold!r}, holes={self.holes!r})"


class MultiState(EngineState):
    """The states of several parts for one key (an LLM call's requests and tokens)."""

    __slots__ = ("parts",)

    fields: ClassVar[tuple[str, ...]] = ("parts",)

    def __init__(self, parts: tuple[EngineState, ...]) -> None:
        super().__init__()
        self.parts = parts


class KeyCache(LRUCache[Hashable, EngineState]):
    """The per-key cache: a ``cachetools`` LRU cache that answers a missing key with None.

    Raising and catching ``KeyError`` for every new key would double its first hit.
    """

    def __missing__(self, key: Hashable) -> Any:
        return None


def epoch_of(clock: Clock) -> float:
    """The clock's reading now, the zero of a store's times (keeps them small and precise).

    A clock that cannot be read yet (an event loop's, before the loop runs: limiters are
    made at import time) counts from its own zero.
    """
    try:
        return float(clock.now())
    except Exception:
        return 0.0


class StateTable:
    """Where one limit's engine states live in memory.

    One slot for the key ``None``, and a ``cachetools`` LRU cache for the other keys,
    bounded by ``max_keys`` (full states go first; with none full, new keys share one
    overflow state) and ``ttl`` (a lazy sweep). The methods run under the store's lock,
    which lives here too.
    """

    __slots__ = (
        "__weakref__",
        "_cache",
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
        "_shared",
        "_spec",
        "_sweep_every",
        "_ttl",
    )

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
        self._epoch = epoch_of(clock)
        self._lock = threading.Lock()
        self._max_keys = spec.max_keys
        self._ttl = spec.ttl
        self._shared = self._new_state()
        self._cache = KeyCache(maxsize=math.inf)
        self._overflow: EngineState | None = None
        """The state new keys share while the cache is full of states still refilling."""
        self._overflow_logged = False
        self._overflow_key: Hashable = None
        self._inserts = 0
        self._sweep_every = SWEEP_EVERY
        self._evicted = self._overflows = 0
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
        self._sweep_every = max(SWEEP_EVERY, len(cache))

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

    def _extra(self, state: EngineState) -> Extra:
        extra: Extra | None = state.extra
        if extra is None:
            extra = state.extra = Extra(self._parts)
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

    def _charge_line(
        self,
        engine: Engine[Any],
        part: EngineState,
        owner: EngineState,
        index: int,
        units: float,
        now: float,
        start: float | None,
    ) -> None:
        """Debt of ``units`` on one line: ``part`` of ``owner``, free pieces at ``index``.

        The engine's own charge when there are no free pieces and the line already
        reaches ``start``; else :func:`limitor.engines.schedule.charge`.
        """
        tat = engine.full_at(part)
        extra: Extra | None = owner.extra
        if (extra is None or not extra.holes[index]) and (start is None or tat >= start):
            engine.charge(part, now, units)
            return
        holes = self._extra(owner).holes[index]
        tat = sch.charge(holes, tat, now, units * engine.interval, engine.interval, start)
        self._set_tat(engine, part, now, tat)

    def _hold_until(self, owner: EngineState, until: float) -> None:
        """Admit nothing on ``owner``'s lines before ``until`` (a longer hold stays)."""
        extra = self._extra(owner)
        if until > extra.hold:
            extra.hold = until

    def _forget(self, key: object) -> None:
        """Drop ``key``'s state (:data:`~limitor.backends.base.ALL_KEYS`: every state)."""
        if key is ALL_KEYS:
            self._cache = KeyCache(maxsize=math.inf)
            self._overflow = self._overflow_key = None
            self._inserts = 0
            self._shared = self._new_state()
            self._evicted = self._overflows = 0
        elif key is None:
            self._shared = self._new_state()
        else:
            try:
                self._cache.pop(bounded_key(key), None)
            except TypeError:
                raise unhashable(key) from None

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


def part_status(
    engine: Engine[Any],
    part: EngineState,
    holes: list[tuple[float, float]],
    hold: float,
    now: float,
    units: float,
) -> PartStatus:
    """One line's live state for ``units`` (its free pieces and hold included)."""
    if hold > now or holes:
        t0 = hold if hold > now else now
        tat = engine.full_at(part)
        need = units * engine.interval
        fit = sch.earliest(holes, tat, engine.tolerance, need, t0, engine.interval)
        wait = fit - now
        free = sch.free_in(holes, tat, now, now + engine.tolerance)
        remaining = 0.0 if hold > now else free * engine.rate
    else:  # the engine's own arithmetic, to the last digit
        wait = engine.wait_time(part, now, units)
        remaining = engine.remaining(part, now)
    full = engine.full_at(part)
    return PartStatus(
        remaining=max(0.0, remaining),
        retry_after=max(0.0, wait),
        reset_after=max(0.0, full - now, hold - now),
    )
