"""Streamed calls are reconciled at their end (issue 18, item 2), with the real SDKs."""

from __future__ import annotations

import gc
import math
from typing import Any

import anthropic
import openai
import pytest

from limitor import llm_rate_limit
from limitor.llm import estimate_tokens, usage_tokens
from limitor.testing import FakeClock
from tests.llm_sdk.mock import INPUT, OUTPUT, TEXT, anthropic_client, openai_client

TPM = 10_000
PROMPT = "a question of eighty characters, more or less, to be counted by the estimate..."
MESSAGES = [{"role": "user", "content": PROMPT}]


def _limited(method: Any, **options: Any) -> Any:
    return llm_rate_limit(tokens_per_minute=TPM, clock=FakeClock(), **options)(method)


def _used(limited: Any) -> float:
    return TPM - limited.limiter.status()["tokens_per_minute"].remaining


def _input_estimate(**kwargs: Any) -> float:
    return estimate_tokens(**kwargs).input_tokens


def test_an_openai_chat_stream_is_reconciled_from_its_final_usage() -> None:
    create = _limited(openai_client().chat.completions.create, token_reconcile=usage_tokens)
    stream = create(
        model="m",
        messages=MESSAGES,
        max_tokens=500,
        stream=True,
        stream_options={"include_usage": True},
    )
    assert isinstance(stream, openai.Stream)
    assert _used(create) > 500  # the estimate is held while the stream runs
    chunks = list(stream)
    assert all(type(chunk).__name__ == "ChatCompletionChunk" for chunk in chunks)
    assert "".join(c.choices[0].delta.content for c in chunks if c.choices) == TEXT + " "
    assert _used(create) == pytest.approx(INPUT + OUTPUT)


def test_a_chat_stream_without_usage_counts_the_text_it_delivered() -> None:
    create = _limited(openai_client().chat.completions.create)  # no max_tokens, no usage
    arguments = {"model": "m", "messages": MESSAGES, "stream": True}
    with create(**arguments) as stream:
        for _ in stream:
            pass
    seen = math.ceil(len(TEXT + " ") / 4)
    assert _used(create) == pytest.approx(_input_estimate(**arguments) + seen)


def test_a_stream_closed_early_counts_what_was_seen() -> None:
    create = _limited(openai_client().chat.completions.create)
    arguments = {"model": "m", "messages": MESSAGES, "max_tokens": 500, "stream": True}
    stream = create(**arguments)
    first = next(stream)
    stream.close()
    seen = math.ceil(len(first.choices[0].delta.content) / 4)
    assert _used(create) == pytest.approx(_input_estimate(**arguments) + seen)


def test_a_stream_dropped_unclosed_is_reconciled_when_collected() -> None:
    create = _limited(openai_client().chat.completions.create)
    arguments = {"model": "m", "messages": MESSAGES, "max_tokens": 500, "stream": True}
    stream = create(**arguments)
    next(stream)
    assert _used(create) > 500
    del stream
    gc.collect()
    assert _used(create) < 100


def test_a_responses_api_stream_is_reconciled_from_response_completed() -> None:
    create = _limited(openai_client().responses.create)
    stream = create(model="m", input=PROMPT, max_output_tokens=500, stream=True)
    types = [event.type for event in stream]
    assert types[0] == "response.created"
    assert types[-1] == "response.completed"
    assert _used(create) == pytest.approx(INPUT + OUTPUT)


def test_an_anthropic_stream_is_reconciled_from_its_message_events() -> None:
    create = _limited(anthropic_client().messages.create)
    with create(model="m", messages=MESSAGES, max_tokens=500, stream=True) as stream:
        assert isinstance(stream, anthropic.Stream)
        kinds = [event.type for event in stream]
    assert kinds[0] == "message_start"
    assert kinds[-1] == "message_stop"
    assert _used(create) == pytest.approx(INPUT + OUTPUT)


def test_the_anthropic_stream_helper_is_reconciled_even_via_get_final_message() -> None:
    stream_call = _limited(anthropic_client().messages.stream)
    with stream_call(model="m", messages=MESSAGES, max_tokens=500) as stream:
        assert stream.get_final_message().usage.output_tokens == OUTPUT
    assert _used(stream_call) == pytest.approx(INPUT + OUTPUT)


def test_the_openai_chat_stream_helper_is_reconciled() -> None:
    stream_call = _limited(openai_client().chat.completions.stream)
    with stream_call(
        model="m", messages=MESSAGES, max_tokens=500, stream_options={"include_usage": True}
    ) as stream:
        text = "".join(e.delta for e in stream if e.type == "content.delta")
    assert text == TEXT + " "
    assert _used(stream_call) == pytest.approx(INPUT + OUTPUT)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_async_streams_of_both_sdks_are_reconciled_at_their_end() -> None:
    create = _limited(openai_client(asynchronous=True).chat.completions.create)
    stream = await create(
        model="m",
        messages=MESSAGES,
        max_tokens=500,
        stream=True,
        stream_options={"include_usage": True},
    )
    assert isinstance(stream, openai.AsyncStream)
    assert len([chunk async for chunk in stream]) > 1
    assert _used(create) == pytest.approx(INPUT + OUTPUT)

    responses = _limited(openai_client(asynchronous=True).responses.create)
    events = await responses(model="m", input=PROMPT, max_output_tokens=500, stream=True)
    async for _ in events:
        pass
    assert _used(responses) == pytest.approx(INPUT + OUTPUT)

    messages = _limited(anthropic_client(asynchronous=True).messages.create)
    async with await messages(
        model="m", messages=MESSAGES, max_tokens=500, stream=True
    ) as message_events:
        async for _ in message_events:
            pass
    assert _used(messages) == pytest.approx(INPUT + OUTPUT)


@pytest.mark.anyio
async def test_an_async_stream_closed_early_counts_what_was_seen() -> None:
    create = _limited(anthropic_client(asynchronous=True).messages.create)
    stream = await create(model="m", messages=MESSAGES, max_tokens=500, stream=True)
    async for event in stream:
        if event.type == "content_block_delta":
            break
    await stream.close()
    # message_start said INPUT in, one token out so far; one delta (two tokens) was seen
    assert _used(create) == pytest.approx(INPUT + math.ceil(len(event.delta.text) / 4))


@pytest.mark.anyio
async def test_an_async_stream_helper_decorated_directly_warns_that_it_waited_blocking() -> None:
    from limitor.llm import streams

    streams._warned_types.clear()
    stream_call = _limited(anthropic_client(asynchronous=True).messages.stream)
    with pytest.warns(RuntimeWarning, match="blocking the event loop"):
        manager = stream_call(model="m", messages=MESSAGES, max_tokens=500)
    async with manager as stream:
        async for _ in stream.text_stream:
            pass
    assert _used(stream_call) == pytest.approx(INPUT + OUTPUT)
