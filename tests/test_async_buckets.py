"""Async buckets on asyncio and trio: shaping, failing fast, cancellation, concurrency."""

from __future__ import annotations

import threading
import time
from typing import Any

import anyio
import pytest
from anyio import wait_all_tasks_blocked

from limitor.base import AsyncBucket
from limitor.clock import AnyioClock
from limitor.configs import BucketConfig
from limitor.errors import AcquireTimeout, AmountError
from limitor.leaky_bucket.core import AsyncLeakyBucket
from limitor.testing import FakeClock

pytestmark = pytest.mark.anyio


class StuckClock(FakeClock):
    """A fake clock whose async sleeps never end: every waiter is parked until cancelled."""

    async def asleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await anyio.sleep_forever()


# Made at import time, outside any event loop: nothing binds to a loop at construction.
MODULE_BUCKET = AsyncLeakyBucket(BucketConfig(capacity=1000, seconds=1), max_concurrent=2)


async def test_a_bucket_made_at_import_time_works_in_any_loop() -> None:
    async with MODULE_BUCKET:
        await MODULE_BUCKET.acquire()
    assert MODULE_BUCKET.stats.admitted >= 2


async def test_shaping_on_a_fake_clock(async_cls: Any, clock: FakeClock) -> None:
    bucket = async_cls(BucketConfig(capacity=10, seconds=1, burst=5), clock=clock)
    for _ in range(30):
        await bucket.acquire()
    assert clock.now() == pytest.approx(2.5)
    assert bucket.stats.waited == 25


async def test_saturated_acquires_end_exactly_on_schedule(async_cls: Any, clock: FakeClock) -> None:
    bucket = async_cls(BucketConfig(capacity=10, seconds=1), clock=clock)
    for _ in range(1000):
        await bucket.acquire()
    assert clock.now() == pytest.approx(99.0, abs=1e-9)


async def test_timeout_raises_at_once_and_takes_nothing(async_cls: Any, clock: FakeClock) -> None:
    bucket = async_cls(BucketConfig(capacity=1, seconds=1), clock=clock)
    await bucket.acquire()
    with pytest.raises(AcquireTimeout) as info:
        await bucket.acquire(timeout=0.25)
    assert info.value.retry_after == pytest.approx(1.0)
    assert clock.sleeps == []
    await bucket.acquire(timeout=1)
    assert clock.now() == pytest.approx(1.0)


async def test_amount_errors_are_raised_before_anything(async_cls: Any, clock: FakeClock) -> None:
    bucket = async_cls(BucketConfig(capacity=10, seconds=1), clock=clock)
    for amount in (11, float("nan"), -1, "x"):
        with pytest.raises(AmountError):
            await bucket.acquire(amount)
        with pytest.raises(AmountError):
            await bucket.try_acquire(amount)
        with pytest.raises(AmountError):
            await bucket.reserve(amount)
    assert bucket.status().remaining == 10
    assert clock.sleeps == []


async def test_verbs(async_cls: Any, clock: FakeClock) -> None:
    bucket = async_cls(BucketConfig(capacity=2, seconds=1), clock=clock)
    assert await bucket.try_acquire() is True
    async with bucket as entered:
        assert entered is bucket
    assert await bucket.try_acquire() is False
    reservation = await bucket.reserve()
    assert reservation.delay == pytest.approx(0.5)
    assert reservation.cancel() == pytest.approx(1)
    async with bucket.acquire_ctx(2) as entered:
        assert entered is bucket
        await bucket.reconcile(actual=1, estimated=2)
    assert clock.now() == pytest.approx(1.0)
    assert bucket.status().remaining == pytest.approx(1)
    await bucket.acquire(0)
    assert clock.now() == pytest.approx(1.0)


async def test_cancelled_waiter_gives_its_reservation_back(async_cls: Any) -> None:
    clock = StuckClock()
    bucket = async_cls(BucketConfig(capacity=1, seconds=1), clock=clock)
    await bucket.acquire()
    async with anyio.create_task_group() as tg:
        tg.start_soon(bucket.acquire)
        await wait_all_tasks_blocked()
        assert bucket.stats.waiting == 1
        tg.cancel_scope.cancel()
    assert bucket.stats.waiting == 0
    assert bucket.stats.cancelled == 1
    assert (await bucket.reserve()).delay == pytest.approx(1.0)  # the cancelled slot is free


async def test_cancelling_a_crowd_of_waiters_never_over_admits(async_cls: Any) -> None:
    clock = StuckClock()
    bucket = async_cls(BucketConfig(capacity=1, seconds=1), clock=clock)
    await bucket.acquire()
    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(bucket.acquire)
        await wait_all_tasks_blocked()
        assert bucket.stats.waiting == 10
        tg.cancel_scope.cancel()
    # Cancelled in whatever order the event loop chose, all ten slots come back.
    assert (await bucket.reserve()).delay == pytest.approx(1.0)
    assert bucket.stats.waiting == 0
    assert bucket.stats.cancelled == 10


async def test_cancel_scope_timeout_while_waiting(async_cls: Any) -> None:
    clock = StuckClock()
    bucket = async_cls(BucketConfig(capacity=1, seconds=1), clock=clock)
    await bucket.acquire()
    with anyio.move_on_after(0.01) as scope:
        await bucket.acquire()
    assert scope.cancelled_caught
    assert (await bucket.reserve()).delay == pytest.approx(1.0)


