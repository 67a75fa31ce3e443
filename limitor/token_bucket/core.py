"""Token bucket rate limiters (limitor 0.6 import path).

Tokens refill at the configured rate up to the burst; each unit takes one token. See
:mod:`limitor.engines.token_bucket`.
"""

from __future__ import annotations

from limitor.base import AsyncBucket, Bucket, SyncBucket
from limitor.engines import TokenBucket

__all__ = ("AsyncTokenBucket", "SyncTokenBucket")


class FillRate(Bucket):
    """``fill_rate``, as limitor 0.6's token buckets called their rate."""

    __slots__ = ()

    @property
    def fill_rate(self) -> float:
        """Tokens added per second (the rate; limitor 0.6 name)."""
        return self.rate


class SyncTokenBucket(FillRate, SyncBucket, engine=TokenBucket):
    """Token bucket for threads."""


class AsyncTokenBucket(FillRate, AsyncBucket, engine=TokenBucket):
    """Token bucket for asyncio and trio tasks."""
