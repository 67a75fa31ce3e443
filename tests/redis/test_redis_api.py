"""End to end: the public buckets and decorators with ``backend=RedisBackend`` and ``name=``.

NEEDS THE MERGE OF ISSUE 8 (the one limiter over ``Store``s, and ``backend=``/``name=``/
``on_backend_error=`` on buckets and decorators). Written against API.md; on the ``redis``
branch alone these tests fail, as expected, because the buckets do not take ``backend=``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from limitor import llm_rate_limit, rate_limit, rate_limit_per_user
from limitor.configs import BucketConfig
from limitor.errors import BackendError, RateLimitExceeded
from limitor.leaky_bucket.core import AsyncLeakyBucket, SyncLeakyBucket

ROOT = Path(__file__).resolve().parents[2]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def test_two_buckets_with_one_name_share_one_limit(backend: Any) -> None:
    name = unique("api")
    first = SyncLeakyBucket(BucketConfig(20, 1), backend=backend, name=name)
    second = SyncLeakyBucket(BucketConfig(20, 1), backend=backend, name=name)  # "another process"
    admitted = sum(bucket.try_acquire() for _ in range(15) for bucket in (first, second))
    assert admitted == 20
    assert not first.try_acquire()
    first.reset()
    assert second.try_acquire()


def test_reservations_cancel_and_reconcile_act_on_the_shared_state(backend: Any) -> None:
    name = unique("tokens")
    bucket = SyncLeakyBucket(BucketConfig(1000, 60), backend=backend, name=name)
    bucket.acquire(1000)
    waiting = [bucket.reserve(10) for _ in range(5)]
    assert waiting[0].delay > 0
    for reservation in reversed(waiting):
        reservation.cancel()
    other = SyncLeakyBucket(BucketConfig(1000, 60), backend=backend, name=name)
    assert other.reserve(10).delay == pytest.approx(waiting[0].delay, abs=0.05)


def test_status_hold_and_charge_go_through_the_backend(backend: Any) -> None:
    name = unique("held")
    bucket = SyncLeakyBucket(BucketConfig(10, 1), backend=backend, name=name)
    bucket.charge(5)
    assert bucket.status().remaining == pytest.approx(5, abs=0.5)
    bucket.hold(30)
    assert not SyncLeakyBucket(BucketConfig(10, 1), backend=backend, name=name).try_acquire()


@pytest.mark.anyio
async def test_async_buckets_share_the_limit_with_sync_ones(backend: Any) -> None:
    name = unique("mixed")
    sync_bucket = SyncLeakyBucket(BucketConfig(5, 1), backend=backend, name=name)
    async_bucket = AsyncLeakyBucket(BucketConfig(5, 1), backend=backend, name=name)
    assert sync_bucket.try_acquire(3)
    assert await async_bucket.try_acquire(2)
    assert not await async_bucket.try_acquire(1)


def test_rate_limit_decorator_with_a_name(backend: Any) -> None:
    name = unique("fn")

    @rate_limit(capacity=3, seconds=60, backend=backend, name=name, on_limit="raise")
    def call() -> int:
        return 1

    assert sum(call() for _ in range(3)) == 3
    with pytest.raises(RateLimitExceeded):
        call()
    assert backend.client.exists(f"limitor:{{{name}}}") == 1


def test_the_default_name_is_the_functions_module_and_qualified_name(backend: Any) -> None:
    @rate_limit(capacity=3, seconds=60, backend=backend, on_limit="raise")
    def named() -> None:
        pass

    named()
    qualname = named.__qualname__
    assert backend.client.exists(f"limitor:{{{__name__}.{qualname}}}") == 1


def test_rate_limit_per_user_keys_are_name_and_user(backend: Any) -> None:
    name = unique("per-user")

    @rate_limit_per_user(capacity=1, seconds=60, backend=backend, name=name, on_limit="raise")
    def handler(*, user_id: str) -> str:
        return user_id

    assert handler(user_id="ann") == "ann"
    assert handler(user_id="bob") == "bob"
    with pytest.raises(RateLimitExceeded):
        handler(user_id="ann")
    assert backend.client.exists(f"limitor:{{{name}:ann}}") == 1


@pytest.mark.anyio
async def test_llm_rate_limit_checks_requests_and_tokens_in_one_decision(backend: Any) -> None:
    name = unique("llm")

    @llm_rate_limit(
        requests_per_minute=100,
        tokens_per_minute=1000,
        token_estimate=lambda prompt: len(prompt),
        backend=backend,
        name=name,
        on_limit="raise",
    )
    async def chat(prompt: str) -> str:
        return prompt

    assert await chat("x" * 900) == "x" * 900
    with pytest.raises(RateLimitExceeded):
        await chat("x" * 200)  # tokens bind, requests do not
    assert await chat("x" * 50)


def test_backend_errors_raise_by_default_and_allow_fails_open(own_server: Any) -> None:
    from limitor.backends.redis import RedisBackend

    backend = RedisBackend.from_url(own_server.url, timeout=0.3)
    strict = SyncLeakyBucket(BucketConfig(1, 1), backend=backend, name=unique("strict"))
    lenient = SyncLeakyBucket(
        BucketConfig(1, 1), backend=backend, name=unique("open"), on_backend_error="allow"
    )
    own_server.stop()
    with pytest.raises(BackendError):
        strict.acquire()
    lenient.acquire()  # admitted: the backend is down and the policy is to fail open
    assert lenient.stats.backend_errors >= 1
    backend.close()


def test_the_example_runs_across_processes(redis_server: Any) -> None:
    env = dict(os.environ, REDIS_URL=redis_server.url)
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "redis_across_processes.py")],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "never more than" in done.stdout, done.stdout
