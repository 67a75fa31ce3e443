"""The pure schedule line (limitor/engines/schedule.py): the give-back case table, plain
GCRA when nothing is given back, and the bound on any window of admission times."""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from limitor.engines import schedule as sch

from .cases import GIVE_BACK_CASES, INF, GiveBackCase


class Line:
    """Several parts decided together with schedule.py, the way a store uses it."""

    def __init__(self, parts: list[tuple[float, float]], cap: int = sch.CAP) -> None:
        self.intervals = [1.0 / rate for rate, _ in parts]
        self.taus = [burst / rate for rate, burst in parts]
        self.holes: list[list[tuple[float, float]]] = [[] for _ in parts]
        self.tats = [-INF for _ in parts]
        self.cap = cap

    def tidy(self, now: float) -> None:
        for p in range(len(self.tats)):
            self.tats[p] = sch.tidy(self.holes[p], self.tats[p], now, self.cap, self.intervals[p])

    def reserve(self, now: float, amounts: tuple[float, ...], max_wait: float) -> Any:
        """``(delay, (at, pieces))`` or ``(-retry_after, None)``."""
        self.tidy(now)
        needs = [units * t for units, t in zip(amounts, self.intervals, strict=True)]
        at = sch.earliest_all(self.holes, self.tats, self.taus, needs, now, self.intervals)
        delay = at - now
        if delay > max_wait + sch.tolerance(min(self.intervals)):
            return -delay, None
        pieces = []
        for p, need in enumerate(needs):
            taken: list[tuple[float, float]] = []
            if need > 0.0:
                self.tats[p], taken = sch.occupy(
                    self.holes[p], self.tats[p], at, self.taus[p], need, now, self.intervals[p]
                )
            pieces.append(taken)
        self.tidy(now)
        return delay, (at, pieces)

    def give_back(self, now: float, ticket: Any, amounts: tuple[float, ...] | None) -> float:
        """Cancel (``amounts=None``) or refund; the units given back."""
        at, pieces = ticket
        if amounts is None and at <= now:
            return 0.0
        given = 0.0
        for p, held in enumerate(pieces):
            t = self.intervals[p]
            if amounts is None:
                kept, freed = [], list(held)
            else:
                kept, freed = sch.split_latest(held, amounts[p] * t, sch.tolerance(t))
            pieces[p] = kept
            given += sum(e - s for s, e in freed) / t
            self.tats[p] = sch.release(self.holes[p], self.tats[p], freed, now, t)
        self.tidy(now)
        return given

    def charge(self, now: float, amounts: tuple[float, ...], ticket: Any = None) -> None:
        """Debt; with a grant's ticket, no earlier than its time."""
        self.tidy(now)
        start = None if ticket is None else ticket[0]
        for p, units in enumerate(amounts):
            if units > 0:
                t = self.intervals[p]
                self.tats[p] = sch.charge(self.holes[p], self.tats[p], now, units * t, t, start)
        self.tidy(now)


@pytest.mark.parametrize("case", GIVE_BACK_CASES, ids=lambda case: case.name)
def test_give_back_table(case: GiveBackCase) -> None:
    line = Line(case.parts, case.cap if case.cap is not None else sch.CAP)
    tickets: dict[int, Any] = {}
    for index, step in enumerate(case.steps):
        kind, now = step[0], float(step[1])  # type: ignore[arg-type]
        if kind == "reserve":
            _, amounts, max_wait, expected = step[1:]
            got, ticket = line.reserve(now, amounts, max_wait)  # type: ignore[arg-type]
            assert got == pytest.approx(expected, abs=1e-9), f"step {index}"
            tickets[index] = ticket
        elif kind == "cancel":
            _, target, given = step[1:]
            assert line.give_back(now, tickets[target], None) == pytest.approx(given), index  # type: ignore[index]
        elif kind == "refund":
            _, target, amounts, given = step[1:]
            got_back = line.give_back(now, tickets[target], amounts)  # type: ignore[index,arg-type]
            assert got_back == pytest.approx(given), f"step {index}"
        else:
            ticket = tickets[step[3]] if len(step) > 3 else None  # type: ignore[index]
            line.charge(now, step[2], ticket)  # type: ignore[arg-type]
        for holes, tat in zip(line.holes, line.tats, strict=True):
            assert len(holes) <= line.cap
            assert all(s < e for s, e in holes)
            assert all(a[1] < b[0] for a, b in itertools.pairwise(holes))
            assert not holes or holes[-1][1] < tat


