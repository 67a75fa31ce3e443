"""The shared option checks: one function each, the same error from every entry point.

``name=``, ``on_backend_error=`` and a limit given as a rate string or a ``BucketConfig``
are each checked by one function (``limitor._checks``, ``limitor.configs.as_rate``); the
buckets, per-user and LLM limiters, the decorators, the integrations and the simulation
all call it, so a bad value reads the same wherever it is given.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from limitor import (
    LLMLimiter,
    PerUserLimiter,
    SyncLeakyBucket,
    llm_rate_limit,
    rate_limit,
    rate_limit_per_user,
)
from limitor.configs import BucketConfig, as_rate
from limitor.contrib._common import keyed_limiter
from limitor.errors import ConfigError, ConfigTypeError
from limitor.simulation import simulate

MAKERS: dict[str, Callable[..., Any]] = {
    "bucket": SyncLeakyBucket,
    "per_user": PerUserLimiter,
    "llm": lambda **kw: LLMLimiter(tokens_per_minute=100, **kw),
    "rate_limit": rate_limit,
    "rate_limit_per_user": rate_limit_per_user,
    "llm_rate_limit": lambda **kw: llm_rate_limit(tokens_per_minute=100, **kw),
}


@pytest.mark.parametrize("maker", MAKERS.values(), ids=MAKERS.keys())
@pytest.mark.parametrize("bad", ["", 3, b"api"])
def test_a_bad_name_reads_the_same_everywhere(maker: Callable[..., Any], bad: object) -> None:
    with pytest.raises(ConfigTypeError, match=r"^name must be a non-empty string, got "):
        maker(name=bad)


@pytest.mark.parametrize("maker", MAKERS.values(), ids=MAKERS.keys())
def test_a_bad_failure_policy_reads_the_same_everywhere(maker: Callable[..., Any]) -> None:
    with pytest.raises(ConfigError, match=r"^on_backend_error must be 'raise' or 'allow', got "):
        maker(on_backend_error="ignore")


@pytest.mark.parametrize("maker", MAKERS.values(), ids=MAKERS.keys())
def test_good_names_and_policies_pass(maker: Callable[..., Any]) -> None:
    assert maker(name="api", on_backend_error="allow") is not None


def test_as_rate_takes_a_string_or_a_config_and_a_burst() -> None:
    assert as_rate("10/s") == BucketConfig(10, 1)
    assert as_rate("10/s", 3) == BucketConfig(10, 1, burst=3)
    config = BucketConfig(5, 2)
    assert as_rate(config) is config
    assert as_rate(config, 1) == BucketConfig(5, 2, burst=1)
    with pytest.raises(ConfigTypeError, match=r"^total must be a string such as '10/s' or a Bu"):
        as_rate(10, name="total")


def test_as_rate_says_what_it_expected_and_per_user_totals_say_their_own() -> None:
    message = r"^total must be a rate such as '100/s' or a BucketConfig, got 10$"
    with pytest.raises(ConfigTypeError, match=message):
        as_rate(10, name="total", expected="a rate such as '100/s'")
    with pytest.raises(ConfigTypeError, match=message):
        PerUserLimiter("5/s", total=10)  # type: ignore[arg-type]
    with pytest.raises(ConfigTypeError, match=r"^burst must be a number"):
        PerUserLimiter("5/s", total=BucketConfig(10, 1), total_burst="x")  # type: ignore[arg-type]
    assert PerUserLimiter("5/s", total=BucketConfig(10, 1), total_burst=4).total == BucketConfig(
        10, 1, burst=4
    )


def test_a_limit_that_is_no_rate_reads_the_same_everywhere() -> None:
    message = r"^rate must be a string such as '10/s' or a BucketConfig, got 10$"
    with pytest.raises(ConfigTypeError, match=message):
        keyed_limiter(10, None, None, algorithm="gcra", max_keys=10, clock=None, name=None)  # type: ignore[arg-type]
    with pytest.raises(ConfigTypeError, match=message):
        simulate([0.0], 10)  # type: ignore[arg-type]
    limiter = keyed_limiter(
        BucketConfig(4, 1), 2, None, algorithm="gcra", max_keys=10, clock=None, name=None
    )
    assert limiter.burst == 2
