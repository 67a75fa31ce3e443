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


def test_cancel_undoes_the_latest_reservation_exactly(engine_type: type[Engine]) -> None:  # type: ignore[type-arg]
    engine = engine_type(1, 1)
    state = engine.new_state()
    engine.reserve(state, 0.0, 1, INF)
    before = engine.snapshot(state)
    delay = engine.reserve(state, 0.0, 1, INF)
    after = engine.snapshot(state)
    assert delay == pytest.approx(1.0)
    assert engine.cancel(state, 0.5, 1, 1.0, before, after) == 1
    assert engine.reserve(state, 0.5, 1, INF) == pytest.approx(0.5)


def test_cancel_in_lifo_order_gives_everything_back(engine_type: type[Engine]) -> None:  # type: ignore[type-arg]
    engine = engine_type(1, 1)
    state = engine.new_state()
    engine.reserve(state, 0.0, 1, INF)
    held = []
    for _ in range(5):
        before = engine.snapshot(state)
        delay = engine.reserve(state, 0.0, 1, INF)
        held.append((delay, before, engine.snapshot(state)))
    for delay, before, after in reversed(held):
        assert engine.cancel(state, 0.0, 1, delay, before, after) == 1
    assert engine.reserve(state, 0.0, 1, INF) == pytest.approx(1.0)


def test_cancel_gives_back_nothing_a_later_reservation_depends_on(
    engine_type: type[Engine],
) -> None:  # type: ignore[type-arg]
    engine = engine_type(1, 1)
    state = engine.new_state()
    engine.reserve(state, 0.0, 1, INF)
    before = engine.snapshot(state)
    first = engine.reserve(state, 0.0, 1, INF)  # at 1.0
    after = engine.snapshot(state)
    engine.reserve(state, 0.0, 1, INF)  # at 2.0, depends on the first
    assert engine.cancel(state, 0.0, 1, first, before, after) == 0
    assert engine.reserve(state, 0.0, 1, INF) == pytest.approx(3.0)


def test_cancel_after_its_time_gives_nothing_back(engine_type: type[Engine]) -> None:  # type: ignore[type-arg]
    engine = engine_type(1, 1)
    state = engine.new_state()
    engine.reserve(state, 0.0, 1, INF)
    before = engine.snapshot(state)
    delay = engine.reserve(state, 0.0, 1, INF)
    after = engine.snapshot(state)
    assert engine.cancel(state, 1.0, 1, delay, before, after) == 0
    assert engine.reserve(state, 1.0, 1, INF) == pytest.approx(1.0)


def test_refund_of_the_latest_admission_makes_room_at_once(engine_type: type[Engine]) -> None:  # type: ignore[type-arg]
    engine = engine_type(1000 / 60, 1000)  # 1000 tokens per minute
    state = engine.new_state()
    engine.reserve(state, 0.0, 1000, INF)
    assert engine.refund(state, 3.0, 600, 0.0) == pytest.approx(600)
    assert engine.reserve(state, 3.0, 640, INF) == 0.0  # 650 are free: 50 refilled + 600


def test_refund_is_reduced_by_what_later_admissions_used(engine_type: type[Engine]) -> None:  # type: ignore[type-arg]
    engine = engine_type(1, 1)
    state = engine.new_state()
    engine.reserve(state, 0.0, 1, INF)  # r at 0
    assert engine.reserve(state, 1.0, 1, INF) == 0.0  # k at 1, admitted because r's unit came back
    # r used nothing, but the unit it held was refilled by 1.0, when k took it: nothing to give back.
    assert engine.refund(state, 1.5, 1, 0.0) == 0.0
    assert engine.reserve(state, 1.5, 1, INF) == pytest.approx(0.5)


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
    assert "last=" in repr(engine.new_state())


def test_several_limits_commit_every_part_at_the_common_admission_time() -> None:
    """A call held back by one limit must not count against another limit earlier than
    it really goes, or a call at its real time could slip in beside it."""
    from limitor.engines import GcraVirtualScheduling, MultiEngine

    engine = MultiEngine([GcraVirtualScheduling(1, 1), GcraVirtualScheduling(0.1, 1)])
    state = engine.new_state()
    assert engine.reserve(state, 0.0, (1, 1), INF) == 0.0  # both parts used at 0
    held = engine.reserve(state, 0.0, (1, 1), INF)  # the slow part binds: at 10
    assert held == pytest.approx(10.0)
    # At 10 the first part's unit is taken by the held call: the next one waits 1 s.
    assert engine.reserve(state, 10.0, (1, 0), INF) == pytest.approx(1.0)


def test_several_limits_refuse_all_or_nothing() -> None:
    from limitor.engines import GcraVirtualScheduling, MultiEngine

    engine = MultiEngine([GcraVirtualScheduling(1, 5), GcraVirtualScheduling(1, 1)])
    state = engine.new_state()
    engine.reserve(state, 0.0, (1, 1), INF)
    before = engine.snapshot(state)
    assert engine.reserve(state, 0.0, (1, 1), 0.5) == pytest.approx(-1.0)
    assert engine.snapshot(state) == before
    assert engine.wait_time(state, 0.0, (5, 0)) == pytest.approx(1.0)  # 4 left of 5
    engine.hold_until(state, 7.0)
    assert engine.wait_time(state, 0.0, (0, 0)) == pytest.approx(7.0)
    assert engine.full_at(state) == pytest.approx(7.0)
