"""A total over per-key limits: PerUserLimiter(..., total=...), one decision over both lines."""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from typing import Any

import anyio
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from limitor import (
    AcquireTimeout,
    BucketConfig,
    ConfigError,
    PerUserLimiter,
    RateLimitExceeded,
    rate_limit_per_user,
)
from limitor.backends.memory import TotalStore
from limitor.testing import FakeClock

ALGORITHMS = ["leaky_bucket", "token_bucket", "gcra", "gcra_leaky_bucket"]


def worst_window(events: list[tuple[float, float]], rate: float, burst: float) -> float:
    """The most by which any window's admitted amount exceeds ``burst + rate * w``."""
    events = sorted(events)
    worst = -float("inf")
    for i in range(len(events)):
        amount = 0.0
        for j in range(i, len(events)):
            amount += events[j][1]
            width = events[j][0] - events[i][0]
            worst = max(worst, amount - (burst + rate * width))
    return worst


def check_bounds(
    events: dict[Any, list[tuple[float, float]]],
    rate: float,
    burst: float,
    total_rate: float,
    total_burst: float,
) -> None:
    for key, mine in events.items():
        assert worst_window(mine, rate, burst) <= 1e-6, key
    everything = [event for mine in events.values() for event in mine]
    assert worst_window(everything, total_rate, total_burst) <= 1e-6


# -- settings -------------------------------------------------------------------------


@pytest.mark.parametrize("total", [5, 1.5, object(), ["10/s"]])
def test_a_total_that_is_not_a_rate_is_refused(total: object) -> None:
    with pytest.raises(ConfigError, match="total must be a rate"):
        PerUserLimiter("10/s", total=total)  # type: ignore[arg-type]


def test_bad_total_strings_and_bursts_are_refused() -> None:
    with pytest.raises(ConfigError):
        PerUserLimiter("10/s", total="lots")
    with pytest.raises(ConfigError):
        PerUserLimiter("10/s", total="100/s", total_burst=-1)
    with pytest.raises(ConfigError, match="total_burst"):
        PerUserLimiter("10/s", total_burst=5)
    with pytest.raises(ConfigError):
        rate_limit_per_user("10/s", total=7)  # type: ignore[arg-type]


def test_the_total_takes_a_config_and_a_burst(clock: FakeClock) -> None:
    limiter = PerUserLimiter("10/s", total=BucketConfig(capacity=20, seconds=1), clock=clock)
    assert limiter.total is not None
    assert limiter.total.rate == 20
    limiter = PerUserLimiter("10/s", total="20/s", total_burst=3, clock=clock)
    assert [limiter.try_acquire(key) for key in "abcd"] == [True, True, True, False]
    limiter = PerUserLimiter(
        "10/s", total=BucketConfig(capacity=20, seconds=1), total_burst=2, clock=clock
    )
    assert [limiter.try_acquire(key) for key in "abc"] == [True, True, False]
    assert "total=20/s" in repr(limiter)


def test_an_amount_above_the_total_burst_can_never_fit(clock: FakeClock) -> None:
    limiter = PerUserLimiter("10/s", total="4/s", clock=clock)
    with pytest.raises(ValueError, match="burst"):
        limiter.acquire("a", 5)


def test_a_total_binds_to_redis_and_needs_a_name() -> None:
    """Issue 19 on Redis (tests/redis/test_redis_total.py): made without a round trip."""
    redis_backend = pytest.importorskip("limitor.backends.redis")
    backend = redis_backend.RedisBackend.from_url("redis://127.0.0.1:1")
    limiter = PerUserLimiter("10/s", total="100/s", backend=backend, name="t")
    assert isinstance(limiter.store, redis_backend.RedisTotalStore)
    with pytest.raises(ConfigError, match="name"):
        PerUserLimiter("10/s", total="100/s", backend=backend)


