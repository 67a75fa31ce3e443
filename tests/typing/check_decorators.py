# mypy: disable-error-code="unused-coroutine"
"""Type-checked by ``mypy --strict tests/typing`` in CI, never run.

Decorated functions keep their parameter and return types, sync and async, so a wrong
call is still an error. Every ``type: ignore`` below marks a call that mypy must reject:
with ``warn_unused_ignores`` (part of --strict) a decorator that lost the types would make
the ignore unused, and the check would fail.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from typing_extensions import assert_type

from limitor import limiter_of, llm_rate_limit, rate_limit, rate_limit_per_user


@rate_limit(capacity=10, seconds=1)
def fetch(url: str, *, retries: int = 3) -> bytes:
    return url.encode()


@rate_limit
def bare(n: int) -> int:
    return n


@rate_limit(capacity=100_000, seconds=60, token_estimate=lambda prompt, **kw: len(prompt) // 4)
async def complete(prompt: str, max_tokens: int = 512) -> str:
    return prompt


@rate_limit_per_user(capacity=2, seconds=1, max_users=10_000, ttl=600)
def handler(request: dict[str, str], *, user_id: str | None = None) -> int:
    return len(request)


@rate_limit("100/minute")
def by_rate(n: int) -> int:
    return n


@rate_limit(rate="10/s", burst=2, name="api", on_backend_error="allow")
async def by_rate_async(n: int) -> int:
    return n


shared = rate_limit(capacity=2, seconds=0.2)


@shared
def first(text: str) -> str:
    return text


@shared
async def second(count: int) -> float:
    return count / 2


@rate_limit_per_user("5/s", key=lambda request, **kw: request)
def per_key(request: str) -> bool:
    return bool(request)


@llm_rate_limit(requests="500/minute", tokens="200000/minute")
async def chat(messages: list[dict[str, str]], max_tokens: int = 512) -> str:
    return ""


class Client:
    @rate_limit(capacity=5)
    def get(self, path: str) -> str:
        return path

    @rate_limit(capacity=5)
    async def aget(self, path: str) -> str:
        return path


def check() -> None:
    assert_type(fetch("https://example.com"), bytes)
    assert_type(fetch("u", retries=1), bytes)
    fetch(42)  # type: ignore[arg-type]
    fetch("u", retries="x")  # type: ignore[arg-type]
    assert_type(bare(1), int)
    bare("1")  # type: ignore[arg-type]
    assert_type(complete("hi"), Coroutine[Any, Any, str])
    complete(1)  # type: ignore[arg-type]
    assert_type(handler({"a": "b"}, user_id="u"), int)
    handler({"a": "b"}, user_id=3)  # type: ignore[arg-type]
    client = Client()
    assert_type(client.get("/x"), str)
    client.get(1)  # type: ignore[arg-type]
    assert_type(client.aget("/x"), Coroutine[Any, Any, str])
    limiter_of(fetch)
    assert_type(by_rate(1), int)
    by_rate("1")  # type: ignore[arg-type]
    assert_type(by_rate_async(1), Coroutine[Any, Any, int])
    assert_type(first("a"), str)
    first(1)  # type: ignore[arg-type]
    assert_type(second(3), Coroutine[Any, Any, float])
    assert_type(per_key("r"), bool)
    per_key(1)  # type: ignore[arg-type]
    chat("hi")  # type: ignore[arg-type]
    rate_limit(on_backend_error="ignore")  # type: ignore[call-overload]
    rate_limit(rate=10)  # type: ignore[call-overload]
    rate_limit(capasity=10)  # type: ignore[call-overload]
    rate_limit(max_users=10)  # type: ignore[call-overload]
    rate_limit_per_user(max_user=10)  # type: ignore[call-overload]
    rate_limit_per_user(fair="yes")  # type: ignore[call-overload]
    llm_rate_limit(requests_per_minit=500)  # type: ignore[call-overload]
    llm_rate_limit(total_tokens_per_minute="many")  # type: ignore[call-overload]


async def check_async() -> None:
    assert_type(await complete("hi", max_tokens=5), str)
    assert_type(await Client().aget("/"), str)
    assert_type(await chat([{"role": "user", "content": "hi"}]), str)
