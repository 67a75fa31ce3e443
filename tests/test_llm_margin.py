"""``safety_margin``: limits equal to the provider's never over-admit its bucket (item 6)."""

from __future__ import annotations

import pytest

from limitor import ConfigError, LLMLimiter, llm_rate_limit
from limitor.llm import SAFETY_MARGIN
from limitor.testing import FakeClock


def _server_refusals(margin: float, latency: float) -> int:
    """A client admitting 100 calls at RPM 60 against a provider with the same limit.

    The first burst of 60 takes ``latency`` on the way, later requests none: the
    provider's bucket empties ``latency`` after the client's, but the client admits the
    61st a second after its own burst, when the provider has refilled less than one
    request (a 429).
    """
    clock = FakeClock()
    client = LLMLimiter(requests_per_minute=60, clock=clock, safety_margin=margin)
    arrivals = []
    for n in range(100):
        client.acquire(0)  # waits (virtually) until the client's limit allows
        arrivals.append(clock.now() + (latency if n < 60 else 0.0))
    server = LLMLimiter(requests_per_minute=60, clock=FakeClock())
    refused = 0
    for at in sorted(arrivals):
        server_clock = server.clock
        assert isinstance(server_clock, FakeClock)
        server_clock.advance(at - server_clock.now())
        refused += not server.try_acquire(0)
    return refused


def test_exactly_equal_limits_over_admit_without_a_margin_and_not_with_one() -> None:
    assert _server_refusals(0.0, latency=0.15) > 0
    assert _server_refusals(SAFETY_MARGIN, latency=0.15) == 0


def test_the_margin_holds_back_rate_times_margin_of_each_burst() -> None:
    limiter = LLMLimiter(requests_per_minute=600, tokens_per_minute=60_000, safety_margin=0.5)
    status = limiter.status()
    assert status["requests_per_minute"].remaining == pytest.approx(600 - 5)
    assert status["tokens_per_minute"].remaining == pytest.approx(60_000 - 500)
    tiny = LLMLimiter(requests_per_minute=1, safety_margin=1000)
    assert tiny.status()["requests_per_minute"].remaining == 1  # a request always fits


def test_the_decorator_takes_the_margin_and_checks_it() -> None:
    @llm_rate_limit(requests_per_minute=600, safety_margin=SAFETY_MARGIN)
    def call() -> int:
        return 1

    assert call.limiter.status()["requests_per_minute"].remaining == pytest.approx(598)
    with pytest.raises(ConfigError, match="safety_margin"):
        llm_rate_limit(requests_per_minute=600, safety_margin=-1)
    with pytest.raises(ConfigError, match="safety_margin"):
        llm_rate_limit(limiter=call.limiter, safety_margin=0.2)
