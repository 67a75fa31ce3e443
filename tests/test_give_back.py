"""Giving back exactly, under threads, asyncio and trio; fork safety; nothing kept alive.

The waiters here sleep on a clock that never moves by itself (``FrozenClock``): they stay
waiting until they are cancelled, so a crowd of them can be cancelled all at once or at
random moments while the limit's times stay fixed, and the result is compared with the
same limit that never saw the crowd.
"""

from __future__ import annotations

import gc
import os
import random
import threading
import time
from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from limitor.configs import BucketConfig
from limitor.generic_cell_rate.core import SyncVirtualSchedulingGCRA
from limitor.leaky_bucket.core import SyncLeakyBucket
from limitor.per_user import PerUserLimiter
from limitor.results import Reservation
from limitor.testing import FakeClock

from .backends.store_driver import worst_excess
from .conftest import ASYNC_BUCKETS, SYNC_BUCKETS

CROWD = 60


class Interrupted(Exception):
    """What a thread's sleep raises when the test interrupts it."""


class FrozenClock:
    """Time stands still; sleepers wait until the test lets them go or cancels them."""

    def __init__(self) -> None:
        self.time = 0.0
        self.release = threading.Event()

    def now(self) -> float:
        return self.time

    def sleep(self, seconds: float) -> None:
        self.release.wait(10)
        raise Interrupted

    async def asleep(self, seconds: float) -> None:
        await anyio.sleep_forever()


def quiet_delays(cls: Any, amounts: list[float]) -> list[float]:
    """The delays ``amounts`` get on a fresh, busy bucket (of the same algorithm) that
    never saw a crowd."""
    sync_cls = next(c for c in SYNC_BUCKETS if c.engine_type is cls.engine_type)
    reference = sync_cls(BucketConfig(capacity=10, seconds=1), clock=FakeClock())
    for _ in range(10):
        reference.acquire()
    return [reference.reserve(amount).delay for amount in amounts]


def test_the_issue_snippet_on_every_bucket(sync_cls: Any) -> None:
    clock = FakeClock()
    bucket = sync_cls(BucketConfig(10, 1), clock=clock)
    for _ in range(10):
        bucket.acquire()
    reservations = [bucket.reserve() for _ in range(20)]
    given = sum(r.cancel() for r in reservations)
    assert given == pytest.approx(20.0, abs=1e-9)
    assert bucket.reserve().delay == pytest.approx(0.1, abs=1e-9)