# -- one decision over both lines -------------------------------------------------------


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_the_total_binds_across_keys_and_each_key_binds_itself(
    clock: FakeClock, algorithm: str
) -> None:
    limiter = PerUserLimiter("10/s", total="15/s", algorithm=algorithm, clock=clock)
    assert sum(limiter.try_acquire("a") for _ in range(20)) == 10  # a's own burst
    assert sum(limiter.try_acquire("b") for _ in range(20)) == 5  # what the total has left
    assert sum(limiter.try_acquire(None) for _ in range(20)) == 0  # None counts too
    clock.advance(1.0)
    got = sum(limiter.try_acquire(key) for key in ("a", "b", "c", None) for _ in range(20))
    assert got == 15  # one second of the total


def test_a_refusal_takes_nothing_from_either_line(clock: FakeClock) -> None:
    limiter = PerUserLimiter("4/s", total="6/s", clock=clock)
    assert limiter.try_acquire("a", 3)
    assert limiter.try_acquire("b", 3)
    assert not limiter.try_acquire("a", 1)  # the total is empty; a still has 1
    key, total = limiter.status_both("a")
    assert key.remaining == pytest.approx(1.0)
    assert total.remaining == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(RateLimitExceeded) as caught:
        limiter.reserve("a", 1, timeout=0.1)
    assert caught.value.retry_after == pytest.approx(1 / 6)
    assert limiter.status_both("a")[0].remaining == pytest.approx(1.0)


def test_reserve_waits_for_the_later_of_the_two_lines(clock: FakeClock) -> None:
    limiter = PerUserLimiter("2/s", total="4/s", clock=clock)
    for key in "ab":
        assert limiter.try_acquire(key, 2)
    # a: key empty (next unit at 0.5 s); total empty (next unit at 0.25 s): 0.5 s.
    assert limiter.reserve("a").delay == pytest.approx(0.5)
    # c: its own key is full; a's unit holds the total's line from 0.25 to 0.5 s, so
    # the total's next free unit is c's at 0.5 s, then d's at 0.75 s.
    assert limiter.reserve("c").delay == pytest.approx(0.5)
    assert limiter.reserve("d").delay == pytest.approx(0.75)


def test_a_key_waiting_on_itself_leaves_the_total_to_others(clock: FakeClock) -> None:
    limiter = PerUserLimiter("1/s", total="10/s", clock=clock)
    assert limiter.try_acquire("slow")
    waiting = limiter.reserve("slow")  # waits 1 s for its own limit
    assert waiting.delay == pytest.approx(1.0)
    # the total's line before 1 s stays free for the others
    assert sum(limiter.try_acquire(key) for key in "abcdefgh") == 8


def test_cancel_gives_back_on_both_lines(clock: FakeClock) -> None:
    limiter = PerUserLimiter("2/s", total="3/s", clock=clock)
    assert limiter.try_acquire("a", 2)
    assert limiter.try_acquire("b", 1)
    late = limiter.reserve("b", 1)
    assert late.delay > 0
    before = limiter.status_both("b")
    late.cancel()
    after = limiter.status_both("b")
    assert after[0].retry_after < before[0].retry_after or after[0].remaining > before[0].remaining
    assert after[1].retry_after < before[1].retry_after
    # exactly as if it had never come
    again = limiter.reserve("b", 1)
    assert again.delay == pytest.approx(late.delay)


def test_a_refund_frees_both_lines_and_debt_charges_both(clock: FakeClock) -> None:
    limiter = PerUserLimiter("10/s", total="10/s", clock=clock)
    reservation = limiter.reserve("a", 10)
    reservation.reconcile(4)  # 6 units back on a's line and the total's
    key, total = limiter.status_both("a")
    assert key.remaining == pytest.approx(6)
    assert total.remaining == pytest.approx(6)
    assert limiter.try_acquire("b", 6)
    assert not limiter.try_acquire("b", 1)
    clock.advance(1.0)  # both full again
    reservation = limiter.reserve("a", 2)
    reservation.reconcile(7)  # 5 more as debt, on both lines
    key, total = limiter.status_both("a")
    assert key.remaining == pytest.approx(3)
    assert total.remaining == pytest.approx(3)
    limiter.charge(3, key="c")  # debt for c counts against the total
    assert limiter.status_both("a")[1].remaining == pytest.approx(0, abs=1e-9)