async def test_cancelled_while_waiting_for_a_concurrency_place(async_cls: Any) -> None:
    bucket = async_cls(BucketConfig(capacity=100, seconds=1), max_concurrent=1)
    release = anyio.Event()
    entered: list[str] = []

    async def holder() -> None:
        async with bucket:
            entered.append("holder")
            await release.wait()

    async def blocked() -> None:
        async with bucket:
            entered.append("blocked")  # pragma: no cover - cancelled before entering

    async with anyio.create_task_group() as tg:
        tg.start_soon(holder)
        await wait_all_tasks_blocked()
        async with anyio.create_task_group() as inner:
            inner.start_soon(blocked)
            await wait_all_tasks_blocked()
            inner.cancel_scope.cancel()
        release.set()
    assert entered == ["holder"]
    with anyio.fail_after(1):
        async with bucket:  # the place was not leaked
            entered.append("after")
    assert entered == ["holder", "after"]


async def test_max_concurrent_bounds_bodies(async_cls: Any) -> None:
    bucket = async_cls(BucketConfig(capacity=1000, seconds=1), max_concurrent=3)
    active = peak = 0

    async def body() -> None:
        nonlocal active, peak
        async with bucket:
            active += 1
            peak = max(peak, active)
            await anyio.sleep(0.01)
            active -= 1

    async with anyio.create_task_group() as tg:
        for _ in range(12):
            tg.start_soon(body)
    assert peak == 3
    assert bucket.max_concurrent == 3


async def test_max_concurrent_is_validated(async_cls: Any) -> None:
    with pytest.raises(ValueError, match="max_concurrent"):
        async_cls(max_concurrent=0)
    with pytest.raises(TypeError, match="max_concurrent"):
        async_cls(max_concurrent=1.5)


async def test_thirty_tasks_keep_the_bound_and_the_loop_keeps_running() -> None:
    """Real time. Bounds are one-sided or generous so a loaded machine cannot flake them."""
    rate, burst, calls = 40.0, 5, 60
    bucket = AsyncLeakyBucket(BucketConfig(capacity=rate, seconds=1, burst=burst))
    ticks = 0
    done = anyio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await anyio.sleep(0.005)

    async def caller() -> None:
        for _ in range(calls // 30):
            await bucket.acquire()

    started = time.monotonic()
    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        async with anyio.create_task_group() as callers:
            for _ in range(30):
                callers.start_soon(caller)
        elapsed = time.monotonic() - started
        done.set()
    assert bucket.stats.admitted == calls
    # Never over-admit: `calls` admissions need at least (calls - burst) / rate seconds.
    assert elapsed >= (calls - burst) / rate - 0.01
    # Never waste capacity (generous: 1.375 s needed).
    assert elapsed < (calls - burst) / rate + 1.5
    # The loop was never blocked: the ticker ran throughout (it could tick ~275 times).
    assert ticks >= 20


async def test_committed_times_of_many_tasks_obey_the_window_bound(async_cls: Any) -> None:
    rate, burst = 200.0, 3
    bucket = async_cls(BucketConfig(capacity=rate, seconds=1, burst=burst))
    times: list[float] = []

    async def caller() -> None:
        reservation = await bucket.reserve()
        await reservation.wait_async()
        times.append(reservation.time_to_act)

    async with anyio.create_task_group() as tg:
        for _ in range(40):
            tg.start_soon(caller)
    times.sort()
    for i, start in enumerate(times):
        for j in range(i, len(times)):
            assert j - i + 1 <= burst + rate * (times[j] - start) + 1e-6


def test_one_bucket_serves_several_event_loops_and_threads() -> None:
    rate, burst, per_loop = 100.0, 2, 30
    bucket = AsyncLeakyBucket(BucketConfig(capacity=rate, seconds=1, burst=burst), max_concurrent=1)
    errors: list[BaseException] = []

    async def main() -> None:
        for _ in range(per_loop):
            async with bucket:
                await anyio.sleep(0)

    def run(backend: str) -> None:
        try:
            anyio.run(main, backend=backend)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    started = time.monotonic()
    threads = [threading.Thread(target=run, args=(b,)) for b in ("asyncio", "trio", "asyncio")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    elapsed = time.monotonic() - started
    assert errors == []
    assert bucket.stats.admitted == 3 * per_loop
    assert elapsed >= (3 * per_loop - burst) / rate - 0.01


def test_many_tasks_in_virtual_time_with_trio_mock_clock() -> None:
    """trio's MockClock + AnyioClock: 200 concurrent tasks, exact schedule, no real waiting."""
    import trio.testing

    bucket = AsyncLeakyBucket(BucketConfig(capacity=10, seconds=1), clock=AnyioClock())
    admitted: list[float] = []

    async def caller() -> None:
        await bucket.acquire()
        admitted.append(anyio.current_time())

    async def main() -> float:
        start = anyio.current_time()
        async with anyio.create_task_group() as tg:
            for _ in range(200):
                tg.start_soon(caller)
        return start

    started = time.monotonic()
    start = anyio.run(
        main,
        backend="trio",
        backend_options={"clock": trio.testing.MockClock(autojump_threshold=0)},
    )
    assert time.monotonic() - started < 5
    offsets = sorted(t - start for t in admitted)
    expected = [0.0] * 10 + [0.1 * k for k in range(1, 191)]
    assert offsets == pytest.approx(expected, abs=1e-6)


async def test_is_an_async_bucket(async_cls: Any) -> None:
    assert issubclass(async_cls, AsyncBucket)
    assert async_cls.__name__ in repr(async_cls())
