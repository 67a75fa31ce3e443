"""Raw responses (``with_raw_response``): usage and headers read from them (issue 18, item 3)."""

from __future__ import annotations

import pytest

from limitor import LLMLimiter, llm_rate_limit
from limitor.llm import UsageError, response_headers, usage_tokens, usage_tokens_async
from limitor.testing import FakeClock
from tests.llm_sdk.mock import INPUT, OUTPUT, anthropic_client, openai_client

MESSAGES = [{"role": "user", "content": "hello"}]


def test_usage_tokens_and_the_header_reader_take_a_sync_raw_response() -> None:
    raw = openai_client().chat.completions.with_raw_response.create(model="m", messages=MESSAGES)
    assert usage_tokens(raw).total_tokens == INPUT + OUTPUT
    limiter = LLMLimiter(requests_per_minute=100, clock=FakeClock())
    report = limiter.update_from_headers(raw)
    assert report.remaining == {"requests": 42.0}
    assert limiter.status()["requests_per_minute"].remaining == pytest.approx(42)


def test_a_decorated_raw_call_is_reconciled_and_tightened_by_its_headers() -> None:
    create = llm_rate_limit(
        requests_per_minute=100,
        tokens_per_minute=10_000,
        token_reconcile=usage_tokens,
        rate_limit_headers=response_headers,
        clock=FakeClock(),
    )(anthropic_client().messages.with_raw_response.create)
    raw = create(model="m", messages=MESSAGES, max_tokens=900)
    assert raw.parse().usage.output_tokens == OUTPUT
    status = create.limiter.status()
    assert status["tokens_per_minute"].remaining == pytest.approx(10_000 - INPUT - OUTPUT)
    assert status["requests_per_minute"].remaining == pytest.approx(4)  # the provider said 4


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_an_async_raw_response_needs_awaiting_and_the_decorator_awaits_it() -> None:
    client = anthropic_client(asynchronous=True)
    raw = await client.messages.with_raw_response.create(model="m", messages=MESSAGES, max_tokens=9)
    with pytest.raises(UsageError, match="usage_tokens_async"):
        usage_tokens(raw)  # parse() is a coroutine here; it is closed, never left pending
    assert (await usage_tokens_async(raw)).total_tokens == INPUT + OUTPUT

    create = llm_rate_limit(
        tokens_per_minute=10_000,
        requests_per_minute=100,
        token_reconcile=usage_tokens,  # awaited through its async twin in async code
        rate_limit_headers=response_headers,
        clock=FakeClock(),
    )(client.messages.with_raw_response.create)
    await create(model="m", messages=MESSAGES, max_tokens=900)
    status = create.limiter.status()
    assert status["tokens_per_minute"].remaining == pytest.approx(10_000 - INPUT - OUTPUT)
    assert status["requests_per_minute"].remaining == pytest.approx(4)


def test_a_429_from_the_sdk_holds_the_limiter_for_its_retry_after() -> None:
    import httpx2
    import openai

    from tests.llm_fake import FakeProvider

    clock = FakeClock()
    provider = FakeProvider(clock=clock)
    client = openai.OpenAI(
        api_key="k",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(provider.handle)),
    )
    create = llm_rate_limit(
        requests_per_minute=100, rate_limit_headers=response_headers, clock=clock
    )(client.chat.completions.create)
    provider.hold(30)
    with pytest.raises(openai.RateLimitError):
        create(model="m", messages=MESSAGES)
    assert create.limiter.status()["requests_per_minute"].retry_after == pytest.approx(30)
    create(model="m", messages=MESSAGES)  # waits (virtually) for the hold, then goes
    assert clock.now() == pytest.approx(30)
    assert provider.rejected == 1
