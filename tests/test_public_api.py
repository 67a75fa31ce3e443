"""The public names: limitor's own and those of limitor 0.6 that must keep working."""

from __future__ import annotations

import importlib

import pytest

import limitor


def test_all_is_a_tuple_of_names_that_exist() -> None:
    assert isinstance(limitor.__all__, tuple)
    assert len(set(limitor.__all__)) == len(limitor.__all__)
    for name in limitor.__all__:
        assert getattr(limitor, name) is not None, name


@pytest.mark.parametrize(
    "module",
    [
        "limitor.errors",
        "limitor.configs",
        "limitor.engines",
        "limitor.llm",
        "limitor.per_user",
        "limitor.decorators",
        "limitor.results",
        "limitor.clock",
        "limitor.testing",
        "limitor.simulation",
    ],
)
def test_every_module_declares_what_it_exports(module: str) -> None:
    imported = importlib.import_module(module)
    exported = imported.__all__
    assert isinstance(exported, tuple)
    for name in exported:
        assert hasattr(imported, name), f"{module}.{name}"


def test_the_06_import_paths_keep_working() -> None:
    from limitor import async_rate_limit, rate_limit
    from limitor.base import AsyncRateLimit, HasCapacity, SyncRateLimit
    from limitor.configs import BucketConfig, Capacity
    from limitor.extra.leaky_bucket.core import AsyncLeakyBucket as QueueBucket
    from limitor.generic_cell_rate.core import (
        AsyncLeakyBucketGCRA,
        AsyncVirtualSchedulingGCRA,
        SyncLeakyBucketGCRA,
        SyncVirtualSchedulingGCRA,
    )
    from limitor.leaky_bucket.core import AsyncLeakyBucket, SyncLeakyBucket
    from limitor.token_bucket.core import AsyncTokenBucket, SyncTokenBucket
    from limitor.utils import validate_amount

    assert rate_limit is async_rate_limit
    for name in (
        AsyncRateLimit,
        HasCapacity,
        SyncRateLimit,
        Capacity,
        QueueBucket,
        validate_amount,
    ):
        assert name is not None
    config = BucketConfig(capacity=10, seconds=2)
    for cls in (SyncLeakyBucket, SyncTokenBucket, SyncVirtualSchedulingGCRA, SyncLeakyBucketGCRA):
        bucket = cls(config)
        assert (bucket.capacity, bucket.seconds) == (10, 2)
    for cls in (
        AsyncLeakyBucket,
        AsyncTokenBucket,
        AsyncVirtualSchedulingGCRA,
        AsyncLeakyBucketGCRA,
    ):
        assert cls(config, max_concurrent=3).max_concurrent == 3


def test_the_06_rate_attributes() -> None:
    from limitor.configs import BucketConfig
    from limitor.generic_cell_rate.core import SyncLeakyBucketGCRA, SyncVirtualSchedulingGCRA
    from limitor.leaky_bucket.core import SyncLeakyBucket
    from limitor.token_bucket.core import AsyncTokenBucket

    config = BucketConfig(capacity=5, seconds=2)
    assert SyncLeakyBucket(config).leak_rate == 2.5
    assert AsyncTokenBucket(config).fill_rate == 2.5
    assert pytest.approx(0.4) == SyncVirtualSchedulingGCRA(config).T
    assert SyncLeakyBucketGCRA(config).leak_rate == 2.5


def test_the_06_validate_amount() -> None:
    from limitor.configs import BucketConfig
    from limitor.leaky_bucket.core import SyncLeakyBucket
    from limitor.utils import validate_amount

    bucket = SyncLeakyBucket(BucketConfig(capacity=3, seconds=1))
    validate_amount(bucket, 3)
    with pytest.raises(ValueError, match="larger than the burst"):
        validate_amount(bucket, 4)
    with pytest.raises(ValueError, match="amount"):
        validate_amount(bucket, -1)


def test_our_buckets_satisfy_the_06_protocols() -> None:
    from limitor.base import AsyncRateLimit, SyncRateLimit
    from limitor.leaky_bucket.core import AsyncLeakyBucket, SyncLeakyBucket

    sync: SyncRateLimit = SyncLeakyBucket()
    asynchronous: AsyncRateLimit = AsyncLeakyBucket()
    assert callable(sync.acquire)
    assert callable(asynchronous.acquire)
