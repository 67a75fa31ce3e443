"""fair=True: waiting keys take turns at the total (weighted round robin, FIFO per key)."""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from limitor import (
    AcquireTimeout,
    ConfigError,
    LimitorError,
    PerUserLimiter,
    RateLimitExceeded,
    rate_limit_per_user,
)
from limitor.clock import AnyioClock
from limitor.testing import FakeClock
from tests.test_total import check_bounds


def run_virtual(main: Callable[[], Awaitable[Any]]) -> Any:
    """Run ``main`` on trio with a MockClock (virtual time; AnyioClock reads it)."""
    return anyio.run(
        main,
        backend="trio",
        backend_options={"clock": trio.testing.MockClock(autojump_threshold=0)},
    )


# -- settings ---------------------------------------------------------------------------


def test_bad_settings_are_refused_at_construction() -> None:
    with pytest.raises(ConfigError, match="total="):
        PerUserLimiter("10/s", fair=True)
    with pytest.raises(ConfigError, match="weight"):
        PerUserLimiter("10/s", total="20/s", fair=True, weight=3)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="fair"):
        PerUserLimiter("10/s", total="20/s", fair="yes")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="weight"):
        PerUserLimiter("10/s", total="20/s", weight=lambda key: 1)
    with pytest.raises(ConfigError, match="total="):
        rate_limit_per_user("10/s", fair=True)
    assert PerUserLimiter("10/s", total="20/s", fair=True).fair


@pytest.mark.parametrize("bad", [0, -1, math.nan, math.inf, "x", None])
def test_a_bad_weight_at_use_raises_and_takes_nothing(clock: FakeClock, bad: Any) -> None:
    limiter = PerUserLimiter(
        "10/s", total="10/s", fair=True, clock=clock, weight=lambda key: bad if key == "x" else 1
    )
    with pytest.raises(LimitorError, match="weight"):
        limiter.acquire("x")
    with pytest.raises(LimitorError, match="weight"):
        limiter.try_acquire("x")
    with pytest.raises(LimitorError, match="weight"):
        limiter.reserve("x")
    assert limiter.status_both("x")[1].remaining == pytest.approx(10)
    assert limiter.try_acquire("y", 10)


# -- reserve and timeouts ------------------------------------------------------------------


def test_reserve_books_no_future_slot(clock: FakeClock) -> None:
    limiter = PerUserLimiter("100/s", total="10/s", fair=True, clock=clock)
    reservation = limiter.reserve("a", 10)
    assert reservation.delay == 0.0
    with pytest.raises(RateLimitExceeded) as caught:
        limiter.reserve("a", 2)
    assert caught.value.retry_after == pytest.approx(0.2)
    assert limiter.status_both("a", 2)[1].retry_after == pytest.approx(0.2)  # nothing taken
    reservation.reconcile(4)  # a refund works as usual
    assert limiter.reserve("b", 6).delay == 0.0
    assert not limiter.try_acquire("b")


def test_timeouts_raise_at_once_when_the_estimate_exceeds_them(clock: FakeClock) -> None:
    limiter = PerUserLimiter("100/s", total="10/s", fair=True, clock=clock)
    limiter.acquire("a", 10)
    with pytest.raises(AcquireTimeout) as caught:
        limiter.acquire("b", 5, timeout=0.2)
    assert caught.value.retry_after == pytest.approx(0.5)
    assert clock.now() == 0.0  # raised at once
    limiter.acquire("b", 5, timeout=0.5)
    assert clock.now() == pytest.approx(0.5)
    fresh = PerUserLimiter("100/s", total="10/s", fair=True, clock=clock)
    reservation = fresh.verbs.acquire(10, key="c")
    reservation.reconcile(4)  # acquire's grant reconciles: 6 back on both lines
    assert fresh.status_both("c")[1].remaining == pytest.approx(6)
    assert fresh.status_both("c")[0].remaining == pytest.approx(96)


