"""The fake provider under a real uvicorn server, the openai and anthropic SDKs over the LLM
transport on real sockets (real time: few calls, generous bounds)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import anthropic
import httpx2
import openai
import pytest

from limitor.contrib.llm_transport import LLMTransport
from tests.contrib.serving import uvicorn_server
from tests.llm_fake import FakeProvider

PROMPT = [{"role": "user", "content": "x" * 400}]


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, FakeProvider]]:
    provider = FakeProvider(rpm=600, tpm=3000, output_tokens=5)
    with uvicorn_server(provider) as url:
        yield url, provider


def test_sdks_over_real_sockets_meet_no_429(served: tuple[str, FakeProvider]) -> None:
    # the server allows 3000 tokens a minute (28 calls of 105); the client keeps a margin
    # of 5% for the time requests take on the wire (its refill starts when it sends, the
    # server's when it receives): 30 calls, the last few wait about a second each
    url, provider = served
    transport = LLMTransport(rpm=570, tpm=2850, key=lambda request: None)
    http = httpx2.Client(transport=transport)
    oai = openai.OpenAI(api_key="k", base_url=f"{url}/v1", http_client=http, max_retries=0)
    claude = anthropic.Anthropic(api_key="k", base_url=url, http_client=http, max_retries=0)

    def call(index: int) -> None:
        if index % 3 == 0:
            oai.chat.completions.create(model="m", messages=PROMPT, max_tokens=5)  # type: ignore[arg-type]
        elif index % 3 == 1:
            stream = oai.chat.completions.create(
                model="m",
                messages=PROMPT,  # type: ignore[arg-type]
                max_tokens=5,
                stream=True,
                stream_options={"include_usage": True},
            )
            for _ in stream:
                pass
        else:
            with claude.messages.stream(model="m", messages=PROMPT, max_tokens=5) as stream:  # type: ignore[arg-type]
                stream.get_final_message()

    started = time.monotonic()
    threads = [threading.Thread(target=call, args=(index,)) for index in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert provider.rejected == 0
    assert len(provider.admitted) == 30
    elapsed = time.monotonic() - started
    assert elapsed < 30
    left = transport.limiter.status()["tokens_per_minute"].remaining
    assert left <= 2850 - 30 * 105 + 47.5 * elapsed + 1  # every call reconciled to its usage
    http.close()
