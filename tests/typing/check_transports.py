"""Type-checked by ``mypy --strict tests/typing`` in CI, never run.

The transports take their keywords from one ``TypedDict`` each; a misspelt keyword or a
value of the wrong type is still an error (each ``type: ignore`` marks a call that mypy
must reject; ``warn_unused_ignores`` fails the check if it does not).
"""

from __future__ import annotations

from limitor.contrib.httpx import AsyncRateLimitedTransport, RateLimitedTransport
from limitor.contrib.llm_transport import AsyncLLMTransport, LLMTransport


def check() -> None:
    RateLimitedTransport(rate="10/s", retries=2, on_limit="raise")
    AsyncRateLimitedTransport(rate="10/s", max_hosts=100)
    LLMTransport(rpm=500, tpm=200_000, provider="openai")
    AsyncLLMTransport(tpm=200_000, retries=1)
    RateLimitedTransport(rate="10/s", retrys=2)  # type: ignore[call-arg]
    RateLimitedTransport(rate="10/s", on_limit="drop")  # type: ignore[arg-type]
    AsyncRateLimitedTransport(rate="10/s", rpm=5)  # type: ignore[call-arg]
    LLMTransport(rpm=500, provider="azure")  # type: ignore[arg-type]
    AsyncLLMTransport(tokens_per_minute=5)  # type: ignore[call-arg]
