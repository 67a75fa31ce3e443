"""LLM limits: requests and tokens per minute together, estimate then reconcile."""

from __future__ import annotations

import logging
import math
import threading
from types import SimpleNamespace
from typing import Any

import anyio
import pytest

from limitor import (
    AcquireTimeout,
    AmountError,
    ConfigError,
    Cost,
    LLMLimiter,
    RateLimitExceeded,
    llm_rate_limit,
)
from limitor.llm import Limit, estimate_tokens, usage_tokens
from limitor.llm_token.core import AsyncLLMTokenBucket, SyncLLMTokenBucket
from limitor.testing import FakeClock


def test_tpm_binds_the_second_600_token_call_goes_at_12_s(clock: FakeClock) -> None:
    @llm_rate_limit(
        requests_per_minute=100, tokens_per_minute=1000, token_estimate=lambda n: n, clock=clock
    )
    def call(n: int) -> int:
        return n

    call(600)
    assert clock.now() == 0
    call(600)
    assert clock.now() == pytest.approx(12.0)


def test_rpm_binds_the_third_call_at_2_rpm_goes_at_30_s(clock: FakeClock) -> None:
    times: list[float] = []

    @llm_rate_limit(requests_per_minute=2, tokens_per_minute=1_000_000, clock=clock)
    def call(prompt: str) -> None:
        times.append(clock.now())

    for prompt in ("a", "b", "c"):
        call(prompt)
    assert times == pytest.approx([0, 0, 30])


def test_refunds_make_room_at_once(clock: FakeClock) -> None:
    @llm_rate_limit(
        tokens_per_minute=1000,
        token_estimate=lambda n: n,
        token_reconcile=lambda used: used,
        clock=clock,
    )
    def call(n: int) -> int:
        return 100  # whatever was estimated, 100 tokens were used

    call(900)
    call(900)  # fits at once: 800 of the first estimate came back
    assert clock.now() == 0
    assert call.limiter.status()["tokens_per_minute"].remaining == pytest.approx(800)  # type: ignore[attr-defined]


def test_an_underestimate_becomes_debt_never_an_error(clock: FakeClock) -> None:
    @llm_rate_limit(
        tokens_per_minute=600,  # 10 tokens per second
        token_estimate=lambda prompt: 100,
        token_reconcile=lambda response: response["usage"]["total_tokens"],
        clock=clock,
    )
    def call(prompt: str) -> dict[str, Any]:
        return {"text": "ok", "usage": {"total_tokens": 2000}}  # 1,900 more than estimated

    assert call("long prompt") == {"text": "ok", "usage": {"total_tokens": 2000}}
    assert clock.sleeps == []  # no waiting, no exception after the call ran
    call("next")
    # 2000 used of a 600 burst: 1400 in debt, plus this call's 100, at 10 per second.
    assert clock.now() == pytest.approx(150.0)


def test_a_refusal_by_one_limit_takes_nothing_from_the_others(clock: FakeClock) -> None:
    limiter = LLMLimiter(requests_per_minute=10, tokens_per_minute=1000, clock=clock)
    assert limiter.try_acquire(1000)
    assert not limiter.try_acquire(500)  # refused by the tokens: no request counted
    status = limiter.status()
    assert status["requests_per_minute"].remaining == pytest.approx(9)
    with pytest.raises(AcquireTimeout):
        limiter.acquire(500, timeout=1)  # would wait 30 s
    assert limiter.status()["requests_per_minute"].remaining == pytest.approx(9)
    for _ in range(9):
        assert limiter.try_acquire(0)
    assert not limiter.try_acquire(0)  # refused by the requests: no tokens taken
    assert limiter.status()["tokens_per_minute"].remaining == pytest.approx(0)
    clock.advance(6)  # 100 tokens and 1 request back
    assert limiter.try_acquire(100)


@pytest.mark.parametrize("tokens", [30, 30.0], ids=["int", "float"])
@pytest.mark.parametrize("requests", [-1.0, math.nan, math.inf])
def test_an_actual_cost_with_a_bad_request_count_is_refused_whatever_its_tokens(
    clock: FakeClock, tokens: float, requests: float
) -> None:
    """Requests stay as reserved on reconcile, but a bad count is still bad input."""
    limiter = LLMLimiter(requests_per_minute=60, tokens_per_minute=6000, clock=clock)
    reservation = limiter.reserve(100)
    bad = Cost(input_tokens=tokens, output_tokens=tokens, requests=requests)
    with pytest.raises(AmountError, match="requests"):
        reservation.reconcile(bad)
    reservation.reconcile(Cost(input_tokens=tokens, output_tokens=tokens))  # still open
    assert limiter.status()["tokens_per_minute"].remaining == pytest.approx(6000 - 2 * tokens)