def test_status_reports_the_binding_line(clock: FakeClock) -> None:
    limiter = PerUserLimiter("5/s", total="8/s", clock=clock)
    assert limiter.status("a").limit == 5  # nothing used: the key's burst is smaller
    limiter.try_acquire("b", 5)
    limiter.try_acquire("c", 2)
    status = limiter.status("a", 2)  # the total has 1 left: it binds
    assert status.limit == 8
    assert status.retry_after == pytest.approx(1 / 8)
    assert status.headers() == {
        "RateLimit-Limit": "8",
        "RateLimit-Remaining": "1",
        "RateLimit-Reset": "1",
    }
    key, total = limiter.status_both("a")
    assert (key.limit, key.remaining) == (5, pytest.approx(5))
    assert total.limit == 8
    with pytest.raises(ConfigError, match="total="):
        PerUserLimiter("5/s", clock=clock).status_both("a")


def test_hold_and_reset(clock: FakeClock) -> None:
    limiter = PerUserLimiter("5/s", total="8/s", clock=clock)
    limiter.hold(2.0, key="a")
    assert not limiter.try_acquire("a")
    assert limiter.try_acquire("b")  # one key's hold is that key's
    limiter.hold(1.0, total=True)
    assert not limiter.try_acquire("c")  # the total's hold holds every key
    assert limiter.reserve("c").delay == pytest.approx(1.0)
    clock.advance(2.0)
    limiter.reset()  # everything, the total included
    assert sum(limiter.try_acquire(key) for key in "abcdefghij") == 8
    limiter.reset("a")  # a key's reset leaves the total: what it used still counts
    assert not limiter.try_acquire("a")
    assert limiter.status_both("a")[0].remaining == pytest.approx(5)
    limiter.reset_total()
    assert limiter.try_acquire("a")
    with pytest.raises(ConfigError):
        PerUserLimiter("5/s", clock=clock).hold(1.0, total=True)


def test_the_decorator_takes_a_total(clock: FakeClock) -> None:
    seen: list[tuple[str, float]] = []

    @rate_limit_per_user("2/s", total="3/s", total_burst=3, clock=clock)
    def handler(*, user_id: str) -> None:
        seen.append((user_id, clock.now()))

    for user in "aabbcc":
        handler(user_id=user)
    times = [t for _, t in seen]
    assert times[:3] == [0, 0, 0]
    assert times[3:] == pytest.approx([1 / 3, 2 / 3, 1.0])
    raising = rate_limit_per_user("2/s", total="1/s", on_limit="raise", clock=clock)(
        lambda *, user_id: user_id
    )
    raising(user_id="x")
    with pytest.raises(RateLimitExceeded):
        raising(user_id="y")


def test_a_timeout_raises_at_once_and_takes_nothing(clock: FakeClock) -> None:
    limiter = PerUserLimiter("10/s", total="2/s", clock=clock)
    limiter.acquire("a", 2)
    with pytest.raises(AcquireTimeout):
        limiter.acquire("b", 1, timeout=0.1)
    assert clock.now() == 0.0
    limiter.acquire("b", 1, timeout=0.5)
    assert clock.now() == pytest.approx(0.5)


# -- the bounds -------------------------------------------------------------------------

OPS = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", None]),
        st.sampled_from([0.5, 1, 2, 3]),
        st.sampled_from(["keep", "cancel", "refund", "debt", "try"]),
        st.sampled_from([0.0, 0.0, 0.05, 0.2, 0.7]),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(ops=OPS, algorithm=st.sampled_from(ALGORITHMS))
def test_neither_line_is_ever_exceeded(ops: list[Any], algorithm: str) -> None:
    run_with_debts(ops, algorithm, at_once=False)


