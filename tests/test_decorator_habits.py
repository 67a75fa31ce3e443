"""Decorators: the limitor 0.6 habits, rate strings, the shared options, refusals at decoration."""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from limitor import (
    AsyncLeakyBucket,
    BucketConfig,
    ConfigError,
    PerUserLimiter,
    SyncLeakyBucket,
    SyncTokenBucket,
    limiter_of,
    llm_rate_limit,
    rate_limit,
    rate_limit_per_user,
)
from limitor.decorators import Decorator, DecoratorOptions, RateLimitedFunction, default_name
from limitor.errors import ConfigTypeError
from limitor.testing import FakeClock

# -- one decorator object, several functions, one limiter (as in 0.6) ----------------------


def test_a_decorator_object_shares_one_limiter_between_functions(clock: FakeClock) -> None:
    shared = rate_limit(capacity=2, seconds=0.2, clock=clock)  # the 0.6 README's recipe

    @shared
    def a() -> str:
        return "a"

    @shared
    def b() -> str:
        return "b"

    assert a.limiter is b.limiter  # type: ignore[attr-defined]
    assert [a(), b(), a(), b()] == ["a", "b", "a", "b"]
    # 2 per 0.2 s together, not each: the third and fourth calls wait 0.1 s apiece
    assert clock.now() == pytest.approx(0.2)
    assert a.limiter.stats.admitted == 4  # type: ignore[attr-defined]


@pytest.mark.anyio
async def test_a_shared_decorator_serves_a_sync_and_an_async_function(clock: FakeClock) -> None:
    shared = rate_limit(capacity=2, seconds=0.2, clock=clock)

    @shared
    def sync_call() -> int:
        return 1

    @shared
    async def async_call() -> int:
        return 2

    assert limiter_of(sync_call) is limiter_of(async_call)
    assert sync_call() + sync_call() == 2  # the burst of 2, used by the plain function
    assert clock.sleeps == []
    assert await async_call() == 2  # waits its turn on the same bucket, asleep on the clock
    assert clock.now() == pytest.approx(0.1)
    assert clock.sleeps == [pytest.approx(0.1)]
    assert sync_call() == 1
    assert clock.now() == pytest.approx(0.2)


@pytest.mark.anyio
async def test_an_async_first_shared_decorator_serves_a_plain_function_too(
    clock: FakeClock,
) -> None:
    shared = rate_limit(capacity=1, seconds=1, clock=clock)

    @shared
    async def first() -> None:
        pass

    @shared
    def second() -> None:
        pass

    assert isinstance(limiter_of(first), AsyncLeakyBucket)
    await first()
    second()  # blocks (on the fake clock) until the async function's unit has leaked
    assert clock.now() == pytest.approx(1.0)


def test_a_shared_per_user_decorator_shares_each_users_bucket(clock: FakeClock) -> None:
    shared = rate_limit_per_user(capacity=1, seconds=1, clock=clock)

    @shared
    def read(*, user_id: str) -> None:
        pass

    @shared
    def write(*, user_id: str) -> None:
        pass

    assert isinstance(limiter_of(read), PerUserLimiter)
    assert limiter_of(read) is limiter_of(write)
    read(user_id="alice")
    write(user_id="bob")
    assert clock.now() == 0
    write(user_id="alice")  # alice's one unit per second covers both functions
    assert clock.now() == pytest.approx(1.0)


def test_max_concurrent_on_a_shared_decorator_refuses_a_plain_function() -> None:
    shared = rate_limit(capacity=5, max_concurrent=2)

    @shared
    async def fine() -> None:
        pass

    with pytest.raises(ConfigError, match="max_concurrent"):

        @shared
        def not_async() -> None:
            pass


# -- bucket_cls: any callable returning a bucket --------------------------------------------


def test_bucket_cls_may_be_a_partial(clock: FakeClock) -> None:
    @rate_limit(capacity=2, seconds=1, bucket_cls=functools.partial(SyncTokenBucket, clock=clock))
    def call() -> None:
        pass

    assert type(limiter_of(call)) is SyncTokenBucket
    assert limiter_of(call).clock is clock
    for _ in range(4):
        call()
    assert clock.now() == pytest.approx(1.0)


