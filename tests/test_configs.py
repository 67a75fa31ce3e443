from __future__ import annotations

import dataclasses
import math
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest

from limitor.configs import BucketConfig, Capacity, parse_rate
from limitor.errors import ConfigError, ConfigTypeError, LimitorError
from limitor.leaky_bucket.core import SyncLeakyBucket
from limitor.per_user import PerUserLimiter
from limitor.testing import FakeClock
from limitor.token_bucket.core import AsyncTokenBucket


def test_defaults_match_limitor_06() -> None:
    config = BucketConfig()
    assert (config.capacity, config.seconds, config.max_burst) == (10, 1, 10)
    assert config.burst is None
    assert config.rate == 10.0


def test_rate_is_capacity_over_seconds_and_burst_defaults_to_capacity() -> None:
    config = BucketConfig(capacity=100, seconds=60)
    assert config.rate == pytest.approx(100 / 60)
    assert config.max_burst == 100.0
    doubled = dataclasses.replace(config, capacity=200)  # the default burst follows
    assert doubled.max_burst == 200.0


def test_explicit_burst_is_kept() -> None:
    config = BucketConfig(capacity=10, seconds=1, burst=3)
    assert config.burst == 3
    assert config.rate == 10.0


def test_positional_arguments_as_in_06() -> None:
    assert BucketConfig(5, 2).rate == 2.5


@pytest.mark.parametrize("field", ["capacity", "seconds", "burst"])
@pytest.mark.parametrize("value", [0, -1, -0.5, math.nan, math.inf, -math.inf])
def test_bad_values_raise_a_value_error_naming_the_field(field: str, value: float) -> None:
    with pytest.raises(ConfigError, match=field) as info:
        BucketConfig(**{field: value})
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, LimitorError)


@pytest.mark.parametrize("field", ["capacity", "seconds", "burst"])
@pytest.mark.parametrize("value", [True, False, "10", b"1", [1], object()])
def test_non_numbers_raise_a_type_error_that_is_also_a_value_error(
    field: str, value: object
) -> None:
    with pytest.raises(ConfigTypeError, match=field) as info:
        BucketConfig(**{field: value})
    assert isinstance(info.value, TypeError)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("field", ["capacity", "seconds"])
def test_none_is_rejected_for_required_fields(field: str) -> None:
    with pytest.raises(ConfigTypeError, match=field):
        BucketConfig(**{field: None})


@pytest.mark.parametrize("value", [Decimal("2.5"), Fraction(5, 2), 2.5, 1])
def test_other_real_numbers_and_fractions_are_accepted(value: object) -> None:
    assert BucketConfig(capacity=value, seconds=1).rate == pytest.approx(float(value))  # type: ignore[arg-type]


def test_a_capacity_below_one_needs_an_explicit_burst() -> None:
    with pytest.raises(ConfigError, match="capacity=1, seconds=2"):
        BucketConfig(capacity=0.5, seconds=1)
    config = BucketConfig(capacity=0.5, seconds=1, burst=0.25)  # fractional units: fine
    assert config.max_burst == 0.25


def test_config_is_immutable_and_comparable() -> None:
    config = BucketConfig(10, 1)
    with pytest.raises(AttributeError):
        config.capacity = 5  # type: ignore[misc]
    assert config == BucketConfig(capacity=10, seconds=1)
    assert config != BucketConfig(capacity=10, seconds=1, burst=10)  # same limit, said otherwise
    assert hash(config) == hash(BucketConfig(10, 1))


def test_capacity_tuple_keeps_its_06_fields() -> None:
    info = Capacity(has_capacity=False, needed_capacity=2.0)
    assert info.has_capacity is False
    assert info.needed_capacity == 2.0


@pytest.mark.parametrize(
    ("text", "capacity", "seconds"),
    [
        ("10/s", 10, 1),
        ("10/second", 10, 1),
        ("100/minute", 100, 60),
        ("100 per minute", 100, 60),
        ("5 per 2 seconds", 5, 2),
        ("1000/h", 1000, 3600),
        ("2/day", 2, 86400),
        ("3/500ms", 3, 0.5),
        ("1.5/s", 1.5, 1),
        ("  7 / m  ", 7, 60),
    ],
)
def test_parse_rate(text: str, capacity: float, seconds: float) -> None:
    config = parse_rate(text)
    assert config.capacity == capacity
    assert config.seconds == pytest.approx(seconds)


def test_parse_rate_passes_burst() -> None:
    assert parse_rate("10/s", burst=2).max_burst == 2


@pytest.mark.parametrize("text", ["", "10", "ten/s", "10/fortnight", "/s", "0/s", "10/0s", "-1/s"])
def test_parse_rate_rejects_what_is_not_a_rate(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_rate(text)


def test_parse_rate_rejects_non_strings() -> None:
    with pytest.raises(ConfigTypeError):
        parse_rate(10)  # type: ignore[arg-type]


def test_rate_strings_take_fractions_and_exponents() -> None:
    assert parse_rate("1e3/s").rate == 1000.0
    assert parse_rate("1.5e2 per 2 minutes", burst=3).rate == pytest.approx(1.25)
    assert parse_rate(".5/s", burst=1).rate == 0.5
    with pytest.raises(ConfigError):
        parse_rate("1e400/s")  # not a finite rate
    with pytest.raises(ConfigError):
        parse_rate("1e3")


@pytest.mark.parametrize(
    "make",
    [
        lambda: SyncLeakyBucket("10/s", clock=FakeClock()),
        lambda: SyncLeakyBucket(rate="10/s", clock=FakeClock()),
        lambda: AsyncTokenBucket("10/s", clock=FakeClock()),
        lambda: PerUserLimiter("10/s", clock=FakeClock()),
    ],
)
def test_every_bucket_takes_a_rate_string(make: Any) -> None:
    limiter = make()
    assert (limiter.rate, limiter.burst) == (10.0, 10.0)


def test_a_rate_string_with_a_burst_and_the_errors() -> None:
    bucket = SyncLeakyBucket(rate="100/minute", burst=5, clock=FakeClock())
    assert (bucket.rate, bucket.burst) == (pytest.approx(100 / 60), 5.0)
    with pytest.raises(ConfigError, match="not both"):
        SyncLeakyBucket(BucketConfig(1, 1), rate="1/s")
    with pytest.raises(ConfigError, match="burst"):
        SyncLeakyBucket(BucketConfig(1, 1), burst=3)
    with pytest.raises(ConfigTypeError, match="rate such as"):
        SyncLeakyBucket(42)  # type: ignore[arg-type]
