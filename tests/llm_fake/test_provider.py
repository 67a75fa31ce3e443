"""The fake provider speaks the dialects the real SDKs parse, and keeps its own limits."""

from __future__ import annotations

import anthropic
import anyio
import httpx
import httpx2
import openai
import pytest

from limitor.llm import parse_rate_limit_headers
from limitor.testing import FakeClock
from tests.llm_fake import FakeProvider, prompt_tokens

MESSAGES = [{"role": "user", "content": "x" * 40}]  # 10 tokens


def clients(provider: FakeProvider) -> tuple[openai.OpenAI, anthropic.Anthropic]:
    transport = httpx2.MockTransport(provider.handle)
    return (
        openai.OpenAI(api_key="k", http_client=httpx2.Client(transport=transport), max_retries=0),
        anthropic.Anthropic(
            api_key="k", http_client=httpx2.Client(transport=transport), max_retries=0
        ),
    )


def test_the_three_dialects_with_the_real_sdks_streamed_and_not() -> None:
    provider = FakeProvider(output_tokens=7, clock=FakeClock())
    oai, claude = clients(provider)
    chat = oai.chat.completions.create(model="m", messages=MESSAGES, max_tokens=50)  # type: ignore[arg-type]
    assert (chat.usage.prompt_tokens, chat.usage.completion_tokens) == (10, 7)  # type: ignore[union-attr]
    chunks = list(
        oai.chat.completions.create(
            model="m",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},  # type: ignore[arg-type]
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == " tok" * 7
    assert chunks[-1].usage.total_tokens == 17  # type: ignore[union-attr]
    response = oai.responses.create(model="m", input="y" * 8, instructions="z" * 4)
    assert (response.usage.input_tokens, response.output_text) == (3, " tok" * 7)  # type: ignore[union-attr]
    with oai.responses.stream(model="m", input="y" * 8, max_output_tokens=5) as events:
        assert events.get_final_response().usage.output_tokens == 5  # type: ignore[union-attr]
    message = claude.messages.create(model="m", messages=MESSAGES, max_tokens=3, system="s" * 4)  # type: ignore[arg-type]
    assert (message.usage.input_tokens, message.usage.output_tokens) == (11, 3)
    with claude.messages.stream(model="m", messages=MESSAGES, max_tokens=50) as stream:  # type: ignore[arg-type]
        assert stream.get_final_message().usage.output_tokens == 7
    assert provider.rejected == 0
    assert len(provider.admitted) == 6


@pytest.mark.parametrize("library", [httpx, httpx2])
def test_its_buckets_admit_estimate_then_reconcile_to_usage_and_429_beyond(library: object) -> None:
    clock = FakeClock()
    provider = FakeProvider(rpm=60, tpm=100, output_tokens=10, clock=clock)
    client = library.Client(transport=library.MockTransport(provider.handle))  # type: ignore[attr-defined]
    body = {"model": "m", "messages": MESSAGES, "max_tokens": 80}
    assert prompt_tokens(body) == 10
    first = client.post("https://api.openai.com/v1/chat/completions", json=body)
    assert first.status_code == 200
    report = parse_rate_limit_headers(first.headers)
    assert report.remaining == {"requests": 59.0, "tokens": 80.0}  # 90 admitted, 70 given back
    assert first.headers["x-ratelimit-reset-tokens"] == "12s"
    second = client.post("https://api.openai.com/v1/chat/completions", json=body)
    assert second.status_code == 429  # 90 > 80
    assert second.headers["retry-after"] == "6"  # 10 tokens at 100/min
    assert second.headers["retry-after-ms"] == "6000"
    assert provider.rejected == 1
    clock.advance(6)
    assert client.post("https://api.openai.com/v1/chat/completions", json=body).status_code == 200


def test_anthropic_headers_and_a_forced_hold() -> None:
    clock = FakeClock()
    provider = FakeProvider(rpm=5, clock=clock, wall_start=1_800_000_000)
    client = httpx2.Client(transport=httpx2.MockTransport(provider.handle))
    body = {"model": "m", "messages": MESSAGES, "max_tokens": 10}
    response = client.post("https://api.anthropic.com/v1/messages", json=body)
    assert response.headers["anthropic-ratelimit-requests-remaining"] == "4"
    assert response.headers["anthropic-ratelimit-requests-reset"] == "2027-01-15T08:00:12Z"
    provider.hold(30)
    refused = client.post("https://api.anthropic.com/v1/messages", json=body)
    assert (refused.status_code, refused.headers["retry-after"]) == (429, "30")
    assert refused.json()["error"]["type"] == "rate_limit_error"
    assert client.post("https://api.anthropic.com/v1/chat", json=body).status_code == 404


def test_async_clients_stream_through_it() -> None:
    provider = FakeProvider(output_tokens=4)

    async def main() -> list[str]:
        transport = httpx2.MockTransport(provider.handle)
        claude = anthropic.AsyncAnthropic(
            api_key="k", http_client=httpx2.AsyncClient(transport=transport), max_retries=0
        )
        stream = await claude.messages.create(
            model="m",
            messages=MESSAGES,
            max_tokens=9,
            stream=True,  # type: ignore[arg-type]
        )
        return [event.type async for event in stream]

    kinds = anyio.run(main)
    assert kinds[0] == "message_start"
    assert kinds.count("content_block_delta") == 4
    assert kinds[-2:] == ["message_delta", "message_stop"]
