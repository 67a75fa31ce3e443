"""Property tests of the promises, on random arrivals, in pure arithmetic (no clock)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from limitor.engines import ENGINES, Engine

INF = float("inf")
ENGINE_TYPES = list(ENGINES.values())


@dataclass
class Cell:
    admit: float
    amount: float
    before: tuple[object, ...]
    after: tuple[object, ...]


limits = st.tuples(
    st.sampled_from([0.5, 1.0, 2.0, 3.0, 10.0, 1000 / 60]),  # rate
    st.integers(min_value=1, max_value=20),  # burst
)
ops = st.lists(
    st.tuples(
        st.sampled_from(["req", "req", "req", "cancel", "refund"]),
        st.integers(min_value=0, max_value=40).map(lambda k: k / 8),  # time step
        st.floats(min_value=0.01, max_value=1.0),  # amount as a share of the burst
        st.sampled_from([0.0, 0.5, 3.0, INF]),  # max_wait
        st.integers(min_value=0, max_value=1000),  # which cell to cancel or refund
        st.floats(min_value=0.0, max_value=1.0),  # refund: share of the amount kept
    ),
    max_size=60,
)


def run(engine: Engine, steps: list[tuple], *, with_max_wait: bool = True) -> list[Cell]:  # type: ignore[type-arg]
    """Drive ``engine`` through ``steps``; return the admissions with their final amounts."""
    state = engine.new_state()
    now = 0.0
    cells: list[Cell] = []
    for kind, dt, share, max_wait, pick, kept in steps:
        now += dt
        if kind == "req":
            amount = max(round(share * engine.burst, 3), 0.001)
            before = engine.snapshot(state)
            delay = engine.reserve(state, now, amount, max_wait if with_max_wait else INF)
            if delay >= 0:
                cells.append(Cell(now + delay, amount, before, engine.snapshot(state)))
        elif cells:
            cell = cells[pick % len(cells)]
            if cell.amount == 0:
                continue
            if kind == "cancel" and cell.admit > now:
                engine.cancel(state, now, cell.amount, cell.admit, cell.before, cell.after)
                cell.amount = 0.0
            elif kind == "refund":
                actual = cell.amount * kept
                engine.refund(state, now, cell.amount - actual, cell.admit)
                cell.amount = actual
    return cells


def worst_excess(cells: list[Cell], rate: float, burst: float) -> float:
    """The largest amount admitted in a window beyond ``burst + rate * window``."""
    live = sorted((c.admit, c.amount) for c in cells if c.amount > 0)
    worst = -INF
    for i, (start, _) in enumerate(live):
        total = 0.0
        for end, amount in live[i:]:
            total += amount
            worst = max(worst, total - (burst + rate * (end - start)))
    return worst


@pytest.mark.parametrize("engine_type", ENGINE_TYPES, ids=lambda cls: cls.name)
@settings(max_examples=300, deadline=None)
@given(limit=limits, steps=ops)
def test_never_over_admits_with_cancels_and_refunds(
    engine_type: type, limit: tuple, steps: list
) -> None:  # type: ignore[type-arg]
    rate, burst = limit
    engine = engine_type(rate, burst)
    cells = run(engine, steps)
    assert worst_excess(cells, rate, burst) <= 1e-6 * burst


@settings(max_examples=300, deadline=None)
@given(limit=limits, steps=ops)
def test_the_four_engines_give_the_same_schedule(limit: tuple, steps: list) -> None:  # type: ignore[type-arg]
    rate, burst = limit
    schedules = []
    for engine_type in ENGINE_TYPES:
        cells = run(engine_type(rate, burst), steps, with_max_wait=False)
        schedules.append([(c.admit, c.amount) for c in cells])
    reference = schedules[0]
    for schedule in schedules[1:]:
        assert len(schedule) == len(reference)
        for (admit, amount), (ref_admit, ref_amount) in zip(schedule, reference, strict=True):
            assert admit == pytest.approx(ref_admit, abs=1e-6)
            assert amount == pytest.approx(ref_amount, abs=1e-9)


@pytest.mark.parametrize("engine_type", ENGINE_TYPES, ids=lambda cls: cls.name)
@settings(max_examples=100, deadline=None)
@given(
    limit=limits,
    arrivals=st.lists(st.integers(min_value=0, max_value=400).map(lambda k: k / 8), max_size=80),
)
def test_a_saturated_limiter_admits_at_exactly_its_rate(
    engine_type: type, limit: tuple, arrivals: list
) -> None:  # type: ignore[type-arg]
    """No drift: each admission is at the latest of its arrival and the rate's schedule."""
    rate, burst = limit
    engine = engine_type(rate, burst)
    state = engine.new_state()
    schedule: list[float] = []
    for arrival in sorted(arrivals):
        schedule.append(arrival + engine.reserve(state, arrival, 1, INF))
    # A reference GCRA written out: the k-th unit goes no earlier than its arrival and
    # exactly when the limiter has room, computed in one pass from the start.
    tat = -INF
    for arrival, admitted in zip(sorted(arrivals), schedule, strict=True):
        expected = max(arrival, max(tat, arrival) + 1 / rate - burst / rate)
        tat = max(tat, arrival) + 1 / rate
        assert admitted == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("engine_type", ENGINE_TYPES, ids=lambda cls: cls.name)
