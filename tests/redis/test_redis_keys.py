"""Redis keys that cannot collide (issue 17): distinct ``(name, key)`` pairs never share a
Redis key, on one server and on a Cluster; ``reset()`` of one limit never touches another;
the hash tag stays the whole identity; long keys are digests."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from limitor import BucketConfig, PerUserLimiter
from limitor.backends.base import ALL_KEYS, LimitSpec, Part
from limitor.errors import ConfigError
from limitor.testing import FakeClock

INF = float("inf")

PAIRS = [
    pytest.param(("a", "b:c"), ("a:b", "c"), id="colon-in-user-vs-name"),
    pytest.param(("api", "x:"), ("api:x", None), id="user-vs-another-limits-shared-bucket"),
    pytest.param(("api", ("a", 1)), ("api", "('a', 1)"), id="tuple-vs-its-repr"),
    pytest.param(("api", 42), ("api", "42"), id="int-vs-str"),
    pytest.param(("api", b"k"), ("api", "k"), id="bytes-vs-str"),
    pytest.param(("a}b", "c"), ("a", "b}c"), id="braces"),
    pytest.param(("a{", "b"), ("a", "{b"), id="open-brace"),
    pytest.param(("a%3Ab", "c"), ("a:b", "c"), id="escape-of-the-escape"),
    pytest.param(("api", "%i42"), ("api", 42), id="marker-as-str"),
    pytest.param(("api", "x" * 200), ("api", "x" * 199 + "y"), id="long-keys"),
]


def _store(backend: Any, name: str) -> Any:
    return backend.bind(LimitSpec((Part(1 / 60, 1),), name=name, keyed=True), FakeClock())


def _independent(backend: Any, first: tuple[str, Any], second: tuple[str, Any]) -> None:
    run = uuid.uuid4().hex[:8]
    one = _store(backend, run + first[0])
    two = _store(backend, run + second[0])
    assert one.redis_key(first[1]) != two.redis_key(second[1])
    assert one.reserve(first[1], (1,), 0.0).admitted
    assert not one.reserve(first[1], (1,), 0.0).admitted  # exhausted
    assert two.reserve(second[1], (1,), 0.0).admitted  # the other is untouched
    assert not two.reserve(second[1], (1,), 0.0).admitted
    one.reset(ALL_KEYS)
    two.reset(ALL_KEYS)


@pytest.mark.parametrize(("first", "second"), PAIRS)
def test_distinct_pairs_never_share_a_key(
    backend: Any, first: tuple[str, Any], second: tuple[str, Any]
) -> None:
    _independent(backend, first, second)


@pytest.mark.parametrize(("first", "second"), PAIRS)
def test_distinct_pairs_never_share_a_key_on_the_cluster(
    cluster_backend: Any, first: tuple[str, Any], second: tuple[str, Any]
) -> None:
    _independent(cluster_backend, first, second)


@pytest.mark.parametrize("where", ["backend", "cluster_backend"])
def test_reset_of_one_limit_never_touches_another(
    where: str, request: pytest.FixtureRequest
) -> None:
    backend = request.getfixturevalue(where)
    run = uuid.uuid4().hex[:8]
    short = _store(backend, run + "a")
    longer = _store(backend, run + "a:b")
    star = _store(backend, run + "a*")
    for user in ("u", "b:u", 1):
        assert longer.reserve(user, (1,), 0.0).admitted
        assert star.reserve(user, (1,), 0.0).admitted
        assert short.reserve(user, (1,), 0.0).admitted
    assert longer.reserve(None, (1,), 0.0).admitted
    short.reset(ALL_KEYS)
    client = backend.client
    for user in ("u", "b:u", 1):
        assert client.exists(short.redis_key(user)) == 0
        assert client.exists(longer.redis_key(user)) == 1
        assert client.exists(star.redis_key(user)) == 1
        assert not longer.reserve(user, (1,), 0.0).admitted  # still exhausted
    assert client.exists(longer.redis_key(None)) == 1
    longer.reset(ALL_KEYS)
    star.reset(ALL_KEYS)
    assert client.exists(longer.redis_key(None)) == 0


def test_the_hash_tag_is_the_whole_identity_whatever_the_name(cluster_backend: Any) -> None:
    client = cluster_backend.client
    store = _store(cluster_backend, "we}ird{name")
    for user in ("ann", "}", "{x}", 7, ("t", 1), "z" * 300):
        key = store.redis_key(user)
        tag = key[key.index("{") + 1 : key.index("}")]
        assert key.endswith("}")  # the tag runs to the end: the whole identity
        assert client.keyslot(key) == client.keyslot("{" + tag + "}")
        assert client.keyslot(store.holes_key(user)) == client.keyslot(key)
    slots = {client.keyslot(store.redis_key(user)) for user in range(50)}
    assert len(slots) > 30  # users still spread over the slots


def test_long_keys_are_bounded_in_redis(backend: Any) -> None:
    store = _store(backend, "long-" + uuid.uuid4().hex[:8])
    key = store.redis_key("k" * 10_000)
    assert len(key) < 100
    assert "%h" in key
    assert store.redis_key("k" * 10_000) == key


def test_a_prefix_with_braces_is_refused(redis_server: Any) -> None:
    from limitor.backends.redis import RedisBackend

    with pytest.raises(ConfigError, match="prefix"):
        RedisBackend.from_url(redis_server.url, prefix="app{x}:")


def test_per_user_limiters_with_colliding_names_stay_apart(backend: Any) -> None:
    run = uuid.uuid4().hex[:8]
    first = PerUserLimiter(BucketConfig(1, 60), backend=backend, name=f"{run}a")
    second = PerUserLimiter(BucketConfig(1, 60), backend=backend, name=f"{run}a:b")
    assert first.try_acquire("b:c")
    assert second.try_acquire("c")
    assert not first.try_acquire("b:c")
    first.reset()
    assert not second.try_acquire("c")  # first's reset left it alone
    second.reset()


def test_an_unhashable_key_is_a_key_type_error_in_redis_too(backend: Any) -> None:
    from limitor import KeyTypeError

    store = _store(backend, "unhashable-" + uuid.uuid4().hex[:8])
    with pytest.raises(KeyTypeError):
        store.reserve([1, 2], (1,), 0.0)
    with pytest.raises(KeyTypeError):
        store.redis_key(("a", {}))