@pytest.mark.parametrize("cls", SYNC_BUCKETS, ids=lambda cls: cls.__name__)
def test_a_crowd_of_threads_interrupted_at_once_gives_everything_back(cls: Any) -> None:
    clock = FrozenClock()
    bucket = cls(BucketConfig(capacity=10, seconds=1), clock=clock)
    for _ in range(10):
        bucket.acquire()
    interrupted: list[int] = []

    def wait(amount: float) -> None:
        try:
            bucket.acquire(amount)
        except Interrupted:
            interrupted.append(1)

    threads = [threading.Thread(target=wait, args=(1 + i % 3,)) for i in range(CROWD)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while bucket.stats.waiting < CROWD and time.monotonic() < deadline:
        time.sleep(0.005)
    assert bucket.stats.waiting == CROWD
    clock.release.set()
    for thread in threads:
        thread.join(10)
    assert len(interrupted) == CROWD
    assert bucket.stats.waiting == 0
    assert bucket.stats.cancelled == CROWD
    amounts = [1.0, 3.0, 2.0]
    assert [bucket.reserve(a).delay for a in amounts] == pytest.approx(
        quiet_delays(cls, amounts), abs=1e-9
    )


@pytest.mark.anyio
@pytest.mark.parametrize("cls", ASYNC_BUCKETS, ids=lambda cls: cls.__name__)
@pytest.mark.parametrize("how", ["all at once", "at random deadlines"])
async def test_a_crowd_of_tasks_cancelled_gives_everything_back(cls: Any, how: str) -> None:
    clock = FrozenClock()
    bucket = cls(BucketConfig(capacity=10, seconds=1), clock=clock)
    for _ in range(10):
        await bucket.acquire()
    rng = random.Random(7)
    async with anyio.create_task_group() as group:

        async def wait(amount: float, deadline: float) -> None:
            with anyio.move_on_after(deadline):
                await bucket.acquire(amount)

        for i in range(CROWD):
            deadline = 0.05 if how == "all at once" else rng.uniform(0.0, 0.1)
            group.start_soon(wait, 1 + i % 3, deadline)
    assert bucket.stats.waiting == 0
    assert bucket.stats.cancelled == CROWD
    amounts = [1.0, 3.0, 2.0]
    got = [(await bucket.reserve(a)).delay for a in amounts]
    assert got == pytest.approx(quiet_delays(cls, amounts), abs=1e-9)


@pytest.mark.anyio
async def test_a_crowd_half_cancelled_then_refilled_never_over_admits() -> None:
    """Some waiters are cancelled at random, new callers take their holes: the schedule of
    everything still admitted never exceeds ``burst + rate * w``."""
    clock = FrozenClock()
    bucket = ASYNC_BUCKETS[0](BucketConfig(capacity=10, seconds=1, burst=5), clock=clock)
    rng = random.Random(3)
    held = [await bucket.reserve(rng.choice([0.5, 1.0, 2.0])) for _ in range(CROWD)]
    for reservation in rng.sample(held, CROWD // 2):
        reservation.cancel()
    held += [await bucket.reserve(rng.choice([0.5, 1.0, 2.0])) for _ in range(CROWD // 2)]
    cells = [(r.time_to_act, r.amount) for r in held if r.ok]
    assert worst_excess(cells, 10, 5) <= 1e-9
    assert any(r.time_to_act < max(c for c, _ in cells) - 1 for r in held[CROWD:])  # holes used


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork() with threads, on purpose
@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_a_forked_child_acquires_while_parent_threads_hammer_the_bucket() -> None:
    bucket = SyncLeakyBucket(BucketConfig(capacity=1_000_000, seconds=1))
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            bucket.try_acquire()
            bucket.acquire()

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(10):
            pid = os.fork()
            if pid == 0:  # the child: the inherited lock may have been held at the fork
                started = time.monotonic()
                bucket.acquire()
                os._exit(0 if time.monotonic() - started < 1.0 else 3)
            deadline = time.monotonic() + 10
            while True:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    break
                if time.monotonic() > deadline:
                    os.kill(pid, 9)
                    os.waitpid(pid, 0)
                    pytest.fail("the forked child hung on the limiter")
                time.sleep(0.01)
            assert os.waitstatus_to_exitcode(status) == 0
    finally:
        stop.set()
        for thread in threads:
            thread.join()


def test_per_user_churn_with_cancellations_keeps_no_reservation_alive() -> None:
    clock = FakeClock()
    limiter = PerUserLimiter(BucketConfig(capacity=1, seconds=1), max_users=100, clock=clock)
    gc.collect()
    before = sum(isinstance(o, Reservation) for o in gc.get_objects())
    for user in range(3000):
        limiter.acquire(user)
        waiter, behind = limiter.reserve(user), limiter.reserve(user)  # at 1 s and 2 s
        assert waiter.cancel() == 1  # a hole before a standing waiter
        del waiter, behind
        clock.advance(0.01)
    clock.advance(3)
    for user in range(3000, 3200):  # full buckets make room for new users
        limiter.acquire(user)
    gc.collect()
    assert sum(isinstance(o, Reservation) for o in gc.get_objects()) == before
    assert limiter.stats.users <= 200


def test_reconcile_with_equal_amounts_is_a_no_op_even_above_the_burst() -> None:
    """limitor 0.6: ``reconcile(actual=5, estimated=5)`` on a bucket of burst 2 does nothing."""
    clock = FakeClock()
    bucket = SyncVirtualSchedulingGCRA(BucketConfig(capacity=2, seconds=1), clock=clock)
    bucket.acquire(2)
    bucket.reconcile(actual=5, estimated=5)
    assert bucket.reserve().delay == pytest.approx(0.5)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork() with threads, on purpose
@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_a_forked_child_gets_a_fresh_max_concurrent_gate_lock() -> None:
    bucket = ASYNC_BUCKETS[0](BucketConfig(capacity=1000, seconds=1), max_concurrent=2)
    gate = bucket._gate
    assert gate is not None
    gate._lock.acquire()  # as if another thread were inside the gate at the fork
    try:
        pid = os.fork()
        if pid == 0:
            os._exit(0 if gate._lock.acquire(timeout=1.0) else 3)
        _, status = os.waitpid(pid, 0)
    finally:
        gate._lock.release()
    assert os.waitstatus_to_exitcode(status) == 0


# -- a debt learned before the grant's time ------------------------------------------

DEBT_OPS = st.lists(
    st.tuples(
        st.sampled_from([0.5, 1, 2, 3]),
        st.sampled_from(["keep", "cancel", "refund", "debt", "debt"]),
        st.sampled_from([0.0, 0.0, 0.05, 0.3]),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(ops=DEBT_OPS, cls=st.sampled_from(SYNC_BUCKETS))
def test_a_debt_learned_before_the_grants_time_goes_no_earlier_than_the_grant(
    ops: list[Any], cls: Any
) -> None:
    """Reconciles above the estimate made at once, before each grant's time: every debt
    goes on the line no earlier than its grant's own time, so the actual use in any
    window stays within ``burst + rate*w`` plus one call's debt. (Charged from now, a
    debt could fill free line before the admission and let others over-admit there.)"""
    clock = FakeClock()
    bucket = cls(rate="4/s", burst=4, clock=clock)
    used: list[list[float]] = []
    for amount, what, step in ops:
        clock.advance(step)
        reservation = bucket.reserve(amount)
        if what == "cancel" and reservation.delay > 0:
            reservation.cancel()
            continue
        record = [reservation.time_to_act, float(amount)]
        used.append(record)
        if what == "refund":
            reservation.reconcile(amount / 2)
            record[1] = amount / 2
        elif what == "debt":
            reservation.reconcile(amount + 1)  # at once: the grant's time may lie ahead
            record[1] = amount + 1
    assert worst_excess([(at, units) for at, units in used], 4, 4 + 1) <= 1e-6
