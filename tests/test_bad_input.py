"""Every bad input: a LimitorError that is a ValueError/TypeError, raised at once, taking nothing.

Values that ``float()`` cannot take (``Decimal("sNaN")``, ``10**400``) or that make the
engines' arithmetic meaningless (rates whose interval under- or overflows a float) are
refused with the library's own error, naming the field, before anything is consumed.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest

import limitor.llm.headers as headers
from limitor import llm_rate_limit, rate_limit, rate_limit_per_user
from limitor.configs import BucketConfig, parse_rate
from limitor.errors import (
    AmountError,
    AmountTypeError,
    ConfigError,
    ConfigTypeError,
    LimitorError,
)
from limitor.leaky_bucket.core import AsyncLeakyBucket, SyncLeakyBucket
from limitor.llm import (
    Cost,
    Limit,
    LLMLimiter,
    chars_estimator,
    estimate_tokens,
    parse_rate_limit_headers,
    usage_tokens,
)
from limitor.llm.usage import UsageError
from limitor.per_user import PerUserLimiter
from limitor.testing import FakeClock

HUGE = 10**400  # an int beyond the float range
UNREPRESENTABLE = [
    pytest.param(Decimal("NaN"), id="Decimal-NaN"),
    pytest.param(Decimal("sNaN"), id="Decimal-sNaN"),
    pytest.param(HUGE, id="10**400"),
    pytest.param(Decimal("1e400"), id="Decimal-1e400"),
    pytest.param(Fraction(HUGE), id="Fraction-10**400"),
]


def _bucket() -> SyncLeakyBucket:
    return SyncLeakyBucket(BucketConfig(capacity=10, seconds=1), clock=FakeClock())


def _assert_refused(error: BaseException, *builtins: type[BaseException]) -> None:
    assert isinstance(error, LimitorError)
    assert isinstance(error, builtins)


# -- amounts -----------------------------------------------------------------------


@pytest.mark.parametrize("amount", UNREPRESENTABLE)
@pytest.mark.parametrize(
    "verb",
    [
        pytest.param(lambda b, a: b.reserve(a), id="reserve"),
        pytest.param(lambda b, a: b.acquire(a, timeout=5), id="acquire-timeout"),
        pytest.param(lambda b, a: b.acquire_ctx(a).__enter__(), id="acquire_ctx"),
        pytest.param(lambda b, a: b.capacity_info(a), id="capacity_info"),
    ],
)
def test_an_amount_float_cannot_take_is_an_amount_error_taking_nothing(
    verb: Any, amount: object
) -> None:
    bucket = _bucket()
    with pytest.raises(AmountError) as info:
        verb(bucket, amount)
    _assert_refused(info.value, ValueError)
    assert bucket.status().remaining == 10


def _fast(verb: str, amount: object, label: str) -> Any:
    return pytest.param(verb, amount, id=f"{verb}-{label}")


@pytest.mark.parametrize(
    ("verb", "amount"),
    [
        _fast("acquire", Decimal("NaN"), "Decimal-NaN"),
        _fast("acquire", Decimal("sNaN"), "Decimal-sNaN"),
        _fast("acquire", HUGE, "10**400"),
        _fast("acquire", Fraction(HUGE), "Fraction-10**400"),
        _fast("acquire", Decimal("1e400"), "Decimal-1e400"),
        _fast("try_acquire", Decimal("NaN"), "Decimal-NaN"),
        _fast("try_acquire", Decimal("sNaN"), "Decimal-sNaN"),
        _fast("try_acquire", HUGE, "10**400"),
        _fast("try_acquire", Fraction(HUGE), "Fraction-10**400"),
        _fast("try_acquire", Decimal("1e400"), "Decimal-1e400"),
    ],
)
def test_an_amount_float_cannot_take_on_the_fast_verbs(verb: str, amount: object) -> None:
    bucket = _bucket()
    with pytest.raises(AmountError):
        getattr(bucket, verb)(amount)
    assert bucket.status().remaining == 10


@pytest.mark.anyio
@pytest.mark.parametrize("amount", [Decimal("sNaN"), HUGE], ids=["sNaN", "10**400"])
async def test_an_async_acquire_refuses_the_amount_at_once(amount: object) -> None:
    bucket = AsyncLeakyBucket(BucketConfig(capacity=10, seconds=1), clock=FakeClock())
    with pytest.raises(AmountError):
        await bucket.acquire(amount, timeout=5)
    assert bucket.status().remaining == 10


@pytest.mark.parametrize("actual", UNREPRESENTABLE)
def test_reconciling_to_an_actual_float_cannot_take_is_an_amount_error(actual: object) -> None:
    bucket = _bucket()
    reservation = bucket.reserve(4)
    with pytest.raises(AmountError, match="actual"):
        reservation.reconcile(actual)
    assert bucket.status().remaining == pytest.approx(6)  # the reservation stands


def test_a_huge_token_reconcile_result_is_logged_and_the_call_returns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    @rate_limit(
        capacity=100,
        seconds=1,
        token_estimate=lambda: 5,
        token_reconcile=lambda result: result,
        clock=FakeClock(),
    )
    def call() -> int:
        return HUGE

    with caplog.at_level(logging.WARNING, logger="limitor"):
        assert call() == HUGE
    assert any("reconcile" in record.getMessage() for record in caplog.records)
    assert call.limiter.status().remaining == pytest.approx(95)  # the estimate stands


# -- timeouts ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "timeout", [HUGE, Decimal("sNaN"), Decimal("1e400")], ids=["10**400", "sNaN", "1e400"]
)
def test_a_timeout_float_cannot_take_is_a_config_error_taking_nothing(timeout: object) -> None:
    bucket = _bucket()
    with pytest.raises(ConfigError, match="timeout") as info:
        bucket.acquire(1, timeout=timeout)
    _assert_refused(info.value, ValueError)
    with pytest.raises(ConfigError, match="timeout"):
        bucket.reserve(1, timeout=timeout)
    assert bucket.status().remaining == 10


# -- configuration -------------------------------------------------------------------


@pytest.mark.parametrize("field", ["capacity", "seconds", "burst"])
@pytest.mark.parametrize("value", [HUGE, Decimal("sNaN"), Decimal("1e400")], ids=str)
def test_a_config_value_float_cannot_take_names_its_field(field: str, value: object) -> None:
    fields: dict[str, object] = {"capacity": 10, "seconds": 1, "burst": 10}
    fields[field] = value
    with pytest.raises(ConfigError, match=field) as info:
        BucketConfig(**fields)  # type: ignore[arg-type]
    _assert_refused(info.value, ValueError)
    limit_fields = {"capacity": 10, "seconds": 60, "burst": 10, field: value}
    with pytest.raises(ConfigError, match=field):
        Limit("tokens", **limit_fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("capacity", "seconds", "burst", "named"),
    [
        pytest.param(1e-200, 1e200, 1, "capacity=1e-200 over seconds=1e+200", id="rate-is-zero"),
        pytest.param(1e-320, 1, 1, "capacity=1e-320", id="interval-overflows"),
        pytest.param(10, 1e-320, None, "seconds=1e-320", id="rate-overflows"),
        pytest.param(1e-10, 1, 1e300, "burst=1e+300", id="burst-lasts-for-ever"),
        pytest.param(1e300, 1, 1e-30, "burst=1e-30", id="burst-lasts-no-time"),
    ],
)
def test_a_rate_the_engines_cannot_compute_with_is_refused_at_construction(
    capacity: float, seconds: float, burst: float | None, named: str
) -> None:
    with pytest.raises(ConfigError) as info:
        BucketConfig(capacity, seconds, burst=burst)
    assert named in str(info.value)
    with pytest.raises(ConfigError):
        Limit("requests", capacity, seconds, burst=burst)


def test_extreme_but_computable_rates_are_accepted_and_keep_their_schedule() -> None:
    clock = FakeClock()
    slow = SyncLeakyBucket(BucketConfig(1e-6, 1, burst=1), clock=clock)  # one unit per 11.6 days
    slow.acquire()
    slow.acquire()
    assert clock.now() == pytest.approx(1e6)
    fast = SyncLeakyBucket(BucketConfig(1e9, 1), clock=clock)
    assert fast.try_acquire(1e9)


def test_a_parsed_rate_is_checked_the_same_way() -> None:
    with pytest.raises(ConfigError, match="burst"):
        parse_rate("1/day", burst=1e305)


@pytest.mark.parametrize("ttl", [HUGE, Decimal("sNaN")], ids=["10**400", "sNaN"])
def test_a_ttl_float_cannot_take_is_a_config_error(ttl: object) -> None:
    with pytest.raises(ConfigError, match="ttl"):
        PerUserLimiter(BucketConfig(10, 1), ttl=ttl)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="ttl"):
        rate_limit_per_user(capacity=10, seconds=1, ttl=ttl)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("decorate", "named"),
    [
        pytest.param(lambda: rate_limit(capacity=HUGE), "capacity", id="rate_limit-capacity"),
        pytest.param(lambda: rate_limit(seconds=1e-320), "seconds", id="rate_limit-seconds"),
        pytest.param(lambda: rate_limit(timeout=HUGE), "timeout", id="rate_limit-timeout"),
        pytest.param(
            lambda: llm_rate_limit(tokens_per_minute=HUGE), "tokens limit: capacity", id="llm-tpm"
        ),
        pytest.param(
            lambda: llm_rate_limit(requests_per_minute=1e-320),
            "requests limit: capacity",
            id="llm-rpm",
        ),
    ],
)
def test_the_decorators_refuse_the_same_values_when_decorating(decorate: Any, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        decorate()


# -- LLM costs -----------------------------------------------------------------------


def _llm() -> LLMLimiter:
    return LLMLimiter(requests_per_minute=10, tokens_per_minute=1000, clock=FakeClock())


@pytest.mark.parametrize("field", ["input_tokens", "output_tokens", "requests"])
@pytest.mark.parametrize(
    "verb",
    [
        pytest.param(lambda lim, c: lim.acquire(c), id="acquire"),
        pytest.param(lambda lim, c: lim.try_acquire(c), id="try_acquire"),
        pytest.param(lambda lim, c: lim.reserve(c), id="reserve"),
    ],
)
def test_a_cost_field_of_none_is_an_amount_type_error_naming_it(verb: Any, field: str) -> None:
    limiter = _llm()
    with pytest.raises(AmountTypeError, match=field) as info:
        verb(limiter, Cost(**{field: None}))  # type: ignore[arg-type]
    _assert_refused(info.value, TypeError, ValueError)
    with pytest.raises(AmountTypeError, match=field):
        verb(limiter, {field: None})
    assert limiter.status()["tokens_per_minute"].remaining == pytest.approx(1000)
    assert limiter.status()["requests_per_minute"].remaining == pytest.approx(10)


def test_a_cost_without_a_total_still_sums_its_split() -> None:
    limiter = _llm()
    assert limiter.try_acquire(Cost(input_tokens=300, output_tokens=200, tokens=None))
    assert limiter.status()["tokens_per_minute"].remaining == pytest.approx(500)


@pytest.mark.parametrize(
    "cost",
    [
        pytest.param(Cost(input_tokens=HUGE), id="Cost-10**400"),
        pytest.param(Cost(output_tokens=Decimal("sNaN")), id="Cost-sNaN"),
        pytest.param(Decimal("sNaN"), id="Decimal-sNaN"),
        pytest.param(Decimal("1e400"), id="Decimal-1e400"),
    ],
)
def test_an_llm_cost_float_cannot_take_is_an_amount_error(cost: object) -> None:
    limiter = _llm()
    with pytest.raises(AmountError):
        limiter.reserve(cost)
    assert limiter.status()["tokens_per_minute"].remaining == pytest.approx(1000)


def test_an_llm_amount_of_10_to_the_400_is_an_amount_error() -> None:
    with pytest.raises(AmountError):
        _llm().reserve(HUGE)


def test_a_huge_llm_token_reconcile_result_is_logged_and_the_call_returns() -> None:
    @llm_rate_limit(
        tokens_per_minute=1000,
        token_estimate=lambda: 5,
        token_reconcile=lambda result: result,
        clock=FakeClock(),
    )
    def call() -> int:
        return HUGE

    assert call() == HUGE


@pytest.mark.parametrize(
    "count", [HUGE, -5, float("nan"), float("inf")], ids=["10**400", "negative", "nan", "inf"]
)
def test_an_impossible_usage_count_is_a_usage_error_naming_the_field(count: object) -> None:
    with pytest.raises(UsageError, match="completion_tokens") as info:
        usage_tokens({"usage": {"prompt_tokens": 12, "completion_tokens": count}})
    _assert_refused(info.value, ValueError)


def test_an_estimate_with_a_max_tokens_beyond_the_float_range_is_an_amount_error() -> None:
    with pytest.raises(AmountError, match="max_tokens"):
        estimate_tokens("hello", max_tokens=HUGE)
    assert estimate_tokens("hello", max_tokens=7).output_tokens == 7.0


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"chars_per_token": HUGE}, ConfigError),
        ({"chars_per_token": "4"}, ConfigTypeError),
        ({"chars_per_token": 0}, ConfigError),
        ({"default_output_tokens": None}, ConfigTypeError),
        ({"default_output_tokens": -1}, ConfigError),
    ],
    ids=str,
)
def test_a_bad_estimator_setting_is_a_config_error(
    options: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error, match=next(iter(options))):
        chars_estimator(**options)


# -- provider headers ----------------------------------------------------------------


@pytest.fixture
def fresh_cap_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget which headers' capping was logged, so each test sees its first warning."""
    monkeypatch.setattr(headers, "_capped_names", set())


