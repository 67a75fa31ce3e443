"""Reading providers' rate-limit headers, responses' usage, and estimating tokens."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest

from limitor.errors import ConfigError
from limitor.llm import (
    Cost,
    HeaderError,
    TiktokenCounter,
    UsageError,
    chars_estimator,
    estimate_tokens,
    parse_duration,
    parse_rate_limit_headers,
    usage_tokens,
)

WALL = 1_767_225_600.0  # 2026-01-01T00:00:00Z


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("120ms", 0.12),
        ("1h2m3.5s", 3723.5),
        ("0.5s", 0.5),
        ("59.999s", 59.999),
        ("17ms", 0.017),
        ("2m", 120.0),
        ("30", 30.0),
        (" 3s ", 3.0),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "soon", "1x", "s", "-1s", "1s2", "inf", "nan", "1m-3s"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(HeaderError):
        parse_duration(text)


@dataclass
class HeaderCase:
    name: str
    headers: Any
    limit: dict[str, float]
    remaining: dict[str, float]
    reset_after: dict[str, float]
    retry_after: float | None = None


CASES = [
    HeaderCase(
        "openai chat completion",
        {
            "x-ratelimit-limit-requests": "10000",
            "x-ratelimit-limit-tokens": "2000000",
            "x-ratelimit-remaining-requests": "9999",
            "x-ratelimit-remaining-tokens": "1999942",
            "x-ratelimit-reset-requests": "6ms",
            "x-ratelimit-reset-tokens": "1ms",
            "content-type": "application/json",
        },
        {"requests": 10000, "tokens": 2000000},
        {"requests": 9999, "tokens": 1999942},
        {"requests": 0.006, "tokens": 0.001},
    ),
    HeaderCase(
        "openai 429, header names in any case, as pairs",
        [
            ("X-RateLimit-Remaining-Tokens", "0"),
            ("X-RateLimit-Reset-Tokens", "6m0s"),
            ("Retry-After", "20"),
            ("retry-after-ms", "19250"),
        ],
        {},
        {"tokens": 0},
        {"tokens": 360},
        19.25,
    ),
    HeaderCase(
        "anthropic messages",
        {
            "anthropic-ratelimit-requests-limit": "50",
            "anthropic-ratelimit-requests-remaining": "49",
            "anthropic-ratelimit-requests-reset": "2026-01-01T00:00:01Z",
            "anthropic-ratelimit-input-tokens-limit": "30000",
            "anthropic-ratelimit-input-tokens-remaining": "29000",
            "anthropic-ratelimit-input-tokens-reset": "2026-01-01T00:00:02+00:00",
            "anthropic-ratelimit-output-tokens-limit": "8000",
            "anthropic-ratelimit-output-tokens-remaining": "7500",
            "anthropic-ratelimit-output-tokens-reset": "2026-01-01T00:00:06Z",
            "anthropic-ratelimit-tokens-remaining": "36500",
        },
        {"requests": 50, "input_tokens": 30000, "output_tokens": 8000},
        {"requests": 49, "input_tokens": 29000, "output_tokens": 7500, "tokens": 36500},
        {"requests": 1, "input_tokens": 2, "output_tokens": 6},
    ),
    HeaderCase(
        "openai-style input and output tokens",
        {
            "x-ratelimit-limit-input-tokens": "30000",
            "x-ratelimit-remaining-input-tokens": "29000",
            "x-ratelimit-reset-input-tokens": "2s",
            "x-ratelimit-limit-output-tokens": "8000",
            "x-ratelimit-remaining-output-tokens": "7500",
            "x-ratelimit-reset-output-tokens": "1m",
        },
        {"input_tokens": 30000, "output_tokens": 8000},
        {"input_tokens": 29000, "output_tokens": 7500},
        {"input_tokens": 2, "output_tokens": 60},
    ),
    HeaderCase(
        "retry-after as an HTTP date",
        {"retry-after": "Thu, 01 Jan 2026 00:00:30 GMT"},
        {},
        {},
        {},
        30.0,
    ),
    HeaderCase(
        "bytes values and nothing rate-related",
        {"x-ratelimit-remaining-requests": b"7", "server": "nginx"},
        {},
        {"requests": 7},
        {},
    ),
    HeaderCase("no headers", {}, {}, {}, {}),
]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_header_sets(case: HeaderCase) -> None:
    report = parse_rate_limit_headers(case.headers, wall_now=WALL)
    assert report.limit == pytest.approx(case.limit)
    assert report.remaining == pytest.approx(case.remaining)
    assert report.reset_after == pytest.approx(case.reset_after)
    assert report.retry_after == (
        None if case.retry_after is None else pytest.approx(case.retry_after)
    )


MALFORMED = [
    {"x-ratelimit-remaining-tokens": "lots"},
    {"x-ratelimit-remaining-requests": "-3"},
    {"x-ratelimit-limit-tokens": "1e400"},
    {"x-ratelimit-reset-tokens": "soon"},
    {"anthropic-ratelimit-tokens-reset": "yesterday-ish"},
    {"retry-after": "later"},
    {"retry-after-ms": "NaN"},
]


@pytest.mark.parametrize("headers", MALFORMED)
def test_malformed_values_raise_when_strict(headers: dict[str, str]) -> None:
    name = next(iter(headers))
    with pytest.raises(HeaderError, match=name):
        parse_rate_limit_headers(headers, wall_now=WALL)


@pytest.mark.parametrize("headers", MALFORMED)
def test_malformed_values_are_skipped_when_not_strict(
    headers: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    good = {"x-ratelimit-reset-requests": "2s"}
    report = parse_rate_limit_headers({**headers, **good}, strict=False, wall_now=WALL)
    assert report.reset_after.get("requests") == 2  # the good header is still read
    assert next(iter(headers)) in caplog.text


@pytest.mark.parametrize("headers", [None, "x-ratelimit: 1", 42, [("only-a-name",)]])
def test_headers_of_the_wrong_shape(headers: object) -> None:
    with pytest.raises(HeaderError):
        parse_rate_limit_headers(headers)


# -- usage ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (
            {"usage": {"prompt_tokens": 12, "completion_tokens": 30, "total_tokens": 42}},
            Cost(input_tokens=12, output_tokens=30, tokens=42),
        ),
        (
            SimpleNamespace(
                usage=SimpleNamespace(prompt_tokens=5, completion_tokens=7, total_tokens=12)
            ),
            Cost(input_tokens=5, output_tokens=7, tokens=12),
        ),
        (  # OpenAI Responses API
            {"usage": {"input_tokens": 100, "output_tokens": 20, "total_tokens": 120}},
            Cost(input_tokens=100, output_tokens=20, tokens=120),
        ),
        (  # Anthropic, with prompt caching: cache writes count, cache reads do not
            SimpleNamespace(
                usage=SimpleNamespace(
                    input_tokens=50,
                    output_tokens=10,
                    cache_creation_input_tokens=1000,
                    cache_read_input_tokens=4000,
                )
            ),
            Cost(input_tokens=1050, output_tokens=10, tokens=1060),
        ),
        ({"input_tokens": 3, "output_tokens": 4}, Cost(input_tokens=3, output_tokens=4, tokens=7)),
        ({"usage": {"total_tokens": 9}}, Cost(input_tokens=0, output_tokens=0, tokens=9)),
    ],
)
def test_usage_from_openai_and_anthropic_responses(response: Any, expected: Cost) -> None:
    assert usage_tokens(response) == expected


@pytest.mark.parametrize(
    "response", [{}, {"usage": None}, {"usage": {"prompt_tokens": "x"}}, "text", 3]
)
def test_responses_without_usage(response: Any) -> None:
    with pytest.raises(UsageError):
        usage_tokens(response)


# -- estimates ----------------------------------------------------------------------------


def test_estimate_counts_strings_and_messages_and_output_limits() -> None:
    assert estimate_tokens("abcdefgh") == Cost(input_tokens=2, output_tokens=0)
    messages = [
        {"role": "system", "content": "x" * 8},
        {"role": "user", "content": [{"type": "text", "text": "y" * 8}, {"type": "image"}]},
    ]
    assert estimate_tokens(messages, max_tokens=100) == Cost(input_tokens=4, output_tokens=100)
    assert estimate_tokens(model="m", messages=messages, max_completion_tokens=7).output_tokens == 7
    assert estimate_tokens(input="z" * 5, max_output_tokens=3) == Cost(
        input_tokens=2, output_tokens=3
    )
    assert estimate_tokens(12345).input_tokens == 0  # numbers are not text


def test_chars_estimator_settings() -> None:
    estimate = chars_estimator(chars_per_token=2, default_output_tokens=50)
    assert estimate("abcd") == Cost(input_tokens=2, output_tokens=50)
    with pytest.raises(ConfigError):
        chars_estimator(chars_per_token=0)


class FakeEncoding:
    """A stand-in for a tiktoken encoding: one token per word."""

    def encode(self, text: str) -> Sequence[int]:
        return [len(word) for word in text.split()]


def test_tiktoken_counter_counts_chat_framing() -> None:
    counter = TiktokenCounter(encoding=FakeEncoding(), default_output_tokens=16)
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hello there you", "name": "ann"},
    ]
    # 3 priming + per message 3 + words: (1 + 2) + (1 + 3 + 1 + 1 for the name)
    assert counter.count_messages(messages) == 3 + 3 + 3 + 3 + 6
    assert counter(messages=messages, max_tokens=64) == Cost(input_tokens=18, output_tokens=64)
    assert counter("one two three") == Cost(input_tokens=3, output_tokens=16)
    assert counter(messages) == Cost(input_tokens=18, output_tokens=16)


def test_tiktoken_counter_without_a_model_or_tiktoken_is_a_clear_error() -> None:
    # With the optional extra installed: "give model= or encoding="; without it: what to
    # install. Either way a ConfigError at construction, never an ImportError later.
    with pytest.raises(ConfigError, match=r"tiktoken|model="):
        TiktokenCounter()