def test_a_timeout_at_the_deadline_takes_nothing() -> None:
    async def main() -> float:
        limiter = PerUserLimiter("100/s", total="10/s", fair=True, clock=AnyioClock())
        start = anyio.current_time()
        await limiter.acquire_async("heavy", 10)

        async def big() -> None:
            asked = anyio.current_time()
            # the estimate (0.8 s: light's turn is next) is within the timeout, but a
            # third key arriving later starts before it and takes 0.2 s of the total
            with pytest.raises(AcquireTimeout, match="nothing was taken"):
                await limiter.acquire_async("light", 8, timeout=0.85)
            assert anyio.current_time() - asked == pytest.approx(0.85, abs=1e-6)

        async with anyio.create_task_group() as group:
            for _ in range(5):
                group.start_soon(limiter.acquire_async, "heavy", 2)  # 1 s of the total
            await anyio.sleep(0.01)
            await limiter.acquire_async("light", 1)  # in turn, after heavy's first
            assert anyio.current_time() - start <= 0.3 + 1e-6
            group.start_soon(big)
            await anyio.sleep(0.001)
            group.start_soon(limiter.acquire_async, "other", 2)
        return anyio.current_time() - start

    # 10 + 10 + 1 + 2 units at 10/s after a burst of 10: the last at 1.3 s; had the
    # timed-out 8 been taken, 2.1 s
    assert run_virtual(main) == pytest.approx(1.3, abs=1e-6)


# -- fairness on virtual time --------------------------------------------------------------


async def heavy_and_light(fair: bool) -> tuple[float, list[float]]:
    limiter = PerUserLimiter("100/s", total="10/s", fair=fair, clock=AnyioClock())
    heavy: list[float] = []
    start = anyio.current_time()

    async def one(key: str, times: list[float]) -> None:
        await limiter.acquire_async(key)
        times.append(anyio.current_time() - start)

    light: list[float] = []
    async with anyio.create_task_group() as group:
        for _ in range(100):
            group.start_soon(one, "heavy", heavy)
        await anyio.sleep(1.0)
        group.start_soon(one, "light", light)
    return light[0], sorted(heavy)


def test_a_light_key_goes_in_turn_not_behind_a_heavy_queue() -> None:
    light, heavy = run_virtual(lambda: heavy_and_light(True))
    assert 1.0 <= light <= 1.25
    # the heavy key alone used the whole total before: 10 at once, then 10 per second
    assert sum(t < 1.0 - 1e-9 for t in heavy) == 19
    assert heavy[-1] == pytest.approx(9.1)  # 101 units: 10 at once, then 91 at 10/s


def test_fifo_makes_the_light_key_wait_behind_the_queue() -> None:
    light, _ = run_virtual(lambda: heavy_and_light(False))
    assert light == pytest.approx(9.1, abs=0.15)


def test_weights_share_the_total_while_both_keys_wait() -> None:
    async def main() -> dict[str, list[float]]:
        limiter = PerUserLimiter(
            "100/s", total="10/s", fair=True, clock=AnyioClock(),
            weight=lambda key: 3 if key == "a" else 1,
        )  # fmt: skip
        times: dict[str, list[float]] = defaultdict(list)
        start = anyio.current_time()

        async def one(key: str) -> None:
            await limiter.acquire_async(key)
            times[key].append(anyio.current_time() - start)

        async with anyio.create_task_group() as group:
            for _ in range(150):
                group.start_soon(one, "a")
                group.start_soon(one, "b")
        return times

    times = run_virtual(main)
    a = sum(2.0 <= t < 12.0 for t in times["a"])
    b = sum(2.0 <= t < 12.0 for t in times["b"])
    assert a + b == pytest.approx(100, abs=2)  # the whole total
    assert a / b == pytest.approx(3.0, rel=0.15)