def test_bucket_cls_may_be_a_factory(clock: FakeClock) -> None:
    configs: list[BucketConfig] = []

    def factory(config: BucketConfig) -> SyncLeakyBucket:
        configs.append(config)
        return SyncLeakyBucket(config, clock=clock)

    shared = rate_limit(capacity=3, seconds=1, bucket_cls=factory)

    @shared
    def a() -> None:
        pass

    @shared
    async def b() -> None:
        pass

    assert configs == [BucketConfig(3, 1)]  # made once, for both functions
    assert limiter_of(a) is limiter_of(b)
    for _ in range(4):
        a()
    assert clock.now() == pytest.approx(1 / 3)


def test_bucket_cls_that_is_not_callable_is_refused() -> None:
    with pytest.raises(ConfigTypeError, match="bucket_cls"):
        rate_limit(bucket_cls=SyncLeakyBucket(BucketConfig()))  # type: ignore[arg-type]


class EnteredBucket:
    """A user's own 0.6-style bucket that records how it is driven."""

    def __init__(self, config: BucketConfig) -> None:
        self.config = config
        self.events: list[str] = []

    def acquire(self, amount: float = 1) -> None:
        self.events.append(f"acquire {amount:g}")

    def reconcile(self, actual: float, estimated: float) -> None:
        self.events.append(f"reconcile {actual:g}/{estimated:g}")

    def __enter__(self) -> EnteredBucket:
        self.events.append("enter")
        return self

    def __exit__(self, *exc: object) -> None:
        self.events.append("exit")

    async def __aenter__(self) -> EnteredBucket:
        self.events.append("aenter")
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.events.append("aexit")


def test_a_bucket_of_ones_own_is_driven_through_with() -> None:
    @rate_limit(capacity=5, bucket_cls=EnteredBucket)
    def call() -> None:
        limiter_of(call).events.append("call")

    call()
    assert limiter_of(call).events == ["enter", "call", "exit"]


def test_a_bucket_of_ones_own_exits_when_the_call_raises() -> None:
    @rate_limit(capacity=5, bucket_cls=EnteredBucket)
    def call() -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        call()
    assert limiter_of(call).events == ["enter", "exit"]


@pytest.mark.anyio
async def test_a_bucket_of_ones_own_is_driven_through_async_with() -> None:
    @rate_limit(capacity=5, bucket_cls=EnteredBucket)
    async def call() -> None:
        limiter_of(call).events.append("call")

    await call()
    assert limiter_of(call).events == ["aenter", "call", "aexit"]


def test_a_bucket_of_ones_own_gets_amounts_through_acquire_and_reconcile() -> None:
    @rate_limit(
        capacity=5, bucket_cls=EnteredBucket, token_estimate=lambda: 3, token_reconcile=lambda r: r
    )
    def call() -> int:
        return 2

    assert call() == 2
    assert limiter_of(call).events == ["acquire 3", "reconcile 2/3"]


def test_an_async_only_bucket_for_a_plain_function_fails_at_decoration() -> None:
    class AsyncOnly:
        async def acquire(self, amount: float = 1) -> None:
            pass

    with pytest.raises(ConfigTypeError, match="async"):

        @rate_limit(limiter=AsyncOnly())
        def call() -> None:
            pass


# -- the LLM default estimate reads the signature ---------------------------------------------


def test_the_llm_default_estimate_counts_the_signatures_max_tokens(clock: FakeClock) -> None:
    @llm_rate_limit(tokens_per_minute=10_000, clock=clock)
    def chat(prompt: str, max_tokens: int = 512) -> None:
        pass

    def remaining() -> float:
        return float(limiter_of(chat).status()["tokens_per_minute"].remaining)

    chat("x" * 40)  # 10 input tokens and the 512 the call allows by default
    assert remaining() == pytest.approx(10_000 - 522)
    chat("x" * 40, 100)  # given by position
    assert remaining() == pytest.approx(10_000 - 522 - 110)
    chat(prompt="x" * 40, max_tokens=0)  # given by keyword, even zero
    assert remaining() == pytest.approx(10_000 - 522 - 110 - 10)


def test_the_llm_default_estimate_on_a_method(clock: FakeClock) -> None:
    class Model:
        @llm_rate_limit(tokens_per_minute=10_000, clock=clock)
        def complete(self, prompt: str, *, max_completion_tokens: int = 90) -> str:
            return prompt

    assert Model().complete("y" * 8) == "y" * 8
    status = limiter_of(Model.complete).status()["tokens_per_minute"]
    assert status.remaining == pytest.approx(10_000 - 2 - 90)


# -- per-user keys ---------------------------------------------------------------------------


