"""@rate_limit: one decorator for sync and async callables, built on wrapt."""

from __future__ import annotations

import inspect
import logging
import time
from typing import Any

import anyio
import pytest

from limitor import (
    AcquireTimeout,
    AmountError,
    AsyncLeakyBucket,
    AsyncTokenBucket,
    AsyncVirtualSchedulingGCRA,
    BucketConfig,
    ConfigError,
    RateLimitExceeded,
    SyncLeakyBucket,
    SyncTokenBucket,
    async_rate_limit,
    limiter_of,
    rate_limit,
)
from limitor.errors import ConfigTypeError
from limitor.extra.leaky_bucket.core import AsyncLeakyBucket as QueueLeakyBucket
from limitor.testing import FakeClock


def test_bare_and_parametrised_forms(clock: FakeClock) -> None:
    @rate_limit
    def bare(x: int) -> int:
        return x

    @rate_limit(capacity=2, seconds=1, clock=clock)
    def shaped(x: int) -> int:
        return x * 2

    assert bare(3) == 3
    assert isinstance(bare.limiter, SyncLeakyBucket)  # type: ignore[attr-defined]
    assert bare.limiter.config == BucketConfig(10, 1)  # type: ignore[attr-defined]
    assert [shaped(i) for i in range(5)] == [0, 2, 4, 6, 8]
    assert clock.now() == pytest.approx(1.5)


def test_the_function_keeps_its_identity() -> None:
    def original(a: int, b: str = "x", *, c: float = 1.0) -> str:
        """Docs."""
        return b * a

    async def coroutine(a: int) -> int:
        """Async docs."""
        return a

    decorated = rate_limit(capacity=5)(original)
    decorated_async = rate_limit(capacity=5)(coroutine)
    assert decorated.__name__ == "original"
    assert decorated.__doc__ == "Docs."
    assert decorated.__wrapped__ is original  # type: ignore[attr-defined]
    assert inspect.signature(decorated) == inspect.signature(original)
    assert not inspect.iscoroutinefunction(decorated)
    assert inspect.iscoroutinefunction(decorated_async)
    assert decorated_async.__name__ == "coroutine"
    assert inspect.signature(decorated_async) == inspect.signature(coroutine)
    assert decorated(2, "ab") == "abab"


def test_limiter_of_gives_typed_access() -> None:
    @rate_limit(capacity=3)
    def f() -> None:
        pass

    assert limiter_of(f) is f.limiter  # type: ignore[attr-defined]
    with pytest.raises(ConfigTypeError):
        limiter_of(len)


def test_async_rate_limit_is_the_same_decorator() -> None:
    assert async_rate_limit is rate_limit


@pytest.mark.anyio
async def test_async_functions_await_on_both_backends(clock: FakeClock) -> None:
    calls: list[float] = []

    @rate_limit(capacity=4, seconds=1, clock=clock)
    async def fetch(i: int) -> int:
        calls.append(clock.now())
        return i

    assert isinstance(fetch.limiter, AsyncLeakyBucket)  # type: ignore[attr-defined]
    assert [await fetch(i) for i in range(6)] == list(range(6))
    assert calls == pytest.approx([0, 0, 0, 0, 0.25, 0.5])


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("bucket_cls", "twin"),
    [(SyncLeakyBucket, AsyncLeakyBucket), (SyncTokenBucket, AsyncTokenBucket)],
)
async def test_a_sync_bucket_class_for_an_async_function_means_its_async_twin(
    bucket_cls: type, twin: type
) -> None:
    @rate_limit(capacity=20, seconds=1, burst=1, bucket_cls=bucket_cls)
    async def call() -> None:
        pass

    assert type(call.limiter) is twin  # type: ignore[attr-defined]
    ticks = 0
    done = anyio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await anyio.sleep(0.005)

    started = time.monotonic()
    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        for _ in range(8):  # 7 waits of 50 ms
            await call()
        done.set()
    assert time.monotonic() - started >= 0.35 - 0.01
    assert ticks >= 10  # the loop kept running while the calls waited


@pytest.mark.anyio
async def test_a_shared_sync_bucket_serves_an_async_function_without_blocking(
    clock: FakeClock,
) -> None:
    bucket = SyncLeakyBucket(BucketConfig(capacity=1, seconds=1), clock=clock)

    @rate_limit(limiter=bucket)
    async def call() -> int:
        return 1

    assert await call() + await call() == 2
    assert clock.now() == pytest.approx(1.0)
    assert clock.sleeps == [pytest.approx(1.0)]  # an async sleep on the clock, not a blocked thread