def test_a_key_held_back_by_its_own_limit_leaves_the_total_to_others() -> None:
    async def main() -> dict[str, list[float]]:
        # every key at most 2/s: the total (10/s) is reached only by five keys at once;
        # slow's weight keeps its head first in line, where its own limit holds it
        limiter = PerUserLimiter(
            "2/s", burst=1, total="10/s", fair=True, clock=AnyioClock(),
            weight=lambda key: 50 if key == "slow" else 1,
        )  # fmt: skip
        times: dict[str, list[float]] = defaultdict(list)
        start = anyio.current_time()

        async def one(key: str) -> None:
            await limiter.acquire_async(key)
            times[key].append(anyio.current_time() - start)

        async with anyio.create_task_group() as group:
            for _ in range(30):
                group.start_soon(one, "slow")  # always the lowest tag; held back by itself
            await anyio.sleep(0)
            for key in "abcdefghi":
                for _ in range(8):
                    group.start_soon(one, key)
        return times

    times = run_virtual(main)
    everyone = sorted(t for mine in times.values() for t in mine)
    # while slow waits on its own limit the others use the total: 10 per second, steadily
    assert sum(1.0 <= t < 5.0 for t in everyone) >= 39
    assert len(times["slow"]) == 30
    check_bounds({key: [(t, 1.0) for t in mine] for key, mine in times.items()}, 2, 1, 10, 10)


def test_a_lone_key_uses_the_whole_total_with_threads(clock: FakeClock) -> None:
    limiter = PerUserLimiter("100/s", total="10/s", fair=True, clock=clock)
    for _ in range(30):
        limiter.acquire("only")
    assert clock.now() == pytest.approx(2.0)


# -- cancellation and bounds ------------------------------------------------------------


def test_cancelled_waiters_give_everything_back() -> None:
    async def main() -> tuple[dict[str, list[tuple[float, float]]], float]:
        limiter = PerUserLimiter("100/s", total="10/s", fair=True, clock=AnyioClock())
        events: dict[str, list[tuple[float, float]]] = defaultdict(list)

        async def one(key: str, amount: float) -> None:
            reservation = await limiter.verbs.acquire_async(amount, key=key)
            events[key].append((anyio.current_time(), amount))
            if amount > 1:
                await reservation.reconcile_async(amount / 2)
                events[key][-1] = (events[key][-1][0], amount / 2)

        for round_ in range(4):
            async with anyio.create_task_group() as group:
                for i in range(40):
                    group.start_soon(one, "abcd"[i % 4], 1 + i % 3)
                await anyio.sleep(0.35 + 0.1 * round_)
                group.cancel_scope.cancel()
        # after the storms nothing is left queued or held
        assert limiter._fair is not None
        assert limiter._fair.waiting == 0
        await anyio.sleep(2.0)
        start = anyio.current_time()
        await limiter.acquire_async("z", 10)
        return events, anyio.current_time() - start

    events, wait = run_virtual(main)
    assert wait == 0.0  # the total is full again: nothing was lost
    check_bounds(events, 100, 100, 10, 10)
    assert sum(len(mine) for mine in events.values()) > 10


def test_threads_keep_the_bounds_and_the_light_key_gets_its_turn() -> None:
    limiter = PerUserLimiter("100/s", total="40/s", total_burst=4, fair=True)
    events: dict[str, list[tuple[float, float]]] = defaultdict(list)
    lock = threading.Lock()
    stop = time.monotonic() + 1.0

    def heavy() -> None:
        while time.monotonic() < stop:
            reservation = limiter.verbs.acquire(1, key="heavy")
            with lock:
                events["heavy"].append((reservation.time_to_act, 1.0))

    threads = [threading.Thread(target=heavy) for _ in range(6)]
    for thread in threads:
        thread.start()
    time.sleep(0.4)
    waits = []
    for _ in range(3):
        asked = time.monotonic()
        reservation = limiter.verbs.acquire(1, key="light")
        waits.append(time.monotonic() - asked)
        with lock:
            events["light"].append((reservation.time_to_act, 1.0))
    for thread in threads:
        thread.join()
    # FIFO would put light behind 6 heavy waiters each time; in turn it waits one slot or two
    assert max(waits) < 0.2
    check_bounds(events, 100, 100, 40, 4)
    assert len(events["heavy"]) > 20


def test_the_decorator_takes_fair_and_weight(clock: FakeClock) -> None:
    @rate_limit_per_user("100/s", total="10/s", fair=True, weight=lambda key: 2, clock=clock)
    def handler(*, user_id: str) -> str:
        return user_id

    for _ in range(12):
        assert handler(user_id="a") == "a"
    assert clock.now() == pytest.approx(0.2)
    limiter = handler.limiter  # type: ignore[attr-defined]
    assert limiter.fair
    with pytest.raises(ConfigError, match="limiter="):
        rate_limit_per_user(limiter=limiter, fair=True)


