"""Sync buckets: the 0.6 usage, shaping on a fake clock, failing fast, giving back."""

from __future__ import annotations

import math
import threading
import time
from typing import Any

import pytest

from limitor.configs import BucketConfig, Capacity
from limitor.errors import (
    AcquireTimeout,
    AmountError,
    AmountTypeError,
    ConfigError,
    ReservationError,
)
from limitor.leaky_bucket.core import SyncLeakyBucket
from limitor.testing import FakeClock


def test_the_06_readme_snippet_runs_unchanged() -> None:
    bucket = SyncLeakyBucket(BucketConfig(capacity=100_000, seconds=1))
    started = time.monotonic()
    bucket.acquire(amount=20_000)
    with bucket:
        pass
    assert time.monotonic() - started < 1.0  # within the burst: no waiting
    assert bucket.status().remaining == pytest.approx(100_000 - 20_001, abs=1000)


def test_saturated_acquires_end_exactly_on_schedule(sync_cls: Any, clock: FakeClock) -> None:
    bucket = sync_cls(BucketConfig(capacity=10, seconds=1), clock=clock)
    for _ in range(1000):
        bucket.acquire()
    assert clock.now() == pytest.approx(99.0, abs=1e-9)
    assert bucket.stats.admitted == 1000
    assert bucket.stats.waited == 990


def test_burst_goes_at_once_then_the_rate(sync_cls: Any, clock: FakeClock) -> None:
    bucket = sync_cls(BucketConfig(capacity=2, seconds=1), clock=clock)
    times = []
    for _ in range(6):
        bucket.acquire()
        times.append(clock.now())
    assert times == pytest.approx([0, 0, 0.5, 1.0, 1.5, 2.0])


def test_timeout_that_cannot_be_met_raises_at_once_and_takes_nothing(
    sync_cls: Any, clock: FakeClock
) -> None:
    bucket = sync_cls(BucketConfig(capacity=1, seconds=1), clock=clock)
    bucket.acquire()
    with pytest.raises(AcquireTimeout) as info:
        bucket.acquire(timeout=0.5)
    assert info.value.retry_after == pytest.approx(1.0)
    assert isinstance(info.value, TimeoutError)
    assert clock.sleeps == []  # raised before sleeping
    assert clock.now() == 0.0
    bucket.acquire(timeout=1.0)  # the refused call took nothing: the next slot is still at 1.0
    assert clock.now() == pytest.approx(1.0)
    assert bucket.stats.rejected == 1


def test_timeout_that_can_be_met_waits(sync_cls: Any, clock: FakeClock) -> None:
    bucket = sync_cls(BucketConfig(capacity=1, seconds=1), clock=clock)
    bucket.acquire(timeout=0)
    bucket.acquire(timeout=1.0)
    assert clock.now() == pytest.approx(1.0)


def test_amount_above_the_burst_raises_at_once(sync_cls: Any, clock: FakeClock) -> None:
    bucket = sync_cls(BucketConfig(capacity=10, seconds=1), clock=clock)
    with pytest.raises(AmountError, match="larger than the burst"):
        bucket.acquire(11)
    with pytest.raises(AmountError):
        bucket.try_acquire(11)
    with pytest.raises(AmountError):
        bucket.reserve(11)
    assert clock.sleeps == []
    assert bucket.status().remaining == 10


@pytest.mark.parametrize(
    ("amount", "error"),
    [
        (math.nan, AmountError),
        (-1, AmountError),
        (math.inf, AmountError),
        (-math.inf, AmountError),
        ("1", AmountTypeError),
        (None, AmountTypeError),
        (True, AmountTypeError),
        ([1], AmountTypeError),
    ],
)
def test_bad_amounts_get_a_clear_error_never_a_hang(
    sync_cls: Any, clock: FakeClock, amount: object, error: type
) -> None:
    bucket = sync_cls(BucketConfig(capacity=10, seconds=1), clock=clock)
    for verb in (bucket.acquire, bucket.try_acquire, bucket.reserve, bucket.capacity_info):
        with pytest.raises(error, match="amount"):
            verb(amount)
    assert clock.sleeps == []
    assert bucket.status().remaining == 10


