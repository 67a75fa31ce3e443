"""What an amount is: the policy object a limiter asks, never hooks of its subclasses.

One number (:class:`~limitor.amounts.ScalarAmounts`, buckets and per-user limiters) or an
LLM cost over several limits (:class:`~limitor.llm.limits.CostAmounts`). The core calls
the policy for every question about an amount; a limiter given another policy decides
with it, unchanged.
"""

from __future__ import annotations

from typing import Any

import pytest

from limitor import PerUserLimiter, SyncLeakyBucket
from limitor.amounts import Amounts, ScalarAmounts
from limitor.backends.base import LimitSpec, Part
from limitor.errors import AmountError, AmountTypeError, RateLimitExceeded
from limitor.limiter import Limiter
from limitor.llm import Cost, LLMLimiter
from limitor.llm.limits import CostAmounts, Limit
from limitor.testing import FakeClock


def test_a_bucket_counts_one_number_up_to_its_burst() -> None:
    amounts = SyncLeakyBucket(rate="10/s", burst=4).amounts
    assert isinstance(amounts, ScalarAmounts)
    assert amounts.check(3) == 3.0
    with pytest.raises(AmountError, match="larger than the burst"):
        amounts.check(5)
    assert amounts.vector(3.0) == (3.0,)
    assert amounts.split(5.0, 3.0) == (2.0, None)
    assert amounts.split(1.0, 3.0) == (None, 2.0)
    assert amounts.split(3.0, 3.0) == (None, None)
    assert amounts.is_nothing(0.0)
    assert not amounts.is_nothing(0.5)
    assert amounts.describe(2.5) == "2.5"


def test_a_total_smaller_than_the_key_burst_bounds_the_amount() -> None:
    limiter = PerUserLimiter("10/s", total="100/s", total_burst=3)
    assert limiter.amounts.check(3) == 3.0
    with pytest.raises(AmountError, match=r"burst \(3\)"):
        limiter.acquire("a", 4)
    assert PerUserLimiter("10/s", total="100/s").amounts.check(10) == 10.0


def test_an_llm_limiter_counts_a_cost_per_limit() -> None:
    limiter = LLMLimiter(requests_per_minute=10, tokens_per_minute=1000)
    amounts = limiter.amounts
    assert isinstance(amounts, CostAmounts)
    assert amounts.check(200) == (1.0, 200.0)
    assert amounts.check(Cost(input_tokens=50, output_tokens=25)) == (1.0, 75.0)
    assert amounts.check_actual(120, (1.0, 200.0)) == (1.0, 120.0)
    assert amounts.split((1.0, 120.0), (1.0, 200.0)) == (None, (0.0, 80.0))
    assert amounts.nothing() == (0.0, 0.0)
    assert amounts.describe((1.0, 75.0)) == "1 requests, 75 tokens"
    with pytest.raises(AmountError, match="tokens_per_minute"):
        amounts.check(1001)
    with pytest.raises(AmountTypeError):
        amounts.check("many")


@pytest.mark.parametrize("verb", ["try_acquire", "acquire", "reserve"])
def test_a_number_is_tokens_and_one_request_on_every_verb(verb: str) -> None:
    # The admit-now shortcut takes plain numbers for one-number policies only: an LLM
    # limiter of requests alone took 5 requests for try_acquire(5) (1 for acquire(5)).
    limiter = LLMLimiter(requests_per_minute=10, clock=FakeClock())
    getattr(limiter, verb)(5)
    assert limiter.status()["requests_per_minute"].remaining == pytest.approx(9)


def test_a_custom_policy_gets_no_shortcut() -> None:
    policy: Amounts = Kilo(5000)  # type: ignore[assignment]
    limiter = Limiter(LimitSpec((Part(1000.0, 5000.0),)), FakeClock(), amounts=policy)
    with pytest.raises(AmountTypeError, match="2k"):
        limiter.verbs.try_acquire(2000)  # the bucket has room: only the policy refuses it


def test_split_limits_need_a_split_cost() -> None:
    amounts = CostAmounts([Limit("input_tokens", 100), Limit("output_tokens", 100)])
    with pytest.raises(AmountError, match="separately"):
        amounts.check(10)
    assert amounts.check(Cost(input_tokens=10, output_tokens=5)) == (10.0, 5.0)


class Kilo:
    """A policy of its own: amounts given in thousands of units ("2k")."""

    def __init__(self, burst: float) -> None:
        self.plain = ScalarAmounts(burst)

    def check(self, amount: object) -> Any:
        if not (isinstance(amount, str) and amount.endswith("k")):
            raise AmountTypeError(f"amount must look like '2k', got {amount!r}")
        return self.plain.check(float(amount[:-1]) * 1000)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.plain, name)


def test_a_limiter_decides_with_the_policy_it_is_given() -> None:
    policy: Amounts = Kilo(5000)  # type: ignore[assignment]
    limiter = Limiter(LimitSpec((Part(1000.0, 5000.0),)), FakeClock(), amounts=policy)
    assert limiter.amounts is policy
    verbs = limiter.verbs
    assert verbs.try_acquire("3k")
    assert not verbs.try_acquire("3k")  # 2000 left
    assert verbs.try_acquire("2k")
    with pytest.raises(AmountTypeError, match="2k"):
        verbs.try_acquire(2000)
    with pytest.raises(RateLimitExceeded, match="amount 1000 would wait 1s"):
        verbs.reserve("1k", timeout=0.5)
    reservation = verbs.reserve("1k")
    assert reservation.delay == pytest.approx(1.0)
    assert reservation.cancel() == pytest.approx(1000)
