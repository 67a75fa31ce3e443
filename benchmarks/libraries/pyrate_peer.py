"""pyrate-limiter 4: a ``Limiter`` over one bucket (sliding window log, fixed window, GCRA).

Blocking ``try_acquire`` polls: it sleeps for the bucket's reported wait plus
``buffer_ms`` (default 50 ms) and tries again, as the library does by default. The
window buckets have no burst, so "rate r, burst b" is written ``Rate(b, b / r seconds)``;
the GCRA bucket takes ``burst=`` directly (pyrate's ``TokenBucket`` is the same code).
Per-key limiting needs a ``BucketFactory`` that routes item names to buckets; the one
below follows the library's documented pattern.
"""

from __future__ import annotations

import asyncio
from typing import Any

from benchmarks.libraries.base import (
    ASYNC_ACQUIRE,
    PER_KEY_DECORATOR,
    SYNC_ACQUIRE,
    SYNC_TRY,
    Case,
    Keyed,
    RedisCase,
    Shaper,
    Timed,
    Unavailable,
    aidentity,
    decorator_timings,
    identity,
)

LIBRARY = "pyrate-limiter"
DISTRIBUTIONS = ("pyrate-limiter",)
HUGE = 10**12
KEY = "bench"
LOG = "sliding window log"
FIXED = "fixed window"
GCRA = "GCRA (virtual scheduling)"
ALGORITHMS = (LOG, FIXED, GCRA)


def _rates(algorithm: str, rate: float, burst: float) -> list[Any]:
    from pyrate_limiter import Rate

    if algorithm == GCRA:
        return [Rate(int(rate), 1000, burst=int(burst))]
    return [Rate(int(burst), max(round(1000 * burst / rate), 1))]


def _describe(algorithm: str):  # type: ignore[no-untyped-def]
    def describe(rate: float, burst: float) -> str:
        if algorithm == GCRA:
            return f"Rate({int(rate)}, 1000 ms, burst={int(burst)})"
        return f"Rate({int(burst)}, {round(1000 * burst / rate)} ms)"

    return describe


def _bucket(algorithm: str, rate: float, burst: float) -> Any:
    import pyrate_limiter as pl

    rates = _rates(algorithm, rate, burst)
    if algorithm == GCRA:
        return pl.StateBucket(rates, algorithm=pl.GCRA())
    if algorithm == FIXED:
        return pl.InMemoryBucket(rates, algorithm=pl.FixedWindow())
    return pl.InMemoryBucket(rates)


def _limiter(algorithm: str, rate: float, burst: float) -> Any:
    from pyrate_limiter import Limiter

    return Limiter(_bucket(algorithm, rate, burst))


def timed_cases() -> list[Case]:
    cases: list[Case] = []
    for algorithm in ALGORITHMS:

        def setup(algorithm: str = algorithm) -> dict[str, Any]:
            return {"limiter": _limiter(algorithm, HUGE, HUGE)}

        cases.append(
            Timed(
                SYNC_ACQUIRE,
                algorithm,
                stmt="limiter.try_acquire('bench')",
                setup=setup,
                note="try_acquire (blocking)",
            )
        )
    cases.append(
        Timed(
            SYNC_TRY,
            GCRA,
            stmt="limiter.try_acquire('bench', blocking=False)",
            setup=lambda: {"limiter": _limiter(GCRA, HUGE, HUGE)},
            note="try_acquire(blocking=False)",
        )
    )
    for algorithm in ALGORITHMS:

        def asetup(algorithm: str = algorithm) -> dict[str, Any]:
            return {"limiter": _limiter(algorithm, HUGE, HUGE)}

        cases.append(
            Timed(
                ASYNC_ACQUIRE,
                algorithm,
                stmt="await limiter.try_acquire_async('bench')",
                setup=asetup,
                is_async=True,
                note="try_acquire_async",
            )
        )

    def sync_setup() -> dict[str, Any]:
        return {"function": _limiter(LOG, HUGE, HUGE).as_decorator(name=KEY)(identity)}

    def async_setup() -> dict[str, Any]:
        return {"function": _limiter(LOG, HUGE, HUGE).as_decorator(name=KEY)(aidentity)}

    cases += [
        *decorator_timings(
            LOG,
            sync_setup,
            async_setup,
            sync_note="Limiter.as_decorator",
            async_note="Limiter.as_decorator on async def",
        ),
        Unavailable(PER_KEY_DECORATOR, LOG, status="n/a", note="decorator takes a fixed name"),
    ]
    return cases


