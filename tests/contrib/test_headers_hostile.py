"""Hostile rate-limit headers (issue 17): linear-time parsing of every header read, bytes,
duplicates, bare numbers, and holds capped by ``max_retry_after``."""

from __future__ import annotations

import contextlib
import email.utils
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from limitor.contrib._headers import read_feedback
from limitor.llm import headers
from limitor.llm.headers import (
    MAX_RETRY_AFTER,
    HeaderError,
    parse_duration,
    parse_rate_limit_headers,
)
from limitor.testing import FakeClock
from tests.contrib.test_httpx import Server, client_for

NAMES = [
    "retry-after",
    "retry-after-ms",
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-requests",
    "x-ratelimit-reset-tokens",
    "anthropic-ratelimit-tokens-reset",
    "anthropic-ratelimit-requests-remaining",
]


@pytest.fixture(autouse=True)
def _fresh_cap_log(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(headers, "_capped_names", set())


def _worst_values(size: int) -> list[str]:
    """Values of ``size`` characters that hurt naive parsers (backtracking, big numbers)."""
    return [
        "1" * size,
        "1" * (size - 1) + "x",
        "1" * (size - 2) + "ms",
        "1." * (size // 2) + "x",
        "1m" * (size // 2),
        "9" * (size - 1) + "s",
        ("1" * 50 + "h") * (size // 51),
        "Fri, 31 Dec " + "9" * (size - 12),
        "2025-01-01T" + "0" * (size - 11),
        ", ".join(["5"] * (size // 3)),
        '"p";r=1;t=1, ' * (size // 13),
    ]


def _parse_all(value: str) -> None:
    with pytest.raises(HeaderError):
        parse_duration(value)
    parse_rate_limit_headers([(name, value) for name in NAMES], strict=False, wall_now=0.0)
    read_feedback(
        [("Retry-After", value), ("RateLimit", value), ("x-ratelimit-remaining", value)],
        429,
        wall_now=0.0,
    )


def _timed(function: Callable[[], None]) -> float:
    """The fastest of five runs: what the code costs, without the machine's other work."""
    runs = []
    for _ in range(5):
        began = time.perf_counter()
        function()
        runs.append(time.perf_counter() - began)
    return min(runs)


def test_every_header_is_read_in_linear_time_up_to_100_kib() -> None:
    """The worst values of 10 KiB and 100 KiB: each whole pass (every header name, the
    transport's reader) well under 50 ms, and 100 KiB no more than 20x 10 KiB."""
    for small, large in zip(_worst_values(10 * 1024), _worst_values(100 * 1024), strict=True):
        assert len(large) > 90 * 1024

        def parse_small(value: str = small) -> None:
            _parse_all(value)

        def parse_large(value: str = large) -> None:
            _parse_all(value)

        small_time, large_time = _timed(parse_small), _timed(parse_large)
        assert large_time < 0.05, (large[:20], large_time)
        assert large_time <= 20 * small_time + 0.002, (large[:20], small_time, large_time)


def test_a_long_digit_run_is_refused_at_once() -> None:
    began = time.perf_counter()
    with pytest.raises(HeaderError, match="longer than"):
        parse_duration("1" * 60_000)
    with pytest.raises(HeaderError, match="longer than"):
        parse_rate_limit_headers({"retry-after": "1" * 60_000})
    assert time.perf_counter() - began < 0.5  # a 16k-digit value took 8 s before


def test_durations_still_read_as_before() -> None:
    assert parse_duration("1m30s") == 90.0
    assert parse_duration("20ms") == pytest.approx(0.02)
    assert parse_duration("1h2m3.5s") == pytest.approx(3723.5)
    assert parse_duration(" 6m0s ") == 360.0
    assert parse_duration("2.5") == 2.5
    for bad in ("", "1x", "m", "1m30", "-1s", "1e400", "nan", "inf", "1__0", "\u0661s"):
        with pytest.raises(HeaderError):
            parse_duration(bad)


HEADER_TEXT = st.one_of(
    st.text(max_size=60),
    st.binary(max_size=60),
    st.sampled_from(["1e300", "-1", "nan", "inf", "20250101", "Fri, 31 Dec 9999", "1m", "0"]),
)


@settings(max_examples=300, deadline=None)
@given(
    pairs=st.lists(
        st.tuples(
            st.one_of(st.sampled_from(NAMES), st.text(max_size=20), st.binary()), HEADER_TEXT
        ),
        max_size=6,
    )
)
def test_fuzz_strict_raises_only_header_error_and_lenient_never(pairs: list[Any]) -> None:
    try:
        report = parse_rate_limit_headers(pairs, wall_now=0.0)
    except HeaderError:
        pass
    else:
        assert report.retry_after is None or 0 <= report.retry_after <= MAX_RETRY_AFTER
    report = parse_rate_limit_headers(pairs, strict=False, wall_now=0.0)
    assert report.retry_after is None or 0 <= report.retry_after <= MAX_RETRY_AFTER
    assert all(0 <= value <= headers.MAX_HEADER_WAIT for value in report.reset_after.values())
    read_feedback(pairs, 429, wall_now=0.0)
    read_feedback(pairs, 200, wall_now=0.0)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=80), st.binary(max_size=80)))
def test_fuzz_one_value_under_every_name(value: str | bytes) -> None:
    pairs = [(name, value) for name in NAMES]
    with contextlib.suppress(HeaderError):
        parse_rate_limit_headers(pairs, wall_now=0.0)
    parse_rate_limit_headers(pairs, strict=False, wall_now=0.0)
    read_feedback(pairs, 429, wall_now=0.0)


def test_bytes_are_accepted_and_bad_bytes_are_a_header_error() -> None:
    report = parse_rate_limit_headers([(b"Retry-After", b"7")])
    assert report.retry_after == 7.0
    with pytest.raises(HeaderError):
        parse_rate_limit_headers([(b"retry-after", b"\xff\xfe7")])
    with pytest.raises(HeaderError):
        parse_rate_limit_headers({"retry-after": b"\xc3("})
    assert parse_rate_limit_headers({"retry-after": b"\xc3("}, strict=False).retry_after is None
    assert read_feedback([(b"retry-after", b"\xff")], 429).retry_after is None
    assert read_feedback([(b"retry-after", b"3")], 429).retry_after == 3.0


@pytest.mark.parametrize(
    "pairs",
    [
        [("retry-after", "5"), ("retry-after", "120")],
        [("retry-after", "120"), ("retry-after", "5")],
        [("Retry-After", "120, 5")],  # joined by a mapping such as httpx.Headers
    ],
)
def test_the_larger_of_duplicated_retry_after_values_counts(pairs: list[tuple[str, str]]) -> None:
    assert parse_rate_limit_headers(pairs).retry_after == 120.0
    assert read_feedback(pairs, 429).retry_after == 120.0


def test_duplicated_counts_take_the_most_cautious_value() -> None:
    report = parse_rate_limit_headers(
        [
            ("x-ratelimit-remaining-tokens", "100"),
            ("x-ratelimit-remaining-tokens", "5"),
            ("x-ratelimit-reset-tokens", "1s"),
            ("x-ratelimit-reset-tokens", "1m"),
        ]
    )
    assert report.remaining == {"tokens": 5.0}
    assert report.reset_after == {"tokens": 60.0}
    assert read_feedback([("x-ratelimit-remaining", "9"), ("x-ratelimit-remaining", "2")], 200)


def test_eight_digits_are_seconds_not_a_date() -> None:
    report = parse_rate_limit_headers({"retry-after": "20250101"}, wall_now=1.7e9)
    assert report.retry_after == MAX_RETRY_AFTER  # 20,250,101 s, capped: never 0
    report = parse_rate_limit_headers({"retry-after": "20250101"}, max_retry_after=1e9)
    assert report.retry_after == 20_250_101.0


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("retry-after", "1e300"),
        ("retry-after-ms", "1e12"),
        ("retry-after", email.utils.formatdate(30 * 86_400, usegmt=True)),
        ("retry-after", "9" * 500),
    ],
)
def test_a_hostile_retry_after_holds_at_most_the_cap(name: str, value: str) -> None:
    assert parse_rate_limit_headers({name: value}, wall_now=0.0).retry_after == 600.0
    assert (
        parse_rate_limit_headers({name: value}, wall_now=0.0, max_retry_after=60).retry_after
        == 60.0
    )
    assert read_feedback([(name, value)], 429, wall_now=0.0).retry_after == 600.0


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Retry-After", "1e300"),
        ("retry-after-ms", "1e12"),
        ("Retry-After", "30 days"),
    ],
)
def test_the_transport_holds_a_host_at_most_max_retry_after(name: str, value: str) -> None:
    clock = FakeClock()
    if value == "30 days":
        value = email.utils.formatdate(time.time() + 30 * 86_400, usegmt=True)

    def answer(request: httpx.Request, count: int) -> httpx.Response:
        return httpx.Response(429 if count == 1 else 200, headers={name: value})

    server = Server(clock, answer)
    with client_for(server, rate="10/s", retries=3, max_retry_after=60) as client:
        assert client.get("https://api.test/").status_code == 429  # too long to wait for
        held = server.transport.limiter.status("api.test").retry_after
        assert 59 <= held <= 60
        clock.advance(60.0)
        assert client.get("https://api.test/").status_code == 200  # the host is free again
