"""Token bucket rate limiters (limitor 0.6 import path).

Tokens refill at the configured rate up to the burst; each unit takes one token. See
:mod:`limitor.engines.token_bucket`.
"""

from __future__ import annotations

from limitor.base import AsyncBucket, SyncBucket
from limitor.engines import TokenBucket

__all__ = ("AsyncTokenBucket", "SyncTokenBucket")


class SyncTokenBucket(SyncBucket):
    """Token bucket for threads."""

    __slots__ = ()
    engine_type = TokenBucket


class AsyncTokenBucket(AsyncBucket):
    """Token bucket for asyncio and trio tasks."""

    __slots__ = ()
    engine_type = TokenBucket