@pytest.mark.parametrize("timeout", [-1, math.nan, "1", True])
def test_bad_timeouts_are_rejected(sync_cls: Any, clock: FakeClock, timeout: object) -> None:
    bucket = sync_cls(clock=clock)
    with pytest.raises(ConfigError, match="timeout"):
        bucket.acquire(1, timeout=timeout)


def test_zero_amount_is_a_no_op(sync_cls: Any, clock: FakeClock) -> None:
    bucket = sync_cls(BucketConfig(capacity=1, seconds=1), clock=clock)
    bucket.acquire(1)
    bucket.acquire(0)
    assert bucket.try_acquire(0) is True
    assert bucket.reserve(0).delay == 0
    assert clock.now() == 0.0


def test_numbers_of_other_types_are_accepted(sync_cls: Any, clock: FakeClock) -> None:
    from decimal import Decimal
    from fractions import Fraction

    bucket = sync_cls(BucketConfig(capacity=10, seconds=1), clock=clock)
    bucket.acquire(Decimal("2.5"))
    bucket.acquire(Fraction(5, 2))
    assert bucket.status().remaining == pytest.approx(5)


def test_try_acquire_polices(sync_cls: Any, clock: FakeClock) -> None:
    bucket = sync_cls(BucketConfig(capacity=2, seconds=1), clock=clock)
    assert [bucket.try_acquire() for _ in range(3)] == [True, True, False]
    clock.advance(0.5)
    assert bucket.try_acquire() is True
    assert bucket.try_acquire() is False
    assert clock.sleeps == []
    assert bucket.stats.rejected == 2


def test_reserve_commits_and_leaves_the_waiting_to_the_caller(
    sync_cls: Any, clock: FakeClock
) -> None:
    bucket = sync_cls(BucketConfig(capacity=1, seconds=1), clock=clock)
    first = bucket.reserve()
    second = bucket.reserve()
    assert (first.delay, second.delay) == (0, pytest.approx(1.0))
    assert second.time_to_act == pytest.approx(1.0)
    second.wait()
    assert clock.now() == pytest.approx(1.0)
    assert second.delay_from(clock.now()) == 0


def test_cancel_gives_a_waiting_reservation_back(sync_cls: Any, clock: FakeClock) -> None:
    bucket = sync_cls(BucketConfig(capacity=1, seconds=1), clock=clock)
    bucket.acquire()
    reservation = bucket.reserve()
    assert reservation.cancel() == pytest.approx(1)
    assert reservation.ok is False
    assert reservation.cancel() == 0  # twice does nothing
    stats = bucket.stats
    assert (stats.admitted, stats.waited, stats.total_wait, stats.cancelled) == (1, 0, 0.0, 1)
    assert bucket.reserve().delay == pytest.approx(1.0)  # the slot at 1.0 is free again


@pytest.mark.parametrize("order", ["fifo", "lifo", "middle-out"])
def test_cancelling_every_waiter_in_any_order_gives_everything_back(
    sync_cls: Any, clock: FakeClock, order: str
) -> None:
    bucket = sync_cls(BucketConfig(capacity=1, seconds=1), clock=clock)
    bucket.acquire()
    held = [bucket.reserve() for _ in range(6)]
    if order == "lifo":
        held.reverse()
    elif order == "middle-out":
        held = held[2:4] + held[:2] + held[4:]
    assert sum(reservation.cancel() for reservation in held) == pytest.approx(6)
    assert bucket.reserve().delay == pytest.approx(1.0)