def shapers() -> list[Case]:
    cases: list[Case] = []
    for algorithm in ALGORITHMS:

        def make_sync(rate: float, burst: float, algorithm: str = algorithm):  # type: ignore[no-untyped-def]
            limiter = _limiter(algorithm, rate, burst)

            def acquire(amount: int = 1) -> None:
                while not limiter.try_acquire(KEY, weight=amount):
                    pass

            return acquire

        def make_async(rate: float, burst: float, algorithm: str = algorithm):  # type: ignore[no-untyped-def]
            limiter = _limiter(algorithm, rate, burst)

            async def acquire(amount: int = 1) -> None:
                while not await limiter.try_acquire_async(KEY, weight=amount):
                    await asyncio.sleep(0)

            return acquire

        cases.append(Shaper("", algorithm, make=make_sync, config=_describe(algorithm)))
        cases.append(
            Shaper("", algorithm, make=make_async, is_async=True, config=_describe(algorithm))
        )
    return cases


def _per_key_limiter(algorithm: str, rate: float, burst: float) -> Any:
    import pyrate_limiter as pl

    class PerKeyFactory(pl.BucketFactory):  # type: ignore[misc]
        """One bucket per item name, made on the name's first hit."""

        def __init__(self) -> None:
            self.clock = pl.MonotonicClock()
            self.buckets: dict[str, Any] = {}

        def wrap_item(self, name: str, weight: int = 1) -> Any:
            return pl.RateItem(name, self.clock.now(), weight=weight)

        def get(self, item: Any) -> Any:
            bucket = self.buckets.get(item.name)
            if bucket is None:
                bucket = self.buckets[item.name] = _bucket(algorithm, rate, burst)
                self.schedule_leak(bucket)
            return bucket

    return pl.Limiter(PerKeyFactory())


def keyed() -> list[Case]:
    cases: list[Case] = []
    for algorithm in (LOG, GCRA):

        def make(rate: float, burst: float, algorithm: str = algorithm):  # type: ignore[no-untyped-def]
            try_acquire = _per_key_limiter(algorithm, rate, burst).try_acquire
            return lambda key: try_acquire(key, blocking=False)

        cases.append(Keyed("", algorithm, make=make, note="BucketFactory, one bucket per key"))
    return cases


def redis_cases(url: str) -> list[Case]:
    def make_log(url: str, rate: float, burst: float):  # type: ignore[no-untyped-def]
        import pyrate_limiter as pl
        import redis

        client = redis.Redis.from_url(url)
        limiters: dict[str, Any] = {}

        def decide(key: str) -> bool:
            limiter = limiters.get(key)
            if limiter is None:
                bucket = pl.RedisBucket.init(_rates(LOG, rate, burst), client, key)
                limiter = limiters[key] = pl.Limiter(bucket)
            return bool(limiter.try_acquire(key, blocking=False))

        return decide

    def make_gcra(url: str, rate: float, burst: float):  # type: ignore[no-untyped-def]
        import pyrate_limiter as pl
        import redis

        client = redis.Redis.from_url(url)
        limiters: dict[str, Any] = {}

        def decide(key: str) -> bool:
            limiter = limiters.get(key)
            if limiter is None:
                store = pl.RedisStateStore(client, key)
                bucket = pl.StateBucket(_rates(GCRA, rate, burst), algorithm=pl.GCRA(), store=store)
                limiter = limiters[key] = pl.Limiter(bucket)
            return bool(limiter.try_acquire(key, blocking=False))

        return decide

    return [
        RedisCase("", LOG, make=make_log, note="RedisBucket", config=_describe(LOG)),
        RedisCase(
            "",
            GCRA,
            make=make_gcra,
            note="StateBucket + RedisStateStore",
            config=_describe(GCRA),
        ),
    ]