def test_per_user_without_a_user_id_parameter_fails_at_decoration() -> None:
    with pytest.raises(ConfigError, match="user_id") as info:

        @rate_limit_per_user(capacity=2)
        def handler(request: str, *, userid: str | None = None) -> None:  # a typo
            pass

    assert "handler" in str(info.value)


def test_per_user_with_key_or_kwargs_needs_no_user_id_parameter(clock: FakeClock) -> None:
    @rate_limit_per_user(capacity=1, seconds=1, key=lambda request: request, clock=clock)
    def by_key(request: str) -> None:
        pass

    @rate_limit_per_user(capacity=1, seconds=1, clock=clock)
    def by_kwargs(request: str, **kwargs: Any) -> None:
        pass

    by_key("a")
    by_key("b")
    by_kwargs("r", user_id="a")
    by_kwargs("r", user_id="b")
    assert clock.now() == 0  # four different keys
    by_kwargs("r", user_id="a")
    assert clock.now() == pytest.approx(1.0)


def test_per_user_default_user_id_is_the_key(clock: FakeClock) -> None:
    @rate_limit_per_user(capacity=1, seconds=10, clock=clock)
    def handler(request: str, user_id: str = "anonymous") -> None:
        pass

    handler("r")
    limiter = limiter_of(handler)
    assert limiter.status("anonymous").remaining == pytest.approx(0)
    assert limiter.status(None).remaining == pytest.approx(1)  # not the shared bucket
    handler("r", "alice")
    assert clock.now() == 0
    handler("r", user_id="anonymous")  # the same bucket as the call that gave no user
    assert clock.now() == pytest.approx(10.0)


def test_per_user_on_a_bound_method_keys_by_the_user(clock: FakeClock) -> None:
    class Service:
        def handle(self, request: str, user_id: str) -> str:
            return f"{request}:{user_id}"

    service = Service()
    handle = rate_limit_per_user(capacity=1, seconds=1, clock=clock)(service.handle)
    assert handle("r", "alice") == "r:alice"
    assert handle("r", "bob") == "r:bob"
    assert handle("s", user_id="carol") == "s:carol"
    assert clock.now() == 0  # three users, three buckets (not one for the instance)
    handle("r", "alice")
    assert clock.now() == pytest.approx(1.0)
    assert limiter_of(handle).status("alice").remaining == pytest.approx(0)


def test_per_user_on_a_method_in_a_class_keys_by_the_user(clock: FakeClock) -> None:
    class Service:
        @rate_limit_per_user(capacity=1, seconds=1, clock=clock)
        def handle(self, request: str, user_id: str) -> str:
            return user_id

    one, two = Service(), Service()
    assert one.handle("r", "alice") == "alice"
    assert two.handle("r", "bob") == "bob"
    assert Service.handle(one, "r", "carol") == "carol"
    assert clock.now() == 0
    two.handle("r", "alice")  # alice's bucket, whichever instance serves her
    assert clock.now() == pytest.approx(1.0)


# -- generators are refused -------------------------------------------------------------------


def _generator() -> Iterator[int]:
    yield 1


async def _async_generator() -> AsyncIterator[int]:
    yield 1


class _GeneratorCall:
    def __call__(self) -> Iterator[int]:
        yield 1


class _AsyncGeneratorCall:
    async def __call__(self) -> AsyncIterator[int]:
        yield 1


@pytest.mark.parametrize(
    ("func", "kind"),
    [
        (_generator, "a generator"),
        (_async_generator, "an async generator"),
        (_GeneratorCall(), "a generator"),
        (_AsyncGeneratorCall(), "an async generator"),
        (staticmethod(_generator), "a generator"),
    ],
)
@pytest.mark.parametrize("decorator", [rate_limit, rate_limit_per_user, llm_rate_limit])
def test_generator_functions_are_refused_at_decoration(
    func: Any, kind: str, decorator: Any
) -> None:
    options: dict[str, Any] = {"tokens_per_minute": 100} if decorator is llm_rate_limit else {}
    if decorator is rate_limit_per_user:
        options["key"] = lambda *args, **kwargs: None
    with pytest.raises(ConfigTypeError, match=f"is {kind} function"):
        decorator(**options)(func)


def test_a_class_whose_instances_are_generators_is_not_refused() -> None:
    limited = rate_limit(capacity=5)(_GeneratorCall)  # calling it makes an object
    assert isinstance(limited(), _GeneratorCall)