def test_threads_and_an_event_loop_in_another_thread_wake_each_other() -> None:
    """Waiters on two event loops and in threads share one fair queue; none hangs."""
    limiter = PerUserLimiter("100/s", total="50/s", total_burst=5, fair=True)
    events: dict[str, list[tuple[float, float]]] = defaultdict(list)
    lock = threading.Lock()

    def record(key: str, reservation: Any) -> None:
        with lock:
            events[key].append((reservation.time_to_act, 1.0))

    async def tasks(key: str) -> None:
        async def one() -> None:
            record(key, await limiter.verbs.acquire_async(1, key=key))

        async with anyio.create_task_group() as group:
            for _ in range(15):
                group.start_soon(one)
        with pytest.raises(TimeoutError), anyio.fail_after(0.01):  # a cancelled waiter
            await limiter.acquire_async(key, 5, timeout=5)  # leaves cleanly too

    def thread(key: str) -> None:
        for _ in range(10):
            record(key, limiter.verbs.acquire(1, key=key))

    started = time.monotonic()
    workers = [
        threading.Thread(target=anyio.run, args=(tasks, "asyncio-loop")),
        threading.Thread(target=anyio.run, args=(tasks, "trio-loop"), kwargs={"backend": "trio"}),
        threading.Thread(target=thread, args=("thread-a",)),
        threading.Thread(target=thread, args=("thread-b",)),
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=20)
    assert not any(worker.is_alive() for worker in workers)
    assert sum(len(mine) for mine in events.values()) == 50
    assert time.monotonic() - started < 10  # 50 units at 50/s after a burst of 5: ~0.9 s
    check_bounds(events, 100, 100, 50, 5)
    assert limiter.stats.waiting == 0


ARRIVALS = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", None]),
        st.sampled_from([1, 2, 3]),
        st.sampled_from([0.0, 0.0, 0.03, 0.1, 0.4]),  # the gap before it
        st.sampled_from(["wait", "timeout", "cancel", "refund", "try"]),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=40, deadline=None)
@given(arrivals=ARRIVALS, heavy_weight=st.sampled_from([1, 3]))
def test_random_arrivals_keep_the_bounds_and_lose_nothing(
    arrivals: list[Any], heavy_weight: int
) -> None:
    async def main() -> tuple[dict[Any, list[tuple[float, float]]], float]:
        limiter = PerUserLimiter(
            "4/s", burst=3, total="6/s", total_burst=4, fair=True, clock=AnyioClock(),
            weight=lambda key: heavy_weight if key == "a" else 1,
        )  # fmt: skip
        events: dict[Any, list[tuple[float, float]]] = defaultdict(list)

        async def one(key: Any, amount: float, what: str) -> None:
            if what == "try":
                if await limiter.try_acquire_async(key, amount):
                    events[key].append((anyio.current_time(), amount))
                return
            try:
                with anyio.move_on_after(0.3 if what == "cancel" else math.inf):
                    timeout = 0.5 if what == "timeout" else None
                    reservation = await limiter.verbs.acquire_async(
                        amount, key=key, timeout=timeout
                    )
                    used = amount / 2 if what == "refund" else amount
                    events[key].append((anyio.current_time(), used))
                    if what == "refund":
                        await reservation.reconcile_async(used)
            except AcquireTimeout:
                pass

        async with anyio.create_task_group() as group:
            for key, amount, gap, what in arrivals:
                await anyio.sleep(gap)
                group.start_soon(one, key, amount, what)
        assert limiter.stats.waiting == 0  # no waiter left behind
        assert limiter.stats.admitted >= sum(len(mine) for mine in events.values())
        await anyio.sleep(5.0)  # every line full again: the limiter still admits at once
        start = anyio.current_time()
        await limiter.acquire_async("z", 3)
        return events, anyio.current_time() - start

    events, wait = run_virtual(main)
    assert wait == 0.0
    check_bounds(events, 4, 3, 6, 4)
