"""The async half of the backend contract, and every verb's async twin over it.

Memory serves the async verbs without I/O; the limiter's verbs each make one store call
(sync or async) under the fail-open policy. Redis-specific behaviour (a paused or absent
server) is in ``tests/redis/test_redis_async_seam.py``.
"""

from __future__ import annotations

import inspect

import pytest

from limitor.backends.base import ALL_KEYS, LimitSpec, Part, Store, SyncStoreAsyncTwins
from limitor.backends.memory import MEMORY, MemoryStore
from limitor.testing import FakeClock

INF = float("inf")

ASYNC_VERBS = ("areserve", "agive_back", "acharge", "apeek", "ahold", "areset")


def test_the_contract_declares_its_async_half() -> None:
    for verb in ASYNC_VERBS:
        assert inspect.iscoroutinefunction(getattr(Store, verb)), verb
        assert inspect.iscoroutinefunction(getattr(SyncStoreAsyncTwins, verb)), verb


def test_the_memory_store_keeps_the_whole_contract() -> None:
    store = MEMORY.bind(LimitSpec((Part(10, 10),)), FakeClock())
    assert isinstance(store, MemoryStore)
    assert isinstance(store, Store)
    assert not store.does_io


@pytest.mark.anyio
async def test_memory_async_twins_act_on_the_same_state() -> None:
    clock = FakeClock()
    store = MEMORY.bind(LimitSpec((Part(10, 10),), keyed=True), clock)
    grant = await store.areserve("a", (4.0,), INF)
    assert grant.admitted
    assert grant.delay == 0.0
    assert store.peek("a", (1.0,))[0].remaining == pytest.approx(6)
    await store.acharge("a", (6.0,))
    assert (await store.apeek("a", (1.0,)))[0].retry_after == pytest.approx(0.1)
    waiting = await store.areserve("a", (2.0,), INF)
    assert waiting.delay == pytest.approx(0.2)
    given, _ = await store.agive_back("a", (2.0,), waiting.ticket, cancel=True)
    assert given == pytest.approx(2)
    refunded, _ = await store.agive_back("a", (3.0,), None, cancel=False)
    assert refunded == pytest.approx(3)
    assert store.peek("a", (0.0,))[0].remaining == pytest.approx(3)
    await store.ahold("a", 30)
    assert (await store.areserve("a", (1.0,), 0.0)).retry_after > 29
    await store.areset("a")
    assert (await store.areserve("a", (10.0,), 0.0)).admitted
    await store.areset(ALL_KEYS)
    assert store.peek("a", (0.0,))[0].remaining == pytest.approx(10)
