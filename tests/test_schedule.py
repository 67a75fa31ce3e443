"""Every unit given back is usable again (issue 15), through the public faces.

The rule is :mod:`limitor.engines.schedule`'s: a request goes at the earliest time the
free line of one burst window holds it, in as many pieces as it takes, and giving back
frees exactly the pieces a grant holds.
"""

from __future__ import annotations

import heapq
import itertools
import random
from typing import Any

import anyio
import pytest
from anyio import wait_all_tasks_blocked
from hypothesis import given, settings
from hypothesis import strategies as st

from limitor.backends.base import LimitSpec, Part
from limitor.backends.memory import MemoryStore
from limitor.configs import BucketConfig
from limitor.engines import ENGINES
from limitor.llm import LLMLimiter
from limitor.testing import FakeClock

from .backends.store_driver import worst_excess
from .conftest import ASYNC_BUCKETS, SYNC_BUCKETS

INF = float("inf")


def test_the_issue_snippet_prints_zero() -> None:
    clock = FakeClock()
    limiter = LLMLimiter(tokens_per_minute=600, clock=clock)  # 10 tokens/s, a burst of 600
    calls = [limiter.reserve(120) for _ in range(5)]  # five overlapping calls spend the minute
    clock.advance(1.0)
    for call in calls:
        call.reconcile(20)  # each used 20: 100 of 600 tokens
    assert limiter.reserve(400).delay == 0.0
    status = limiter.status()["tokens_per_minute"]
    assert status.remaining == pytest.approx(110.0)  # 600 - 500 used + 10 refilled
    assert limiter.reserve(110).delay == 0.0
    assert limiter.reserve(1).delay == pytest.approx(0.1)


@pytest.mark.parametrize("cls", SYNC_BUCKETS, ids=lambda cls: cls.__name__)
def test_the_issue_snippet_on_every_bucket(cls: Any) -> None:
    clock = FakeClock()
    bucket = cls(BucketConfig(capacity=600, seconds=60), clock=clock)
    calls = [bucket.reserve(120) for _ in range(5)]
    clock.advance(1.0)
    for call in calls:
        call.reconcile(20)
    assert bucket.reserve(400).delay == 0.0
    assert bucket.status().remaining == pytest.approx(110.0)
    assert not bucket.try_acquire(111)
    assert bucket.try_acquire(110)


@pytest.mark.parametrize("cls", SYNC_BUCKETS, ids=lambda cls: cls.__name__)
def test_reserve_4_behind_two_cancelled_waiters_goes_at_6_s(cls: Any) -> None:
    clock = FakeClock()
    bucket = cls(BucketConfig(capacity=8, seconds=8), clock=clock)  # 1 unit/s, burst 8
    bucket.acquire(8)  # occupies [0, 8)
    first = bucket.reserve(2)  # a waiter: [8, 10), at 2 s
    assert bucket.reserve(2).delay == pytest.approx(4.0)  # [10, 12)
    second = bucket.reserve(2)  # a waiter: [12, 14), at 6 s
    assert bucket.reserve(4).delay == pytest.approx(10.0)  # [14, 18)
    assert first.cancel() == pytest.approx(2.0)
    assert second.cancel() == pytest.approx(2.0)
    # [6, 14) (one burst) holds the two freed pieces: 4 units. A contiguous-hole rule
    # would find no hole of 4 and send it to the end: 18 + 4 - 8 = 14 s.
    assert bucket.reserve(4).delay == pytest.approx(6.0)


@pytest.mark.parametrize("cls", SYNC_BUCKETS, ids=lambda cls: cls.__name__)
def test_a_cancelled_sliver_is_lent_again_whatever_the_float_rounding(cls: Any) -> None:
    """0.05 units cancelled behind 20.856 must go again at once in every bucket's arithmetic."""
    clock = FakeClock()
    bucket = cls(BucketConfig(capacity=5, seconds=10), clock=clock)  # 0.5 unit/s, burst 5
    for amount in (5, 5, 5, 2.5, 2.574, 0.782):
        bucket.reserve(amount)
    sliver = bucket.reserve(0.05)
    assert sliver.delay == pytest.approx(31.812)
    behind = [bucket.reserve(5) for _ in range(5)]
    assert behind[-1].delay == pytest.approx(81.812)
    assert sliver.cancel() == pytest.approx(0.05)
    assert bucket.reserve(0.05).delay == pytest.approx(31.812)  # its piece, not the end
    assert bucket.reserve(0.05).delay == pytest.approx(81.912)  # the end: nothing else free


