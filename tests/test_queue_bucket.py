"""The queue-flavoured async leaky bucket kept at limitor.extra (0.6): bounded waiters."""

from __future__ import annotations

import anyio
import pytest
from anyio import wait_all_tasks_blocked

from limitor.configs import BucketConfig
from limitor.errors import AcquireTimeout, ConfigError
from limitor.extra.leaky_bucket.core import AsyncLeakyBucket
from limitor.testing import FakeClock

pytestmark = pytest.mark.anyio


class StuckClock(FakeClock):
    async def asleep(self, seconds: float) -> None:
        await anyio.sleep_forever()


class ManualClock(FakeClock):
    """Time moves only by ``advance``; sleepers wake when it reaches their time."""

    def __init__(self) -> None:
        super().__init__()
        self.moved = anyio.Event()

    async def asleep(self, seconds: float) -> None:
        target = self.now() + seconds
        while self.now() < target:
            await self.moved.wait()

    async def advance_to(self, when: float) -> None:
        self.advance(when - self.now())
        self.moved.set()
        self.moved = anyio.Event()
        await wait_all_tasks_blocked()


async def test_a_full_queue_makes_callers_wait_for_room_never_refuses_them() -> None:
    # limitor 0.6: a full queue blocked its callers (shaping drops nothing).
    bucket = AsyncLeakyBucket(BucketConfig(capacity=1, seconds=1), max_size=2, clock=StuckClock())
    await bucket.acquire()  # the burst
    async with anyio.create_task_group() as tg:
        tg.start_soon(bucket.acquire)
        tg.start_soon(bucket.acquire)
        await wait_all_tasks_blocked()
        tg.start_soon(bucket.acquire)  # no room: it waits for some
        await wait_all_tasks_blocked()
        assert bucket.stats.waiting == 2  # the queue holds max_size callers, no more
        tg.cancel_scope.cancel()
    # The cancelled callers (in the queue or waiting for room) gave everything back.
    assert (await bucket.reserve()).delay == pytest.approx(1.0)


async def test_callers_beyond_max_size_wait_for_room_in_order() -> None:
    clock = FakeClock()
    bucket = AsyncLeakyBucket(BucketConfig(capacity=1, seconds=1), max_size=1, clock=clock)
    admitted: list[tuple[int, float]] = []

    async def caller(index: int) -> None:
        await bucket.acquire()
        admitted.append((index, clock.now()))

    async with anyio.create_task_group() as tg:
        for index in range(1, 5):
            tg.start_soon(caller, index)
            await wait_all_tasks_blocked()
    assert admitted == [(1, 0.0), (2, 1.0), (3, 2.0), (4, 3.0)]
    assert bucket.stats.rejected == 0


async def test_a_timeout_the_queue_cannot_meet_raises_at_once_with_retry_after() -> None:
    clock = ManualClock()
    bucket = AsyncLeakyBucket(BucketConfig(capacity=1, seconds=1), max_size=1, clock=clock)
    await bucket.acquire()
    async with anyio.create_task_group() as tg:
        tg.start_soon(bucket.acquire)  # in the queue until 1.0
        await wait_all_tasks_blocked()
        with pytest.raises(AcquireTimeout, match=r"retry in 2s") as info:
            await bucket.acquire(timeout=0.5)  # room at 1.0, its slot at 2.0
        assert isinstance(info.value, TimeoutError)
        assert info.value.retry_after == pytest.approx(2.0)
        assert clock.now() == 0.0  # raised before any wait
        await clock.advance_to(1.0)
    assert (await bucket.reserve()).delay == pytest.approx(1.0)  # it took nothing


async def test_a_timeout_that_can_be_met_waits_for_room_then_for_its_slot() -> None:
    clock = ManualClock()
    bucket = AsyncLeakyBucket(BucketConfig(capacity=1, seconds=1), max_size=1, clock=clock)
    await bucket.acquire()
    done: list[float] = []

    async def with_timeout() -> None:
        await bucket.acquire(timeout=2.5)
        done.append(clock.now())

    async with anyio.create_task_group() as tg:
        tg.start_soon(bucket.acquire)  # in the queue until 1.0
        await wait_all_tasks_blocked()
        tg.start_soon(with_timeout)  # room at 1.0, its slot at 2.0
        await wait_all_tasks_blocked()
        assert bucket.stats.waiting == 1
        for when in (1.0, 2.0):
            await clock.advance_to(when)
    assert done == [2.0]


async def test_a_caller_that_gets_room_too_late_for_its_timeout_raises_then() -> None:
    clock = ManualClock()
    bucket = AsyncLeakyBucket(BucketConfig(capacity=1, seconds=1), max_size=1, clock=clock)
    await bucket.acquire()
    outcome: list[tuple[float, float]] = []

    async def with_timeout() -> None:
        try:
            # At least 2.0 s away (<= 2.5), but the caller waiting for room before it
            # takes the 2.0 slot: room at 2.0, its slot at 3.0.
            await bucket.acquire(timeout=2.5)
        except AcquireTimeout as error:
            outcome.append((clock.now(), error.retry_after))

    async with anyio.create_task_group() as tg:
        tg.start_soon(bucket.acquire)  # in the queue, its slot at 1.0
        await wait_all_tasks_blocked()
        tg.start_soon(bucket.acquire)  # waits for room, then its slot at 2.0
        await wait_all_tasks_blocked()
        tg.start_soon(with_timeout)
        await wait_all_tasks_blocked()
        for when in (1.0, 2.0):
            await clock.advance_to(when)
        assert outcome == [(2.0, pytest.approx(1.0))]
        await clock.advance_to(3.0)
    assert (await bucket.reserve()).delay == pytest.approx(0.0)  # it took nothing


async def test_waiters_are_served_in_order() -> None:
    clock = FakeClock()
    bucket = AsyncLeakyBucket(BucketConfig(capacity=2, seconds=1), max_size=10, clock=clock)
    order: list[int] = []

    async def caller(index: int) -> None:
        await bucket.acquire()
        order.append(index)

    async with anyio.create_task_group() as tg:
        for index in range(8):
            tg.start_soon(caller, index)
            await wait_all_tasks_blocked()
    assert order == list(range(8))
    assert clock.now() == pytest.approx(3.0)


async def test_unbounded_by_default_and_06_shutdown() -> None:
    bucket = AsyncLeakyBucket(BucketConfig(capacity=5, seconds=1), clock=FakeClock())
    assert bucket.max_size == 0
    async with bucket:
        pass
    await bucket.shutdown()
    await bucket.shutdown()


@pytest.mark.parametrize("max_size", [-1, 1.5, True, "2"])
def test_max_size_is_validated(max_size: object) -> None:
    with pytest.raises(ConfigError, match="max_size"):
        AsyncLeakyBucket(max_size=max_size)  # type: ignore[arg-type]
