"""Sync or async, seen through wrappers: what the decorators decide, and what they await."""

from __future__ import annotations

import functools
import inspect
import sys
from typing import Any

import anyio
import pytest

from limitor import Cost, llm_rate_limit, rate_limit, rate_limit_per_user
from limitor.decorators import is_async_callable
from limitor.llm import Limit
from limitor.testing import FakeClock

from .loop_stalls import best_of_three


async def _coro(x: int = 1) -> int:
    return x


def _checked(func: Any) -> Any:
    """A plain function in front of a coroutine function, as the SDKs' ``required_args``."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    return wrapper


class _Resource:
    @_checked
    async def create(self, x: int = 1) -> int:
        return x


class _AsyncCallable:
    async def __call__(self, x: int = 1) -> int:
        return x


def test_async_seen_through_wraps_partial_bound_methods_and_call() -> None:
    assert not inspect.iscoroutinefunction(_checked(_coro))  # what fooled the decorators
    assert is_async_callable(_checked(_coro))
    assert is_async_callable(functools.partial(_coro, 2))
    assert is_async_callable(functools.partial(_checked(_coro), 2))
    assert is_async_callable(_Resource().create)  # a bound method of a plain wrapper
    assert is_async_callable(_AsyncCallable())
    assert not is_async_callable(_checked(lambda: 1))
    assert not is_async_callable(functools.partial(len, "ab"))


@pytest.mark.skipif(sys.version_info < (3, 12), reason="markcoroutinefunction is new in 3.12")
def test_a_function_marked_as_a_coroutine_function_is_async() -> None:
    def plain() -> Any:
        return _coro()

    marked = inspect.markcoroutinefunction(plain)  # type: ignore[attr-defined]
    assert is_async_callable(marked)


@pytest.mark.parametrize("decorator", ["rate_limit", "rate_limit_per_user", "llm_rate_limit"])
def test_every_decorator_makes_a_wrapped_async_method_async(decorator: str) -> None:
    clock = FakeClock()
    make = {
        "rate_limit": lambda: rate_limit("10/s", clock=clock),
        "rate_limit_per_user": lambda: rate_limit_per_user(
            "10/s", clock=clock, key=lambda *a, **k: 1
        ),
        "llm_rate_limit": lambda: llm_rate_limit(requests_per_minute=10, clock=clock),
    }[decorator]
    limited = make()(_Resource().create)
    assert inspect.iscoroutinefunction(limited)
    assert anyio.run(lambda: limited(x=3)) == 3
    assert inspect.signature(limited) == inspect.signature(_Resource().create)


@pytest.mark.anyio
async def test_token_reconcile_gets_the_awaited_result_of_a_wrapped_async_method() -> None:
    seen: list[Any] = []

    def reconcile(result: Any) -> Cost:
        seen.append(result)
        return Cost(tokens=result)

    clock = FakeClock()
    limited = llm_rate_limit(
        limits=(Limit("tokens", 100, 60),),
        token_estimate=lambda self=None, x=1: 50,
        token_reconcile=reconcile,
        clock=clock,
    )(_Resource().create)
    assert await limited(x=7) == 7
    assert seen == [7]
    assert limited.limiter.status()["tokens_per_minute"].remaining == pytest.approx(
        93
    )  # 50 held, 43 back


@pytest.mark.anyio
async def test_a_wrapped_async_method_never_blocks_the_event_loop() -> None:
    """Five calls 0.2 s apart: each wait is awaited, so a 5 ms ticker runs throughout.

    Blocking (today's code before the fix) stalls the loop for each whole wait (0.2 s);
    the bound, 0.1 s, leaves room for a loaded machine's scheduling. The best of up to
    three runs counts: blocking code stalls every run, a busy machine one now and then.
    """
    limited = llm_rate_limit(limits=(Limit("requests", 1, 0.2, burst=1),))(_Resource().create)

    async def five_calls() -> None:
        for x in range(5):
            assert await limited(x=x) == x

    runs = await best_of_three(five_calls, 0.1)
    assert min(runs) < 0.1, runs


def test_a_plain_function_returning_a_coroutine_warns_once_and_its_result_still_counts() -> None:
    clock = FakeClock()
    seen: list[Any] = []

    @llm_rate_limit(
        limits=(Limit("tokens", 100, 60),),
        token_estimate=lambda x: 50,
        token_reconcile=lambda result: seen.append(result) or Cost(tokens=10),
        clock=clock,
    )
    def opaque(x: int) -> Any:  # nothing says this is async
        return _coro(x)

    with pytest.warns(RuntimeWarning, match="markcoroutinefunction"):
        pending = opaque(4)
    assert anyio.run(lambda: pending) == 4
    assert seen == [4]  # reconciled with the awaited result, not the coroutine
    assert opaque.limiter.status()["tokens_per_minute"].remaining == pytest.approx(90)


def test_a_plain_unlimited_function_returning_a_coroutine_warns_once() -> None:
    limited = rate_limit("10/s", clock=FakeClock())(lambda: _coro(5))
    with pytest.warns(RuntimeWarning, match="markcoroutinefunction") as record:
        results = [limited(), limited()]
    assert len(record) == 1
    assert [anyio.run(lambda r=r: r) for r in results] == [5, 5]


@pytest.mark.anyio
async def test_an_async_token_reconcile_is_awaited_in_async_code() -> None:
    async def reconcile(result: int) -> Cost:
        return Cost(tokens=result)

    @llm_rate_limit(
        limits=(Limit("tokens", 100, 60),),
        token_estimate=lambda x: 50,
        token_reconcile=reconcile,
        clock=FakeClock(),
    )
    async def call(x: int) -> int:
        return x

    assert await call(20) == 20
    assert call.limiter.status()["tokens_per_minute"].remaining == pytest.approx(80)


def test_an_async_token_reconcile_in_sync_code_warns_and_keeps_the_estimate() -> None:
    async def reconcile(result: int) -> Cost:
        return Cost(tokens=result)

    @llm_rate_limit(
        limits=(Limit("tokens", 100, 60),),
        token_estimate=lambda x: 50,
        token_reconcile=reconcile,
        clock=FakeClock(),
    )
    def call(x: int) -> int:
        return x

    with pytest.warns(RuntimeWarning, match="token_reconcile returned an awaitable"):
        assert call(20) == 20
    assert call.limiter.status()["tokens_per_minute"].remaining == pytest.approx(50)


@pytest.mark.anyio
async def test_an_async_rate_limit_headers_is_awaited_in_async_code() -> None:
    async def headers(outcome: Any) -> dict[str, str]:
        return {"x-ratelimit-remaining-requests": "3"}

    @llm_rate_limit(requests_per_minute=100, rate_limit_headers=headers, clock=FakeClock())
    async def call() -> int:
        return 1

    await call()
    assert call.limiter.status()["requests_per_minute"].remaining == pytest.approx(3)
