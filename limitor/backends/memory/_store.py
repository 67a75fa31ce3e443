"""The memory store: one limit's decisions under one short lock (see the package docs)."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, ClassVar

from limitor.backends.base import (
    ALL_KEYS,
    Amount,
    Grant,
    LimitSpec,
    PartStatus,
    StoreCounts,
    SyncStoreAsyncTwins,
    Ticket,
)
from limitor.backends.memory._states import INF, Extra, StateTable, part_status
from limitor.clock import Clock
from limitor.engines import Engine, EngineState
from limitor.engines import schedule as sch

# -- fast paths -----------------------------------------------------------------------
# The uncontended call admitted at once is the hot path of every limiter: one lock, one
# clock read and a few float operations. Each function below is the "fits now" branch of
# its engine's ``reserve`` written out inside the lock, which saves a Python call per
# acquire (a wait within the engine's ``slack``, float rounding, is no wait there either);
# anything else (a wait, holes, a hold, a bad amount) returns False and takes the
# general path. tests/backends/test_fast_paths.py keeps each equal to its engine.


def fast_path(store: MemoryStore) -> Callable[[Hashable, Any], bool]:
    engine = store._engine
    if store._parts > 1:
        return lambda key, amount: False
    make = _FAST_PATHS.get(type(engine).name, generic_fast_path)
    return make(store, engine)


def generic_fast_path(store: MemoryStore, engine: Engine[Any]) -> Callable[[Hashable, Any], bool]:
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


def leaky_fast_path(store: MemoryStore, engine: Engine[Any]) -> Callable[[Hashable, Any], bool]:
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


def token_fast_path(store: MemoryStore, engine: Engine[Any]) -> Callable[[Hashable, Any], bool]:
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


def gcra_fast_path(store: MemoryStore, engine: Engine[Any]) -> Callable[[Hashable, Any], bool]:
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


def lct_fast_path(store: MemoryStore, engine: Engine[Any]) -> Callable[[Hashable, Any], bool]:
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
    "leaky_bucket": leaky_fast_path,
    "token_bucket": token_fast_path,
    "gcra": gcra_fast_path,
    "gcra_leaky_bucket": lct_fast_path,
}


class MemoryStore(StateTable, SyncStoreAsyncTwins):
    """One limit's states in memory: one slot, or one per key in a cache."""

    piece_cap: ClassVar[int] = sch.CAP
    """Free pieces kept per part and key at most (past it the earliest are dropped)."""

    __slots__ = (
        "_admitted",
        "_cancelled",
        "_rejected",
        "_wait_total",
        "_waited",
        "admit_now",
    )

    does_io = False

    def __init__(self, spec: LimitSpec, clock: Clock) -> None:
        super().__init__(spec, clock)
        self._admitted = self._waited = self._rejected = self._cancelled = 0
        self._wait_total = 0.0
        self.admit_now: Callable[[Hashable, Any], bool] = fast_path(self)
        """The fast path of a one-part limit: admit ``amount`` if it fits right now.

        ``amount`` must be a positive number of at most the burst; anything else (or a
        state with holes or a hold) returns False, and the caller takes :meth:`reserve`.
        """

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
                extra: Extra | None = state.extra
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
                if units > 0.0:
                    self._charge_line(engine, part, state, index, units, now, start)
            self._tidy(state, now)

    def hold(self, key: Hashable, seconds: float) -> None:
        """See :meth:`limitor.backends.base.Store.hold`."""
        with self._lock:
            now = self._clock_now() - self._epoch
            self._hold_until(self._state_for(key, now), now + seconds)

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
                statuses.append(part_status(engine, part, holes, hold, now, amount[index]))
            return tuple(statuses)

    def reset(self, key: object) -> None:
        """See :meth:`limitor.backends.base.Store.reset`."""
        with self._lock:
            self._forget(key)
            if key is ALL_KEYS:
                self._admitted = self._waited = self._rejected = self._cancelled = 0
                self._wait_total = 0.0

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

    # -- the schedule: fitting, placing and freeing spans (under the lock) --------------

    def _tidy(self, state: EngineState, now: float) -> None:
        """Bound the free pieces (see :func:`limitor.engines.schedule.tidy`); none: None."""
        extra: Extra | None = state.extra
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
        extra: Extra | None = state.extra
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
        extra: Extra | None = state.extra
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


def no_fast_path(key: Hashable, amount: Any) -> bool:
    return False
