"""LangChain: messages estimated, usage_metadata read, rate_limiter= adapter (item 5)."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("langchain_core", reason="langchain-core needs Python 3.11+")

import httpx2
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI

from limitor import ConfigError, LLMLimiter
from limitor.contrib.langchain import LimitorRateLimiter
from limitor.llm import estimate_tokens, usage_tokens
from limitor.testing import FakeClock
from tests.llm_sdk.mock import INPUT, OUTPUT, handler


def test_estimate_tokens_reads_langchain_messages() -> None:
    text = "x" * 200
    messages = [SystemMessage("y" * 48), HumanMessage(text)]
    assert estimate_tokens(messages).input_tokens == (48 + 200) / 4
    assert estimate_tokens(messages, max_tokens=10).output_tokens == 10


def test_usage_tokens_reads_usage_metadata() -> None:
    message = AIMessage(
        "hi", usage_metadata={"input_tokens": 12, "output_tokens": 30, "total_tokens": 42}
    )
    cost = usage_tokens(message)
    assert (cost.input_tokens, cost.output_tokens, cost.tokens) == (12, 30, 42)


def _model(rate_limiter: Any, *, asynchronous: bool = False) -> ChatOpenAI:
    transport = httpx2.MockTransport(handler)
    return ChatOpenAI(
        model="m",
        api_key="k",
        base_url="http://llm.test/v1",
        max_retries=0,
        rate_limiter=rate_limiter,
        http_client=httpx2.Client(transport=transport),
        http_async_client=httpx2.AsyncClient(transport=transport),
    )


def test_chat_openai_requests_go_through_the_limitor_limiter() -> None:
    clock = FakeClock()
    limiter = LimitorRateLimiter("2/minute", clock=clock)
    model = _model(limiter)
    answers = [model.invoke([HumanMessage("hello")]) for _ in range(3)]
    assert clock.now() == pytest.approx(30.0)  # the third request waited for the limit
    assert usage_tokens(answers[0]).tokens == INPUT + OUTPUT
    assert not limiter.acquire(blocking=False)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_chat_openai_async_requests_share_an_llm_limiter() -> None:
    clock = FakeClock()
    shared = LLMLimiter(requests_per_minute=2, clock=clock)
    model = _model(LimitorRateLimiter(limiter=shared))
    for _ in range(3):
        await model.ainvoke([HumanMessage("hello")])
    assert clock.now() == pytest.approx(30.0)
    with pytest.raises(ConfigError):
        LimitorRateLimiter()