def test_split_input_and_output_limits_need_a_cost(clock: FakeClock) -> None:
    limiter = LLMLimiter(input_tokens_per_minute=1000, output_tokens_per_minute=100, clock=clock)
    with pytest.raises(AmountError, match="separately"):
        limiter.acquire(50)
    reservation = limiter.acquire(Cost(input_tokens=500, output_tokens=100))
    assert clock.now() == 0
    limiter.acquire(Cost(input_tokens=10, output_tokens=10))  # output binds: 6 s
    assert clock.now() == pytest.approx(6.0)
    reservation.reconcile(Cost(input_tokens=500, output_tokens=20))  # refunds 80 output
    status = limiter.status()
    # The 80 output tokens come back as a hole before the second call's span: all 80 fit
    # now (100 + 10 + 80 admitted by 6 s against a bound of 100 + 6 * 100/60 = 110).
    assert status["output_tokens_per_minute"].remaining == pytest.approx(80)
    assert limiter.try_acquire(Cost(input_tokens=0, output_tokens=80))
    assert not limiter.try_acquire(Cost(input_tokens=0, output_tokens=1))
    assert status["input_tokens_per_minute"].remaining == pytest.approx(490 + 100)


def test_cancelled_llm_reservations_give_every_limit_back(clock: FakeClock) -> None:
    limiter = LLMLimiter(requests_per_minute=60, tokens_per_minute=600, clock=clock)
    limiter.acquire(600)
    waiting = [limiter.reserve(300) for _ in range(3)]  # at 30, 60, 90 s
    assert [r.delay for r in waiting] == pytest.approx([30, 60, 90])
    given = [r.cancel() for r in waiting]  # in asking order: the last undoes them all
    assert sum(given) == pytest.approx(3 * 301)  # 300 tokens and 1 request each
    status = limiter.status()
    assert status["requests_per_minute"].remaining == pytest.approx(59)
    assert status["tokens_per_minute"].remaining == pytest.approx(0)
    assert limiter.reserve(300).delay == pytest.approx(30)


def test_per_day_limits_next_to_per_minute_ones(clock: FakeClock) -> None:
    limiter = LLMLimiter(requests_per_minute=60, requests_per_day=3, clock=clock)
    for _ in range(3):
        limiter.acquire()
    assert clock.now() == 0
    with pytest.raises(AcquireTimeout) as info:
        limiter.acquire(timeout=60)
    assert info.value.retry_after == pytest.approx(86400 / 3)
    assert set(limiter.status()) == {"requests_per_minute", "requests_per_day"}


def test_custom_limits_and_validation() -> None:
    limiter = LLMLimiter(limits=[Limit("tokens", 9000, seconds=90, burst=3000)])
    assert limiter.limits[0].name == "tokens_per_90s"
    with pytest.raises(AmountError, match="at once"):
        limiter.try_acquire(3001)
    with pytest.raises(ConfigError):
        LLMLimiter()
    with pytest.raises(ConfigError):
        LLMLimiter(tokens_per_minute=0)
    with pytest.raises(ConfigError):
        LLMLimiter(tokens_per_minute=10, limits=[Limit("tokens", 5, 60)])
    with pytest.raises(ConfigError):
        Limit("bytes", 10)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        LLMLimiter(limits=["tokens"])  # type: ignore[list-item]


@pytest.mark.parametrize("bad", [-1, float("nan"), "12", {"tokens": -5}, {"nope": 1}, True])
def test_bad_costs_are_clear_errors(bad: object, clock: FakeClock) -> None:
    limiter = LLMLimiter(tokens_per_minute=100, clock=clock)
    with pytest.raises(AmountError):
        limiter.acquire(bad)
    assert clock.sleeps == []


