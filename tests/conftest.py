"""Shared fixtures: both anyio backends, a fake clock, and the four bucket flavours."""

from __future__ import annotations

from typing import Any

import pytest

from limitor.generic_cell_rate.core import (
    AsyncLeakyBucketGCRA,
    AsyncVirtualSchedulingGCRA,
    SyncLeakyBucketGCRA,
    SyncVirtualSchedulingGCRA,
)
from limitor.leaky_bucket.core import AsyncLeakyBucket, SyncLeakyBucket
from limitor.testing import FakeClock
from limitor.token_bucket.core import AsyncTokenBucket, SyncTokenBucket

SYNC_BUCKETS = [SyncLeakyBucket, SyncTokenBucket, SyncVirtualSchedulingGCRA, SyncLeakyBucketGCRA]
ASYNC_BUCKETS = [
    AsyncLeakyBucket,
    AsyncTokenBucket,
    AsyncVirtualSchedulingGCRA,
    AsyncLeakyBucketGCRA,
]


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    return request.param


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=SYNC_BUCKETS, ids=lambda cls: cls.__name__)
def sync_cls(request: pytest.FixtureRequest) -> Any:
    return request.param


@pytest.fixture(params=ASYNC_BUCKETS, ids=lambda cls: cls.__name__)
def async_cls(request: pytest.FixtureRequest) -> Any:
    return request.param
