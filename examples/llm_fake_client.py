"""LLM rate limits with a fake client: RPM and TPM together, estimate, reconcile, headers.

A pretend chat API (no network) answers with OpenAI-style usage and rate-limit headers.
``@llm_rate_limit`` keeps the calls within both limits, estimates each call's tokens from
its messages and ``max_tokens``, reconciles them from the response's usage (refunds at
once, debt for later callers), and tightens itself to what the headers report.

The clock is virtual (a FakeClock), so the minutes pass instantly; every line shows the
virtual time at which the call went.

Run: ``python examples/llm_fake_client.py``
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from limitor import AcquireTimeout, RateLimitExceeded, llm_rate_limit
from limitor.llm import estimate_tokens, usage_tokens
from limitor.testing import FakeClock

clock = FakeClock()


@dataclass
class FakeResponse:
    text: str
    usage: dict[str, int]
    headers: dict[str, str] = field(default_factory=dict)


class FakeChatClient:
    """Answers every chat with a fixed number of output tokens, like a real API would."""

    def __init__(self) -> None:
        self.remaining_tokens_reported: int | None = None

    def create(self, messages: list[dict[str, str]], max_tokens: int, output: int) -> FakeResponse:
        prompt = sum(len(m["content"]) for m in messages) // 4
        headers = {"x-ratelimit-remaining-requests": "99"}
        if self.remaining_tokens_reported is not None:
            headers["x-ratelimit-remaining-tokens"] = str(self.remaining_tokens_reported)
            headers["x-ratelimit-reset-tokens"] = "30s"
        return FakeResponse(
            text="...",
            usage={
                "prompt_tokens": prompt,
                "completion_tokens": output,
                "total_tokens": prompt + output,
            },
            headers=headers,
        )


client = FakeChatClient()


@llm_rate_limit(
    requests_per_minute=3,
    tokens_per_minute=6_000,  # 100 tokens per second, bursts of 6,000
    token_estimate=estimate_tokens,  # characters / 4 of the messages, plus max_tokens
    token_reconcile=usage_tokens,  # the real usage from the response
    rate_limit_headers=lambda response: getattr(response, "headers", None),
    clock=clock,
)
def chat(messages: list[dict[str, str]], max_tokens: int = 1000, output: int = 100) -> Any:
    response = client.create(messages, max_tokens, output)
    print(
        f"  t={clock.now():7.2f}s  sent ~{sum(len(m['content']) for m in messages) // 4} prompt "
        f"tokens, max_tokens={max_tokens}, used {response.usage['total_tokens']}"
    )
    return response


def prompt(chars: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": "x" * chars}]


def main() -> None:
    limiter = chat.limiter  # type: ignore[attr-defined]

    print("1. Requests per minute bind: 3 RPM, so the 4th call waits until t=20s")
    for _ in range(4):
        chat(prompt(400), max_tokens=100)

    print("\n2. Tokens per minute bind: each call is estimated at 1000 + 2000 tokens")
    clock.advance(60)
    for _ in range(3):
        chat(prompt(4000), max_tokens=2000, output=2000)
    print("   (the third call waited for 3,000 tokens to come back at 100 per second)")

    print("\n3. Unused tokens come back at once: estimated 3000, used 1100")
    clock.advance(60)
    chat(prompt(4000), max_tokens=2000, output=100)
    left = limiter.status()["tokens_per_minute"].remaining
    print(f"   tokens left right after the call: {left:,.0f} of 6,000 (only 1,100 were used)")

    print("\n4. An underestimate becomes debt: estimated 150, used 8,000; no exception")
    clock.advance(60)
    chat(prompt(200), max_tokens=100, output=7950)
    chat(prompt(200), max_tokens=100)
    print("   (2,000 tokens of debt beyond the burst: the next call waited 21.5 s to repay it)")

    print("\n5. A call refused by the token limit takes nothing from the request limit")
    clock.advance(60)
    before = limiter.status()["requests_per_minute"].remaining
    try:
        chat(prompt(24_000), max_tokens=1)  # 6,001 tokens: more than a minute's worth
    except ValueError as error:
        print(f"   refused at once: {error}")
    after = limiter.status()["requests_per_minute"].remaining
    print(f"   requests left: {before:.0f} before, {after:.0f} after")

    print("\n6. The provider's headers tighten the limiter (never loosen it)")
    clock.advance(60)
    client.remaining_tokens_reported = 500  # another process shares the key
    chat(prompt(40), max_tokens=10)
    believed = limiter.status()["tokens_per_minute"].remaining
    print(f"   the API reported 500 tokens left; the limiter now says {believed:,.0f}")
    client.remaining_tokens_reported = None

    print("\n7. Policing instead of waiting: a timeout raises at once, with retry_after")
    try:
        limiter.acquire(5000, timeout=1)
    except AcquireTimeout as error:
        print(f"   {type(error).__name__}: retry after {error.retry_after:.1f}s")
    except RateLimitExceeded as error:  # pragma: no cover - the same family
        print(f"   {type(error).__name__}: retry after {error.retry_after:.1f}s")


if __name__ == "__main__":
    main()
