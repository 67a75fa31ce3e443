"""throttled-py: ``Throttled`` over a store (memory or Redis), five algorithms.

Blocking uses the library's own ``timeout=``: when limited it sleeps in chunks of at
least 0.2 s (``_WAIT_MIN_INTERVAL``) and tries again. Quotas take a burst
(``per_sec(r, burst=b)``); the window algorithms admit ``r`` per window whatever the
burst. The memory store is an LRU cache of 1,024 keys unless ``MAX_SIZE`` says more, so
the per-key case raises it to hold every key.
"""

from __future__ import annotations

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

LIBRARY = "throttled-py"
DISTRIBUTIONS = ("throttled-py",)
HUGE = 10**12
KEY = "bench"
WAIT = 600.0

# (algorithm label, throttled's name)
ALGORITHMS = (
    ("token bucket", "token_bucket"),
    ("leaky bucket", "leaking_bucket"),
    ("GCRA (virtual scheduling)", "gcra"),
    ("fixed window", "fixed_window"),
    ("sliding window counter", "sliding_window"),
)
DEFAULT = "token bucket"


def _quota(rate: float, burst: float) -> Any:
    from throttled import per_sec

    return per_sec(int(rate), burst=int(burst))


def _describe(rate: float, burst: float) -> str:
    return f"per_sec({int(rate)}, burst={int(burst)})"


def _sync(using: str, rate: float, burst: float, timeout: float | None = None) -> Any:
    from throttled import MemoryStore, Throttled

    return Throttled(
        key=KEY, using=using, quota=_quota(rate, burst), store=MemoryStore(), timeout=timeout
    )


def _async(using: str, rate: float, burst: float, timeout: float | None = None) -> Any:
    from throttled.asyncio import MemoryStore, Throttled

    return Throttled(
        key=KEY, using=using, quota=_quota(rate, burst), store=MemoryStore(), timeout=timeout
    )


def timed_cases() -> list[Case]:
    cases: list[Case] = []
    for algorithm, using in ALGORITHMS:

        def setup(using: str = using) -> dict[str, Any]:
            return {"throttle": _sync(using, HUGE, HUGE, timeout=WAIT)}

        cases.append(
            Timed(
                SYNC_ACQUIRE,
                algorithm,
                stmt="throttle.limit()",
                setup=setup,
                note="limit() with timeout (waits)",
            )
        )
    cases.append(
        Timed(
            SYNC_TRY,
            DEFAULT,
            stmt="throttle.limit()",
            setup=lambda: {"throttle": _sync("token_bucket", HUGE, HUGE)},
            note="limit() without timeout",
        )
    )
    for algorithm, using in ALGORITHMS:

        def asetup(using: str = using) -> dict[str, Any]:
            return {"throttle": _async(using, HUGE, HUGE, timeout=WAIT)}

        cases.append(
            Timed(
                ASYNC_ACQUIRE,
                algorithm,
                stmt="await throttle.limit()",
                setup=asetup,
                is_async=True,
                note="asyncio limit() with timeout",
            )
        )

    def sync_setup() -> dict[str, Any]:
        from throttled import MemoryStore, Throttled

        throttle = Throttled(key=KEY, quota=_quota(HUGE, HUGE), store=MemoryStore())
        return {"function": throttle(identity)}

    def async_setup() -> dict[str, Any]:
        from throttled.asyncio import MemoryStore, Throttled

        throttle = Throttled(key=KEY, quota=_quota(HUGE, HUGE), store=MemoryStore())
        return {"function": throttle(aidentity)}

    cases += [
        *decorator_timings(
            DEFAULT,
            sync_setup,
            async_setup,
            sync_note="@Throttled(key=...)",
            async_note="@throttled.asyncio.Throttled(key=...)",
        ),
        Unavailable(PER_KEY_DECORATOR, DEFAULT, status="n/a", note="decorator takes a fixed key"),
    ]
    return cases


def shapers() -> list[Case]:
    cases: list[Case] = []
    for algorithm, using in ALGORITHMS:

        def make_sync(rate: float, burst: float, using: str = using):  # type: ignore[no-untyped-def]
            throttle = _sync(using, rate, burst, timeout=WAIT)

            def acquire(amount: int = 1) -> None:
                while throttle.limit(cost=amount).limited:
                    pass

            return acquire

        def make_async(rate: float, burst: float, using: str = using):  # type: ignore[no-untyped-def]
            throttle = _async(using, rate, burst, timeout=WAIT)

            async def acquire(amount: int = 1) -> None:
                while (await throttle.limit(cost=amount)).limited:
                    pass

            return acquire

        cases.append(Shaper("", algorithm, make=make_sync, config=_describe))
        cases.append(Shaper("", algorithm, make=make_async, is_async=True, config=_describe))
    return cases


def keyed() -> list[Case]:
    cases: list[Case] = []
    for algorithm, using in ALGORITHMS:

        def make(rate: float, burst: float, using: str = using):  # type: ignore[no-untyped-def]
            from throttled import MemoryStore, Throttled

            store = MemoryStore(options={"MAX_SIZE": 1_000_000})
            limit = Throttled(using=using, quota=_quota(rate, burst), store=store).limit
            return lambda key: limit(key)

        cases.append(Keyed("", algorithm, make=make, note="MemoryStore(MAX_SIZE=1e6)"))
    return cases


def redis_cases(url: str) -> list[Case]:
    cases: list[Case] = []
    for algorithm, using in ALGORITHMS:

        def make(url: str, rate: float, burst: float, using: str = using):  # type: ignore[no-untyped-def]
            from throttled import RedisStore, Throttled

            throttle = Throttled(using=using, quota=_quota(rate, burst), store=RedisStore(url))
            limit = throttle.limit
            return lambda key: not limit(key).limited

        cases.append(RedisCase("", algorithm, make=make, note="RedisStore", config=_describe))
    return cases
