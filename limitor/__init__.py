"""limitor: rate limiting for Python, sync and async, decorators first.

The names most code needs are here; the 0.6 import paths (``limitor.configs``,
``limitor.leaky_bucket.core``, ...) keep working.
"""

from __future__ import annotations

from limitor.base import AsyncBucket, AsyncRateLimit, SyncBucket, SyncRateLimit
from limitor.clock import MONOTONIC, AnyioClock, Clock, MonotonicClock
from limitor.configs import BucketConfig, Capacity, parse_rate
from limitor.decorators import async_rate_limit, limiter_of, rate_limit, rate_limit_per_user
from limitor.errors import (
    AcquireTimeout,
    AmountError,
    AmountTypeError,
    BackendError,
    ConfigError,
    ConfigTypeError,
    KeyTypeError,
    LimitorError,
    QueueFull,
    RateLimitExceeded,
    ReservationError,
)
from limitor.generic_cell_rate.core import (
    AsyncLeakyBucketGCRA,
    AsyncVirtualSchedulingGCRA,
    SyncLeakyBucketGCRA,
    SyncVirtualSchedulingGCRA,
)
from limitor.leaky_bucket.core import AsyncLeakyBucket, SyncLeakyBucket
from limitor.llm import Cost, LLMLimiter, llm_rate_limit
from limitor.per_user import PerUserLimiter
from limitor.results import Reservation, Stats, Status
from limitor.simulation import simulate
from limitor.token_bucket.core import AsyncTokenBucket, SyncTokenBucket

__version__ = "1.0.0.dev0"

__all__ = (
    "MONOTONIC",
    "AcquireTimeout",
    "AmountError",
    "AmountTypeError",
    "AnyioClock",
    "AsyncBucket",
    "AsyncLeakyBucket",
    "AsyncLeakyBucketGCRA",
    "AsyncRateLimit",
    "AsyncTokenBucket",
    "AsyncVirtualSchedulingGCRA",
    "BackendError",
    "BucketConfig",
    "Capacity",
    "Clock",
    "ConfigError",
    "ConfigTypeError",
    "Cost",
    "KeyTypeError",
    "LLMLimiter",
    "LimitorError",
    "MonotonicClock",
    "PerUserLimiter",
    "QueueFull",
    "RateLimitExceeded",
    "Reservation",
    "ReservationError",
    "Stats",
    "Status",
    "SyncBucket",
    "SyncLeakyBucket",
    "SyncLeakyBucketGCRA",
    "SyncRateLimit",
    "SyncTokenBucket",
    "SyncVirtualSchedulingGCRA",
    "async_rate_limit",
    "limiter_of",
    "llm_rate_limit",
    "parse_rate",
    "rate_limit",
    "rate_limit_per_user",
    "simulate",
)
