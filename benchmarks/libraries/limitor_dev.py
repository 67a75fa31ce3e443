"""limitor as it is in this repository (installed editable in the benchmark environment)."""

from __future__ import annotations

import importlib.util
from typing import Any

from benchmarks.libraries.base import (
    ASYNC_ACQUIRE,
    ASYNC_DECORATOR,
    BARE_ASYNC,
    BARE_SYNC,
    LLM_CALL,
    PER_KEY_DECORATOR,
    SYNC_ACQUIRE,
    SYNC_DECORATOR,
    SYNC_DECORATOR_VS_CLOSURE,
    SYNC_TRY,
    Case,
    Keyed,
    RedisCase,
    Shaper,
    Timed,
    Unavailable,
    bare_namespace,
    closure_namespace,
    decorator_timings,
)

LIBRARY = "limitor"
DISTRIBUTIONS = ("limitor",)
HUGE = 1e12
NOT_YET = "not available yet"

# (algorithm label, sync class name, async class name, module)
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
DEFAULT_ALGORITHM = "leaky bucket"


def _class(module: str, name: str) -> Any:
    return getattr(importlib.import_module(module), name)


def _config(rate: float, burst: float) -> Any:
    from limitor.configs import BucketConfig

    return BucketConfig(capacity=rate, seconds=1, burst=burst)


def _bucket_setup(module: str, name: str):  # type: ignore[no-untyped-def]
    def setup() -> dict[str, Any]:
        return {"bucket": _class(module, name)(_config(HUGE, HUGE))}

    return setup


def _decorators() -> tuple[Any, Any] | str:
    """``(rate_limit, rate_limit_per_user)``, or why they cannot be imported yet."""
    try:
        from limitor import rate_limit, rate_limit_per_user
    except ImportError as error:
        return f"{NOT_YET} ({error})"
    return rate_limit, rate_limit_per_user


def timed_cases() -> list[Case]:
    cases: list[Case] = []
    for algorithm, sync_name, _, module in _CLASSES:
        cases.append(
            Timed(
                SYNC_ACQUIRE,
                algorithm,
                stmt="bucket.acquire()",
                setup=_bucket_setup(module, sync_name),
            )
        )
    for algorithm, sync_name, _, module in _CLASSES[:1] + _CLASSES[2:3]:
        cases.append(
            Timed(
                SYNC_TRY,
                algorithm,
                stmt="bucket.try_acquire()",
                setup=_bucket_setup(module, sync_name),
            )
        )
    for algorithm, _, async_name, module in _CLASSES:
        cases.append(
            Timed(
                ASYNC_ACQUIRE,
                algorithm,
                stmt="await bucket.acquire()",
                setup=_bucket_setup(module, async_name),
                is_async=True,
            )
        )
    cases.extend(_decorator_cases())
    cases.append(_llm_case())
    return cases


def _llm_case() -> Case:
    """``@llm_rate_limit`` on an async call: 100 tokens estimated, 80 reconciled."""
    try:
        from limitor import llm_rate_limit
    except ImportError as error:
        return Unavailable(LLM_CALL, "token bucket", status=NOT_YET, note=str(error))

    def setup() -> dict[str, Any]:
        @llm_rate_limit(
            requests_per_minute=HUGE,
            tokens_per_minute=HUGE,
            token_estimate=lambda x: 100,
            token_reconcile=lambda result: 80,
        )
        async def function(x: int) -> int:
            return x

        return {"function": function}

    return Timed(
        LLM_CALL,
        "token bucket",
        stmt=BARE_ASYNC,
        setup=setup,
        is_async=True,
        bare=BARE_ASYNC,
        bare_setup=lambda: bare_namespace(True),
        note="@llm_rate_limit, 100 tokens estimated, 80 reconciled",
    )


def _decorator_cases() -> list[Case]:
    found = _decorators()
    if isinstance(found, str):
        return [
            Unavailable(SYNC_DECORATOR, DEFAULT_ALGORITHM, status=NOT_YET, note=found),
            Unavailable(ASYNC_DECORATOR, DEFAULT_ALGORITHM, status=NOT_YET, note=found),
            Unavailable(PER_KEY_DECORATOR, DEFAULT_ALGORITHM, status=NOT_YET, note=found),
        ]
    rate_limit, rate_limit_per_user = found

    def sync_setup() -> dict[str, Any]:
        @rate_limit(capacity=HUGE, seconds=1)
        def function(x: int) -> int:
            return x

        return {"function": function}

    def async_setup() -> dict[str, Any]:
        @rate_limit(capacity=HUGE, seconds=1)
        async def function(x: int) -> int:
            return x

        return {"function": function}

    def per_user_setup() -> dict[str, Any]:
        @rate_limit_per_user(capacity=HUGE, seconds=1, max_users=1000, ttl=600)
        def function(x: int, *, user_id: object = None) -> int:
            return x

        return {"function": function}

    return [
        *decorator_timings(
            DEFAULT_ALGORITHM,
            sync_setup,
            async_setup,
            sync_note="@rate_limit",
            async_note="@rate_limit on async def",
        ),
        Timed(
            SYNC_DECORATOR_VS_CLOSURE,
            DEFAULT_ALGORITHM,
            stmt=BARE_SYNC,
            setup=sync_setup,
            bare=BARE_SYNC,
            bare_setup=lambda: bare_namespace(False),
            reference_setup=closure_namespace,
            note="@rate_limit against a closure around the floor bucket (goal: <= 1.5)",
        ),
        Timed(
            PER_KEY_DECORATOR,
            DEFAULT_ALGORITHM,
            stmt="function(1, user_id='alice')",
            setup=per_user_setup,
            bare="function(1, user_id='alice')",
            bare_setup=lambda: bare_namespace(False),
            note="@rate_limit_per_user, one key",
        ),
    ]