def test_a_cancelled_reservation_that_a_live_one_follows_leaves_a_hole_a_later_caller_takes(
    sync_cls: Any, clock: FakeClock
) -> None:
    bucket = sync_cls(BucketConfig(capacity=1, seconds=1), clock=clock)
    bucket.acquire()
    first, second = bucket.reserve(), bucket.reserve()  # at 1.0 and 2.0
    assert first.cancel() == 1  # its slot at 1.0 is free again...
    assert second.delay == pytest.approx(2.0)  # ...and the standing waiter keeps its time
    assert bucket.reserve().delay == pytest.approx(1.0)  # the next caller takes the hole
    assert bucket.reserve().delay == pytest.approx(3.0)  # and then the end of the queue


def test_undoing_a_later_reservation_never_undoes_past_a_live_one(
    sync_cls: Any, clock: FakeClock
) -> None:
    bucket = sync_cls(BucketConfig(capacity=1, seconds=1), clock=clock)
    bucket.acquire()
    first, second, third = bucket.reserve(), bucket.reserve(), bucket.reserve()  # 1, 2, 3
    assert first.cancel() == 1  # a hole at 1.0: second and third keep their times
    assert third.cancel() == 1  # the end rolls back to 2.0, not past second (still live)
    assert bucket.reserve().delay == pytest.approx(1.0)  # the hole
    assert bucket.reserve().delay == pytest.approx(3.0)  # after second
    assert second.ok


def test_cancel_after_its_time_gives_nothing_back(sync_cls: Any, clock: FakeClock) -> None:
    bucket = sync_cls(BucketConfig(capacity=1, seconds=1), clock=clock)
    bucket.acquire()
    reservation = bucket.reserve()
    clock.advance(1.0)
    assert reservation.cancel() == 0
    assert bucket.reserve().delay == pytest.approx(1.0)


def test_interrupted_sleep_gives_the_reservation_back(sync_cls: Any) -> None:
    class InterruptingClock(FakeClock):
        def sleep(self, seconds: float) -> None:
            raise KeyboardInterrupt

    clock = InterruptingClock()
    bucket = sync_cls(BucketConfig(capacity=1, seconds=1), clock=clock)
    bucket.acquire()
    with pytest.raises(KeyboardInterrupt):
        bucket.acquire()
    assert bucket.reserve().delay == pytest.approx(1.0)
    assert bucket.stats.waiting == 0


def test_reservation_reconcile_refunds_and_charges(sync_cls: Any, clock: FakeClock) -> None:
    bucket = sync_cls(BucketConfig(capacity=1000, seconds=60), clock=clock)  # 1000 TPM
    reservation = bucket.reserve(1000)
    reservation.reconcile(400)  # 600 unused come back at once
    assert bucket.reserve(600).delay == 0
    other = bucket.reserve(1)  # the bucket is empty: 1 unit takes 0.06 s
    assert other.delay == pytest.approx(0.06)
    other.reconcile(601)  # 600 units of debt: the next unit goes 0.06 + 36 + 0.06 s from now
    assert bucket.reserve(1).delay == pytest.approx(36.12, abs=1e-6)
    reservation.cancel()
    with pytest.raises(ReservationError):
        reservation.reconcile(1)
    with pytest.raises(AmountError):
        other.reconcile(-1)


def test_06_acquire_ctx_and_reconcile(sync_cls: Any, clock: FakeClock) -> None:
    bucket = sync_cls(BucketConfig(capacity=100_000, seconds=60), clock=clock)
    estimated = 500
    with bucket.acquire_ctx(amount=estimated) as entered:
        assert entered is bucket
        bucket.reconcile(actual=450, estimated=estimated)
    assert bucket.status().remaining == pytest.approx(100_000 - 450)
    bucket.reconcile(actual=2_000, estimated=1_000)  # outside a block: debt on the bucket
    assert bucket.status().remaining == pytest.approx(100_000 - 1_450)


def test_reconcile_never_raises_for_debt_beyond_the_burst(sync_cls: Any, clock: FakeClock) -> None:
    bucket = sync_cls(BucketConfig(capacity=10, seconds=1), clock=clock)
    with bucket.acquire_ctx(5):
        bucket.reconcile(actual=55, estimated=5)
    assert clock.sleeps == []
    bucket.acquire()  # waits for the debt: 55 used, 10 free at once, 45 + 1 at 10/s
    assert clock.now() == pytest.approx(4.6)


