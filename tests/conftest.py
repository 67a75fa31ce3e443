"""Shared fixtures: both anyio backends, a fake clock, and the four bucket flavours."""

from __future__ import annotations

import importlib.util
import os
import shutil
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


def _redis_missing() -> str | None:
    """Why the Redis tests cannot run here, or None when they can."""
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        return "redis-server is not installed (apt-get install redis-server)"
    if importlib.util.find_spec("redis") is None:
        return "the redis package is not installed (pip install -e '.[test]')"
    return None


def pytest_collection_finish(session: pytest.Session) -> None:
    """Say once, before the run, when the Redis tests are going to be skipped."""
    reason = _redis_missing()
    if reason is None or os.environ.get("LIMITOR_REQUIRE_REDIS") == "1":
        return  # they run, or they fail loudly (tests/redis/conftest.py)
    count = sum("redis" in item.nodeid.lower() for item in session.items)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if count and reporter is not None:
        reporter.write_line(
            f"WARNING: {count} Redis tests will be SKIPPED: {reason}. "
            "To run them, install redis-server; LIMITOR_REQUIRE_REDIS=1 makes a missing "
            "server fail the run instead.",
            yellow=True,
            bold=True,
        )