@settings(max_examples=150, deadline=None)
@given(ops=OPS, algorithm=st.sampled_from(ALGORITHMS))
@example(  # charged from now, the two debts filled line before their grants' times
    ops=[("a", 0.5, "keep", 0.0)] * 5 + [(None, 3, "debt", 0.0)] * 2,
    algorithm="leaky_bucket",
)
def test_a_debt_learned_before_the_grants_time_keeps_both_bounds(
    ops: list[Any], algorithm: str
) -> None:
    """A reconcile above the estimate made at once, before the grant's time: its debt goes
    on both lines no earlier than the grant's own time (from now, it could fill free line
    before the admission and let others over-admit around it)."""
    run_with_debts(ops, algorithm, at_once=True)


def run_with_debts(ops: list[Any], algorithm: str, *, at_once: bool) -> None:
    """Random reserves, cancels, refunds and debts (one unit each) on a total: every key's
    line and the total's keep ``burst + rate*w``, plus one call's debt when each debt is
    learned once its call's time has come. Debts learned at once, before their grants'
    times, may several fall in one window: there what the limiter was told (estimates and
    refunds) keeps the exact bound, so actual use exceeds it by those debts at most."""
    clock = FakeClock()
    rate, burst, total_rate, total_burst = 4.0, 4.0, 6.0, 5.0
    limiter = PerUserLimiter(
        f"{rate:g}/s", total=f"{total_rate:g}/s", total_burst=total_burst,
        algorithm=algorithm, clock=clock,
    )  # fmt: skip
    used: dict[Any, list[list[float]]] = defaultdict(list)
    for key, amount, what, step in ops:
        clock.advance(step)
        if what == "try":
            if limiter.try_acquire(key, amount):
                used[key].append([clock.now(), amount, 0.0])
            continue
        reservation = limiter.reserve(key, amount)
        if what == "cancel" and reservation.delay > 0:
            reservation.cancel()
            continue
        record = [reservation.time_to_act, amount, 0.0]
        used[key].append(record)
        if what == "refund":
            reservation.reconcile(amount / 2)
            record[1] = amount / 2
        elif what == "debt":
            # A caller learns its overrun after its call ran: at or after its time. (A debt
            # charged before the grant's time fills free line from then on, which may lie
            # before the grant's own admission: the bound on actual use then falls short.)
            if not at_once:
                clock.advance(max(0.0, reservation.time_to_act - clock.now()))
            reservation.reconcile(amount + 1)  # the debt lands on the next callers
            record[1], record[2] = amount + 1, 1.0
    if at_once:
        told = {key: [(t, a - d) for t, a, d in mine] for key, mine in used.items()}
        check_bounds(told, rate, burst, total_rate, total_burst)
    else:
        events = {key: [(t, a) for t, a, _ in mine] for key, mine in used.items()}
        check_bounds(events, rate, burst + 1, total_rate, total_burst + 1)  # one call's debt


@settings(max_examples=150, deadline=None)
@given(ops=OPS, algorithm=st.sampled_from(ALGORITHMS))
def test_without_debt_the_bound_is_exact(ops: list[Any], algorithm: str) -> None:
    clock = FakeClock()
    limiter = PerUserLimiter("4/s", total="6/s", total_burst=5, algorithm=algorithm, clock=clock)
    used: dict[Any, list[list[float]]] = defaultdict(list)
    for key, amount, what, step in ops:
        clock.advance(step)
        if what in ("try", "debt"):
            if limiter.try_acquire(key, amount):
                used[key].append([clock.now(), amount])
            continue
        reservation = limiter.reserve(key, amount)
        if what == "cancel" and reservation.delay > 0:
            reservation.cancel()
            continue
        record = [reservation.time_to_act, amount]
        used[key].append(record)
        if what == "refund":
            reservation.reconcile(amount / 4)
            record[1] = amount / 4
    events = {key: [(t, a) for t, a in mine] for key, mine in used.items()}
    check_bounds(events, 4, 4, 6, 5)


def test_real_threads_keep_both_bounds() -> None:
    limiter = PerUserLimiter("40/s", burst=4, total="100/s", total_burst=10)
    events: dict[Any, list[tuple[float, float]]] = defaultdict(list)
    lock = threading.Lock()
    deadline = time.monotonic() + 0.6

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        while time.monotonic() < deadline:
            key = rng.choice(["a", "b", "c", "d", None])
            reservation = limiter.reserve(key, 1)
            if rng.random() < 0.3 and reservation.delay > 0:
                reservation.cancel()
                continue
            if rng.random() < 0.3:
                reservation.reconcile(0.5)
                amount = 0.5
            else:
                amount = 1.0
            with lock:
                events[key].append((reservation.time_to_act, amount))
            reservation.wait()

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    check_bounds(events, 40, 4, 100, 10)
    admitted = sum(a for mine in events.values() for _, a in mine)
    assert admitted > 20