def test_capacity_info_is_read_only(sync_cls: Any, clock: FakeClock) -> None:
    bucket = sync_cls(BucketConfig(capacity=4, seconds=1), clock=clock)
    bucket.acquire(3)
    for _ in range(5):
        assert bucket.capacity_info(2) == Capacity(
            has_capacity=False, needed_capacity=pytest.approx(1)
        )
    assert bucket.capacity_info(1) == Capacity(has_capacity=True, needed_capacity=pytest.approx(0))
    bucket.acquire(1)
    assert clock.now() == 0.0


def test_status_maps_to_rate_limit_headers(sync_cls: Any, clock: FakeClock) -> None:
    bucket = sync_cls(BucketConfig(capacity=10, seconds=10), clock=clock)  # 1 per second
    bucket.acquire(10)
    status = bucket.status()
    assert status.limit == 10
    assert status.remaining == 0
    assert status.retry_after == pytest.approx(1.0)
    assert status.reset_after == pytest.approx(10.0)
    assert status.headers(refused=True) == {
        "RateLimit-Limit": "10",
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": "10",
        "Retry-After": "1",
    }
    assert "Retry-After" not in status.headers()  # only a refusal (a 429) carries it
    clock.advance(2.5)
    assert bucket.status().remaining == pytest.approx(2.5)


def test_repr_shows_live_state(sync_cls: Any, clock: FakeClock) -> None:
    bucket = sync_cls(BucketConfig(capacity=5, seconds=1), clock=clock)
    bucket.acquire(2)
    text = repr(bucket)
    assert sync_cls.__name__ in text
    assert "rate=5/s" in text
    assert "remaining=3" in text


def test_reset_makes_the_bucket_full(sync_cls: Any, clock: FakeClock) -> None:
    bucket = sync_cls(BucketConfig(capacity=1, seconds=1), clock=clock)
    bucket.acquire()
    bucket.reset()
    assert bucket.try_acquire()
    assert bucket.stats.admitted == 1


def test_properties(sync_cls: Any) -> None:
    bucket = sync_cls(BucketConfig(capacity=6, seconds=2, burst=3))
    assert (bucket.capacity, bucket.seconds, bucket.rate, bucket.burst) == (6, 2, 3.0, 3.0)
    assert bucket.config == BucketConfig(6, 2, 3)
    assert bucket.engine.rate == 3.0


def test_construction_rejects_what_is_not_a_config_or_clock(sync_cls: Any) -> None:
    with pytest.raises(ConfigError, match="bucket_config"):
        sync_cls({"capacity": 1})
    with pytest.raises(ConfigError, match="clock"):
        sync_cls(clock=time.monotonic)


def test_eight_threads_share_fairly_and_never_over_admit(sync_cls: Any) -> None:
    """Real threads and real time: committed times obey the bound; each thread gets a fair share."""
    rate, burst = 200.0, 4
    bucket = sync_cls(BucketConfig(capacity=rate, seconds=1, burst=burst))
    admitted: list[list[float]] = [[] for _ in range(8)]
    stop = [0.0]
    # every thread starts together (a thread started late on a loaded machine had less
    # time, not a smaller share)
    start = threading.Barrier(8, action=lambda: stop.__setitem__(0, time.monotonic() + 0.8))

    def worker(index: int) -> None:
        start.wait()
        while time.monotonic() < stop[0]:
            reservation = bucket.reserve()
            reservation.wait()
            admitted[index].append(reservation.time_to_act)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    times = sorted(t for per_thread in admitted for t in per_thread)
    for i, start in enumerate(times):
        for j in range(i, len(times)):
            assert j - i + 1 <= burst + rate * (times[j] - start) + 1e-6
    counts = [len(per_thread) for per_thread in admitted]
    jain = sum(counts) ** 2 / (len(counts) * sum(c * c for c in counts))
    assert jain > 0.9, counts
