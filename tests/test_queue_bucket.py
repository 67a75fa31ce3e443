"""The queue-flavoured async leaky bucket kept at limitor.extra (0.6): bounded waiters."""

from __future__ import annotations

import anyio
import pytest
from anyio import wait_all_tasks_blocked

from limitor.configs import BucketConfig
from limitor.errors import ConfigError, QueueFull, RateLimitExceeded
from limitor.extra.leaky_bucket.core import AsyncLeakyBucket
from limitor.testing import FakeClock

pytestmark = pytest.mark.anyio


class StuckClock(FakeClock):
    async def asleep(self, seconds: float) -> None:
        await anyio.sleep_forever()


async def test_a_full_queue_is_an_error_at_once_never_a_hang() -> None:
    bucket = AsyncLeakyBucket(BucketConfig(capacity=1, seconds=1), max_size=2, clock=StuckClock())
    await bucket.acquire()  # the burst
    async with anyio.create_task_group() as tg:
        tg.start_soon(bucket.acquire)
        tg.start_soon(bucket.acquire)
        await wait_all_tasks_blocked()
        with pytest.raises(QueueFull) as info:
            await bucket.acquire()
        assert isinstance(info.value, RateLimitExceeded)
        assert info.value.retry_after == pytest.approx(3.0)
        assert bucket.stats.waiting == 2
        tg.cancel_scope.cancel()
    # The refused caller took nothing; the cancelled ones gave their slots back.
    assert (await bucket.reserve()).delay == pytest.approx(1.0)


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
