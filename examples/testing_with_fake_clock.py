"""Testing rate-limited code in virtual time, with exact assertions and no real waiting.

* ``limitor.testing.FakeClock``: pass it as ``clock=`` to any bucket or decorator. Its
  sleeps move virtual time forward and return at once, so a test of "10 calls at 2 per
  second" runs in microseconds and can assert the exact schedule.
* ``clock.advance(s)`` moves time forward by hand (to refill a bucket between calls).
* ``clock.sleeps`` records every wait, so a test can check that nothing waited.
* For many *concurrent* async tasks, trio's ``MockClock(autojump_threshold=0)`` with
  ``limitor.AnyioClock`` (which reads the event loop's time) gives virtual time too.

The functions are written as pytest tests (``python -m pytest
examples/testing_with_fake_clock.py`` runs them) and run as a script as well.

Run it with::

    python examples/testing_with_fake_clock.py
"""

from __future__ import annotations

import importlib.util

import anyio

from limitor import AnyioClock, AsyncLeakyBucket, BucketConfig, SyncLeakyBucket, rate_limit
from limitor.testing import FakeClock


def test_a_decorated_function_keeps_its_schedule() -> None:
    clock = FakeClock()
    calls: list[float] = []

    @rate_limit(capacity=2, seconds=1, clock=clock)
    def send(message: str) -> None:
        calls.append(clock.now())

    for number in range(6):
        send(f"message {number}")
    assert calls == [0.0, 0.0, 0.5, 1.0, 1.5, 2.0]  # a burst of 2, then one every 0.5 s
    assert clock.sleeps == [0.5, 0.5, 0.5, 0.5]


def test_policing_with_advance() -> None:
    clock = FakeClock()
    bucket = SyncLeakyBucket(BucketConfig(capacity=2, seconds=1), clock=clock)
    assert [bucket.try_acquire() for _ in range(3)] == [True, True, False]
    clock.advance(0.5)  # half a second refills one unit
    assert bucket.try_acquire() is True
    assert clock.sleeps == []  # policing never waits


def test_async_code_on_a_fake_clock() -> None:
    clock = FakeClock()
    bucket = AsyncLeakyBucket(BucketConfig(capacity=10, seconds=1), clock=clock)

    async def main() -> None:
        for _ in range(30):
            await bucket.acquire()

    anyio.run(main)
    assert abs(clock.now() - 2.0) < 1e-9  # 10 at once, then 20 at 10 per second


def test_many_concurrent_tasks_with_trios_mock_clock() -> None:
    import trio.testing

    bucket = AsyncLeakyBucket(BucketConfig(capacity=10, seconds=1), clock=AnyioClock())
    done: list[float] = []

    async def task() -> None:
        await bucket.acquire()
        done.append(anyio.current_time())

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            for _ in range(100):
                tg.start_soon(task)

    clock = trio.testing.MockClock(autojump_threshold=0)  # jumps to the next sleeper
    anyio.run(main, backend="trio", backend_options={"clock": clock})
    assert len(done) == 100
    assert abs(max(done) - min(done) - 9.0) < 1e-6  # 90 calls after the burst, 0.1 s apart


if __name__ == "__main__":
    tests = [
        test_a_decorated_function_keeps_its_schedule,
        test_policing_with_advance,
        test_async_code_on_a_fake_clock,
    ]
    if importlib.util.find_spec("trio") is not None:
        tests.append(test_many_concurrent_tasks_with_trios_mock_clock)
    else:
        print("trio is not installed: skipping the MockClock test")
    for test in tests:
        test()
        print(f"ok  {test.__name__}")
    print(f"{len(tests)} tests passed in virtual time")
