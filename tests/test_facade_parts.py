"""The pieces the 0.6 facades share, each written once: tested on every class that uses it.

``engine=`` in a bucket's class line; the buckets' keywords (``BucketKeywords``); the
``with`` and ``async with`` faces (``SyncFace``, ``AsyncFace``) of the buckets and the LLM
token buckets; the async facades' verbs that are their async twins; the total's verbs of
the keyed limiters (``TotalVerbs``); and the rate and burst of a config or an LLM limit
(``CapacityPerSeconds``).
"""

from __future__ import annotations

import inspect
from typing import Any

import anyio
import pytest

from limitor import LLMLimiter, PerUserLimiter
from limitor.base import AsyncBucket, Bucket, SyncBucket
from limitor.configs import BucketConfig
from limitor.engines import ENGINES, GcraLeakyBucket, TokenBucket
from limitor.errors import AcquireTimeout, ConfigError
from limitor.generic_cell_rate.core import SyncLeakyBucketGCRA
from limitor.leaky_bucket.core import AsyncLeakyBucket, SyncLeakyBucket
from limitor.llm import Limit
from limitor.llm_token.core import AsyncLLMTokenBucket, SyncLLMTokenBucket
from limitor.testing import FakeClock
from limitor.token_bucket.core import AsyncTokenBucket, SyncTokenBucket

from .conftest import ASYNC_BUCKETS, SYNC_BUCKETS


def test_each_06_class_names_its_engine_and_keeps_its_docstring() -> None:
    classes: list[type[Bucket]] = [*SYNC_BUCKETS, *ASYNC_BUCKETS]
    engines = {cls: cls.engine_type for cls in classes}
    assert engines[SyncTokenBucket] is TokenBucket
    assert engines[AsyncTokenBucket] is TokenBucket
    assert engines[SyncLeakyBucketGCRA] is GcraLeakyBucket
    assert set(engines.values()) == set(ENGINES.values())  # every algorithm, sync and async
    for cls in engines:
        assert cls.__doc__, cls
        assert type(cls(clock=FakeClock()).engine) is cls.engine_type


def test_a_users_own_bucket_class_names_its_engine_in_the_class_line() -> None:
    class MyBucket(SyncBucket, engine=TokenBucket):
        """A token bucket of the user's own."""

    class MyLeakyBucket(SyncLeakyBucket):  # inherits its parent's engine
        """A leaky bucket of the user's own."""

    assert MyBucket.engine_type is TokenBucket
    assert MyLeakyBucket.engine_type is SyncLeakyBucket.engine_type
    bucket = MyBucket("2/s", clock=FakeClock())
    assert type(bucket.engine) is TokenBucket
    assert bucket.try_acquire(2)
    assert not bucket.try_acquire(1)


@pytest.mark.parametrize("cls", [*SYNC_BUCKETS, *ASYNC_BUCKETS], ids=lambda cls: cls.__name__)
def test_the_bucket_keywords_are_written_out_and_checked(cls: Any) -> None:
    parameters = inspect.signature(cls).parameters
    keywords = [name for name, p in parameters.items() if p.kind is p.KEYWORD_ONLY]
    assert keywords == ["rate", "burst", "clock", "backend", "name", "on_backend_error"]
    assert parameters["on_backend_error"].default == "raise"
    assert parameters["rate"].default is None
    with pytest.raises(TypeError, match="unexpected keyword argument 'burts'"):
        cls("5/s", burts=2)
    bucket = cls(rate="4/s", burst=2, name="api", on_backend_error="allow", clock=FakeClock())
    assert (bucket.rate, bucket.burst, bucket.name) == (4.0, 2.0, "api")


def test_an_async_bucket_still_takes_max_concurrent_second() -> None:
    parameters = list(inspect.signature(AsyncBucket).parameters)
    assert parameters[:2] == ["bucket_config", "max_concurrent"]
    assert AsyncTokenBucket("5/s", 2).max_concurrent == 2


@pytest.mark.parametrize(
    ("cls", "twins"),
    [(AsyncLeakyBucket, Bucket), (AsyncLLMTokenBucket, SyncLLMTokenBucket)],
    ids=["bucket", "llm"],
)
def test_an_async_facades_verbs_are_its_async_twins(cls: Any, twins: Any) -> None:
    for verb in ("acquire", "try_acquire", "reserve", "reconcile"):
        assert getattr(cls, verb) is getattr(twins, f"{verb}_async")
        assert inspect.iscoroutinefunction(getattr(cls, verb))
        assert getattr(cls, verb).__doc__


def _sync(cls: Any, clock: FakeClock) -> Any:
    if cls is SyncLLMTokenBucket:
        return cls(requests_per_minute=1, clock=clock)
    return cls(BucketConfig(capacity=1, seconds=60), clock=clock)