def test_methods_static_and_class_methods(clock: FakeClock) -> None:
    class Client:
        def __init__(self, name: str) -> None:
            self.name = name

        @rate_limit(capacity=1, seconds=1, clock=clock)
        def get(self, path: str) -> str:
            return f"{self.name}{path}"

        @rate_limit(capacity=1, seconds=1, clock=clock)
        @staticmethod
        def ping() -> str:
            return "pong"

        @rate_limit(capacity=1, seconds=1, clock=clock)
        @classmethod
        def make(cls, name: str) -> Client:
            return cls(name)

        @classmethod
        @rate_limit(capacity=1, seconds=1, clock=clock)
        def make_inner(cls, name: str) -> Client:
            return cls(name)

    client = Client("a")
    assert client.get("/x") == "a/x"
    assert Client.get(client, "/y") == "a/y"  # the same limit, called through the class
    assert clock.now() == pytest.approx(1.0)
    assert Client.ping() == "pong"
    assert client.ping() == "pong"  # each function has its own limit: this one waits 1 s
    assert clock.now() == pytest.approx(2.0)
    assert Client.make("b").name == "b"
    assert client.make("c").name == "c"
    assert clock.now() == pytest.approx(3.0)
    assert Client.make_inner("d").name == "d"
    assert isinstance(Client.make_inner("e"), Client)
    assert clock.now() == pytest.approx(4.0)
    assert client.get.limiter is Client.get.limiter  # type: ignore[attr-defined]


@pytest.mark.anyio
async def test_async_methods(clock: FakeClock) -> None:
    class Api:
        @rate_limit(capacity=1, seconds=1, clock=clock)
        async def call(self, x: int) -> int:
            return x

        @rate_limit(capacity=1, seconds=1, clock=clock)
        @classmethod
        async def make(cls) -> Api:
            return cls()

    api = Api()
    assert await api.call(1) + await api.call(2) == 3
    assert clock.now() == pytest.approx(1.0)
    assert isinstance(await Api.make(), Api)
    assert inspect.iscoroutinefunction(api.call)


def test_timeout_raises_before_calling(clock: FakeClock) -> None:
    called = 0

    @rate_limit(capacity=1, seconds=1, timeout=0.5, clock=clock)
    def call() -> None:
        nonlocal called
        called += 1

    call()
    with pytest.raises(AcquireTimeout) as info:
        call()
    assert info.value.retry_after == pytest.approx(1.0)
    assert called == 1
    assert clock.sleeps == []


def test_on_limit_raise_polices(clock: FakeClock) -> None:
    called = 0

    @rate_limit(capacity=2, seconds=1, on_limit="raise", clock=clock)
    def call() -> None:
        nonlocal called
        called += 1

    call()
    call()
    with pytest.raises(RateLimitExceeded) as info:
        call()
    assert not isinstance(info.value, AcquireTimeout)
    assert info.value.retry_after == pytest.approx(0.5)
    assert called == 2
    clock.advance(0.5)
    call()  # the refused call took nothing
    assert called == 3
    assert call.limiter.stats.rejected == 1  # type: ignore[attr-defined]


@pytest.mark.anyio
async def test_on_limit_raise_for_async(clock: FakeClock) -> None:
    @rate_limit(capacity=1, seconds=1, on_limit="raise", clock=clock)
    async def call() -> int:
        return 1

    await call()
    with pytest.raises(RateLimitExceeded):
        await call()


def test_one_limiter_shared_by_two_functions(clock: FakeClock) -> None:
    shared = SyncLeakyBucket(BucketConfig(capacity=2, seconds=1), clock=clock)

    @rate_limit(limiter=shared)
    def a() -> None:
        pass

    @rate_limit(limiter=shared)
    def b() -> None:
        pass

    a()
    b()
    a()
    assert clock.now() == pytest.approx(0.5)
    assert a.limiter is b.limiter is shared  # type: ignore[attr-defined]
    assert shared.stats.admitted == 3


