"""The parts the integrations share: the transports' policy and faces, the ASGI keywords.

The transports and the ASGI classes are tested end to end in their own files; these
tests pin what the shared pieces promise to every one of them.
"""

from __future__ import annotations

import inspect
from typing import Any, cast

import httpx
import pytest

from limitor import PerUserLimiter
from limitor.contrib._keyed import KeyedLimiterKeywords, limiter_from
from limitor.contrib.asgi import RateLimitMiddleware, RouteRateLimit
from limitor.contrib.httpx import AsyncRateLimitedTransport, RateLimitedTransport
from limitor.contrib.llm_transport import AsyncLLMTransport, LLMTransport
from limitor.errors import ConfigError
from limitor.testing import FakeClock


async def _app(scope: Any, receive: Any, send: Any) -> None:  # pragma: no cover - not called
    pass


@pytest.mark.parametrize(
    ("status", "left", "wait", "hold"),
    [
        (429, 0, None, None),  # no retry left
        (200, 3, None, None),  # not a status that is retried
        (500, 3, None, None),  # not in retry_statuses (429, 503 by default)
        (429, 3, None, 0.5),  # no Retry-After: the backoff, first retry
        (503, 2, None, 1.0),  # doubled on the second
        (429, 1, None, 2.0),  # and again on the third
        (429, 3, 4.0, 0.0),  # Retry-After within max_retry_after: held already
        (429, 3, 10.0, 0.0),  # exactly max_retry_after still retries
        (429, 3, 10.5, None),  # beyond it: the caller sees the 429
    ],
)
def test_the_retry_rule_of_both_transport_families(
    status: int, left: int, wait: float | None, hold: float | None
) -> None:
    options: dict[str, Any] = {"retries": 3, "retry_backoff": 0.5, "max_retry_after": 10.0}
    for transport in (
        RateLimitedTransport(
            httpx.MockTransport(lambda r: httpx.Response(200)), rate="1/s", **options
        ),
        LLMTransport(httpx.MockTransport(lambda r: httpx.Response(200)), rpm=60, **options),
    ):
        response = httpx.Response(status)
        assert transport._policy.retry_hold(response, left, wait) == hold


def test_the_backoff_never_passes_max_retry_after() -> None:
    transport = RateLimitedTransport(
        rate="1/s", retries=10, retry_backoff=1.0, max_retry_after=5.0, clock=FakeClock()
    )
    holds = [
        transport._policy.retry_hold(httpx.Response(429), left, None) for left in (10, 8, 7, 1)
    ]
    assert holds == [1.0, 4.0, 5.0, 5.0]


@pytest.mark.parametrize(
    ("cls", "args", "options"),
    [
        (RateLimitedTransport, (), {"rate": "1/s"}),
        (AsyncRateLimitedTransport, (), {"rate": "1/s"}),
        (LLMTransport, (), {"rpm": 1}),
        (AsyncLLMTransport, (), {"rpm": 1}),
        (RateLimitMiddleware, (_app,), {"rate": "1/s"}),
        (RouteRateLimit, (), {"rate": "1/s"}),
    ],
)
def test_a_misspelt_keyword_is_refused_as_python_would(
    cls: Any, args: tuple[Any, ...], options: dict[str, Any]
) -> None:
    message = rf"^{cls.__name__}\.__init__\(\) got an unexpected keyword argument 'retrys'$"
    with pytest.raises(TypeError, match=message):
        cls(*args, retrys=1, **options)


def test_the_asgi_signatures_list_every_keyword_in_order() -> None:
    shared = ["rate", "burst", "limiter", "key", "cost", "algorithm", "policy"]
    tail = ["max_clients", "ipv6_prefix", "name", "clock"]
    middleware = inspect.signature(RateLimitMiddleware).parameters
    route = inspect.signature(RouteRateLimit).parameters
    assert list(middleware) == ["app", *shared, "websocket", "exempt", "headers", *tail]
    assert list(route) == [*shared, *tail]
    defaults = {"cost": 1, "algorithm": "leaky_bucket", "policy": "default", "max_clients": 100_000}
    for parameters in (middleware, route):
        for name, default in defaults.items():
            assert parameters[name].default == default
            assert parameters[name].kind is inspect.Parameter.KEYWORD_ONLY
    assert middleware["websocket"].default == "close"
    assert middleware["headers"].default is True


def test_the_transports_signatures_keep_the_transport_first() -> None:
    for cls in (RateLimitedTransport, AsyncRateLimitedTransport, LLMTransport, AsyncLLMTransport):
        parameters = list(inspect.signature(cls).parameters.values())
        assert parameters[0].name == "transport"
        assert parameters[0].default is None
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters[1:])


def test_limiter_from_takes_a_limiter_or_makes_one() -> None:
    clock = FakeClock()
    options: dict[str, Any] = {
        "rate": "2/s",
        "burst": None,
        "limiter": None,
        "algorithm": "gcra",
        "name": "api",
        "clock": clock,
    }
    made = limiter_from(cast(KeyedLimiterKeywords, options), 7)
    assert made.name == "api"
    assert made.config.max_burst == 2
    given = PerUserLimiter("5/s", clock=clock)
    shared = cast(KeyedLimiterKeywords, {**options, "rate": None, "limiter": given})
    assert limiter_from(shared, 7) is given
    with pytest.raises(ConfigError):  # both rate= and limiter=
        limiter_from(cast(KeyedLimiterKeywords, {**options, "limiter": given}), 7)