@pytest.mark.parametrize("cls", [SyncLeakyBucket, SyncLLMTokenBucket], ids=lambda c: c.__name__)
def test_with_takes_one_default_amount_and_gives_nothing_back(cls: Any) -> None:
    clock = FakeClock()
    limiter = _sync(cls, clock)
    with limiter as entered:
        assert entered is limiter
    assert limiter.stats.admitted == 1
    with pytest.raises(AcquireTimeout):  # the unit was not given back on exit
        limiter.acquire(timeout=1)
    with pytest.raises(KeyError), limiter:  # an error in the body passes through
        raise KeyError("body")
    assert clock.now() == pytest.approx(60.0)  # the second `with` waited its turn


def _async(cls: Any, clock: FakeClock, max_concurrent: int | None) -> Any:
    if cls is AsyncLLMTokenBucket:
        return cls(requests_per_minute=1, clock=clock, max_concurrent=max_concurrent)
    return cls(BucketConfig(capacity=1, seconds=60), max_concurrent, clock=clock)


ASYNC_FACADES = [AsyncLeakyBucket, AsyncLLMTokenBucket]


@pytest.mark.parametrize("cls", ASYNC_FACADES, ids=lambda c: c.__name__)
def test_max_concurrent_and_the_gate_are_seen_alike(cls: Any) -> None:
    limiter = _async(cls, FakeClock(), 2)
    assert limiter.max_concurrent == 2
    assert limiter.gate is not None
    assert limiter.gate.limit == 2
    unbounded = _async(cls, FakeClock(), None)
    assert unbounded.max_concurrent is None
    assert unbounded.gate is None
    with pytest.raises(ConfigError, match="max_concurrent must be at least 1, got 0"):
        _async(cls, FakeClock(), 0)


@pytest.mark.anyio
@pytest.mark.parametrize("cls", ASYNC_FACADES, ids=lambda c: c.__name__)
async def test_async_with_gives_the_place_back_on_exit_and_when_the_acquire_fails(
    cls: Any,
) -> None:
    limiter = _async(cls, FakeClock(), 1)
    async with limiter as entered:
        assert entered is limiter
        assert limiter.gate.active == 1
    assert limiter.gate.active == 0
    limiter.acquire = _refuse  # the acquire fails after the place was taken
    with pytest.raises(AcquireTimeout):
        async with limiter:
            pass  # pragma: no cover - never entered
    assert limiter.gate.active == 0
    del limiter.acquire
    with anyio.fail_after(1):
        async with limiter:  # the place is free; the rate's turn comes on the fake clock
            assert limiter.gate.active == 1


async def _refuse() -> None:
    raise AcquireTimeout("refused", 1.0)


@pytest.mark.parametrize(
    ("make", "keyword"),
    [
        (lambda: PerUserLimiter("5/s"), "total="),
        (lambda: LLMLimiter(requests_per_minute=5), "a total (total_...=)"),
    ],
    ids=["per_user", "llm"],
)
def test_the_total_verbs_refuse_a_limiter_without_a_total_in_its_own_words(
    make: Any, keyword: str
) -> None:
    limiter = make()
    for verb, call in (
        ("hold(total=True)", lambda: limiter.hold(1, total=True)),
        ("reset_total", limiter.reset_total),
        ("hold_async(total=True)", lambda: anyio.run(lambda: limiter.hold_async(1, total=True))),
        ("reset_total_async", lambda: anyio.run(limiter.reset_total_async)),
    ):
        with pytest.raises(ConfigError) as info:
            call()
        assert str(info.value) == f"{verb}() needs a limiter made with {keyword}"
    limiter.hold(1, key="a")  # a key's hold needs no total


@pytest.mark.parametrize(
    "make",
    [
        lambda clock: PerUserLimiter("5/s", total="2/s", clock=clock),
        lambda clock: LLMLimiter(
            requests_per_minute=120, total_requests_per_minute=120, clock=clock
        ),
    ],
    ids=["per_user", "llm"],
)
def test_holding_and_resetting_the_total_reach_every_key(make: Any) -> None:
    clock = FakeClock()
    limiter = make(clock)
    limiter.hold(1.0, total=True)
    assert not limiter.verbs.try_acquire(1, key="a")
    assert not limiter.verbs.try_acquire(1, key="b")
    clock.advance(1.0)
    assert limiter.verbs.try_acquire(1, key="a")
    anyio.run(lambda: limiter.hold_async(5.0, total=True))
    assert not limiter.verbs.try_acquire(1, key="b")
    limiter.reset_total()
    assert limiter.verbs.try_acquire(1, key="b")
    anyio.run(lambda: limiter.hold_async(5.0, total=True))
    anyio.run(limiter.reset_total_async)
    assert limiter.verbs.try_acquire(1, key="c")


@pytest.mark.parametrize(
    ("limit", "rate", "burst"),
    [
        (BucketConfig(capacity=6, seconds=2), 3.0, 6.0),
        (BucketConfig(capacity=6, seconds=2, burst=1), 3.0, 1.0),
        (Limit("tokens", 600), 10.0, 600.0),
        (Limit("requests", 60, 60, burst=5), 1.0, 5.0),
    ],
)
def test_a_config_and_an_llm_limit_have_the_same_rate_and_burst(
    limit: Any, rate: float, burst: float
) -> None:
    assert limit.rate == rate
    assert limit.max_burst == burst
    assert type(limit.rate) is float
    assert type(limit.max_burst) is float
