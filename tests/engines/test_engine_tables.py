from __future__ import annotations

import math

import pytest

from limitor.engines import ENGINES, Decision, Engine

from .cases import CASES, INF, Case

ENGINE_TYPES = list(ENGINES.values())


@pytest.fixture(params=ENGINE_TYPES, ids=lambda cls: cls.name)
def engine_type(request: pytest.FixtureRequest) -> type[Engine]:  # type: ignore[type-arg]
    return request.param  # type: ignore[no-any-return]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_table(engine_type: type[Engine], case: Case) -> None:  # type: ignore[type-arg]
    engine = engine_type(case.rate, case.burst)
    state = engine.new_state()
    for step, (now, amount, max_wait, expected) in enumerate(case.steps):
        before = engine.snapshot(state)
        got = engine.reserve(state, now, amount, max_wait)
        assert got == pytest.approx(expected, abs=1e-9), f"step {step}"
        if got < 0:
            assert engine.snapshot(state) == before, "a refusal must not change the state"


def test_names_are_the_algorithm_option_values() -> None:
    assert set(ENGINES) == {"leaky_bucket", "token_bucket", "gcra", "gcra_leaky_bucket"}


def test_decide_wraps_reserve(engine_type: type[Engine]) -> None:  # type: ignore[type-arg]
    engine = engine_type(1, 1)
    state = engine.new_state()
    assert engine.decide(state, 0.0, 1) == Decision(admitted=True, delay=0.0, retry_after=0.0)
    refused = engine.decide(state, 0.0, 1, max_wait=0.25)
    assert refused.admitted is False
    assert refused.retry_after == pytest.approx(1.0)
    admitted = engine.decide(state, 0.0, 1)
    assert admitted.delay == pytest.approx(1.0)


def test_wait_time_is_read_only_and_agrees_with_reserve(engine_type: type[Engine]) -> None:  # type: ignore[type-arg]
    engine = engine_type(2, 2)
    state = engine.new_state()
    engine.reserve(state, 0.0, 2, INF)
    snapshot = engine.snapshot(state)
    assert engine.wait_time(state, 0.25, 1) == pytest.approx(0.25)
    assert engine.snapshot(state) == snapshot
    assert engine.reserve(state, 0.25, 1, INF) == pytest.approx(0.25)


def test_remaining_and_full_at(engine_type: type[Engine]) -> None:  # type: ignore[type-arg]
    engine = engine_type(10, 10)
    state = engine.new_state()
    assert engine.remaining(state, 5.0) == pytest.approx(10)
    assert engine.full_at(state) <= 5.0
    engine.reserve(state, 5.0, 4, INF)
    assert engine.remaining(state, 5.0) == pytest.approx(6)
    assert engine.full_at(state) == pytest.approx(5.4)
    engine.reserve(state, 5.0, 10, INF)  # queued: remaining goes negative
    assert engine.remaining(state, 5.0) == pytest.approx(-4)
    assert engine.full_at(state) == pytest.approx(6.4)


def test_charge_is_debt_that_delays_the_next_request(engine_type: type[Engine]) -> None:  # type: ignore[type-arg]
    engine = engine_type(10, 10)
    state = engine.new_state()
    assert engine.reserve(state, 0.0, 10, INF) == 0.0
    engine.charge(state, 0.0, 50)  # the call used 60, not 10
    assert engine.remaining(state, 0.0) == pytest.approx(-50)
    assert engine.reserve(state, 0.0, 1, INF) == pytest.approx(5.1)


def test_charge_on_a_fresh_state_is_debt_too(engine_type: type[Engine]) -> None:  # type: ignore[type-arg]
    engine = engine_type(10, 10)
    state = engine.new_state()
    engine.charge(state, 7.0, 15)
    assert engine.reserve(state, 7.0, 1, INF) == pytest.approx(0.6)
    assert math.isfinite(engine.full_at(state))


def test_giving_back_never_goes_beyond_full(engine_type: type[Engine]) -> None:  # type: ignore[type-arg]
    engine = engine_type(1, 3)
    state = engine.new_state()
    engine.reserve(state, 0.0, 1, INF)
    engine.give_back(state, 0.0, 100)
    assert engine.remaining(state, 0.0) == pytest.approx(3)
    assert engine.reserve(state, 0.0, 3, INF) == 0.0
    assert engine.reserve(state, 0.0, 1, INF) == pytest.approx(1.0)


def test_repr_shows_the_limit_and_the_state(engine_type: type[Engine]) -> None:  # type: ignore[type-arg]
    engine = engine_type(5, 2)
    assert "rate=5.0" in repr(engine)
    assert "stamp=" in repr(engine.new_state())


@pytest.mark.parametrize("now", [0.0, 3.0, 1e6])
def test_set_full_at_moves_the_end_of_the_schedule_and_nothing_else(
    engine_type: type[Engine],  # type: ignore[type-arg]
    now: float,
) -> None:
    engine = engine_type(10, 5)
    state = engine.new_state()
    engine.reserve(state, now, 5, INF)
    engine.reserve(state, now, 3, INF)  # queued: the schedule ends at now + 0.8
    assert engine.full_at(state) == pytest.approx(now + 0.8)
    engine.set_full_at(state, now, now + 0.5)  # give the 3 back at the end
    assert engine.full_at(state) == pytest.approx(now + 0.5)
    assert engine.reserve(state, now, 1, INF) == pytest.approx(0.1)
    engine.set_full_at(state, now, now - 10)  # in the past: the same as full
    assert engine.reserve(state, now, 5, 0.0) == 0.0
