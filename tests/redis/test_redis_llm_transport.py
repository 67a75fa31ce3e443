"""Two LLM transports (as in two processes) share their limits through one Redis."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest

from limitor.contrib.llm_transport import LLMTransport
from tests.llm_fake import FakeProvider

BODY = {"model": "m", "messages": [{"role": "user", "content": "x" * 400}], "max_tokens": 50}


def test_two_transports_share_requests_and_tokens(backend: Any) -> None:
    provider = FakeProvider(rpm=100, tpm=10_000, output_tokens=10)
    made = [
        LLMTransport(
            httpx2.MockTransport(provider.handle),
            rpm=100,
            tpm=10_000,
            backend=backend,
            name="llm-transport-shared",
        )
        for _ in range(2)
    ]
    made[0].limiter.reset()
    for transport in made:
        with httpx2.Client(transport=transport) as client:
            for _ in range(3):
                client.post("https://api.openai.com/v1/chat/completions", json=BODY)
    for transport in made:  # each sees the six calls, reconciled to their usage (110 each)
        status = transport.limiter.status("api.openai.com")
        assert status["requests_per_minute"].remaining == pytest.approx(
            94, abs=0.5
        )  # real time refills
        assert status["tokens_per_minute"].remaining == pytest.approx(10_000 - 660, abs=50)