def test_a_big_request_is_never_starved_by_small_ones(clock: FakeClock) -> None:
    limiter = LLMLimiter(tokens_per_minute=600, clock=clock)  # 10 tokens per second
    limiter.acquire(600)  # the burst is gone
    big = limiter.reserve(600)  # asked first: goes when 600 are back, at 60 s
    smalls = [limiter.reserve(10) for _ in range(5)]
    assert big.delay == pytest.approx(60)
    # Small ones wait behind it, each only as long as the rule requires: 1 s apart.
    assert [s.delay for s in smalls] == pytest.approx([61, 62, 63, 64, 65])


def test_threads_never_over_admit_either_limit() -> None:
    """8 threads against RPM 600 and TPM 6000 (10 req/s, 100 tokens/s) in real time;
    the committed schedule obeys both windows."""
    limiter = LLMLimiter(
        limits=[Limit("requests", 40, 1.0, burst=4), Limit("tokens", 2000, 1.0, burst=100)]
    )
    admitted: list[tuple[float, float]] = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        for call in range(6):
            tokens = 10 + 15 * ((index + call) % 4)
            reservation = limiter.reserve(tokens)
            reservation.wait()
            with lock:
                admitted.append((reservation.time_to_act, tokens))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    _assert_windows(admitted, requests=(40, 4), tokens=(2000, 100))


def _assert_windows(
    admitted: list[tuple[float, float]],
    *,
    requests: tuple[float, float],
    tokens: tuple[float, float],
) -> None:
    admitted.sort()
    for i, (start, _) in enumerate(admitted):
        total = 0.0
        for count, (end, amount) in enumerate(admitted[i:], start=1):
            total += amount
            assert count <= requests[1] + requests[0] * (end - start) + 1e-6
            assert total <= tokens[1] + tokens[0] * (end - start) + 1e-6


@pytest.mark.anyio
async def test_fifty_tasks_never_over_admit_either_limit() -> None:
    limiter = LLMLimiter(
        limits=[Limit("requests", 100, 1.0, burst=5), Limit("tokens", 3000, 1.0, burst=150)]
    )
    admitted: list[tuple[float, float]] = []

    async def caller(index: int) -> None:
        tokens = 10 + 20 * (index % 5)
        reservation = limiter.reserve(tokens)
        await reservation.wait_async()
        admitted.append((reservation.time_to_act, tokens))

    async with anyio.create_task_group() as tg:
        for index in range(50):
            tg.start_soon(caller, index)
    assert len(admitted) == 50
    _assert_windows(admitted, requests=(100, 5), tokens=(3000, 150))


@pytest.mark.anyio
async def test_async_decorator_with_usage_reconcile(clock: FakeClock) -> None:
    @llm_rate_limit(
        requests_per_minute=60, tokens_per_minute=600, token_reconcile=usage_tokens, clock=clock
    )
    async def chat(messages: list[dict[str, str]], max_tokens: int = 100) -> Any:
        return SimpleNamespace(
            usage=SimpleNamespace(prompt_tokens=20, completion_tokens=30, total_tokens=50)
        )

    messages = [{"role": "user", "content": "x" * 400}]  # estimated 100 in + 100 out
    response = await chat(messages)
    assert response.usage.total_tokens == 50
    status = chat.limiter.status()  # type: ignore[attr-defined]
    assert status["tokens_per_minute"].remaining == pytest.approx(550)
    assert status["requests_per_minute"].remaining == pytest.approx(59)


def test_key_gives_each_user_or_model_its_own_limits(clock: FakeClock) -> None:
    @llm_rate_limit(
        tokens_per_minute=100,
        token_estimate=lambda model, n: n,
        key=lambda model, **kw: model,
        clock=clock,
    )
    def call(model: str, n: int) -> str:
        return model

    call("small", 100)
    call("large", 100)
    assert clock.now() == 0
    call(model="small", n=50)
    assert clock.now() == pytest.approx(30)
    assert "small" in call.limiter  # type: ignore[attr-defined]
    assert "large" in call.limiter  # type: ignore[attr-defined]


def test_on_limit_raise(clock: FakeClock) -> None:
    @llm_rate_limit(requests_per_minute=1, on_limit="raise", clock=clock)
    def call() -> None:
        pass

    call()
    with pytest.raises(RateLimitExceeded) as info:
        call()
    assert info.value.retry_after == pytest.approx(60)


