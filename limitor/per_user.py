"""One bucket per key (user, IP address, API key, tenant...) in one process.

:class:`PerUserLimiter` keeps a small engine state per key in a ``cachetools`` cache
guarded by one lock: an LRU cache bounded by ``max_users``, or, when ``ttl`` is given, a
time-aware LRU cache (``TLRUCache``) whose clock is the limiter's clock.

A key's bucket is never forgotten while it still holds reservations or debt: it only
expires once it is full again (and, with ``ttl``, no sooner than ``ttl`` seconds after it
was stored), so a forgotten bucket means exactly the same as a fresh one and key churn
can never let a user through faster. ``max_users`` bounds memory by dropping the least
recently used *full* buckets; if every bucket is still refilling, the cache grows past
``max_users`` rather than forget one, and ``stats.overflows`` counts those times.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from limitor._checks import check_quantity
from limitor._keyed import KeyedLimiter
from limitor.base import status_of
from limitor.configs import BucketConfig
from limitor.engines import ENGINES
from limitor.errors import ConfigError, ConfigTypeError
from limitor.results import Reservation, Status

__all__ = ("PerUserLimiter",)


class PerUserLimiter(KeyedLimiter):
    """The same limit for every key, each key with its own bucket.

    Args:
        bucket_config: the limit each key gets.
        algorithm: ``"leaky_bucket"`` (default), ``"token_bucket"``, ``"gcra"`` or
            ``"gcra_leaky_bucket"``.
        max_users: how many keys' buckets to keep (full buckets beyond it are dropped,
            least recently used first).
        ttl: keep a bucket at least this many seconds after it was stored (default: drop
            full buckets only to make room); a bucket that is not full is always kept,
            and it is stored again whenever it holds more than its entry allows for.
        clock: the time source; it also drives the cache's expiry.

    The key ``None`` is one shared bucket, never evicted.

    Example:
        >>> limiter = PerUserLimiter(BucketConfig(capacity=2, seconds=1), ttl=600)
        >>> limiter.acquire("alice")          # alice's bucket
        >>> limiter.try_acquire("bob", 2)     # bob's own burst
        True
    """

    __slots__ = ("_config",)

    def __init__(
        self,
        bucket_config: BucketConfig | None = None,
        *,
        algorithm: str = "leaky_bucket",
        max_users: int = 10_000,
        ttl: float | None = None,
        clock: Any = None,
    ) -> None:
        config = BucketConfig() if bucket_config is None else bucket_config
        if not isinstance(config, BucketConfig):
            raise ConfigTypeError(f"bucket_config must be a BucketConfig, got {config!r}")
        engine_type = ENGINES.get(algorithm) if isinstance(algorithm, str) else None
        if engine_type is None:
            raise ConfigError(f"algorithm must be one of {sorted(ENGINES)}, got {algorithm!r}")
        super().__init__(
            engine_type(config.rate, config.max_burst),
            max_keys=max_users,
            ttl=ttl,
            clock=clock,
            max_keys_name="max_users",
        )
        self._config = config

    # -- the verbs -------------------------------------------------------------------

    def acquire(self, key: Hashable, amount: float = 1, timeout: float | None = None) -> None:
        """Block until ``amount`` may go for ``key``.

        Raises:
            AmountError: ``amount`` is negative, NaN, not a number, or above the burst.
            AcquireTimeout: the wait would exceed ``timeout``; raised at once.
        """
        if not self._admit_at_once(key, amount, timeout):
            self._acquire_sync(key, amount, timeout)

    async def acquire_async(
        self, key: Hashable, amount: float = 1, timeout: float | None = None
    ) -> None:
        """Wait, without blocking the event loop, until ``amount`` may go for ``key``."""
        if not self._admit_at_once(key, amount, timeout):
            await self._acquire_async(key, amount, timeout)

    def try_acquire(self, key: Hashable, amount: float = 1) -> bool:
        """Take ``amount`` for ``key`` if it fits right now; never waits."""
        return self._police_or_raise(key, amount)

    def reserve(
        self, key: Hashable, amount: float = 1, timeout: float | None = None
    ) -> Reservation:
        """Commit ``amount`` for ``key`` at the earliest time it fits and return at once."""
        return self._reserve_for(key, amount, timeout)

    def status(self, key: Hashable, amount: float = 1) -> Status:
        """``key``'s live state (for ``RateLimit-*`` headers); changes nothing."""
        amount = check_quantity("amount", amount)
        with self._lock:
            state = self._existing_state(key) or self._engine.new_state()
            return status_of(self._engine, state, self._now(), amount)

    @property
    def config(self) -> BucketConfig:
        """The limit every key gets."""
        return self._config

    @property
    def max_users(self) -> int:
        """How many keys' buckets are kept before full ones are dropped."""
        return self._max_keys

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} rate={self.rate:g}/s burst={self._burst:g} "
            f"users={len(self._cache)} max_users={self._max_keys}>"
        )