@pytest.mark.usefixtures("fresh_cap_log")
@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("retry-after", "1e300"),
        ("retry-after-ms", "1e300"),
        ("retry-after", "Fri, 31 Dec 9999 23:59:59 GMT"),
    ],
)
def test_a_huge_retry_after_is_capped_at_max_retry_after_and_logged_once(
    name: str, value: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="limitor"):
        for _ in range(3):
            report = parse_rate_limit_headers({name: value}, wall_now=0.0)
            assert report.retry_after == headers.MAX_RETRY_AFTER == 600.0
    assert [r.getMessage() for r in caplog.records if name in r.getMessage()] == [
        caplog.records[0].getMessage()
    ]


@pytest.mark.usefixtures("fresh_cap_log")
def test_a_reset_beyond_a_day_is_capped_and_shorter_waits_are_kept() -> None:
    report = parse_rate_limit_headers(
        {"x-ratelimit-reset-tokens": "100000h", "retry-after": "120"}, wall_now=0.0
    )
    assert report.reset_after == {"tokens": 86_400.0}
    assert report.retry_after == 120.0


@pytest.mark.usefixtures("fresh_cap_log")
def test_a_huge_retry_after_holds_the_limiter_for_a_day_not_for_ever() -> None:
    clock = FakeClock()
    limiter = LLMLimiter(requests_per_minute=10, tokens_per_minute=1000, clock=clock)
    limiter.update_from_headers({"retry-after": "1e300"})
    assert not limiter.try_acquire(1)
    clock.advance(86_400.0 + 1.0)
    assert limiter.try_acquire(1)
