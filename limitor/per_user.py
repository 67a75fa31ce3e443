"""One bucket per key (user, IP address, API key, tenant...) in one process.

:class:`PerUserLimiter` keeps a small engine state per key in a ``cachetools`` LRU cache
guarded by one lock, bounded by ``max_users``; with ``ttl``, buckets that are full and
unused for ``ttl`` seconds (on the limiter's clock) are dropped as well.

A key's bucket is never forgotten while it still holds reservations or debt: it only
expires once it is full again (and, with ``ttl``, no sooner than ``ttl`` seconds after it
was stored), so a forgotten bucket means exactly the same as a fresh one and key churn
can never let a user through faster. ``max_users`` bounds memory by dropping the least
recently used *full* buckets; if every bucket is still refilling, the cache does not grow
past ``max_users`` either: a new key is decided by one overflow bucket that every such key
shares (the same rate and burst: it admits less, never more), and ``stats.overflows``
counts those keys. Keys longer than 64 bytes are kept as 16-byte digests.

With ``total=`` (a rate such as ``"100/s"``), one more limit is shared by every key, the
key ``None`` included: a request is admitted only when its key's limit and the total both
allow it, in one decision under the store's one lock (all or nothing, at the earliest
time both have room), and giving back (cancel, refund) frees its units on both.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from limitor._checks import check_count, check_name, check_quantity, check_weight
from limitor._totals import TotalVerbs
from limitor.backends.base import ALL_KEYS, Backend, LimitSpec, Part, PartStatus
from limitor.configs import BucketConfig, as_config, as_rate, check_positive
from limitor.engines import ENGINES
from limitor.errors import ConfigError, ConfigTypeError
from limitor.limiter import OnBackendError
from limitor.results import Reservation, Stats, Status

__all__ = ("PerUserLimiter",)


def total_config(total: object, total_burst: float | None) -> BucketConfig | None:
    """The total's limit: a rate string or a :class:`BucketConfig` (``None``: no total).

    Raises:
        ConfigError: ``total`` is not a rate, or ``total_burst`` comes without a total.
    """
    if total is None:
        if total_burst is not None:
            raise ConfigError("total_burst= goes with total='100/s'")
        return None
    return as_rate(total, total_burst, name="total", expected="a rate such as '100/s'")


class PerUserLimiter(TotalVerbs):
    """The same limit for every key, each key with its own bucket.

    Args:
        bucket_config: the limit each key gets (or a rate string such as ``"5/s"``).
        rate: the limit as a rate string (instead of ``bucket_config``).
        burst: the burst that goes with ``rate``.
        algorithm: ``"leaky_bucket"`` (default), ``"token_bucket"``, ``"gcra"`` or
            ``"gcra_leaky_bucket"``.
        max_users: how many keys' buckets to keep, at most (full buckets beyond it are
            dropped, least recently used first; while every bucket is still refilling,
            new keys share one overflow bucket of the same limit).
        ttl: drop a full bucket once it has been unused this many seconds (default: drop
            full buckets only to make room); a bucket that is not full is always kept.
        clock: the time source; it also drives the cache's expiry.
        backend: where the buckets live (default: this process's memory); with a shared
            backend every key is ``name:key`` there and expires by itself once full.
        name: the limit's identity in a shared backend.
        on_backend_error: ``"raise"`` (default) or ``"allow"`` (fail open).
        total: one more limit shared by every key (a rate string such as ``"100/s"``
            or a :class:`BucketConfig`): a request is admitted only when its key's limit
            and the total both allow it, in one decision (on Redis: one script).
        total_burst: the total's burst (default: its amount per period).
        fair: while the total binds, admit waiting callers across keys in weighted round
            robin, each key FIFO within itself (needs ``total``); ``False`` (default):
            FIFO. Fairness is within this process (see :mod:`limitor._fair`).
        weight: with ``fair=True``, a callable key -> positive number: a key's share of
            the total while several keys wait (default 1 for every key). A weight that
            is not positive raises :class:`~limitor.errors.ConfigError` at use, with
            nothing taken.

    Under ``fair=True`` a fixed delay cannot be promised (a later key may pass a
    waiter), so :meth:`reserve` books no future slot: it returns a delay-0 reservation
    when the request may go now without passing a waiter, else raises
    :class:`~limitor.errors.RateLimitExceeded` with an estimated ``retry_after``.
    :meth:`acquire` waits for its turn and takes its grant then (``reconcile`` works as
    usual); with ``timeout=`` it raises at once when the estimate already exceeds it,
    else at the deadline with nothing taken.

    The key ``None`` is one shared bucket, never evicted (with a total, it counts
    against the total like any key).

    With a total: :meth:`status` reports the line that binds (the one that makes the
    amount wait longer, or leaves less, for the key); :meth:`status_both` gives the key's
    and the total's. ``hold(seconds, key=...)`` holds one key; ``hold(seconds,
    total=True)`` holds the total, so every key. ``reset(key)`` forgets a key's bucket
    and leaves the total as it is (what the key used still counts there); ``reset()``
    forgets everything, the total included; ``reset_total()`` forgets the total only.

    Example:
        >>> limiter = PerUserLimiter(BucketConfig(capacity=2, seconds=1), ttl=600)
        >>> limiter.acquire("alice")          # alice's bucket
        >>> limiter.try_acquire("bob", 2)     # bob's own burst
        True
    """

    __slots__ = ("_config", "_total")

    _total_keyword = "total="

    def __init__(
        self,
        bucket_config: BucketConfig | str | None = None,
        *,
        rate: str | None = None,
        burst: float | None = None,
        algorithm: str = "leaky_bucket",
        max_users: int = 10_000,
        ttl: float | None = None,
        clock: Any = None,
        backend: Backend | None = None,
        name: str | None = None,
        on_backend_error: OnBackendError = "raise",
        total: BucketConfig | str | None = None,
        total_burst: float | None = None,
        fair: bool = False,
        weight: Callable[[Hashable], float] | None = None,
    ) -> None:
        config = as_config(bucket_config, rate=rate, burst=burst)
        self._total = total_config(total, total_burst)
        if not isinstance(fair, bool):
            raise ConfigTypeError(f"fair must be True or False, got {fair!r}")
        if fair and self._total is None:
            raise ConfigError("fair=True shares a total between keys: give total= as well")
        weigh = check_weight(weight)
        if weigh is not None and not fair:
            raise ConfigError("weight= gives shares of the total under fair=True")
        if not isinstance(algorithm, str) or algorithm not in ENGINES:
            raise ConfigError(f"algorithm must be one of {sorted(ENGINES)}, got {algorithm!r}")
        spec = LimitSpec(
            parts=(Part(config.rate, config.max_burst),),
            name=check_name(name),
            algorithm=algorithm,
            keyed=True,
            max_keys=check_count("max_users", max_users),
            ttl=None if ttl is None else check_positive("ttl", ttl),
            totals=() if self._total is None else (Part(self._total.rate, self._total.max_burst),),
        )
        super().__init__(spec, clock, backend=backend, on_backend_error=on_backend_error)
        self._config = config
        if fair:
            self._make_fair(weigh)

    def _as_status(self, parts: tuple[PartStatus, ...]) -> Status:
        if len(parts) == 1:
            return super()._as_status(parts)
        return max(self._statuses(parts), key=lambda s: (s.retry_after, -s.remaining))

    def _statuses(self, parts: tuple[PartStatus, ...]) -> tuple[Status, Status]:
        limits = (self._burst, self._spec.totals[0].burst)
        key_status, total_status = (
            Status(
                limit=limit,
                remaining=part.remaining,
                retry_after=part.retry_after,
                reset_after=part.reset_after,
            )
            for limit, part in zip(limits, parts, strict=True)
        )
        return key_status, total_status

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
        return self._status(key, amount)

    def status_both(self, key: Hashable, amount: float = 1) -> tuple[Status, Status]:
        """``key``'s own live state and the total's, for headers about both.

        Raises:
            ConfigError: the limiter has no total.
        """
        self._need_total("status_both")
        return self._statuses(self._peek(key, check_quantity("amount", amount)))

    async def status_both_async(self, key: Hashable, amount: float = 1) -> tuple[Status, Status]:
        """:meth:`status_both` for tasks."""
        self._need_total("status_both_async")
        return self._statuses(await self._peek_async(key, check_quantity("amount", amount)))

    def charge(self, amount: float, *, key: Hashable = None) -> None:
        """Consume ``amount`` for ``key`` now without any check (debt)."""
        self._charge(key, amount)

    def reset(self, *keys: Hashable) -> None:
        """Forget the buckets of ``keys`` (they are full again).

        Given no key, forget every bucket and every counter (and the total). A key's
        reset leaves the total as it is: what the key used still counts there.
        """
        if not keys:
            self._reset(ALL_KEYS)
        for key in keys:
            self._reset(key)

    # -- the async twins (never block an event loop, on any backend) ------------------

    async def try_acquire_async(self, key: Hashable, amount: float = 1) -> bool:
        """:meth:`try_acquire` for tasks."""
        return await self._police_or_raise_async(key, amount)

    async def reserve_async(
        self, key: Hashable, amount: float = 1, timeout: float | None = None
    ) -> Reservation:
        """:meth:`reserve` for tasks."""
        return await self._reserve_for_async(key, amount, timeout)

    async def status_async(self, key: Hashable, amount: float = 1) -> Status:
        """:meth:`status` for tasks."""
        return await self._status_async(key, amount)

    async def charge_async(self, amount: float, *, key: Hashable = None) -> None:
        """:meth:`charge` for tasks."""
        await self._charge_async(key, amount)

    async def reset_async(self, *keys: Hashable) -> None:
        """:meth:`reset` for tasks."""
        if not keys:
            await self._reset_async(ALL_KEYS)
        for key in keys:
            await self._reset_async(key)

    # -- views -------------------------------------------------------------------------

    @property
    def stats(self) -> Stats:
        """Counters since the limiter was made or reset, and the cache's size."""
        return self._stats(keyed=True)

    @property
    def config(self) -> BucketConfig:
        """The limit every key gets."""
        return self._config

    @property
    def fair(self) -> bool:
        """True when waiting keys take turns at the total."""
        return self._fair is not None

    @property
    def total(self) -> BucketConfig | None:
        """The limit every key shares, or ``None``."""
        return self._total

    @property
    def max_users(self) -> int:
        """How many keys' buckets are kept before full ones are dropped."""
        return self._spec.max_keys

    @property
    def ttl(self) -> float | None:
        """Seconds a full bucket is kept after it was stored, or ``None``."""
        return self._spec.ttl

    def __repr__(self) -> str:
        total = "" if self._total is None else f" total={self._total.rate:g}/s"
        return (
            f"<{type(self).__name__} rate={self.rate:g}/s burst={self._burst:g}{total} "
            f"users={self.stats.users} max_users={self.max_users}>"
        )
