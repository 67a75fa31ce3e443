"""The LLM-aware transport with the real openai and anthropic SDKs against the fake provider.

The provider and the limiter share one virtual clock (a FakeClock for threads, trio's
MockClock read through AnyioClock for tasks), so minutes of traffic take a second.
"""

from __future__ import annotations

import threading
from typing import Any

import anthropic
import anyio
import httpx2
import openai
import pytest
import trio.testing

from limitor import AnyioClock
from limitor.contrib.llm_transport import (
    AsyncLLMTransport,
    LLMTransport,
)
from limitor.testing import FakeClock
from tests.llm_fake import FakeProvider

PROMPT = [{"role": "user", "content": "x" * 400}]  # 100 tokens by both counts
RPM, TPM = 1000, 6000  # tokens bind: 6000 tokens are 57 calls of 100 + 5


def sdk_clients(transport: Any, is_async: bool = False) -> tuple[Any, Any]:
    """An OpenAI and an Anthropic client over ``transport``, without SDK retries."""
    if is_async:
        http: Any = httpx2.AsyncClient(transport=transport)
        return (
            openai.AsyncOpenAI(api_key="k", http_client=http, max_retries=0),
            anthropic.AsyncAnthropic(api_key="k", http_client=http, max_retries=0),
        )
    http = httpx2.Client(transport=transport)
    return (
        openai.OpenAI(api_key="k", http_client=http, max_retries=0),
        anthropic.Anthropic(api_key="k", http_client=http, max_retries=0),
    )


def share_of_allowed(provider: FakeProvider, tpm: float = TPM) -> float:
    """Tokens used over the tokens the limit allowed from the first call to the last."""
    times = [call.time for call in provider.admitted]
    allowed = tpm + tpm / 60 * (max(times) - min(times))
    return provider.used_tokens / allowed


# -- one call of each kind, sync and async --------------------------------------------------


def sync_call(kind: str, oai: Any, claude: Any, max_tokens: int) -> None:
    if kind == "chat":
        oai.chat.completions.create(model="m", messages=PROMPT, max_tokens=max_tokens)
    elif kind == "chat-stream":
        stream = oai.chat.completions.create(
            model="m",
            messages=PROMPT,
            max_tokens=max_tokens,
            stream=True,
            stream_options={"include_usage": True},
        )
        for _ in stream:
            pass
    elif kind == "responses":
        oai.responses.create(model="m", input=PROMPT, max_output_tokens=max_tokens)
    elif kind == "responses-stream":
        with oai.responses.stream(model="m", input=PROMPT, max_output_tokens=max_tokens) as s:
            s.get_final_response()
    elif kind == "messages":
        claude.messages.create(model="m", messages=PROMPT, max_tokens=max_tokens)
    else:
        with claude.messages.stream(model="m", messages=PROMPT, max_tokens=max_tokens) as s:
            s.get_final_message()


async def async_call(kind: str, oai: Any, claude: Any, max_tokens: int) -> None:
    if kind == "chat":
        await oai.chat.completions.create(model="m", messages=PROMPT, max_tokens=max_tokens)
    elif kind == "chat-stream":
        stream = await oai.chat.completions.create(
            model="m",
            messages=PROMPT,
            max_tokens=max_tokens,
            stream=True,
            stream_options={"include_usage": True},
        )
        async for _ in stream:
            pass
    elif kind == "responses":
        await oai.responses.create(model="m", input=PROMPT, max_output_tokens=max_tokens)
    elif kind == "responses-stream":
        async with oai.responses.stream(model="m", input=PROMPT, max_output_tokens=max_tokens) as s:
            await s.get_final_response()
    elif kind == "messages":
        await claude.messages.create(model="m", messages=PROMPT, max_tokens=max_tokens)
    else:
        async with claude.messages.stream(model="m", messages=PROMPT, max_tokens=max_tokens) as s:
            await s.get_final_message()


KINDS = ["chat", "chat-stream", "responses", "responses-stream", "messages", "messages-stream"]


# The SDKs stop reading a stream at its last event and leave httpx2's own async generators
# unfinished; under trio their finalizer warns. (Our stream wrapper is no generator.)
SDK_GENERATORS = (
    r"ignore:.*async_generator object (Response\.aiter_|AsyncStream|AsyncResponseStream|"
    r"SSEDecoder|_iter_).*:pytest.PytestUnraisableExceptionWarning"
)


@pytest.mark.filterwarnings(SDK_GENERATORS)
@pytest.mark.parametrize("kind", KINDS)
def test_100_concurrent_async_calls_meet_no_429_and_use_the_allowed_tokens(kind: str) -> None:
    clock = AnyioClock()
    provider = FakeProvider(rpm=RPM, tpm=TPM, output_tokens=5, clock=clock)
    transport = AsyncLLMTransport(
        httpx2.MockTransport(provider.handle), rpm=RPM, tpm=TPM, clock=clock
    )

    async def main() -> None:
        oai, claude = sdk_clients(transport, is_async=True)
        async with anyio.create_task_group() as tasks:
            for _ in range(100):
                tasks.start_soon(async_call, kind, oai, claude, 5)

    anyio.run(
        main,
        backend="trio",
        backend_options={"clock": trio.testing.MockClock(autojump_threshold=0)},
    )
    assert provider.rejected == 0
    assert len(provider.admitted) == 100
    assert share_of_allowed(provider) >= 0.95


@pytest.mark.parametrize("kind", KINDS)
def test_100_concurrent_threads_meet_no_429_and_use_the_allowed_tokens(kind: str) -> None:
    clock = FakeClock()
    provider = FakeProvider(rpm=RPM, tpm=TPM, output_tokens=5, clock=clock)
    transport = LLMTransport(httpx2.MockTransport(provider.handle), rpm=RPM, tpm=TPM, clock=clock)
    oai, claude = sdk_clients(transport)
    threads = [threading.Thread(target=sync_call, args=(kind, oai, claude, 5)) for _ in range(100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert provider.rejected == 0
    assert len(provider.admitted) == 100
    assert share_of_allowed(provider) >= 0.95
