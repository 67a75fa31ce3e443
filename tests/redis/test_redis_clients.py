"""The ways to reach a server: URLs, existing clients (sync, asyncio, cluster), a fork."""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any

import pytest

from limitor.backends.base import LimitSpec, Part
from limitor.testing import FakeClock

INF = float("inf")


def spec() -> LimitSpec:
    return LimitSpec((Part(1, 5),), name=f"clients-{uuid.uuid4().hex}")


def test_an_existing_sync_client_serves_sync_and_asyncio_callers(redis_server: Any) -> None:
    import redis

    from limitor.backends.redis import RedisBackend

    client = redis.Redis.from_url(redis_server.url)
    backend = RedisBackend(client)
    store = backend.bind(spec(), FakeClock())
    assert store.reserve(None, (2,), INF).admitted

    async def main() -> bool:
        grant = await store.areserve(None, (3,), 0.0)
        await backend.aclose()
        return grant.admitted

    assert asyncio.run(main())
    assert not store.reserve(None, (1,), 0.0).admitted  # 5 of 5 taken, by both kinds
    client.close()


def test_a_client_that_decodes_responses_works_the_same(redis_server: Any) -> None:
    import redis

    from limitor.backends.redis import RedisBackend

    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    store = RedisBackend(client).bind(spec(), FakeClock())
    assert store.reserve(None, (5,), INF).admitted
    waiting = store.reserve(None, (1,), INF)
    assert waiting.delay == pytest.approx(1.0, abs=0.05)
    assert store.give_back(None, (1,), waiting.ticket, cancel=True)[0] == pytest.approx(1.0)
    assert store.peek(None, (1,))[0].retry_after == pytest.approx(1.0, abs=0.05)

    async def main() -> bool:
        grant = await store.areserve(None, (1,), 0.0)
        await store.backend.aclose()
        return grant.admitted

    assert not asyncio.run(main())  # the asyncio twin of that client decodes too
    client.close()


def test_an_existing_asyncio_client_serves_sync_callers_too(redis_server: Any) -> None:
    import redis.asyncio

    from limitor.backends.redis import RedisBackend

    async def main() -> None:
        client = redis.asyncio.Redis.from_url(redis_server.url)
        backend = RedisBackend(client)
        store = backend.bind(spec(), FakeClock())
        assert (await store.areserve(None, (4,), INF)).admitted
        assert store.reserve(None, (1,), 0.0).admitted  # a sync client to the same server
        assert not (await store.areserve(None, (1,), 0.0)).admitted
        backend.close()
        await client.aclose()

    asyncio.run(main())


def test_a_unix_socket_url(own_server: Any, tmp_path: Any) -> None:
    from limitor.backends.redis import RedisBackend

    path = tmp_path / "redis.sock"
    own_server.stop()
    own_server.extra = ["--unixsocket", str(path)]  # only settable at start
    own_server.start()
    backend = RedisBackend.from_url(f"unix://{path}")
    assert "unix://" in backend.label
    assert backend.bind(spec(), FakeClock()).reserve(None, (1,), INF).admitted
    backend.close()


def test_a_tls_url_makes_a_tls_client_with_short_timeouts() -> None:
    pytest.importorskip("redis")
    from limitor.backends.redis import RedisBackend

    tls = RedisBackend.from_url("rediss://127.0.0.1:1/0")  # nothing connects yet
    assert tls.client.connection_pool.connection_class.__name__ == "SSLConnection"
    assert tls.client.connection_pool.connection_kwargs["socket_timeout"] == 0.5
    tls.close()


def test_a_cluster_client_and_url(cluster_backend: Any, redis_cluster: Any) -> None:
    import redis.cluster

    from limitor.backends.redis import RedisBackend

    assert isinstance(cluster_backend.client, redis.cluster.RedisCluster)
    client = redis.cluster.RedisCluster(host="127.0.0.1", port=redis_cluster[1].port)
    backend = RedisBackend(client)
    store = backend.bind(spec(), FakeClock())
    assert store.reserve(None, (5,), INF).admitted
    other = cluster_backend.bind(store.spec, FakeClock())  # the same limit, another client
    assert not other.reserve(None, (1,), 0.0).admitted
    client.close()


@pytest.mark.anyio
async def test_async_callers_on_a_cluster(cluster_backend: Any) -> None:
    store = cluster_backend.bind(spec(), FakeClock())
    assert (await store.areserve(None, (5,), INF)).admitted
    assert not (await store.areserve(None, (1,), 0.0)).admitted
    await store.areset(None)
    assert (await store.areserve(None, (1,), 0.0)).admitted


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork")
def test_a_forked_child_uses_the_backend(backend: Any) -> None:
    store = backend.bind(spec(), FakeClock())
    assert store.reserve(None, (2,), INF).admitted  # the parent's pool has a connection
    pid = os.fork()
    if pid == 0:  # the child: its own connections, the same limit
        code = 0 if store.reserve(None, (3,), 0.0).admitted else 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    assert not store.reserve(None, (1,), 0.0).admitted  # the child's 3 counted