def test_limiter_with_other_settings_is_an_error() -> None:
    with pytest.raises(ConfigError, match="algorithm"):
        rate_limit(limiter=SyncLeakyBucket(), algorithm="gcra")
    with pytest.raises(ConfigError, match="capacity"):
        rate_limit(limiter=SyncLeakyBucket(), capacity=5)
    with pytest.raises(ConfigError, match="seconds"):
        rate_limit(limiter=SyncLeakyBucket(), seconds=10)
    with pytest.raises(ConfigError, match="capacity"):
        rate_limit(limiter=SyncLeakyBucket(), capacity=10)  # written out, even as the default
    assert repr(inspect.signature(rate_limit).parameters["capacity"].default) == "10"


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("leaky_bucket", "SyncLeakyBucket"),
        ("token_bucket", "SyncTokenBucket"),
        ("gcra", "SyncVirtualSchedulingGCRA"),
        ("gcra_leaky_bucket", "SyncLeakyBucketGCRA"),
    ],
)
def test_algorithm_names(algorithm: str, expected: str, clock: FakeClock) -> None:
    @rate_limit(capacity=2, seconds=1, algorithm=algorithm, clock=clock)
    def call() -> None:
        pass

    assert type(call.limiter).__name__ == expected  # type: ignore[attr-defined]
    for _ in range(4):
        call()
    assert clock.now() == pytest.approx(1.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"algorithm": "fastest"},
        {"algorithm": "gcra", "bucket_cls": SyncLeakyBucket},
        {"capacity": 0},
        {"seconds": float("nan")},
        {"burst": -1},
        {"on_limit": "drop"},
        {"timeout": -1},
        {"on_limit": "raise", "timeout": 1},
        {"bucket_cls": "SyncLeakyBucket"},
        {"token_estimate": 5},
    ],
)
def test_bad_settings_fail_at_decoration_time(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        rate_limit(**kwargs)


def test_max_concurrent_is_for_async_functions() -> None:
    with pytest.raises(ConfigError, match="max_concurrent"):

        @rate_limit(max_concurrent=2)
        def call() -> None:
            pass


@pytest.mark.anyio
async def test_max_concurrent_bounds_running_calls() -> None:
    running = peak = 0

    @rate_limit(capacity=1000, seconds=1, max_concurrent=2)
    async def call() -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await anyio.sleep(0.01)
        running -= 1

    async with anyio.create_task_group() as tg:
        for _ in range(8):
            tg.start_soon(call)
    assert peak == 2


def test_async_generators_are_refused() -> None:
    async def stream() -> Any:
        yield 1

    with pytest.raises(ConfigTypeError, match="async generator"):
        rate_limit(stream)


def test_queue_bucket_class_for_an_async_function(clock: FakeClock) -> None:
    @rate_limit(capacity=1, seconds=1, bucket_cls=QueueLeakyBucket, clock=clock)
    async def call() -> None:
        pass

    assert type(call.limiter) is QueueLeakyBucket  # type: ignore[attr-defined]


# -- amounts: estimate, then reconcile --------------------------------------------------


def test_token_estimate_gets_exactly_the_calls_arguments(clock: FakeClock) -> None:
    seen: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def estimate(*args: Any, **kwargs: Any) -> float:
        seen.append((args, kwargs))
        return 3

    class Model:
        @rate_limit(capacity=100, token_estimate=estimate, clock=clock)
        def complete(self, prompt: str, *, max_tokens: int = 10) -> str:
            return prompt

    @rate_limit(capacity=100, token_estimate=estimate, clock=clock)
    def complete(prompt: str, *, max_tokens: int = 10) -> str:
        return prompt

    model = Model()
    complete("hi", max_tokens=5)
    model.complete("yo")
    assert seen == [(("hi",), {"max_tokens": 5}), ((model, "yo"), {})]
    assert complete.limiter.status().remaining == pytest.approx(97)  # type: ignore[attr-defined]


def test_06_readme_token_estimate_example(clock: FakeClock) -> None:
    @rate_limit(
        capacity=100_000,
        seconds=1,
        bucket_cls=SyncTokenBucket,
        token_estimate=lambda prompt, **kw: len(prompt) * 4,
        clock=clock,
    )
    def generate_response(prompt: str) -> str:
        return f"Response to: {prompt}"

    for size in (10_000, 20_000, 15_000):  # 40k, 80k, 60k tokens
        generate_response("x" * size)
    assert clock.now() == pytest.approx(0.8)  # 180k at 100k/s with a 100k burst


def test_06_readme_reconcile_example(clock: FakeClock) -> None:
    @rate_limit(
        capacity=50_000,
        seconds=60,
        bucket_cls=SyncTokenBucket,
        token_estimate=lambda prompt, **kw: len(prompt) // 4,
        token_reconcile=lambda response: response["usage"]["total_tokens"],
        clock=clock,
    )
    def query_llm(prompt: str) -> dict[str, Any]:
        return {"content": "Hello!", "usage": {"total_tokens": 120}}

    assert query_llm("x" * 4000)["content"] == "Hello!"  # estimated 1000, used 120
    assert query_llm.limiter.status().remaining == pytest.approx(50_000 - 120)  # type: ignore[attr-defined]


def test_underestimates_become_debt_for_the_next_call(clock: FakeClock) -> None:
    @rate_limit(
        capacity=600,
        seconds=60,  # 10 tokens per second
        token_estimate=lambda n: n,
        token_reconcile=lambda used: used,
        clock=clock,
    )
    def call(n: int) -> int:
        return 2500 if n == 100 else n  # the first call uses far more than it said

    assert call(100) == 2500  # no exception after the call ran, and the result comes back
    assert clock.sleeps == []
    call(1)  # 2500 used with 600 free at once: the next token waits (1900 + 1) / 10 s
    assert clock.now() == pytest.approx(190.1)


def test_a_call_that_raises_gets_its_estimate_back(clock: FakeClock) -> None:
    @rate_limit(
        capacity=100,
        seconds=100,
        token_estimate=lambda n: n,
        token_reconcile=lambda used: used,
        clock=clock,
    )
    def call(n: int) -> int:
        raise RuntimeError("model overloaded")

    with pytest.raises(RuntimeError):
        call(80)
    assert call.limiter.status().remaining == pytest.approx(100)  # type: ignore[attr-defined]


def test_a_failing_reconcile_never_hides_the_result(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    @rate_limit(
        capacity=100,
        seconds=100,
        token_estimate=lambda n: n,
        token_reconcile=lambda response: response["usage"],  # the response has no usage
        clock=clock,
    )
    def call(n: int) -> dict[str, int]:
        return {"n": n}

    @rate_limit(capacity=100, token_estimate=lambda: 5, token_reconcile=lambda r: -3, clock=clock)
    def negative() -> str:
        return "ok"

    with caplog.at_level(logging.WARNING, logger="limitor"):
        assert call(30) == {"n": 30}
        assert negative() == "ok"
    assert "token_reconcile failed" in caplog.text
    assert "could not reconcile -3" in caplog.text
    assert call.limiter.status().remaining == pytest.approx(70)  # type: ignore[attr-defined]


def test_an_estimate_that_can_never_fit_raises_before_calling(clock: FakeClock) -> None:
    called = False

    @rate_limit(capacity=10, token_estimate=lambda n: n, clock=clock)
    def call(n: int) -> None:
        nonlocal called
        called = True

    for bad in (11, -1, float("nan")):
        with pytest.raises(AmountError):
            call(bad)
    assert not called


@pytest.mark.anyio
async def test_async_estimate_and_reconcile(clock: FakeClock) -> None:
    @rate_limit(
        capacity=100,
        seconds=10,
        algorithm="gcra",
        token_estimate=lambda prompt: len(prompt),
        token_reconcile=lambda result: result,
        clock=clock,
    )
    async def call(prompt: str) -> int:
        return 10

    assert type(call.limiter) is AsyncVirtualSchedulingGCRA  # type: ignore[attr-defined]
    assert await call("x" * 90) == 10  # 90 estimated, 10 used: 80 back at once
    assert await call("y" * 90) == 10
    assert clock.sleeps == []


@pytest.mark.anyio
async def test_async_police_with_reconcile(clock: FakeClock) -> None:
    @rate_limit(
        capacity=10,
        seconds=10,
        on_limit="raise",
        token_estimate=lambda n: n,
        token_reconcile=lambda used: used,
        clock=clock,
    )
    async def call(n: int) -> int:
        return 1

    await call(8)  # 8 held, 1 used
    await call(9)  # fits only because 7 came back
    with pytest.raises(RateLimitExceeded):
        await call(9)


# -- limiters of the user's own (the 0.6 protocols) --------------------------------------


class CountingBucket:
    """A user's own bucket class following the limitor 0.6 protocol."""

    def __init__(self, bucket_config: BucketConfig, max_concurrent: int | None = None) -> None:
        self.config = bucket_config
        self.acquired: list[float] = []
        self.reconciled: list[tuple[float, float]] = []

    def acquire(self, amount: float = 1) -> None:
        self.acquired.append(amount)

    def try_acquire(self, amount: float = 1) -> bool:
        return False

    def reconcile(self, actual: float, estimated: float) -> None:
        self.reconciled.append((actual, estimated))


def test_a_bucket_class_of_ones_own(clock: FakeClock) -> None:
    @rate_limit(
        capacity=5, bucket_cls=CountingBucket, token_estimate=lambda: 2, token_reconcile=lambda r: r
    )
    def call() -> int:
        return 1

    assert call() == 1
    bucket = call.limiter  # type: ignore[attr-defined]
    assert isinstance(bucket, CountingBucket)
    assert bucket.config == BucketConfig(5, 1)
    assert bucket.acquired == [2]
    assert bucket.reconciled == [(1, 2)]

    @rate_limit(limiter=CountingBucket(BucketConfig()), on_limit="raise")
    def refused() -> None:
        pass

    with pytest.raises(RateLimitExceeded):
        refused()


@pytest.mark.anyio
async def test_a_blocking_bucket_of_ones_own_runs_in_a_thread_for_async_functions() -> None:
    bucket = CountingBucket(BucketConfig())

    @rate_limit(limiter=bucket)
    async def call() -> int:
        return 7

    assert await call() == 7
    assert bucket.acquired == [1]
