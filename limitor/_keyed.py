"""One engine state per key, in a ``cachetools`` cache, for any kind of limit.

See :mod:`limitor.per_user` for the rules: a state is never forgotten while it still holds
reservations or debt, so forgetting one never changes what is admitted.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import Any

from cachetools import LRUCache, TLRUCache

from limitor._checks import check_count
from limitor._core import LimiterCore
from limitor.configs import check_positive
from limitor.engines import Engine, EngineState
from limitor.results import Stats


class _Expiring(TLRUCache[Hashable, EngineState]):
    """A TLRU cache that counts what it expires."""

    expired = 0

    def expire(self, time: float | None = None) -> list[tuple[Hashable, EngineState]]:
        expired = list(super().expire(time))
        self.expired += len(expired)
        return expired


def _expiry(key: Hashable, state: EngineState, now: float) -> float:
    return state.expires


class KeyedLimiter(LimiterCore):
    """An engine with one state per key; the key ``None`` is one shared state.

    Args:
        engine: the limit every key gets.
        max_keys: how many keys' states to keep (full ones beyond it are dropped, least
            recently used first; ones still refilling are kept and counted as overflows).
        ttl: keep a state at least this many seconds after it was stored (a
            ``TLRUCache``); default: an ``LRUCache`` that drops full states only to make room.
        clock: the time source; it also drives the cache's expiry.
    """

    __slots__ = ("_cache", "_evicted", "_max_keys", "_overflows", "_shared", "_ttl")

    def __init__(
        self,
        engine: Engine[Any],
        *,
        max_keys: int,
        ttl: float | None,
        clock: Any,
        max_keys_name: str = "max_keys",
    ) -> None:
        super().__init__(engine, clock)
        self._max_keys = check_count(max_keys_name, max_keys)
        self._ttl = None if ttl is None else check_positive("ttl", ttl)
        self._shared: EngineState = engine.new_state()
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
        if len(cache) >= self._max_keys:
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
        # state now needs longer to be full than its entry says.
        if key is not None and self._ttl is not None:
            full_at = self._engine.full_at(state)
            if full_at > state.expires:
                state.expires = max(full_at, now + self._ttl)
                self._cache[key] = state

    def _make_room(self, now: float) -> None:
        cache = self._cache
        if isinstance(cache, _Expiring):
            cache.expire(now)
        while len(cache) >= self._max_keys:
            key, state = cache.popitem()  # the least recently used
            if self._engine.full_at(state) <= now:
                self._evicted += 1  # a full state is the same as none: nothing lost
                continue
            if self._ttl is not None:
                state.expires = max(state.expires, self._engine.full_at(state))
            cache[key] = state  # still refilling: keep it, go past max_keys
            self._overflows += 1
            return

    # -- views and housekeeping ----------------------------------------------------------

    @property
    def ttl(self) -> float | None:
        """Seconds a full state is kept after it was stored, or ``None`` (until room is needed)."""
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

    def reset(self, *keys: Hashable) -> None:
        """Forget the states of ``keys`` (they are full again).

        Given no key, forget every state and every counter.
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

    def __len__(self) -> int:
        return len(self._cache)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._cache
