"""One backend object for sync callers, asyncio and trio tasks, and event loops in threads."""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any

import anyio
import pytest

from limitor.backends.base import LimitSpec, Part
from limitor.testing import FakeClock

INF = float("inf")


def store_for(backend: Any, rate: float, burst: float) -> Any:
    spec = LimitSpec((Part(rate, burst),), name=f"async-{uuid.uuid4().hex}")
    return backend.bind(spec, FakeClock())


@pytest.mark.anyio
async def test_every_async_verb_acts_on_the_shared_state(backend: Any) -> None:
    store = store_for(backend, 10, 10)
    grant = await store.areserve(None, (4,), INF)
    assert grant.admitted
    assert grant.delay == 0.0
    assert store.peek(None, (1,))[0].remaining == pytest.approx(6, abs=0.3)  # seen by sync
    await store.acharge(None, (6,))
    status = (await store.apeek(None, (1,)))[0]
    assert status.remaining < 0.5
    waiting = await store.areserve(None, (2,), INF)
    assert waiting.delay == pytest.approx(0.2, abs=0.05)
    given, _ = await store.agive_back(None, (2,), waiting.ticket, cancel=True)
    assert given == pytest.approx(2)
    await store.ahold(None, 30)
    assert (await store.areserve(None, (1,), 0.0)).retry_after > 29
    await store.areset(None)
    assert (await store.areserve(None, (10,), 0.0)).admitted


@pytest.mark.anyio
async def test_a_caller_cancelled_during_the_call_gives_its_grant_back(own_server: Any) -> None:
    from limitor.backends.redis import RedisBackend

    backend = RedisBackend.from_url(own_server.url)
    store = store_for(backend, 0.01, 5)
    await store.areserve(None, (1,), INF)  # connected, scripts loaded
    own_server.pause()
    timer = threading.Timer(0.15, own_server.resume)
    timer.start()
    try:
        with anyio.move_on_after(0.02) as scope:
            await store.areserve(None, (3,), INF)  # admitted on the server, after the cancel
        assert scope.cancelled_caught
    finally:
        timer.join()
        own_server.resume()
    # On asyncio the abandoned call ends once the server resumes, and its undo call then
    # runs in the background: the grant comes back soon after, not at a fixed instant.
    deadline = anyio.current_time() + 2.0
    while True:
        status = (await store.apeek(None, (1,)))[0]
        if status.remaining > 3.95 or anyio.current_time() > deadline:
            break
        await anyio.sleep(0.01)
    assert status.remaining == pytest.approx(4, abs=0.05)  # only the first unit is taken
    assert (await store.areserve(None, (4,), 0.0)).admitted  # the connection still works
    await backend.aclose()
    backend.close()


def test_native_asyncio_cancellation_gives_the_grant_back_too(own_server: Any) -> None:
    from limitor.backends.redis import RedisBackend

    backend = RedisBackend.from_url(own_server.url)
    store = store_for(backend, 0.01, 5)

    async def main() -> float:
        await store.areserve(None, (1,), INF)
        own_server.pause()
        timer = threading.Timer(0.15, own_server.resume)
        timer.start()
        try:
            with pytest.raises(asyncio.TimeoutError):  # asyncio's own cancellation
                await asyncio.wait_for(store.areserve(None, (3,), INF), 0.02)
        finally:
            timer.join()
            own_server.resume()
        await asyncio.sleep(0.3)  # the call ends, then its grant is given back
        remaining = (await store.apeek(None, (1,)))[0].remaining
        await backend.aclose()
        return remaining

    assert asyncio.run(main()) == pytest.approx(4, abs=0.05)
    backend.close()


def test_sync_asyncio_trio_and_loops_in_threads_share_one_backend(backend: Any) -> None:
    import trio

    store = store_for(backend, 1, 1000)
    per_caller = 25
    errors: list[BaseException] = []

    async def calls() -> None:
        for _ in range(per_caller):
            assert (await store.areserve(None, (1,), 0.0)).admitted

    async def many_tasks() -> None:
        await asyncio.gather(*(calls() for _ in range(4)))

    def run(target: Any) -> None:
        try:
            target()
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    def sync_calls() -> None:
        for _ in range(per_caller):
            assert store.reserve(None, (1,), 0.0).admitted

    threads = [threading.Thread(target=run, args=(lambda: asyncio.run(many_tasks()),))]
    threads += [threading.Thread(target=run, args=(lambda: asyncio.run(calls()),))]
    threads += [threading.Thread(target=run, args=(lambda: trio.run(calls),))]
    threads += [threading.Thread(target=run, args=(sync_calls,))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    taken = 1000 - store.peek(None, (1,))[0].remaining
    assert taken == pytest.approx(7 * per_caller, abs=0.5)  # every call counted once
