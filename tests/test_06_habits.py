"""Habits of limitor 0.6 code that must keep working (not its internals: its behaviour).

Tests patch a limiter's verbs (``mock.patch.object(bucket, "acquire")``), tag it with
attributes of their own and read ``vars(bucket)``; a loop that retried on ``TimeoutError``
must learn from the error when to come back.
"""

from __future__ import annotations

import inspect
from typing import Any
from unittest import mock

import pytest

from limitor import LLMLimiter, PerUserLimiter
from limitor.configs import BucketConfig
from limitor.errors import AcquireTimeout
from limitor.extra.leaky_bucket.core import AsyncLeakyBucket as QueueBucket
from limitor.llm_token.core import AsyncLLMTokenBucket, SyncLLMTokenBucket
from limitor.testing import FakeClock

from .conftest import ASYNC_BUCKETS, SYNC_BUCKETS


def _make(cls: Any) -> Any:
    if cls in (SyncLLMTokenBucket, AsyncLLMTokenBucket):
        return cls(requests_per_minute=60, tokens_per_minute=1000, clock=FakeClock())
    if cls is LLMLimiter:
        return cls(requests_per_minute=60, tokens_per_minute=1000, clock=FakeClock())
    if cls is QueueBucket:
        return cls(BucketConfig(capacity=2, seconds=1), max_size=1, clock=FakeClock())
    return cls(BucketConfig(capacity=2, seconds=1), clock=FakeClock())


PUBLIC = [
    *SYNC_BUCKETS,
    *ASYNC_BUCKETS,
    QueueBucket,
    SyncLLMTokenBucket,
    AsyncLLMTokenBucket,
    PerUserLimiter,
    LLMLimiter,
]


@pytest.mark.parametrize("cls", PUBLIC, ids=lambda cls: f"{cls.__module__}.{cls.__name__}")
def test_a_limiter_takes_attributes_of_its_own_and_vars_shows_them(cls: Any) -> None:
    bucket = _make(cls)
    assert vars(bucket) == {}
    bucket.tag = "partner-api"
    assert bucket.tag == "partner-api"
    assert vars(bucket) == {"tag": "partner-api"}
    del bucket.tag
    assert vars(bucket) == {}


@pytest.mark.parametrize("cls", PUBLIC, ids=lambda cls: f"{cls.__module__}.{cls.__name__}")
def test_mock_patch_object_replaces_a_verb_and_puts_it_back(cls: Any) -> None:
    bucket = _make(cls)
    original = bucket.acquire
    with mock.patch.object(bucket, "acquire") as patched:
        assert bucket.acquire is patched
        if not inspect.iscoroutinefunction(original):  # async verbs: see the test below
            bucket.acquire(1)
            patched.assert_called_once_with(1)
    assert bucket.acquire == original
    assert "acquire" not in vars(bucket)


@pytest.mark.parametrize("cls", SYNC_BUCKETS, ids=lambda cls: cls.__name__)
def test_code_calling_a_patched_bucket_sees_the_mock(cls: Any) -> None:
    bucket = _make(cls)

    def fetch() -> str:
        bucket.acquire()
        return "ok"

    with (
        mock.patch.object(bucket, "acquire", side_effect=AcquireTimeout("no", 2.0)),
        pytest.raises(AcquireTimeout),
    ):
        fetch()
    assert fetch() == "ok"  # the real acquire again


@pytest.mark.anyio
@pytest.mark.parametrize("cls", [*ASYNC_BUCKETS, QueueBucket], ids=lambda cls: cls.__name__)
async def test_an_async_verb_patched_with_an_async_mock(cls: Any) -> None:
    bucket = _make(cls)
    with mock.patch.object(bucket, "acquire", new_callable=mock.AsyncMock) as patched:
        await bucket.acquire(2)
        patched.assert_awaited_once_with(2)
    await bucket.acquire(2)
    assert bucket.stats.admitted == 1


@pytest.mark.parametrize("cls", SYNC_BUCKETS, ids=lambda cls: cls.__name__)
def test_the_timeout_error_says_when_to_come_back(cls: Any) -> None:
    clock = FakeClock()
    bucket = cls(BucketConfig(capacity=2, seconds=5), clock=clock)  # one unit per 2.5 s
    bucket.acquire(2)
    with pytest.raises(TimeoutError, match=r"retry in 2\.5s") as info:
        bucket.acquire(timeout=1)
    assert info.value.retry_after == pytest.approx(2.5)  # type: ignore[attr-defined]


@pytest.mark.parametrize("cls", SYNC_BUCKETS, ids=lambda cls: cls.__name__)
def test_a_06_retry_loop_that_sleeps_retry_after_does_not_spin(cls: Any) -> None:
    # limitor 0.6 waited out the timeout before raising; 1.0 raises at once, so the loop
    # must sleep error.retry_after (docs/migrating.md shows this fix).
    clock = FakeClock()
    bucket = cls(BucketConfig(capacity=1, seconds=1), clock=clock)
    timeouts = 0
    for _ in range(10):
        while True:
            try:
                bucket.acquire(timeout=0.1)
                break
            except TimeoutError as error:
                timeouts += 1
                clock.sleep(error.retry_after)  # type: ignore[attr-defined]
    assert timeouts == 9  # one per call that had to wait, never a spin
    assert clock.now() == pytest.approx(9.0)