def test_the_llm_reservation_repr_shows_its_amounts() -> None:
    limiter = LLMLimiter(requests_per_minute=10, tokens_per_minute=600, clock=FakeClock())
    reservation = limiter.reserve(120)
    text = repr(reservation)
    assert text.startswith("<Reservation amount=(")
    assert "120" in text
    assert "delay=0s" in text


def test_a_bucket_reservation_repr_keeps_its_number() -> None:
    bucket = SYNC_BUCKETS[0](BucketConfig(10, 1), clock=FakeClock())
    assert repr(bucket.reserve(2.5)) == "<Reservation amount=2.5 delay=0s>"


@pytest.mark.parametrize("algorithm", sorted(ENGINES))
@settings(max_examples=60, deadline=None)
@given(
    order=st.permutations(range(30)),
    used=st.lists(st.integers(0, 20), min_size=30, max_size=30),
    later=st.sampled_from([0.0, 7.0, 25.0]),
)
def test_refunds_of_30_overlapping_grants_in_any_order_leave_exactly_the_unused_free(
    algorithm: str, order: list[int], used: list[int], later: float
) -> None:
    """30 grants of 20 units (2 s of line each at 10/s) fill the burst of 600 at 0 s and
    are refunded in any order; the free line is then exactly the unused pieces."""
    clock = FakeClock()
    store = MemoryStore(LimitSpec((Part(10.0, 600.0),), algorithm=algorithm), clock)
    tickets = [store.reserve(None, (20.0,), 0.0).ticket for _ in range(30)]
    assert all(ticket is not None and ticket.at == 0.0 for ticket in tickets)
    for i in order:
        given, _ = store.give_back(None, (20.0 - used[i],), tickets[i], cancel=False)
        assert given == pytest.approx(20.0 - used[i])
    clock.advance(later)
    # grant i occupies [2i, 2i + 2) and keeps [2i, 2i + used/10): free is the rest
    free = [(2.0 * i + used[i] / 10.0, 2.0 * i + 2.0) for i in range(30)] + [(60.0, INF)]
    window = sum(max(0.0, min(e, later + 60.0) - max(s, later)) for s, e in free)
    (status,) = store.peek(None, (1.0,))
    assert status.remaining == pytest.approx(window * 10.0)
    assert store.reserve(None, (round(window * 10.0, 6) - 1e-6,), 0.0).admitted
    assert not store.reserve(None, (0.01,), 0.0).admitted


ops = st.lists(
    st.tuples(
        st.sampled_from(["req", "req", "req", "cancel", "reconcile", "reconcile", "charge"]),
        st.integers(0, 24).map(lambda k: k / 8),  # time step
        st.floats(0.05, 1.0),  # share of the burst
        st.integers(0, 10_000),  # which grant
        st.floats(0.0, 1.6),  # reconcile: share of the estimate really used (above 1: debt)
    ),
    max_size=60,
)

LIMITS = [[(1.0, 3.0)], [(4.0, 10.0)], [(2.0, 5.0), (10.0, 40.0)], [(1.0, 2.0), (3.0, 6.0)]]


@pytest.mark.parametrize("algorithm", sorted(ENGINES))
@settings(max_examples=120, deadline=None)
@given(limits=st.sampled_from(LIMITS), steps=ops, cap=st.sampled_from([1, 3, 256]))
def test_actual_use_never_exceeds_the_bound(
    algorithm: str, limits: list[tuple[float, float]], steps: Any, cap: int
) -> None:
    """Random reserve / cancel / reconcile below and above the estimate / charge.

    The units a grant keeps (what its call really used, up to what it reserved) count at
    its admission time; debt beyond the estimate only delays later callers, so it counts
    on the schedule, not here. Any window holds at most ``burst + rate * w``.
    """
    MemoryStore.piece_cap = cap
    try:
        clock = FakeClock()
        spec = LimitSpec(tuple(Part(r, b) for r, b in limits), algorithm=algorithm)
        store = MemoryStore(spec, clock)
        grants: list[list[Any]] = []  # [at, amounts kept, ticket]
        for kind, dt, share, pick, used in steps:
            clock.advance(dt)
            now = clock.now()
            if kind == "req":
                amounts = tuple(max(share * b, 0.01) for _, b in limits)
                grant = store.reserve(None, amounts, INF)
                assert grant.admitted
                grants.append([now + grant.delay, amounts, grant.ticket])
            elif kind == "charge":
                store.charge(None, tuple(share * b for _, b in limits))
            elif grants:
                cell = grants[pick % len(grants)]
                at, amounts, ticket = cell
                if kind == "cancel":
                    if at > now and any(amounts):
                        store.give_back(None, amounts, ticket, cancel=True)
                        cell[1] = tuple(0.0 for _ in amounts)
                else:
                    real = tuple(a * used for a in amounts)
                    unused = tuple(max(a - r, 0.0) for a, r in zip(amounts, real, strict=True))
                    extra = tuple(max(r - a, 0.0) for a, r in zip(amounts, real, strict=True))
                    if any(unused):
                        _, cell[2] = store.give_back(None, unused, ticket, cancel=False)
                        cell[1] = real
                    if any(extra):
                        store.charge(None, extra)
            state = store._shared
            if state.extra is not None:
                assert all(len(holes) <= cap for holes in state.extra.holes)
        for p, (rate, burst) in enumerate(limits):
            cells = [(at, amounts[p]) for at, amounts, _ in grants]
            assert worst_excess(cells, rate, burst) <= 1e-6 * burst
    finally:
        MemoryStore.piece_cap = 256


