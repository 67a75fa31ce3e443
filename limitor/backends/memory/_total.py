"""Per-key limits under totals that every key shares, in memory (:class:`TotalStore`)."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from limitor.backends.base import (
    ALL_KEYS,
    TOTAL,
    Amount,
    Grant,
    LimitSpec,
    PartStatus,
    Ticket,
    check_fits_totals,
    total_parts_of,
)
from limitor.backends.memory._states import INF, Extra, MultiState, part_status
from limitor.backends.memory._store import Line, MemoryStore, no_fast_path
from limitor.clock import Clock
from limitor.engines import ENGINES, Engine, EngineState
from limitor.engines import schedule as sch


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
        self.admit_now = total_fast_path(self)

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
        extra: Extra | None = owner.extra
        return [] if extra is None else extra.holes[index]

    def _slack(self) -> float:
        return min(engine.slack for engine in (*self._engines, *self._total_engines))

    def _tidy_all(self, state: EngineState | None, now: float) -> None:
        if state is not None:
            self._tidy(state, now)
        total = self._total
        extra: Extra | None = total.extra
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
                extra: Extra | None = owner.extra
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
                if units > 0.0 and not (only_totals and i < self._parts):
                    self._charge_line(engine, part, owner, index, units, now, start)
            self._tidy_all(None if only_totals else state, now)

    def hold(self, key: Hashable, seconds: float) -> None:
        """See :meth:`limitor.backends.base.Store.hold`; :data:`TOTAL` holds the totals."""
        if key is not TOTAL:
            super().hold(key, seconds)
            return
        with self._lock:
            self._hold_until(self._total, self._clock_now() - self._epoch + seconds)

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
                extra: Extra | None = owner.extra
                hold = -INF if extra is None else extra.hold
                holes = self._holes_of(owner, index)
                statuses.append(part_status(engine, part, holes, hold, now, units))
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


def total_fast_path(store: TotalStore) -> Callable[[Hashable, Any], bool]:
    """The fast path of one part under one total.

    Admits ``amount`` if both lines have it now (neither with free pieces nor a hold);
    anything else returns False and takes :meth:`TotalStore.reserve`.
    """
    if store._parts != 1 or len(store._total_engines) != 1:
        return no_fast_path
    epoch, now_of, state_for, admit_plain = (
        store._epoch,
        store._clock_now,
        store._state_for,
        store._admit_plain,
    )

    def admit(key: Hashable, amount: Any) -> bool:
        with store._lock:
            now_abs = now_of()
            now = now_abs - epoch
            state = store._shared if key is None else state_for(key, now)
            if state.extra is None and store._total.extra is None:
                return admit_plain(state, now, now_abs, amount) is not None
        return False

    return admit
