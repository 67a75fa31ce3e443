"""A 3-primary Redis Cluster: per-user and multi-limit decisions, one slot per decision."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from limitor.backends.base import ALL_KEYS, LimitSpec, Part
from limitor.testing import FakeClock

INF = float("inf")


def test_per_user_and_multi_limit_decisions_work_on_the_cluster(cluster_backend: Any) -> None:
    spec = LimitSpec(
        (Part(1, 2, "requests"), Part(100, 100, "tokens")),
        name=f"llm-{uuid.uuid4().hex}",
        keyed=True,
    )
    store = cluster_backend.bind(spec, FakeClock())
    # the scripts' time fixed (the test-only override, microseconds since their epoch):
    # on a loaded machine 0.2 s between two calls refilled the 40 tokens the second needs
    store._now_us = 96_000_000_000_000.0
    for user in range(30):
        assert store.reserve(user, (1, 60), 0.0).admitted
        assert not store.reserve(user, (1, 60), 0.0).admitted  # tokens bind
        grant = store.reserve(user, (1, 40), 0.0)
        assert grant.admitted
        given, _ = store.give_back(user, (0, 40), grant.ticket, cancel=False)
        assert given == pytest.approx(40, abs=0.1)
        store.charge(user, (0, 10))
        store.hold(user, 0.5)
        assert store.peek(user, (0, 1))[0].retry_after == pytest.approx(0.5, abs=1e-6)
    store.reset(ALL_KEYS)
    client = cluster_backend.client
    assert all(client.exists(store.redis_key(user)) == 0 for user in range(30))


def test_keys_of_one_decision_share_a_slot_and_users_spread_over_slots(
    cluster_backend: Any,
) -> None:
    spec = LimitSpec((Part(1, 1),), name="spread", keyed=True)
    store = cluster_backend.bind(spec, FakeClock())
    client = cluster_backend.client
    keys = [store.redis_key(user) for user in range(60)]
    slots = {client.keyslot(key) for key in keys}
    assert len(slots) > 40
    nodes = {client.get_node_from_key(key).port for key in keys}
    assert len(nodes) == 3  # every primary holds some users
    # one key per decision, and its hash tag is the limit's identity plus the user
    assert client.keyslot(store.redis_key(7)) == client.keyslot("{spread:%i7}")
    assert all(
        client.keyslot(store.holes_key(u)) == client.keyslot(store.redis_key(u)) for u in range(60)
    )
    for user in range(60):
        store.reserve(user, (1,), INF)
    store.reset(ALL_KEYS)


def test_the_cluster_reloads_scripts_flushed_on_every_node(
    cluster_backend: Any, redis_cluster: Any
) -> None:
    store = cluster_backend.bind(
        LimitSpec((Part(1000, 1000),), name="flush", keyed=True), FakeClock()
    )
    for user in range(10):
        store.reserve(user, (1,), 0.0)
    for node in redis_cluster:
        assert node.cli("SCRIPT", "FLUSH") == "OK"
    assert all(store.reserve(user, (1,), 0.0).admitted for user in range(10))
    store.reset(ALL_KEYS)


def test_a_crowd_cancelled_first_to_last_rolls_back_on_the_cluster(cluster_backend: Any) -> None:
    # one unit per 10 s of server time: a loaded machine never reaches a grant's time
    spec = LimitSpec((Part(0.1, 1),), name=f"crowd-{uuid.uuid4().hex}", keyed=True)
    store = cluster_backend.bind(spec, FakeClock())
    for user in ("ann", "bob", "eve"):
        store.reserve(user, (1,), INF)
        grants = [store.reserve(user, (1,), INF) for _ in range(5)]
        given = [store.give_back(user, (1,), g.ticket, cancel=True)[0] for g in grants]
        # each cancel frees exactly its own unit: free pieces, until the latest goes
        assert given == pytest.approx([1.0] * 5, abs=1e-6)
        assert not cluster_backend.client.exists(store.holes_key(user))  # rolled back
        assert store.reserve(user, (1,), INF).delay == pytest.approx(10.0, abs=0.5)
    store.reset(ALL_KEYS)