def shapers() -> list[Case]:
    cases: list[Case] = []
    for algorithm, sync_name, async_name, module in _CLASSES:

        def make_sync(rate: float, burst: float, module: str = module, name: str = sync_name):
            return _class(module, name)(_config(rate, burst)).acquire

        def make_async(rate: float, burst: float, module: str = module, name: str = async_name):
            return _class(module, name)(_config(rate, burst)).acquire

        cases.append(Shaper("", algorithm, make=make_sync))
        cases.append(Shaper("", algorithm, make=make_async, is_async=True))
    return cases


def keyed() -> list[Case]:
    cases: list[Case] = []
    found = _decorators()
    if isinstance(found, str):
        cases.append(
            Unavailable("", DEFAULT_ALGORITHM, status=NOT_YET, note="@rate_limit_per_user")
        )
    else:
        rate_limit_per_user = found[1]

        def make_per_user(rate: float, burst: float):  # type: ignore[no-untyped-def]
            @rate_limit_per_user(
                capacity=rate, seconds=1, burst=burst, max_users=1_000_000, ttl=600
            )
            def handler(*, user_id: object = None) -> None:
                return None

            return lambda key: handler(user_id=key)

        cases.append(Keyed("", DEFAULT_ALGORITHM, make=make_per_user, note="@rate_limit_per_user"))

    def make_dict(rate: float, burst: float):  # type: ignore[no-untyped-def]
        from limitor.leaky_bucket.core import SyncLeakyBucket

        config = _config(rate, burst)
        buckets: dict[str, Any] = {}
        get = buckets.get

        def hit(key: str) -> None:
            bucket = get(key)
            if bucket is None:
                bucket = buckets[key] = SyncLeakyBucket(config)
            bucket.acquire()

        return hit

    cases.append(
        Keyed("", DEFAULT_ALGORITHM, make=make_dict, note="dict of SyncLeakyBucket (by hand)")
    )
    return cases


def _takes_backend() -> bool:
    """Whether the buckets take ``backend=`` yet (issue 8's limiter over stores)."""
    import inspect

    bucket_class = _class("limitor.leaky_bucket.core", "SyncLeakyBucket")
    return "backend" in inspect.signature(bucket_class).parameters


def redis_cases(url: str) -> list[Case]:
    """limitor's Redis row: the public bucket with ``backend=RedisBackend`` (see API.md).

    Until the buckets take ``backend=``, the row times the Redis store itself (the
    contract's ``reserve`` with ``max_wait=0``, the call a bucket's ``try_acquire`` makes),
    and its note says so.
    """
    try:
        spec = importlib.util.find_spec("limitor.backends.redis")
    except ModuleNotFoundError:  # no limitor.backends package at all
        spec = None
    if spec is None:
        return [Unavailable("", DEFAULT_ALGORITHM, status="no Redis backend yet")]

    if _takes_backend():

        def make(url: str, rate: float, burst: float):  # type: ignore[no-untyped-def]
            from limitor.backends.redis import RedisBackend

            bucket_class = _class("limitor.leaky_bucket.core", "SyncLeakyBucket")
            backend = RedisBackend.from_url(url)
            buckets: dict[str, Any] = {}

            def decide(key: str) -> bool:
                bucket = buckets.get(key)
                if bucket is None:
                    bucket = buckets[key] = bucket_class(
                        _config(rate, burst), backend=backend, name=key
                    )
                return bool(bucket.try_acquire())

            return decide

        def make_async(url: str, rate: float, burst: float):  # type: ignore[no-untyped-def]
            from limitor.backends.redis import RedisBackend

            bucket_class = _class("limitor.leaky_bucket.core", "AsyncLeakyBucket")
            backend = RedisBackend.from_url(url)
            buckets: dict[str, Any] = {}

            async def decide(key: str) -> bool:
                bucket = buckets.get(key)
                if bucket is None:
                    bucket = buckets[key] = bucket_class(
                        _config(rate, burst), backend=backend, name=key
                    )
                return bool(await bucket.try_acquire())

            return decide

        note = "SyncLeakyBucket / AsyncLeakyBucket, backend=RedisBackend"
    else:

        def _stores(url: str, rate: float, burst: float) -> Any:
            """``store_for(key)``: one backend (one connection pool), a store per key."""
            from limitor.backends.base import LimitSpec, Part
            from limitor.backends.redis import RedisBackend
            from limitor.clock import MONOTONIC

            backend = RedisBackend.from_url(url)
            stores: dict[str, Any] = {}

            def store_for(key: str) -> Any:
                store = stores.get(key)
                if store is None:
                    spec = LimitSpec((Part(rate, burst),), name=key)
                    store = stores[key] = backend.bind(spec, MONOTONIC)
                return store

            return store_for

        def make(url: str, rate: float, burst: float):  # type: ignore[no-untyped-def]
            store_for = _stores(url, rate, burst)
            one = (1.0,)

            def decide(key: str) -> bool:
                return bool(store_for(key).reserve(None, one, 0.0).admitted)

            return decide

        def make_async(url: str, rate: float, burst: float):  # type: ignore[no-untyped-def]
            store_for = _stores(url, rate, burst)
            one = (1.0,)

            async def decide(key: str) -> bool:
                return bool((await store_for(key).areserve(None, one, 0.0)).admitted)

            return decide

        note = "RedisStore.reserve (the buckets do not take backend= yet)"

    return [
        RedisCase("", DEFAULT_ALGORITHM, make=make, make_async=make_async, note=note),
    ]