@pytest.mark.parametrize("algorithm", sorted(ENGINES))
@settings(max_examples=100, deadline=None)
@given(
    steps=st.lists(st.tuples(st.integers(0, 16).map(lambda k: k / 8), st.floats(0.05, 1.0))),
    two=st.booleans(),
)
def test_with_nothing_given_back_it_is_plain_gcra(
    algorithm: str, steps: list[tuple[float, float]], two: bool
) -> None:
    limits = [(2.0, 5.0), (20.0, 50.0)] if two else [(2.0, 5.0)]  # the same tau: no gaps
    clock = FakeClock()
    store = MemoryStore(LimitSpec(tuple(Part(r, b) for r, b in limits), algorithm=algorithm), clock)
    tats = [-INF for _ in limits]
    for dt, share in steps:
        clock.advance(dt)
        now = clock.now()
        grant = store.reserve(None, tuple(share * b for _, b in limits), INF)
        want = now
        for p, (rate, burst) in enumerate(limits):
            fit = max(tats[p], now) + share * burst / rate - burst / rate
            want = max(want, fit)
        for p, (rate, burst) in enumerate(limits):
            tats[p] = max(tats[p], want) + share * burst / rate
        assert grant.delay == pytest.approx(want - now, abs=1e-9)
        assert store._shared.extra is None


def test_a_billion_per_second_with_burst_one_never_admits_two_at_once() -> None:
    clock = FakeClock()
    store = MemoryStore(LimitSpec((Part(1e9, 1.0),), algorithm="gcra"), clock)
    assert store.reserve(None, (1.0,), 0.0).admitted
    assert not store.reserve(None, (1.0,), 0.0).admitted  # 1e-9 s away: a whole interval
    assert not store.admit_now(None, 1.0)
    delays = [store.reserve(None, (1.0,), INF).delay for _ in range(100)]
    assert delays[0] == pytest.approx(1e-9, rel=1e-6)
    assert all(b - a == pytest.approx(1e-9, rel=1e-3) for a, b in itertools.pairwise(delays))


@pytest.mark.parametrize("algorithm", sorted(ENGINES))
def test_a_billion_per_second_with_give_back_never_admits_two_at_once(algorithm: str) -> None:
    clock = FakeClock()
    store = MemoryStore(LimitSpec((Part(1e9, 1.0),), algorithm=algorithm), clock)
    grants = [store.reserve(None, (1.0,), INF) for _ in range(10)]
    store.give_back(None, (1.0,), grants[3].ticket, cancel=True)  # a piece before the end
    times = sorted(g.delay for i, g in enumerate(grants) if i != 3)
    times.append(store.reserve(None, (1.0,), INF).delay)  # takes the freed piece
    times.append(store.reserve(None, (1.0,), INF).delay)  # the end
    times.sort()
    assert all(b - a > 0.5e-9 for a, b in itertools.pairwise(times))


def test_a_time_time_sized_clock_keeps_the_bound() -> None:
    clock = FakeClock(start=1.7e9)
    store = MemoryStore(LimitSpec((Part(1000.0, 5.0),), algorithm="leaky_bucket"), clock)
    rng = random.Random(7)
    cells: list[list[Any]] = []
    for _ in range(2000):
        clock.advance(rng.choice([0.0, 0.0, 1e-4, 1e-3, 0.01]))
        grant = store.reserve(None, (rng.uniform(0.1, 2.0),), 0.002)
        if grant.admitted:
            assert grant.ticket is not None
            cells.append([grant.ticket.at, grant.ticket])  # the store's time: since its epoch
            if grant.delay > 0 and rng.random() < 0.3:  # cancel some waiters
                store.give_back(None, (2.0,), grant.ticket, cancel=True)
                cells.pop()
    amounts = [(at, sum(e - s for s, e in ticket.pieces[0]) * 1000.0) for at, ticket in cells]
    assert worst_excess(amounts, 1000.0, 5.0) <= 1e-6