# -- burst below one unit ---------------------------------------------------------------------


def test_a_burst_below_one_call_fails_at_decoration() -> None:
    with pytest.raises(ConfigError, match=r"burst 0\.5"):
        rate_limit(capacity=10, burst=0.5)
    with pytest.raises(ConfigError, match=r"burst 0\.5"):
        rate_limit_per_user(capacity=10, burst=0.5)
    small = SyncLeakyBucket(BucketConfig(capacity=10, burst=0.5))
    with pytest.raises(ConfigError, match=r"burst 0\.5"):

        @rate_limit(limiter=small)
        def call() -> None:
            pass


def test_a_burst_below_one_is_fine_with_an_estimate(clock: FakeClock) -> None:
    @rate_limit(capacity=10, burst=0.5, token_estimate=lambda n: n, clock=clock)
    def call(n: float) -> float:
        return n

    assert call(0.25) == 0.25
    assert limiter_of(call).status().remaining == pytest.approx(0.25)


# -- rate strings --------------------------------------------------------------------------------


def test_a_rate_string_as_the_first_argument(clock: FakeClock) -> None:
    @rate_limit("120/minute", clock=clock)
    def call() -> None:
        pass

    assert limiter_of(call).config == BucketConfig(capacity=120, seconds=60)
    for _ in range(121):
        call()
    assert clock.now() == pytest.approx(0.5)


def test_rate_and_burst_keywords(clock: FakeClock) -> None:
    @rate_limit(rate="10/s", burst=2, clock=clock)
    def call() -> None:
        pass

    assert limiter_of(call).rate == pytest.approx(10)
    assert limiter_of(call).burst == pytest.approx(2)
    for _ in range(3):
        call()
    assert clock.now() == pytest.approx(0.1)


def test_rate_strings_per_user(clock: FakeClock) -> None:
    @rate_limit_per_user("2 per 4 seconds", clock=clock)
    def a(*, user_id: str) -> None:
        pass

    @rate_limit_per_user(rate="1/s", burst=1, clock=clock)
    def b(*, user_id: str) -> None:
        pass

    assert limiter_of(a).config == BucketConfig(capacity=2, seconds=4)
    assert limiter_of(b).config == BucketConfig(capacity=1, seconds=1, burst=1)
    for _ in range(3):
        a(user_id="alice")
    assert clock.now() == pytest.approx(2.0)


def test_rate_strings_for_llm_limits(clock: FakeClock) -> None:
    @llm_rate_limit(requests="2/minute", tokens="600/minute", clock=clock)
    def chat(prompt: str) -> None:
        pass

    names = {limit.name: limit.capacity for limit in limiter_of(chat).limits}
    assert names == {"requests_per_minute": 2, "tokens_per_minute": 600}
    chat("x")
    chat("x")
    chat("x")  # the third request waits for the requests limit: 30 s at 2 per minute
    assert clock.now() == pytest.approx(30.0)


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("10/s",), {"capacity": 5}, "not both"),
        ((), {"rate": "10/s", "seconds": 2}, "not both"),
        ((), {"rate": "10/s", "capacity": 0}, "not both"),
        (("10/s",), {"rate": "5/s"}, "once"),
        ((), {"rate": "ten per second"}, "rate must look like"),
        ((), {"rate": "1e400/s"}, "finite"),
        ((), {"rate": "10/fortnight"}, "rate must look like"),
        ((), {"rate": 10}, "rate must be a string"),
        ((), {"rate": "10/s", "limiter": SyncLeakyBucket()}, "rate"),
    ],
)
def test_bad_rate_strings_fail_at_once(
    args: tuple[Any, ...], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        rate_limit(*args, **kwargs)


def test_bad_llm_rate_strings_fail_at_once() -> None:
    with pytest.raises(ConfigError, match="rate must look like"):
        llm_rate_limit(requests="lots")
    with pytest.raises(ConfigTypeError, match="rate string"):
        llm_rate_limit(tokens=1000)  # type: ignore[arg-type]


# -- backend=, name=, on_backend_error= -----------------------------------------------------------


def test_backend_options_reach_the_limiter_only_when_given(clock: FakeClock) -> None:
    seen: list[dict[str, Any]] = []
    backend = object()

    def factory(config: BucketConfig, **kwargs: Any) -> SyncLeakyBucket:
        seen.append(kwargs)
        return SyncLeakyBucket(config, clock=clock)

    @rate_limit(bucket_cls=factory)
    def plain() -> None:
        pass

    @rate_limit(bucket_cls=factory, backend=backend)
    def shared_state() -> None:
        pass

    @rate_limit(bucket_cls=factory, backend=backend, name="api", on_backend_error="allow")
    def named() -> None:
        pass

    assert seen == [
        {},
        {"backend": backend, "name": default_name(shared_state.__wrapped__)},  # type: ignore[attr-defined]
        {"backend": backend, "name": "api", "on_backend_error": "allow"},
    ]
    assert seen[1]["name"].endswith(
        "test_decorator_habits.test_backend_options_reach_the_limiter_only_when_given"
        ".<locals>.shared_state"
    )


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"on_backend_error": "ignore"}, ConfigError),
        ({"name": ""}, ConfigTypeError),
        ({"name": 3}, ConfigTypeError),
        ({"clock": FakeClock}, ConfigTypeError),
    ],
)
@pytest.mark.parametrize("decorator", [rate_limit, rate_limit_per_user, llm_rate_limit])
def test_bad_shared_options_fail_at_once(
    kwargs: dict[str, Any], error: type[Exception], decorator: Any
) -> None:
    options = {"tokens_per_minute": 100} if decorator is llm_rate_limit else {}
    with pytest.raises(error):
        decorator(**options, **kwargs)


