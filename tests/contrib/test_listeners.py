"""Listener hooks on the limiters: which event fires for which decision, at no cost unhooked."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from limitor import PerUserLimiter, RateLimitExceeded, rate_limit
from limitor.configs import BucketConfig
from limitor.errors import AcquireTimeout, AmountError, ConfigTypeError
from limitor.listeners import BaseListener, LimitEvent, Listener
from limitor.testing import FakeClock


def test_without_listeners_the_fast_path_calls_the_engine_directly(sync_cls: Any) -> None:
    bucket = sync_cls(BucketConfig(2, 1), clock=FakeClock())
    assert bucket._admit_now == bucket.store.admit_now  # the unhooked fast path
    listener = BaseListener()
    bucket.add_listener(listener)
    assert bucket._admit_now is None  # every decision now goes where listeners hear it
    bucket.remove_listener(listener)
    assert bucket._admit_now == bucket.store.admit_now
    assert bucket.listeners == ()


def test_sync_bucket_events_match_its_decisions(sync_cls: Any, recorder: Any) -> None:
    clock = FakeClock()
    bucket = sync_cls(BucketConfig(2, 1), clock=clock)
    bucket.name = "api"
    bucket.add_listener(recorder)
    bucket.acquire()  # at once
    assert bucket.try_acquire() is True  # at once
    assert bucket.try_acquire() is False  # refused, retry in 0.5 s
    bucket.acquire()  # waits 0.5 s
    with pytest.raises(AcquireTimeout):
        bucket.acquire(timeout=0.1)  # would wait 0.5 s
    assert recorder.kinds() == [
        "admitted",
        "admitted",
        "rejected",
        "admitted",
        "waited",
        "rejected",
    ]
    first, _, refused, waited, _, timed_out = (event for _, event in recorder.events)
    assert first == LimitEvent("api", None, 1.0, wait=0.0)
    assert refused.retry_after == pytest.approx(0.5)
    assert waited.wait == pytest.approx(0.5)
    assert timed_out.retry_after == pytest.approx(0.5)
    stats = bucket.stats
    assert stats.admitted == len(recorder.of("admitted"))
    assert stats.rejected == len(recorder.of("rejected"))
    assert stats.waited == len(recorder.of("waited"))


def test_reserve_reports_its_delay(sync_cls: Any, recorder: Any) -> None:
    bucket = sync_cls(BucketConfig(1, 1), clock=FakeClock())
    bucket.add_listener(recorder)
    bucket.reserve()
    reservation = bucket.reserve()
    assert [event.wait for event in recorder.of("admitted")] == [0.0, pytest.approx(1.0)]
    assert recorder.of("waited")[0].wait == pytest.approx(reservation.delay)


@pytest.mark.anyio
async def test_async_bucket_events(async_cls: Any, recorder: Any) -> None:
    bucket = async_cls(BucketConfig(2, 1), clock=FakeClock())
    bucket.add_listener(recorder)
    for _ in range(3):
        await bucket.acquire()
    assert await bucket.try_acquire() is False
    assert recorder.kinds() == ["admitted", "admitted", "admitted", "waited", "rejected"]
    assert recorder.of("waited")[0].wait == pytest.approx(0.5)


def test_per_user_events_carry_the_key(recorder: Any) -> None:
    limiter = PerUserLimiter(BucketConfig(1, 1), clock=FakeClock())
    limiter.add_listener(recorder)
    assert limiter.try_acquire("alice")
    assert not limiter.try_acquire("alice")
    assert limiter.try_acquire("bob")
    limiter.acquire("bob")  # waits 1 s
    assert [(kind, event.key) for kind, event in recorder.events] == [
        ("admitted", "alice"),
        ("rejected", "alice"),
        ("admitted", "bob"),
        ("admitted", "bob"),
        ("waited", "bob"),
    ]


def test_a_decorator_in_raise_mode_reports_refusals(recorder: Any) -> None:
    @rate_limit(capacity=1, seconds=1, on_limit="raise", clock=FakeClock())
    def ping() -> str:
        return "pong"

    ping.limiter.add_listener(recorder)
    ping()
    with pytest.raises(RateLimitExceeded):
        ping()
    assert recorder.kinds() == ["admitted", "rejected"]
    assert recorder.of("rejected")[0].retry_after == pytest.approx(1.0)


def test_no_event_once_removed_and_nothing_changes_in_decisions(recorder: Any) -> None:
    from limitor import SyncLeakyBucket

    hooked = SyncLeakyBucket(BucketConfig(3, 1), clock=FakeClock())
    plain = SyncLeakyBucket(BucketConfig(3, 1), clock=FakeClock())
    hooked.add_listener(recorder)
    outcomes = [(hooked.try_acquire(), plain.try_acquire()) for _ in range(5)]
    assert all(a == b for a, b in outcomes)
    assert hooked.stats == plain.stats
    hooked.remove_listener(recorder)
    hooked.remove_listener(recorder)  # twice: nothing happens
    hooked.try_acquire()
    assert len(recorder.events) == 5


def test_a_failing_listener_is_logged_and_changes_nothing(
    caplog: pytest.LogCaptureFixture, recorder: Any
) -> None:
    class Broken(BaseListener):
        def on_admitted(self, event: LimitEvent) -> None:
            raise RuntimeError("metrics are down")

    limiter = PerUserLimiter(BucketConfig(1, 1), clock=FakeClock())
    limiter.add_listener(Broken())
    limiter.add_listener(recorder)  # still called after the broken one
    with caplog.at_level(logging.ERROR, logger="limitor"):
        assert limiter.try_acquire("k") is True
    assert "metrics are down" in caplog.text
    assert recorder.kinds() == ["admitted"]


def test_a_listener_needs_all_four_methods() -> None:
    limiter = PerUserLimiter(BucketConfig(1, 1))
    with pytest.raises(ConfigTypeError, match="on_admitted"):
        limiter.add_listener(object())  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        limiter.add_listener(print)  # type: ignore[arg-type]
    assert isinstance(BaseListener(), Listener)


def test_name_must_be_a_string() -> None:
    limiter = PerUserLimiter(BucketConfig(1, 1))
    assert limiter.name is None
    limiter.name = "search"
    assert limiter.name == "search"
    with pytest.raises(ConfigTypeError, match="42"):
        limiter.name = 42  # type: ignore[assignment]


def test_hold_admits_nothing_until_it_ends(sync_cls: Any) -> None:
    clock = FakeClock()
    bucket = sync_cls(BucketConfig(2, 1), clock=clock)  # 2/s, burst 2
    bucket.hold(3)
    assert bucket.try_acquire() is False
    clock.advance(2.9)
    assert bucket.try_acquire() is False
    bucket.acquire()  # nothing before t=3; then the bucket is as it would have been (full)
    assert clock.now() == pytest.approx(3.0)


def test_hold_never_shortens_an_existing_wait(sync_cls: Any) -> None:
    clock = FakeClock()
    bucket = sync_cls(BucketConfig(1, 1), clock=clock)
    bucket.charge(5)  # 5 s of debt on top of a full bucket: empty until t=5
    bucket.hold(1)
    bucket.acquire()
    assert clock.now() == pytest.approx(5.0)


def test_charge_is_debt_beyond_the_burst(sync_cls: Any) -> None:
    clock = FakeClock()
    bucket = sync_cls(BucketConfig(2, 1), clock=clock)
    bucket.charge(3)  # 2 available, 1 more is debt
    assert bucket.status().remaining == 0
    bucket.acquire()
    assert clock.now() == pytest.approx(1.0)  # 1 unit of debt + 1 unit for this call
    bucket.charge(0)  # nothing
    with pytest.raises(AmountError, match="-1"):
        bucket.charge(-1)
    with pytest.raises(AmountError, match="nan"):
        bucket.hold(float("nan"))


def test_hold_and_charge_per_key() -> None:
    clock = FakeClock()
    limiter = PerUserLimiter(BucketConfig(1, 1), clock=clock)
    limiter.hold(10, key="held")
    limiter.charge(1, key="charged")
    assert not limiter.try_acquire("held")
    assert not limiter.try_acquire("charged")
    assert limiter.try_acquire("free")
    assert limiter.status("held").retry_after == pytest.approx(10.0)


def test_llm_limiter_events_and_hold(recorder: Any) -> None:
    from limitor.llm import LLMLimiter

    clock = FakeClock()
    limiter = LLMLimiter(requests_per_minute=60, tokens_per_minute=600, clock=clock)
    limiter.add_listener(recorder)
    assert limiter.try_acquire(600)  # all the tokens
    assert not limiter.try_acquire(10)
    limiter.acquire(60)  # waits 6 s for 60 tokens
    assert recorder.kinds() == ["admitted", "rejected", "admitted", "waited"]
    assert recorder.of("waited")[0].wait == pytest.approx(6.0)
    limiter.hold(30)
    assert not limiter.try_acquire(1)
    clock.advance(30)
    assert limiter.try_acquire(1)
    limiter.charge(600)  # tokens used elsewhere: debt on the tokens limit
    assert not limiter.try_acquire(1)


@pytest.mark.anyio
async def test_a_full_queue_that_cannot_take_a_timeout_is_a_rejection(recorder: Any) -> None:
    import anyio

    from limitor.errors import AcquireTimeout
    from limitor.extra.leaky_bucket.core import AsyncLeakyBucket

    class GatedClock(FakeClock):
        """Virtual time whose sleepers stay asleep until the gate opens."""

        gate = anyio.Event()

        async def asleep(self, seconds: float) -> None:
            await self.gate.wait()
            self.sleep(seconds)

    clock = GatedClock()
    bucket = AsyncLeakyBucket(BucketConfig(1, 1), max_size=1, clock=clock)
    bucket.add_listener(recorder)
    await bucket.acquire()
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(bucket.acquire)  # waits 1 s: the queue's one place
        await anyio.wait_all_tasks_blocked()
        with pytest.raises(AcquireTimeout):  # no room in time: refused at once
            await bucket.acquire(timeout=0.5)
        clock.gate.set()
    assert recorder.kinds() == ["admitted", "admitted", "waited", "rejected"]
    assert recorder.of("rejected")[0].retry_after == pytest.approx(2.0)
