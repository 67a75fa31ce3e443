"""The concurrency gate behind max_concurrent: FIFO, cancellation-safe, across loops."""

from __future__ import annotations

import threading

import anyio
import pytest
from anyio import wait_all_tasks_blocked

from limitor._gate import ConcurrencyGate

pytestmark = pytest.mark.anyio


async def test_waiters_get_in_first_come_first_served() -> None:
    gate = ConcurrencyGate(1)
    order: list[int] = []
    await gate.acquire()

    async def waiter(index: int) -> None:
        await gate.acquire()
        order.append(index)
        gate.release()

    async with anyio.create_task_group() as tg:
        for index in range(5):
            tg.start_soon(waiter, index)
            await wait_all_tasks_blocked()
        assert gate.waiting == 5
        gate.release()
    assert order == [0, 1, 2, 3, 4]
    assert gate.active == 0


async def test_a_place_handed_to_a_cancelled_waiter_is_passed_on() -> None:
    gate = ConcurrencyGate(1)
    await gate.acquire()
    scope = anyio.CancelScope()

    async def waiter() -> None:
        with scope:
            await gate.acquire()
            gate.release()

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        await wait_all_tasks_blocked()
        gate.release()  # hands the place to the waiter...
        scope.cancel()  # ...which is cancelled before it runs
    assert gate.active == 0
    assert gate.waiting == 0
    with anyio.fail_after(1):
        await gate.acquire()


def test_a_waiter_on_one_loop_is_woken_by_a_release_from_another_thread() -> None:
    gate = ConcurrencyGate(1)
    got_in = threading.Event()
    holding = threading.Event()
    release_now = threading.Event()

    async def holder() -> None:
        await gate.acquire()
        holding.set()
        await anyio.to_thread.run_sync(release_now.wait)
        gate.release()

    async def waiter() -> None:
        await anyio.to_thread.run_sync(holding.wait)
        await gate.acquire()
        got_in.set()
        gate.release()

    threads = [
        threading.Thread(target=anyio.run, args=(holder,), kwargs={"backend": "asyncio"}),
        threading.Thread(target=anyio.run, args=(waiter,), kwargs={"backend": "trio"}),
    ]
    for thread in threads:
        thread.start()
    holding.wait(5)
    for _ in range(500):  # until the waiter is queued on the gate
        if gate.waiting == 1:
            break
        threading.Event().wait(0.01)
    assert gate.waiting == 1
    assert not got_in.is_set()
    release_now.set()
    assert got_in.wait(5)
    for thread in threads:
        thread.join(5)
    assert gate.active == 0