def test_backend_options_with_an_existing_limiter_are_an_error() -> None:
    with pytest.raises(ConfigError, match="backend"):
        rate_limit(limiter=SyncLeakyBucket(), backend=object())
    with pytest.raises(ConfigError, match="name"):
        rate_limit_per_user(limiter=PerUserLimiter(), name="users")


def test_the_default_name_is_module_and_qualified_name() -> None:
    class Api:
        @staticmethod
        def ping() -> None:
            pass

    expected = f"{__name__}.test_the_default_name_is_module_and_qualified_name.<locals>.Api.ping"
    assert default_name(Api.__dict__["ping"]) == expected
    assert default_name(Api.ping) == expected


def test_decorator_options_are_checked_once_and_reused() -> None:
    options = DecoratorOptions.check(on_limit="raise")
    assert options.police
    assert options.max_wait is None
    assert DecoratorOptions.check(timeout=float("inf")).max_wait is None
    assert DecoratorOptions.check(timeout=2).max_wait == 2.0
    with pytest.raises(ConfigTypeError, match="rate_limit_headers"):
        DecoratorOptions.check(rate_limit_headers=5)
    decorator = rate_limit(capacity=3)
    assert isinstance(decorator, Decorator)
    assert decorator.limiter is None  # made with the first function


# -- the proxy -----------------------------------------------------------------------------------


def test_the_fast_proxy_keeps_wrapts_guarantees(clock: FakeClock) -> None:
    class Client:
        @rate_limit(capacity=10, clock=clock)
        def get(self, path: str) -> str:
            return path

    client = Client()

    @rate_limit(capacity=10, clock=clock)
    def plain(a: int, *, b: int = 2) -> int:
        return a + b

    bound = rate_limit(capacity=10, clock=clock)(client.get)  # already bound
    assert isinstance(plain, RateLimitedFunction)
    assert plain(1) == 3
    assert plain(1, b=5) == 6
    assert bound("/b") == "/b"
    assert client.get("/a") == "/a"
    assert Client.get(client, "/c") == "/c"
    assert inspect.signature(bound) == inspect.signature(client.get.__wrapped__)  # type: ignore[attr-defined]
    assert limiter_of(client.get) is limiter_of(Client.get)
    assert limiter_of(plain).stats.admitted == 2
    assert limiter_of(client.get).stats.admitted == 3  # bound("/b") calls client.get too
    assert limiter_of(bound).stats.admitted == 1
    with pytest.raises(TypeError):
        plain()  # type: ignore[call-arg]


# -- after the call ran, nothing raises -----------------------------------------------------------


@pytest.mark.parametrize("actual", [10**400, float("nan"), "many"])
def test_a_reconcile_result_that_is_no_amount_is_logged_not_raised(
    actual: object, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    @rate_limit(
        capacity=100, token_estimate=lambda: 10, token_reconcile=lambda r: actual, clock=clock
    )
    def call() -> str:
        return "done"

    with caplog.at_level("WARNING", logger="limitor"):
        assert call() == "done"
    assert "could not reconcile" in caplog.text
    assert limiter_of(call).status().remaining == pytest.approx(90)  # the estimate stands
