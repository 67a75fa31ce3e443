"""Leaky bucket rate limiters (limitor 0.6 import path).

The bucket's level leaks at the configured rate; a call that would overflow the burst
waits until enough has leaked. See :mod:`limitor.engines.leaky_bucket`.
"""

from __future__ import annotations

from limitor.base import AsyncBucket, Bucket, SyncBucket
from limitor.engines import LeakyBucket

__all__ = ("AsyncLeakyBucket", "LeakRate", "SyncLeakyBucket")


class LeakRate(Bucket):
    """``leak_rate``, as limitor 0.6's leaky buckets and GCRAs called their rate."""

    __slots__ = ()

    @property
    def leak_rate(self) -> float:
        """Units leaked per second (the rate; limitor 0.6 name)."""
        return self.rate


class SyncLeakyBucket(LeakRate, SyncBucket, engine=LeakyBucket):
    """Leaky bucket for threads.

    Example:
        >>> from limitor.configs import BucketConfig
        >>> bucket = SyncLeakyBucket(BucketConfig(capacity=10, seconds=1))
        >>> bucket.acquire()          # blocks only when the limit binds
        >>> with bucket:
        ...     pass
    """


class AsyncLeakyBucket(LeakRate, AsyncBucket, engine=LeakyBucket):
    """Leaky bucket for asyncio and trio tasks (``await bucket.acquire()``)."""
