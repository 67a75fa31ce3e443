"""limitor 0.6.0 from PyPI, in its own environment (it has the same package name as ours).

0.6 has no separate burst: the burst is ``capacity``, so "rate r, burst b" is written
``BucketConfig(capacity=b, seconds=b / r)``. It has no ``try_acquire``, no per-key
limiter and no Redis backend.
"""

from __future__ import annotations

import importlib
from typing import Any

from benchmarks.libraries.base import (
    ASYNC_ACQUIRE,
    PER_KEY_DECORATOR,
    SYNC_ACQUIRE,
    SYNC_TRY,
    Case,
    Keyed,
    Shaper,
    Timed,
    Unavailable,
    decorator_timings,
)

LIBRARY = "limitor 0.6"
DISTRIBUTIONS = ("limitor",)
HUGE = 1e12

_CLASSES = (
    ("leaky bucket", "SyncLeakyBucket", "AsyncLeakyBucket", "limitor.leaky_bucket.core"),
    ("token bucket", "SyncTokenBucket", "AsyncTokenBucket", "limitor.token_bucket.core"),
    (
        "GCRA (virtual scheduling)",
        "SyncVirtualSchedulingGCRA",
        "AsyncVirtualSchedulingGCRA",
        "limitor.generic_cell_rate.core",
    ),
    (
        "GCRA (leaky bucket form)",
        "SyncLeakyBucketGCRA",
        "AsyncLeakyBucketGCRA",
        "limitor.generic_cell_rate.core",
    ),
)


def _class(module: str, name: str) -> Any:
    return getattr(importlib.import_module(module), name)


def _config(rate: float, burst: float) -> Any:
    from limitor.configs import BucketConfig

    return BucketConfig(capacity=burst, seconds=burst / rate)


def _describe(rate: float, burst: float) -> str:
    return f"capacity={burst:g}, seconds={burst / rate:g}"


def timed_cases() -> list[Case]:
    cases: list[Case] = []
    for algorithm, sync_name, _, module in _CLASSES:

        def setup(module: str = module, name: str = sync_name) -> dict[str, Any]:
            return {"bucket": _class(module, name)(_config(HUGE, HUGE))}

        cases.append(Timed(SYNC_ACQUIRE, algorithm, stmt="bucket.acquire()", setup=setup))
    cases.append(Unavailable(SYNC_TRY, "leaky bucket", status="n/a", note="no try_acquire"))
    for algorithm, _, async_name, module in _CLASSES:

        def asetup(module: str = module, name: str = async_name) -> dict[str, Any]:
            return {"bucket": _class(module, name)(_config(HUGE, HUGE))}

        cases.append(
            Timed(
                ASYNC_ACQUIRE,
                algorithm,
                stmt="await bucket.acquire()",
                setup=asetup,
                is_async=True,
            )
        )

    def sync_setup() -> dict[str, Any]:
        from limitor import rate_limit

        @rate_limit(capacity=HUGE, seconds=1)
        def function(x: int) -> int:
            return x

        return {"function": function}

    def async_setup() -> dict[str, Any]:
        from limitor import async_rate_limit

        @async_rate_limit(capacity=HUGE, seconds=1)
        async def function(x: int) -> int:
            return x

        return {"function": function}

    cases += [
        *decorator_timings(
            "leaky bucket",
            sync_setup,
            async_setup,
            sync_note="@rate_limit",
            async_note="@async_rate_limit",
        ),
        Unavailable(PER_KEY_DECORATOR, "leaky bucket", status="n/a", note="no per-key limiter"),
    ]
    return cases


def shapers() -> list[Case]:
    cases: list[Case] = []
    for algorithm, sync_name, async_name, module in _CLASSES:

        def make_sync(rate: float, burst: float, module: str = module, name: str = sync_name):
            return _class(module, name)(_config(rate, burst)).acquire

        def make_async(rate: float, burst: float, module: str = module, name: str = async_name):
            return _class(module, name)(_config(rate, burst)).acquire

        cases.append(Shaper("", algorithm, make=make_sync, config=_describe))
        cases.append(Shaper("", algorithm, make=make_async, is_async=True, config=_describe))
    return cases


def keyed() -> list[Case]:
    def make_dict(rate: float, burst: float):  # type: ignore[no-untyped-def]
        from limitor.generic_cell_rate.core import SyncVirtualSchedulingGCRA

        config = _config(rate, burst)
        buckets: dict[str, Any] = {}
        get = buckets.get

        def hit(key: str) -> None:
            bucket = get(key)
            if bucket is None:
                bucket = buckets[key] = SyncVirtualSchedulingGCRA(config)
            bucket.acquire()

        return hit

    return [
        Keyed(
            "",
            "GCRA (virtual scheduling)",
            make=make_dict,
            note="dict of SyncVirtualSchedulingGCRA (by hand; 0.6 has no per-key limiter)",
        )
    ]
