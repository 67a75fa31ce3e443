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

import math
from collections.abc import Hashable
from typing import Any

from cachetools import LRUCache, TLRUCache

from limitor._checks import check_amount, check_count, check_quantity
from limitor._core import LimiterCore
from limitor.base import status_of
from limitor.configs import BucketConfig, check_positive
from limitor.engines import ENGINES, EngineState
from limitor.errors import ConfigError, ConfigTypeError
from limitor.results import Reservation, Stats, Status

__all__ = ("PerUserLimiter",)


class _Expiring(TLRUCache[Hashable, EngineState]):
    """A TLRU cache that counts what it expires."""

    expired = 0

    def expire(self, time: float | None = None) -> list[tuple[Hashable, EngineState]]:
        expired = list(super().expire(time))
        self.expired += len(expired)
        return expired


class PerUserLimiter(LimiterCore):
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

    __slots__ = ("_cache", "_config", "_evicted", "_max_users", "_overflows", "_shared", "_ttl")

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
        super().__init__(engine_type(config.rate, config.max_burst), clock)
        self._config = config
        self._max_users = check_count("max_users", max_users)
        self._ttl = None if ttl is None else check_positive("ttl", ttl)
        self._shared: EngineState = self._engine.new_state()
        self._evicted = self._overflows = 0
        self._cache: LRUCache[Hashable, EngineState] | _Expiring = self._new_cache()

    def _new_cache(self) -> LRUCache[Hashable, EngineState] | _Expiring:
        if self._ttl is None:
            return LRUCache(maxsize=math.inf)
        return _Expiring(maxsize=math.inf, ttu=_expiry, timer=self._now)

    # -- where states live (under the lock) ------------------------------------------

    def _state_for(self, key: Any, now: float) -> EngineState:
        if key is None:
            return self._shared
        cache = self._cache
        try:
            found: EngineState = cache[key]
            return found
        except KeyError:
            pass
        if len(cache) >= self._max_users:
            self._make_room(now)
        state: EngineState = self._engine.new_state()
        if self._ttl is not None:
            state.expires = now + self._ttl
        cache[key] = state
        return state

    def _existing_state(self, key: Any) -> EngineState | None:
        if key is None:
            return self._shared
        found: EngineState | None = self._cache.get(key)
        return found

    def _committed(self, key: Any, state: EngineState, now: float) -> None:
        # A TLRU entry's expiry is fixed when it is stored: store it again whenever the
        # bucket now needs longer to be full than its entry says.
        if key is not None and self._ttl is not None:
            full_at = self._engine.full_at(state)
            if full_at > state.expires:
                state.expires = max(full_at, now + self._ttl)
                self._cache[key] = state

    def _make_room(self, now: float) -> None:
        cache = self._cache
        if isinstance(cache, _Expiring):
            cache.expire(now)
        while len(cache) >= self._max_users:
            key, state = cache.popitem()  # the least recently used
            if self._engine.full_at(state) <= now:
                self._evicted += 1  # a full bucket is the same as none: nothing lost
                continue
            if self._ttl is not None:
                state.expires = max(state.expires, self._engine.full_at(state))
            cache[key] = state  # still refilling: keep it, go past max_users
            self._overflows += 1
            return

    # -- the verbs -------------------------------------------------------------------

    def acquire(self, key: Hashable, amount: float = 1, timeout: float | None = None) -> None:
        """Block until ``amount`` may go for ``key``.

        Raises:
            AmountError: ``amount`` is negative, NaN, not a number, or above the burst.
            AcquireTimeout: the wait would exceed ``timeout``; raised at once.
        """
        try:
            if timeout is None and amount > 0 and amount is not True:
                with self._lock:
                    now = self._now()
                    state = self._state_for(key, now)
                    if self._reserve(state, now, amount, 0.0) >= 0.0:
                        self._admitted += 1
                        self._committed(key, state, now)
                        return
        except TypeError:
            pass
        self._acquire_sync(key, amount, timeout)

    async def acquire_async(
        self, key: Hashable, amount: float = 1, timeout: float | None = None
    ) -> None:
        """Wait, without blocking the event loop, until ``amount`` may go for ``key``."""
        try:
            if timeout is None and amount > 0 and amount is not True:
                with self._lock:
                    now = self._now()
                    state = self._state_for(key, now)
                    if self._reserve(state, now, amount, 0.0) >= 0.0:
                        self._admitted += 1
                        self._committed(key, state, now)
                        return
        except TypeError:
            pass
        await self._acquire_async(key, amount, timeout)

    def try_acquire(self, key: Hashable, amount: float = 1) -> bool:
        """Take ``amount`` for ``key`` if it fits right now; never waits."""
        n = check_amount(amount, self._burst)
        return n == 0 or self._police(key, n) == 0.0

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

    def reset(self, *keys: Hashable) -> None:
        """Forget the buckets of ``keys`` (they are full again).

        Given no key, forget every bucket and every counter.
        """
        with self._lock:
            if not keys:
                self._cache = self._new_cache()
                self._shared = self._engine.new_state()
                self._unwindable.clear()
                self._admitted = self._waited = self._rejected = self._cancelled = 0
                self._evicted = self._overflows = 0
                self._wait_total = 0.0
            for key in keys:
                if key is None:
                    self._shared = self._engine.new_state()
                else:
                    self._cache.pop(key, None)
                self._unwindable.pop(key, None)

    @property
    def config(self) -> BucketConfig:
        """The limit every key gets."""
        return self._config

    @property
    def max_users(self) -> int:
        """How many keys' buckets are kept before full ones are dropped."""
        return self._max_users

    @property
    def ttl(self) -> float | None:
        """Seconds a full bucket is kept after it was stored (``None``: until room is needed)."""
        return self._ttl

    @property
    def stats(self) -> Stats:
        """Counters since the limiter was made or reset, and the cache's size."""
        with self._lock:
            users = len(self._cache)  # first: a timed cache expires what it must here
            expired = self._cache.expired if isinstance(self._cache, _Expiring) else 0
            return Stats(
                admitted=self._admitted,
                waited=self._waited,
                total_wait=self._wait_total,
                rejected=self._rejected,
                cancelled=self._cancelled,
                waiting=self._waiting,
                users=users,
                evictions=self._evicted + expired,
                overflows=self._overflows,
            )

    def __len__(self) -> int:
        return len(self._cache)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._cache

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} rate={self.rate:g}/s burst={self._burst:g} "
            f"users={len(self._cache)} max_users={self._max_users}>"
        )


def _expiry(key: Hashable, state: EngineState, now: float) -> float:
    return state.expires
