"""The backend contract on the memory backend: tables, giving back, holds, several parts."""

from __future__ import annotations

import random

import pytest

from limitor.backends.base import ALL_KEYS, LimitSpec, Part, Store
from limitor.backends.memory import MemoryBackend
from limitor.engines import ENGINES
from limitor.testing import FakeClock

from ..engines.cases import CASES, INF, Case
from .store_driver import at, memory_store, worst_excess

ALGORITHMS = sorted(ENGINES)


@pytest.fixture(params=ALGORITHMS)
def algorithm(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


def one(rate: float, burst: float, algorithm: str, clock: FakeClock) -> Store:
    return memory_store([(rate, burst)], algorithm, clock)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_engine_tables_through_the_contract(algorithm: str, case: Case) -> None:
    clock = FakeClock()
    store = one(case.rate, case.burst, algorithm, clock)
    for step, (now, amount, max_wait, expected) in enumerate(case.steps):
        at(clock, now)
        grant = store.reserve(None, (amount,), max_wait)
        got = grant.delay if grant.admitted else -grant.retry_after
        assert got == pytest.approx(expected, abs=1e-9), f"step {step}"


def test_the_issue_snippet_gives_back_exactly_20_and_the_next_goes_at_0_1(algorithm: str) -> None:
    clock = FakeClock()
    store = one(10, 10, algorithm, clock)
    for _ in range(10):
        assert store.reserve(None, (1.0,), INF).delay == 0.0
    grants = [store.reserve(None, (1.0,), INF) for _ in range(20)]
    given = sum(store.give_back(None, (1.0,), g.ticket, cancel=True)[0] for g in grants)
    assert given == pytest.approx(20.0, abs=1e-9)
    assert store.reserve(None, (1.0,), INF).delay == pytest.approx(0.1, abs=1e-9)


@pytest.mark.parametrize("seed", range(12))
def test_hundreds_of_waiters_of_any_size_cancelled_in_any_order_leave_no_trace(
    algorithm: str, seed: int
) -> None:
    rng = random.Random(seed)
    clock = FakeClock()
    store = one(7.0, 5.0, algorithm, clock)
    store.reserve(None, (5.0,), INF)  # the burst is used: every grant below waits
    grants = [
        (amount, store.reserve(None, (amount,), INF))
        for amount in (rng.choice([0.25, 1.0, 2.5, 5.0]) for _ in range(300))
    ]
    rng.shuffle(grants)
    clock.advance(0.01)
    for amount, grant in grants:
        given, _ = store.give_back(None, (amount,), grant.ticket, cancel=True)
        assert given == pytest.approx(amount)
    quiet = FakeClock()  # the same limit at the same times, without the crowd
    reference = one(7.0, 5.0, algorithm, quiet)
    reference.reserve(None, (5.0,), INF)
    quiet.advance(0.01)
    for amount in (1.0, 5.0, 2.0):
        assert store.reserve(None, (amount,), INF).delay == pytest.approx(
            reference.reserve(None, (amount,), INF).delay, abs=1e-9
        )


def test_a_hole_is_taken_at_the_earliest_time_it_fits_and_standing_waiters_keep_theirs(
    algorithm: str,
) -> None:
    clock = FakeClock()
    store = one(1, 1, algorithm, clock)
    store.reserve(None, (1.0,), INF)
    first, second, third = (store.reserve(None, (1.0,), INF) for _ in range(3))  # 1, 2, 3
    assert store.give_back(None, (1.0,), second.ticket, cancel=True)[0] == 1.0
    assert store.reserve(None, (1.0,), INF).delay == pytest.approx(2.0)  # in the hole
    assert store.reserve(None, (1.0,), INF).delay == pytest.approx(4.0)  # after third
    assert (first.delay, third.delay) == (pytest.approx(1.0), pytest.approx(3.0))


def test_a_request_larger_than_a_hole_goes_at_the_end(algorithm: str) -> None:
    clock = FakeClock()
    store = one(1, 2, algorithm, clock)
    store.reserve(None, (2.0,), INF)
    small = store.reserve(None, (1.0,), INF)  # at 1
    store.reserve(None, (1.0,), INF)  # at 2
    store.give_back(None, (1.0,), small.ticket, cancel=True)
    assert store.reserve(None, (2.0,), INF).delay == pytest.approx(4.0)  # no room in the hole
    assert store.reserve(None, (1.0,), INF).delay == pytest.approx(1.0)  # but 1 fits there


def test_cancel_after_its_time_gives_nothing_back(algorithm: str) -> None:
    clock = FakeClock()
    store = one(1, 1, algorithm, clock)
    store.reserve(None, (1.0,), INF)
    grant = store.reserve(None, (1.0,), INF)
    clock.advance(1.0)
    assert store.give_back(None, (1.0,), grant.ticket, cancel=True)[0] == 0.0
    assert store.reserve(None, (1.0,), INF).delay == pytest.approx(1.0)


def test_a_refund_of_the_latest_admission_makes_room_at_once(algorithm: str) -> None:
    clock = FakeClock()
    store = one(1000 / 60, 1000, algorithm, clock)  # 1000 tokens per minute
    grant = store.reserve(None, (1000.0,), INF)
    clock.advance(3.0)
    given, ticket = store.give_back(None, (600.0,), grant.ticket, cancel=False)
    assert given == pytest.approx(600)
    assert store.reserve(None, (650.0,), 0.0).admitted  # 50 refilled + 600 back
    assert not store.reserve(None, (1.0,), 0.0).admitted
    assert ticket is not None
    ((start, end),) = ticket.pieces[0]
    assert end - start == pytest.approx(24.0)


def test_a_refund_behind_a_later_admission_is_a_hole_that_admits_nothing_extra(
    algorithm: str,
) -> None:
    clock = FakeClock()
    store = one(1, 1, algorithm, clock)
    r = store.reserve(None, (1.0,), INF)  # at 0, its unit refills by 1.0
    clock.advance(1.0)
    assert store.reserve(None, (1.0,), 0.0).admitted  # at 1.0
    clock.advance(0.5)
    store.give_back(None, (1.0,), r.ticket, cancel=False)  # r's span is in the past
    assert store.reserve(None, (1.0,), INF).delay == pytest.approx(0.5)


def test_charge_is_debt_and_hold_admits_nothing_until_it_ends(algorithm: str) -> None:
    clock = FakeClock()
    store = one(10, 10, algorithm, clock)
    store.reserve(None, (10.0,), INF)
    store.charge(None, (50.0,))
    assert store.reserve(None, (1.0,), INF).delay == pytest.approx(5.1)
    fresh = one(10, 10, algorithm, clock)
    fresh.hold(None, 7.0)
    fresh.hold(None, 2.0)  # a shorter hold never shortens a longer one
    assert fresh.peek(None, (1.0,))[0].retry_after == pytest.approx(7.0)
    assert fresh.reserve(None, (1.0,), INF).delay == pytest.approx(7.0)
    clock.advance(7.0)
    assert fresh.reserve(None, (9.0,), 0.0).admitted  # afterwards as it would have been


def test_several_parts_commit_at_the_common_time_and_refuse_all_or_nothing() -> None:
    clock = FakeClock()
    store = memory_store([(1, 1), (0.1, 1)], "gcra", clock)
    assert store.reserve(None, (1.0, 1.0), INF).delay == 0.0
    held = store.reserve(None, (1.0, 1.0), INF)  # the slow part binds: at 10
    assert held.delay == pytest.approx(10.0)
    clock.advance(10.0)
    # At 10 the first part's unit is taken by the held call: the next one waits 1 s.
    assert store.reserve(None, (1.0, 0.0), INF).delay == pytest.approx(1.0)
    before = store.peek(None, (1.0, 1.0))
    assert not store.reserve(None, (1.0, 1.0), 0.5).admitted
    assert store.peek(None, (1.0, 1.0)) == before


def test_a_part_that_could_have_gone_sooner_keeps_that_time_free() -> None:
    clock = FakeClock()
    store = memory_store([(1, 1), (0.1, 1)], "gcra", clock)
    store.reserve(None, (1.0, 1.0), INF)
    store.reserve(None, (1.0, 1.0), INF)  # goes at 10; the first part was free from 1
    assert store.reserve(None, (1.0, 0.0), INF).delay == pytest.approx(1.0)  # in the gap


def test_cancelling_several_parts_rolls_every_part_back() -> None:
    clock = FakeClock()
    store = memory_store([(1, 1), (0.1, 1)], "gcra", clock)
    store.reserve(None, (1.0, 1.0), INF)
    grants = [store.reserve(None, (1.0, 1.0), INF) for _ in range(5)]
    for grant in reversed(grants[::2]):
        store.give_back(None, (1.0, 1.0), grant.ticket, cancel=True)
    for grant in grants[1::2]:
        store.give_back(None, (1.0, 1.0), grant.ticket, cancel=True)
    fresh = memory_store([(1, 1), (0.1, 1)], "gcra", FakeClock())
    fresh.reserve(None, (1.0, 1.0), INF)
    assert store.peek(None, (1.0, 1.0)) == fresh.peek(None, (1.0, 1.0))


@pytest.mark.parametrize("start", [1.7e9, 1e12])
def test_precision_at_any_clock_value(algorithm: str, start: float) -> None:
    """At 1e4/s with bursts of 10 the window bound holds to clock resolution."""
    clock = FakeClock(start=start)
    store = one(1e4, 10, algorithm, clock)
    admitted = []
    resolution = max(abs(start) * 2.3e-16, 1e-12)
    for _ in range(3000):
        grant = store.reserve(None, (1.0,), INF)
        admitted.append((grant.now + grant.delay - start, 1.0))
        clock.advance(2.5e-5)
    excess = worst_excess(admitted, 1e4, 10)
    assert excess <= 1e4 * 2 * resolution + 1e-6


def test_keys_are_separate_and_reset_forgets(algorithm: str) -> None:
    clock = FakeClock()
    spec = LimitSpec(parts=(Part(1, 1),), algorithm=algorithm, keyed=True, max_keys=10)
    store = MemoryBackend().bind(spec, clock)
    assert store.reserve("a", (1.0,), 0.0).admitted
    assert store.reserve("b", (1.0,), 0.0).admitted
    assert not store.reserve("a", (1.0,), 0.0).admitted
    store.reset("a")
    assert store.reserve("a", (1.0,), 0.0).admitted
    store.reset(ALL_KEYS)
    assert store.counts().admitted == 0
    assert store.reserve("b", (1.0,), 0.0).admitted