@pytest.mark.anyio
async def test_tasks_with_cancellation_storms_keep_both_bounds() -> None:
    limiter = PerUserLimiter("40/s", burst=4, total="100/s", total_burst=10)
    events: dict[Any, list[tuple[float, float]]] = defaultdict(list)
    rng = random.Random(7)

    async def caller(key: Any) -> None:
        reservation = await limiter.reserve_async(key, 1)
        if rng.random() < 0.3:
            await reservation.reconcile_async(0.25)
            amount = 0.25
        else:
            amount = 1.0
        record = (reservation.time_to_act, amount)
        try:
            await reservation.wait_async()
        except anyio.get_cancelled_exc_class():
            await reservation.cancel_async()
            raise
        events[key].append(record)

    async def acquirer(key: Any) -> None:
        reservation = await limiter.verbs.acquire_async(1, key=key)
        events[key].append((reservation.time_to_act, 1.0))

    for _ in range(3):
        async with anyio.create_task_group() as group:
            for i in range(60):
                key = ("a", "b", "c", None)[i % 4]
                group.start_soon(caller if i % 2 else acquirer, key)
            await anyio.sleep(0.05)
            group.cancel_scope.cancel()
    check_bounds(events, 40, 4, 100, 10)
    assert sum(len(mine) for mine in events.values()) >= 10


@pytest.mark.anyio
async def test_async_twins(clock: FakeClock) -> None:
    limiter = PerUserLimiter("5/s", total="8/s", clock=clock)
    assert await limiter.try_acquire_async("a", 5)
    assert not await limiter.try_acquire_async("b", 4)
    reservation = await limiter.reserve_async("b", 4)  # the total has 3 of 4
    assert reservation.delay == pytest.approx(0.125)
    await reservation.cancel_async()
    _key, total = await limiter.status_both_async("b", 4)
    assert total.retry_after == pytest.approx(0.125)
    await limiter.hold_async(1.0, total=True)
    assert (await limiter.status_async("b")).retry_after == pytest.approx(1.0)
    await limiter.reset_total_async()
    await limiter.acquire_async("b", 3)
    assert clock.now() == 0.0
    await limiter.reset_async()
    assert await limiter.try_acquire_async("c", 5)


class GeneralPathOnly(TotalStore):
    def _admit_plain(self, *args: Any) -> None:
        return None


@settings(max_examples=100, deadline=None)
@given(ops=OPS, algorithm=st.sampled_from(ALGORITHMS))
def test_the_admit_now_shortcut_decides_as_the_general_path(ops: list[Any], algorithm: str) -> None:
    clocks = [FakeClock(), FakeClock()]
    limiters = [
        PerUserLimiter("4/s", total="6/s", total_burst=5, algorithm=algorithm, clock=clock)
        for clock in clocks
    ]
    limiters[1]._store = GeneralPathOnly(limiters[1].backend_spec, clocks[1])
    limiters[1]._admit_now = limiters[1]._fast_path()  # the new store's (it never admits)
    for key, amount, what, step in ops:
        outcomes = []
        for clock, limiter in zip(clocks, limiters, strict=True):
            clock.advance(step)
            if what == "try":
                outcomes.append(limiter.try_acquire(key, amount))
                continue
            reservation = limiter.reserve(key, amount)
            outcomes.append((round(reservation.delay, 9), reservation._ticket))
            if what == "cancel":
                reservation.cancel()
            elif what == "refund":
                reservation.reconcile(amount / 2)
        assert outcomes[0] == outcomes[1]
        statuses = [limiter.status_both(key, amount) for limiter in limiters]
        assert statuses[0] == statuses[1]
