"""Redis under the async seam: a paused server never stalls an event loop, an absent one
never breaks a caller that fails open, and grants without a ticket can be given back."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from limitor import SyncLeakyBucket
from limitor.backends.base import LimitSpec, Part
from limitor.testing import FakeClock

INF = float("inf")


def _name() -> str:
    return f"seam-{uuid.uuid4().hex}"


def test_give_back_without_a_ticket_refunds_off_the_end_of_the_schedule(backend: Any) -> None:
    store = backend.bind(LimitSpec((Part(1, 10),), name=_name()), FakeClock())
    assert store.reserve(None, (8.0,), INF).admitted
    given, ticket = store.give_back(None, (5.0,), None, cancel=False)
    assert ticket is None
    assert given == pytest.approx(5)
    assert store.peek(None, (0.0,))[0].remaining == pytest.approx(7, abs=0.2)
    assert store.give_back(None, (5.0,), None, cancel=True) == (0.0, None)


def test_a_refund_without_a_ticket_never_goes_below_now(backend: Any) -> None:
    store = backend.bind(LimitSpec((Part(1, 10),), name=_name()), FakeClock())
    assert store.reserve(None, (2.0,), INF).admitted
    store.give_back(None, (9.0,), None, cancel=False)
    assert store.peek(None, (0.0,))[0].remaining == pytest.approx(10)
    assert store.reserve(None, (10.0,), 0.0).admitted
    assert not store.reserve(None, (1.0,), 0.0).admitted  # nothing beyond the burst


@pytest.mark.anyio
async def test_async_give_back_without_a_ticket(backend: Any) -> None:
    store = backend.bind(LimitSpec((Part(1, 10), Part(1, 20)), name=_name()), FakeClock())
    assert (await store.areserve(None, (6.0, 6.0), INF)).admitted
    given, ticket = await store.agive_back(None, (4.0, 0.0), None, cancel=False)
    assert ticket is None
    assert given == pytest.approx(4)
    parts = await store.apeek(None, (0.0, 0.0))
    assert parts[0].remaining == pytest.approx(8, abs=0.2)
    assert parts[1].remaining == pytest.approx(14, abs=0.2)


def test_the_06_reconcile_outside_acquire_ctx_works_on_redis(backend: Any) -> None:
    bucket = SyncLeakyBucket(rate="1/s", burst=10, backend=backend, name=_name())
    bucket.acquire(8)
    bucket.reconcile(3, 8)  # refund 5
    assert bucket.status(0).remaining == pytest.approx(7, abs=0.2)
    bucket.reconcile(6, 3)  # 3 more, as debt
    assert bucket.status(0).remaining == pytest.approx(4, abs=0.2)