ops = st.lists(
    st.tuples(
        st.sampled_from(["req", "req", "req", "cancel", "refund", "charge"]),
        st.integers(0, 20).map(lambda k: k / 8),  # time step
        st.floats(0.05, 1.0),  # share of the burst
        st.integers(0, 1000),  # which grant
        st.floats(0.0, 1.5),  # refund: share used (above 1: debt)
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(rate=st.sampled_from([1.0, 3.0, 10.0]), burst=st.integers(1, 8), steps=ops)
def test_plain_gcra_when_nothing_is_given_back(rate: float, burst: int, steps: Any) -> None:
    line = Line([(rate, burst)])
    tat = -INF
    now = 0.0
    t, tau = 1.0 / rate, burst / rate
    for kind, dt, share, _, _ in steps:
        now += dt
        units = max(share * burst, 0.01)
        if kind == "charge":
            line.charge(now, (units,))
            tat = max(tat, now) + units * t
            continue
        got, _ = line.reserve(now, (units,), INF)
        ahead = max(tat - now, 0.0) + units * t
        want = 0.0 if ahead <= tau else ahead - tau
        tat = now + ahead
        assert got == pytest.approx(want, abs=1e-9)
        assert line.tats[0] == pytest.approx(tat, abs=1e-9)
        assert line.holes == [[]]


@settings(max_examples=300, deadline=None)
@given(
    parts=st.sampled_from([[(1.0, 3.0)], [(2.0, 5.0), (10.0, 40.0)], [(1.0, 1.0), (3.0, 6.0)]]),
    steps=ops,
    cap=st.sampled_from([2, 4, sch.CAP]),
)
def test_every_unit_used_sits_within_one_burst_of_its_admission(
    parts: list[tuple[float, float]], steps: Any, cap: int
) -> None:
    """Every piece a grant holds lies in ``[at, at + tau)``, pieces are disjoint and never
    overlap the free line; so any window of admission times holds ``burst + rate*w``."""
    line = Line(parts, cap)
    grants: list[list[Any]] = []  # [ticket, amounts]
    now = 0.0
    for kind, dt, share, pick, used in steps:
        now += dt
        if kind == "req":
            amounts = tuple(max(share * burst, 0.01) for _, burst in parts)
            _, ticket = line.reserve(now, amounts, INF)
            grants.append([ticket, amounts])
        elif kind == "charge":
            line.charge(now, tuple(share * burst for _, burst in parts))
        elif grants:
            grant = grants[pick % len(grants)]
            ticket, amounts = grant
            if kind == "cancel":
                if ticket[0] > now:
                    line.give_back(now, ticket, None)
                    grant[1] = tuple(0.0 for _ in amounts)
            elif used < 1.0:
                back = tuple(a * (1 - used) for a in amounts)
                line.give_back(now, ticket, back)
                grant[1] = tuple(a * used for a in amounts)
        for p, (rate, burst) in enumerate(parts):
            tau = burst / rate
            tol = 1e-9
            held = []
            for (at, pieces), _ in grants:
                for s, e in pieces[p]:
                    assert at - tol <= s
                    assert e <= at + tau + tol
                    held.append((s, e))
            free = [*list(line.holes[p]), (line.tats[p], INF)]
            spans = sorted(held + [(max(s, now), e) for s, e in free if e > now])
            for a, b in itertools.pairwise(spans):
                assert a[1] <= b[0] + tol
            assert len(line.holes[p]) <= cap
        # the window bound on what grants still hold (their actual use)
        for p, (rate, burst) in enumerate(parts):
            units = sorted(
                (at, sum(e - s for s, e in pieces[p]) * rate) for (at, pieces), _ in grants
            )
            for i, (start, _) in enumerate(units):
                total = 0.0
                for end, amount in units[i:]:
                    total += amount
                    assert total <= burst + rate * (end - start) + 1e-6


def test_a_billion_per_second_with_burst_one_never_admits_two_at_once() -> None:
    line = Line([(1e9, 1.0)])
    ats = [line.reserve(0.0, (1.0,), INF)[1][0] for _ in range(1000)]
    assert all(b - a == pytest.approx(1e-9, rel=1e-6) for a, b in itertools.pairwise(ats))
    assert ats[0] == 0.0


def test_a_freed_piece_a_few_ulps_short_of_its_units_still_holds_them() -> None:
    """A cancelled grant's piece, measured back in floats, may come out short by an ulp.

    ``41.812 - 41.712`` is ``0.09999999999999432``: the 0.05 units (at 2 s each) it held
    must fit there again, not go to the end of the schedule.
    """
    holes = [(41.712, 41.812)]
    need, tau, tat = 0.05 * 2.0, 10.0, 91.812
    assert holes[0][1] - holes[0][0] < need  # the float rounding this is about
    at = sch.earliest(holes, tat, tau, need, 0.0, 2.0)
    assert at == pytest.approx(31.812, abs=1e-9)
    after, taken = sch.occupy(holes, tat, at, tau, need, 0.0, 2.0)
    assert after == tat  # nothing taken at the end
    assert taken == [(41.712, 41.812)]
    assert holes == []


def test_free_in_counts_the_free_line_of_a_window() -> None:
    holes = [(1.0, 2.0), (3.0, 5.0)]
    assert sch.free_in(holes, 8.0, 0.0, 10.0) == pytest.approx(5.0)
    assert sch.free_in(holes, 8.0, 1.5, 4.0) == pytest.approx(1.5)
    assert sch.free_in([], -math.inf, 2.0, 3.0) == pytest.approx(1.0)


@settings(max_examples=500, deadline=None)
@given(
    cuts=st.lists(st.integers(0, 80), min_size=0, max_size=24, unique=True),
    tat=st.integers(0, 90),
    tau=st.integers(1, 20),
    need=st.integers(1, 20),
    start=st.integers(0, 40),
)
def test_earliest_is_the_first_time_the_window_holds_the_need(
    cuts: list[int], tat: int, tau: int, need: int, start: int
) -> None:
    """Against a scan of every quarter second (holes and times on a grid of halves)."""
    need = min(need, tau)
    points = sorted(c / 2 for c in cuts if c / 2 < tat)
    holes = [(points[i], points[i + 1]) for i in range(0, len(points) - 1, 2)]
    holes = [(s, e) for s, e in holes if e < tat]
    got = sch.earliest(holes, float(tat), float(tau), float(need), float(start), 1.0)
    assert got >= start
    assert sch.free_in(holes, float(tat), got, got + tau) >= need - 1e-9
    t = float(start)
    while t < got - 1e-9:
        assert sch.free_in(holes, float(tat), t, t + tau) < need - 1e-9, t
        t += 0.25
