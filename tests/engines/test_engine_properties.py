"""Property tests of the promises on random arrivals: engines alone, and stores over them.

Requests, cancellations and refunds go through the backend contract
(:mod:`limitor.backends.base`) on a fake clock, so the give-back rules are tested where they
live; the pure engines are tested for their arithmetic.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from limitor.engines import ENGINES
from limitor.testing import FakeClock

from ..backends.store_driver import memory_store, run, worst_excess

INF = float("inf")
ENGINE_TYPES = list(ENGINES.values())


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


def single(steps: list[Any]) -> list[Any]:
    return [(k, dt, (share,), mw, pick, kept) for k, dt, share, mw, pick, kept in steps]


@pytest.mark.parametrize("algorithm", sorted(ENGINES))
@settings(max_examples=300, deadline=None)
@given(limit=limits, steps=ops)
def test_never_over_admits_with_cancels_and_refunds(
    algorithm: str, limit: tuple[float, int], steps: list[Any]
) -> None:
    rate, burst = limit
    clock = FakeClock()
    cells = run(memory_store([(rate, burst)], algorithm, clock), clock, single(steps), [burst])
    admitted = [(c.admit, c.amounts[0]) for c in cells]
    assert worst_excess(admitted, rate, burst) <= 1e-6 * burst


@settings(max_examples=300, deadline=None)
@given(limit=limits, steps=ops)
@example(  # a cancelled piece one ulp short of its units in token_bucket's arithmetic
    limit=(0.5, 5),
    steps=[
        ("req", 0.0, share, 0.0, 0, 0.0)
        for share in (1.0, 1.0, 1.0, 0.5, 0.514892578125, 0.156494140625, 0.01)
    ]
    + [("req", 0.0, 1.0, 0.0, 0, 0.0)] * 5
    + [("cancel", 0.0, 1.0, 0.0, 726, 0.0), ("req", 0.0, 0.010006, 0.0, 0, 0.0)],
)
def test_the_four_engines_give_the_same_schedule(
    limit: tuple[float, int], steps: list[Any]
) -> None:
    rate, burst = limit
    schedules = []
    no_timeouts = [(k, dt, (s,), INF, p, kept) for k, dt, s, _mw, p, kept in steps]
    for algorithm in sorted(ENGINES):
        clock = FakeClock()
        cells = run(memory_store([(rate, burst)], algorithm, clock), clock, no_timeouts, [burst])
        schedules.append([(c.admit, c.amounts[0]) for c in cells])
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


@pytest.mark.parametrize("algorithm", ["gcra", "leaky_bucket"])
@settings(max_examples=300, deadline=None)
@given(
    limits=st.lists(
        st.tuples(st.sampled_from([0.5, 2.0, 10.0]), st.integers(1, 10)), min_size=2, max_size=2
    ),
    steps=multi_ops,
)
def test_several_limits_never_over_admit_any_of_them(
    algorithm: str, limits: list[Any], steps: list[Any]
) -> None:
    clock = FakeClock()
    bursts = [burst for _, burst in limits]
    store = memory_store(limits, algorithm, clock)
    cells = run(store, clock, steps, bursts)
    for index, (rate, burst) in enumerate(limits):
        part = [(c.admit, c.amounts[index]) for c in cells]
        assert worst_excess(part, rate, burst) <= 1e-6 * burst
