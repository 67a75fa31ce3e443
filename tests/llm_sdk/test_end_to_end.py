"""The real SDKs through ``llm_rate_limit`` against the fake provider (issue 18, item 7).

The provider (``tests/llm_fake``) keeps its own requests and tokens buckets, equal to the
client's limits, and answers 429 when either is short. Both run on one virtual clock: a
``FakeClock`` for sequential sync calls, trio's ``MockClock`` (through ``AnyioClock``)
for 100 concurrent tasks, so a minute of traffic takes milliseconds and the figures are
exact. Every call reserves its estimate (prompt / 4 plus ``max_tokens``) and is
reconciled to its usage (or, for a stream without usage, to the text it delivered), so
the limit binds on what is really used.

Sequential calls ask for ``max_tokens`` five times what they use: each refund is back
before the next call. 100 tasks arriving at once are each scheduled on their estimate
when they arrive (standing waiters never move, by design), so the share they reach is
about use / estimate: they ask for ``max_tokens`` equal to what they use (measured with
twice: 0.62 of the allowed tokens, still no 429).

The limits equal the provider's, so the client holds back ``SAFETY_MARGIN`` as docs/llm.md
advises: without it, a stream that asked for no ``max_tokens`` met one 429, the provider
being short of its 12-token prompt by a float residue (11.999999999998 tokens).

Asserted for each SDK, dialect, sync and async, streamed or not: no 429 at all, and the
provider admitted at least 0.95 of the tokens its limit allowed over the run
(``burst + rate * elapsed``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anthropic
import anyio
import httpx2
import openai
import pytest
import trio.testing

from limitor import AnyioClock, llm_rate_limit
from limitor.llm import SAFETY_MARGIN, usage_tokens
from limitor.testing import FakeClock
from tests.llm_fake import FakeProvider

TPM = 3_000
RPM = 1_000
CALLS = 100
OUTPUT = 20
MAX_TOKENS = 5 * OUTPUT
MESSAGES = [{"role": "user", "content": "Say something short about rate limits, please."}]

DIALECTS = ["chat", "chat-stream", "chat-stream-no-usage", "chat-stream-no-max-tokens",
            "responses", "responses-stream", "messages", "messages-stream"]  # fmt: skip


def _clients(provider: FakeProvider, *, asynchronous: bool) -> tuple[Any, Any]:
    transport = httpx2.MockTransport(provider.handle)
    if asynchronous:
        http = httpx2.AsyncClient(transport=transport)
        return (
            openai.AsyncOpenAI(api_key="k", max_retries=0, http_client=http),
            anthropic.AsyncAnthropic(api_key="k", max_retries=0, http_client=http),
        )
    http_sync = httpx2.Client(transport=transport)
    return (
        openai.OpenAI(api_key="k", max_retries=0, http_client=http_sync),
        anthropic.Anthropic(api_key="k", max_retries=0, http_client=http_sync),
    )


def _call(
    dialect: str, gpt: Any, claude: Any, most: int = MAX_TOKENS
) -> tuple[Callable[..., Any], dict[str, Any]]:
    """The SDK method and its arguments for ``dialect`` (``most``: its max_tokens)."""
    stream = "stream" in dialect
    if dialect == "chat-stream-no-max-tokens":  # the estimate is the prompt alone
        return gpt.chat.completions.create, {"model": "m", "messages": MESSAGES, "stream": True}
    if dialect.startswith("chat"):
        arguments: dict[str, Any] = {"model": "m", "messages": MESSAGES, "max_tokens": most}
        if stream:
            arguments["stream"] = True
            if dialect == "chat-stream":
                arguments["stream_options"] = {"include_usage": True}
        return gpt.chat.completions.create, arguments
    if dialect.startswith("responses"):
        arguments = {"model": "m", "input": MESSAGES[0]["content"],
                     "max_output_tokens": most}  # fmt: skip
        if stream:
            arguments["stream"] = True
        return gpt.responses.create, arguments
    arguments = {"model": "m", "messages": MESSAGES, "max_tokens": most}
    if stream:
        arguments["stream"] = True
    return claude.messages.create, arguments


def _share_of_allowed(provider: FakeProvider, elapsed: float) -> float:
    allowed = TPM + TPM / 60 * elapsed
    return provider.used_tokens / allowed


@pytest.mark.parametrize("dialect", DIALECTS)
def test_sync_calls_meet_no_429_and_use_the_limit(dialect: str) -> None:
    clock = FakeClock()
    provider = FakeProvider(rpm=RPM, tpm=TPM, output_tokens=OUTPUT, clock=clock)
    method, arguments = _call(dialect, *_clients(provider, asynchronous=False))
    limited = llm_rate_limit(
        requests_per_minute=RPM,
        tokens_per_minute=TPM,
        token_reconcile=usage_tokens,
        safety_margin=SAFETY_MARGIN,
        clock=clock,
    )(method)
    for _ in range(CALLS):
        result = limited(**arguments)
        if arguments.get("stream"):
            for _ in result:
                pass
    assert provider.rejected == 0
    assert len(provider.admitted) == CALLS
    share = _share_of_allowed(provider, provider.admitted[-1].time)
    print(f"sync {dialect}: {share:.3f} of the allowed tokens")
    assert share >= 0.95, share


@pytest.fixture
def anyio_backend() -> Any:
    return ("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})


# Not "chat-stream-no-max-tokens": 100 calls that reserve their prompt alone all go at
# once and overrun the provider (measured: 429s); a reconcile only delays later callers.
# Calls without max_tokens need an output estimate (chars_estimator(default_output_tokens=)).
@pytest.mark.anyio
@pytest.mark.parametrize("dialect", [d for d in DIALECTS if d != "chat-stream-no-max-tokens"])
# The openai SDK leaves its SSE generators unexhausted after "[DONE]"; trio warns when
# they are collected (the SDK alone does so too, without limitor).
@pytest.mark.filterwarnings("ignore:Async generator:ResourceWarning")
async def test_100_concurrent_tasks_meet_no_429_and_use_the_limit(dialect: str) -> None:
    clock = AnyioClock()
    provider = FakeProvider(rpm=RPM, tpm=TPM, output_tokens=OUTPUT, clock=clock)
    method, arguments = _call(dialect, *_clients(provider, asynchronous=True), most=OUTPUT)
    limited: Callable[..., Awaitable[Any]] = llm_rate_limit(
        requests_per_minute=RPM,
        tokens_per_minute=TPM,
        token_reconcile=usage_tokens,
        safety_margin=SAFETY_MARGIN,
        clock=clock,
    )(method)
    start = clock.now()

    async def one() -> None:
        result = await limited(**arguments)
        if arguments.get("stream"):
            async for _ in result:
                pass

    async with anyio.create_task_group() as tasks:
        for _ in range(CALLS):
            tasks.start_soon(one)
    assert provider.rejected == 0
    assert len(provider.admitted) == CALLS
    share = _share_of_allowed(provider, provider.admitted[-1].time - start)
    print(f"async {dialect}: {share:.3f} of the allowed tokens")
    assert share >= 0.95, share