def replay(factor: float, calls: int = 3000, workers: int = 64) -> float:
    """64 workers call an LLM behind an LLMLimiter on a virtual clock, one call after the
    other: each reserves ``factor`` times what it really uses, runs 2 s, reconciles. The
    achieved token rate over the steady part, as a share of the limit."""
    clock = FakeClock()
    per_minute = 60_000.0  # 1000 tokens/s, far below what 64 workers would use
    limiter = LLMLimiter(requests_per_minute=10_000, tokens_per_minute=per_minute, clock=clock)
    rng = random.Random(15)
    events: list[tuple[float, int, int, Any, float]] = []  # (time, order, worker, call, use)
    order = itertools.count()
    for worker in range(workers):
        heapq.heappush(events, (0.0, next(order), worker, None, 0.0))
    started: list[tuple[float, float]] = []  # (admission time, tokens really used)
    while events and len(started) < calls:
        when, _, worker, call, use = heapq.heappop(events)
        clock.advance(when - clock.now())
        if call is not None:  # a call ends: reconcile to the real use
            call.reconcile(use)
        use = float(rng.randint(50, 150))
        call = limiter.reserve(use * factor)
        at = clock.now() + call.delay
        started.append((at, use))
        heapq.heappush(events, (at + 2.0, next(order), worker, call, use))
    started.sort()
    steady = started[len(started) // 3 :]  # past the first minute's burst
    span = steady[-1][0] - steady[0][0]
    return sum(use for _, use in steady[:-1]) / span / (per_minute / 60.0)


@pytest.mark.parametrize("factor", [2.0, 5.0])
def test_overlapping_llm_calls_reach_the_token_limit(factor: float) -> None:
    assert replay(factor) >= 0.97


class StuckClock(FakeClock):
    """A fake clock whose async sleeps never end: waiters stay until they are cancelled."""

    async def asleep(self, seconds: float) -> None:
        await anyio.sleep_forever()


@pytest.mark.anyio
@pytest.mark.parametrize("cls", ASYNC_BUCKETS, ids=lambda cls: cls.__name__)
async def test_cancelled_async_waiters_are_lent_again(cls: Any) -> None:
    """The cancelled-waiters case with tasks cancelled while they wait (asyncio and trio)."""
    bucket = cls(BucketConfig(capacity=8, seconds=8), clock=StuckClock())
    await bucket.acquire(8)
    async with anyio.create_task_group() as group:
        scopes = []
        for amount in (2, 2, 2, 4):  # waiters at 2, 4, 6 and 10 s
            scope = anyio.CancelScope()
            scopes.append(scope)

            async def wait(scope: anyio.CancelScope = scope, amount: int = amount) -> None:
                with scope:
                    await bucket.acquire(amount)

            group.start_soon(wait)
            await wait_all_tasks_blocked()
        scopes[0].cancel()
        scopes[2].cancel()
        await wait_all_tasks_blocked()
        assert (await bucket.reserve(4)).delay == pytest.approx(6.0)
        group.cancel_scope.cancel()


def test_the_issue_snippet_per_user() -> None:
    clock = FakeClock()
    limiter = LLMLimiter(requests_per_minute=60, tokens_per_minute=600, clock=clock)
    calls = [limiter.reserve(120, key="alice") for _ in range(5)]
    clock.advance(1.0)
    for call in reversed(calls):
        call.reconcile(20)
    assert limiter.reserve(400, key="alice").delay == 0.0
    assert limiter.reserve(600, key="bob").delay == 0.0  # bob's own limit
    assert limiter.status(key="alice")["tokens_per_minute"].remaining == pytest.approx(110.0)


@pytest.mark.anyio
async def test_overlapping_async_llm_calls_refund_every_unused_token() -> None:
    clock = FakeClock()
    limiter = LLMLimiter(tokens_per_minute=600, clock=clock)
    calls = [limiter.reserve(120) for _ in range(5)]

    async def call_and_reconcile(index: int) -> None:
        await calls[index].wait_async()
        calls[index].reconcile(20)

    clock.advance(1.0)
    async with anyio.create_task_group() as group:
        for index in (3, 0, 4, 1, 2):
            group.start_soon(call_and_reconcile, index)
    assert (await limiter.acquire_async(400)).delay == 0.0