def test_rate_limit_headers_tighten_the_limits(clock: FakeClock) -> None:
    class Response:
        def __init__(self, headers: dict[str, str]) -> None:
            self.headers = headers

    class ProviderRateLimitError(Exception):
        def __init__(self, headers: dict[str, str]) -> None:
            self.response = Response(headers)

    replies: list[dict[str, str]] = [
        {"x-ratelimit-remaining-tokens": "100", "x-ratelimit-reset-tokens": "54s"},
        {"x-ratelimit-remaining-tokens": "999999"},  # never loosens
    ]

    @llm_rate_limit(
        requests_per_minute=100,
        tokens_per_minute=1000,
        token_estimate=lambda fail=False: 0,
        rate_limit_headers=lambda outcome: (
            outcome.response.headers if isinstance(outcome, Exception) else outcome.headers
        ),
        clock=clock,
    )
    def call(fail: bool = False) -> Response:
        if fail:
            raise ProviderRateLimitError({"retry-after": "20"})
        return Response(replies.pop(0))

    call()
    tokens = call.limiter.status()["tokens_per_minute"]  # type: ignore[attr-defined]
    assert tokens.remaining == pytest.approx(100)  # the provider knows of other callers
    call()
    assert call.limiter.status()["tokens_per_minute"].remaining == pytest.approx(100)  # type: ignore[attr-defined]
    with pytest.raises(ProviderRateLimitError):
        call(True)
    before = clock.now()
    call.limiter.acquire()  # type: ignore[attr-defined]
    assert clock.now() - before == pytest.approx(20)  # held by the retry-after


def test_bad_provider_headers_are_ignored_with_a_warning(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    @llm_rate_limit(
        tokens_per_minute=1000,
        token_estimate=lambda: 10,
        rate_limit_headers=lambda response: response,
        clock=clock,
    )
    def call() -> dict[str, str]:
        return {"x-ratelimit-remaining-tokens": "lots", "x-ratelimit-reset-tokens": "soon"}

    with caplog.at_level(logging.WARNING, logger="limitor"):
        assert call() == {
            "x-ratelimit-remaining-tokens": "lots",
            "x-ratelimit-reset-tokens": "soon",
        }
    assert "x-ratelimit-remaining-tokens" in caplog.text
    assert call.limiter.status()["tokens_per_minute"].remaining == pytest.approx(990)  # type: ignore[attr-defined]


def test_default_estimate_counts_text_and_max_tokens(clock: FakeClock) -> None:
    @llm_rate_limit(tokens_per_minute=10_000, clock=clock)
    def chat(messages: list[dict[str, str]], max_tokens: int = 0) -> None:
        pass

    chat(
        [{"role": "system", "content": "a" * 40}, {"role": "user", "content": "b" * 60}],
        max_tokens=75,
    )
    assert chat.limiter.status()["tokens_per_minute"].remaining == pytest.approx(10_000 - 25 - 75)  # type: ignore[attr-defined]
    assert estimate_tokens("x" * 9) == Cost(input_tokens=3, output_tokens=0)


# -- the buckets at limitor.llm_token.core ------------------------------------------------


def test_sync_llm_bucket_with_acquire_ctx_and_reconcile(clock: FakeClock) -> None:
    bucket = SyncLLMTokenBucket(requests_per_minute=100, tokens_per_minute=1000, clock=clock)
    estimate = Cost(input_tokens=300, output_tokens=200)
    with bucket.acquire_ctx(estimate):
        bucket.reconcile(Cost(input_tokens=300, output_tokens=50), estimate)
    assert bucket.status()["tokens_per_minute"].remaining == pytest.approx(650)
    with bucket:
        pass
    assert bucket.status()["requests_per_minute"].remaining == pytest.approx(98)
    assert bucket.try_acquire(650)
    assert not bucket.try_acquire(1)
    assert bucket.reserve(100).delay == pytest.approx(6.0)


@pytest.mark.anyio
async def test_async_llm_bucket(clock: FakeClock) -> None:
    bucket = AsyncLLMTokenBucket(
        requests_per_minute=60, tokens_per_minute=600, max_concurrent=2, clock=clock
    )
    async with bucket.acquire_ctx(300):
        await bucket.reconcile(100, 300)
    async with bucket:
        pass
    assert await bucket.try_acquire(500)
    await bucket.acquire(60)
    assert clock.now() == pytest.approx(6.0)
    assert (await bucket.reserve(10)).delay == pytest.approx(1.0)