@settings(max_examples=200, deadline=None)
@given(limit=limits, steps=ops)
def test_refusals_change_nothing(engine_type: type, limit: tuple, steps: list) -> None:  # type: ignore[type-arg]
    rate, burst = limit
    engine = engine_type(rate, burst)
    state = engine.new_state()
    now = 0.0
    for _kind, dt, share, max_wait, _pick, _kept in steps:
        now += dt
        amount = max(round(share * burst, 3), 0.001)
        before = engine.snapshot(state)
        delay = engine.reserve(state, now, amount, max_wait)
        if delay < 0:
            assert engine.snapshot(state) == before
            assert engine.wait_time(state, now, amount) == pytest.approx(-delay, abs=1e-9)


# -- several limits at once ----------------------------------------------------------------

multi_ops = st.lists(
    st.tuples(
        st.sampled_from(["req", "req", "req", "cancel", "refund"]),
        st.integers(min_value=0, max_value=40).map(lambda k: k / 8),  # time step
        st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 1.0)),  # shares of each burst
        st.sampled_from([0.0, 0.5, 3.0, INF]),  # max_wait
        st.integers(min_value=0, max_value=1000),  # which cell
        st.floats(min_value=0.0, max_value=1.0),  # refund: share kept
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(
    limits=st.lists(
        st.tuples(st.sampled_from([0.5, 2.0, 10.0]), st.integers(1, 10)), min_size=2, max_size=2
    ),
    steps=multi_ops,
)
def test_several_limits_never_over_admit_any_of_them(limits: list[Any], steps: list[Any]) -> None:
    from limitor.engines import GcraVirtualScheduling, LeakyBucket, MultiEngine

    engine = MultiEngine(
        [GcraVirtualScheduling(*limits[0]), LeakyBucket(*limits[1])]  # two bookkeepings
    )
    state = engine.new_state()
    now = 0.0
    cells: list[list[Any]] = []  # [admit, amounts, before, after]
    for kind, dt, shares, max_wait, pick, kept in steps:
        now += dt
        if kind == "req":
            amounts = tuple(round(s * b, 3) for s, (_, b) in zip(shares, limits, strict=True))
            before = engine.snapshot(state)
            delay = engine.reserve(state, now, amounts, max_wait)
            if delay >= 0:
                cells.append([now + delay, amounts, before, engine.snapshot(state)])
            else:
                assert engine.snapshot(state) == before  # all or nothing
        elif cells:
            cell = cells[pick % len(cells)]
            if not any(cell[1]):
                continue
            if kind == "cancel" and cell[0] > now:
                engine.cancel(state, now, cell[1], cell[0], cell[2], cell[3])
                cell[1] = (0.0, 0.0)
            elif kind == "refund":
                actual = tuple(a * kept for a in cell[1])
                engine.refund(
                    state, now, tuple(a - b for a, b in zip(cell[1], actual, strict=True)), cell[0]
                )
                cell[1] = actual
    for index, (rate, burst) in enumerate(limits):
        part = [Cell(c[0], c[1][index], (), ()) for c in cells]
        assert worst_excess(part, rate, burst) <= 1e-6 * burst
