"""Failures become BackendError within the timeout, and the backend recovers by itself."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from limitor.backends.base import LimitSpec, Part
from limitor.errors import BackendError
from limitor.testing import FakeClock

INF = float("inf")
TIMEOUT = 0.3


def make(url: str, **options: Any) -> tuple[Any, Any]:
    from limitor.backends.redis import RedisBackend

    backend = RedisBackend.from_url(url, timeout=TIMEOUT, **options)
    spec = LimitSpec((Part(100, 100),), name=f"fail-{uuid.uuid4().hex}")
    return backend, backend.bind(spec, FakeClock())


def fails_fast(store: Any) -> BackendError:
    began = time.monotonic()
    with pytest.raises(BackendError) as caught:
        store.reserve(None, (1,), INF)
    assert time.monotonic() - began < TIMEOUT + 1.0  # the timeout, plus a loaded machine
    return caught.value


def test_a_paused_server_gives_backend_error_within_the_timeout_then_works(own_server: Any) -> None:
    backend, store = make(own_server.url)
    assert store.reserve(None, (1,), INF).admitted
    own_server.pause()
    try:
        error = fails_fast(store)
        assert "Timeout" in str(error)
        assert error.backend.startswith("redis 127.0.0.1:")
    finally:
        own_server.resume()
    assert store.reserve(None, (1,), INF).admitted
    backend.close()


def test_a_killed_and_restarted_server_gives_backend_error_then_works(own_server: Any) -> None:
    backend, store = make(own_server.url)
    assert store.reserve(None, (1,), INF).admitted
    own_server.stop()
    error = fails_fast(store)
    assert "ConnectionError" in str(error)
    own_server.start()
    # the pool notices the dead connection before sending: no error, no retry needed
    assert store.reserve(None, (1,), INF).admitted
    backend.close()


def test_an_unreachable_server_fails_fast(own_server: Any) -> None:
    url = own_server.url
    own_server.stop()
    backend, store = make(url)
    fails_fast(store)
    backend.close()


def test_an_auth_error_names_the_cause(own_server: Any) -> None:
    own_server.cli("CONFIG", "SET", "requirepass", "sesame")
    backend, store = make(own_server.url)
    error = fails_fast(store)
    assert "Authentication" in str(error) or "NOAUTH" in str(error)
    backend.close()
    url = own_server.url.replace("redis://", "redis://:sesame@")
    backend, store = make(url)
    assert store.reserve(None, (1,), INF).admitted
    assert "sesame" not in backend.label
    backend.close()


def test_out_of_memory_is_a_backend_error(own_server: Any) -> None:
    backend, store = make(own_server.url)
    own_server.cli("CONFIG", "SET", "maxmemory", "1")
    own_server.cli("CONFIG", "SET", "maxmemory-policy", "noeviction")
    error = fails_fast(store)
    assert "OOM" in str(error) or "OutOfMemory" in str(error)
    own_server.cli("CONFIG", "SET", "maxmemory", "0")
    assert store.reserve(None, (1,), INF).admitted
    backend.close()


def test_a_read_only_replica_is_a_backend_error(own_server: Any, redis_server: Any) -> None:
    own_server.cli("REPLICAOF", "127.0.0.1", str(redis_server.port))
    backend, store = make(own_server.url)
    error = fails_fast(store)
    assert "READONLY" in str(error) or "ReadOnly" in str(error)
    backend.close()


def test_a_script_is_never_sent_twice_on_a_timeout(own_server: Any) -> None:
    backend, store = make(own_server.url)
    own_server.cli("CONFIG", "RESETSTAT")
    store.reserve(None, (1,), INF)
    own_server.pause()
    try:
        fails_fast(store)
    finally:
        own_server.resume()
    time.sleep(0.2)  # let the server read what it was sent
    stats = own_server.cli("INFO", "commandstats")
    calls = [line for line in stats.splitlines() if line.startswith("cmdstat_evalsha")]
    assert calls, stats
    assert "calls=2," in calls[0]  # the first call and the timed-out one: no retry
    backend.close()
