"""The ASGI middleware under hostile traffic (issue 17): one bucket per route template,
IPv6 clients grouped by prefix, header keys bounded, memory bounded by ``max_clients``
(also through a real uvicorn server), limits that cannot make valid headers refused."""

from __future__ import annotations

import gc
import logging
import tracemalloc
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from limitor import KeyTypeError, LimitorError
from limitor.backends._keys import HashedKey
from limitor.configs import BucketConfig
from limitor.contrib.asgi import RateLimitMiddleware, RouteRateLimit, client_key, header_key
from limitor.errors import ConfigError, ConfigTypeError
from limitor.testing import FakeClock
from tests.contrib.serving import uvicorn_server


@pytest.fixture(autouse=True)
def _quiet(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="limitor")


async def item(request: Request) -> PlainTextResponse:
    return PlainTextResponse(f"item {request.path_params['item_id']}")


async def other(request: Request) -> PlainTextResponse:
    return PlainTextResponse("other")


def routed_app(**options: Any) -> Starlette:
    return Starlette(
        routes=[
            Route("/items/{item_id:int}", item),
            Route("/other", other, methods=["GET"]),
            Mount("/v1", routes=[Route("/items/{item_id}", item)]),
        ],
        **options,
    )


# -- key="route": the template -----------------------------------------------------------


def test_route_key_is_the_matched_routes_template() -> None:
    app = RateLimitMiddleware(routed_app(), rate="2/minute", key="route", clock=FakeClock())
    with TestClient(app) as client:
        codes = [client.get(f"/items/{n}").status_code for n in range(1, 7)]
        assert codes == [200, 200, 429, 429, 429, 429]  # one bucket for /items/{item_id}
        assert client.get("/other").status_code == 200  # another route, another bucket
        assert [client.get(f"/v1/items/{n}").status_code for n in "abc"] == [200, 200, 429]
        # no route matched: the raw path (documented)
        assert [client.get(f"/nowhere/{n}").status_code for n in range(3)] == [404] * 3
    assert ("GET", "/items/{item_id}") in app.limiter  # the template, converters aside
    assert ("GET", "/v1/items/{item_id}") in app.limiter
    assert ("GET", "/nowhere/0") in app.limiter


def test_route_key_sees_through_other_middleware() -> None:
    inner = routed_app(middleware=[Middleware(GZipMiddleware)])
    app = RateLimitMiddleware(inner, rate="1/minute", key="route", clock=FakeClock())
    with TestClient(app) as client:
        assert [client.get(f"/items/{n}").status_code for n in range(3)] == [200, 429, 429]


def test_a_method_that_does_not_match_still_keys_by_the_template() -> None:
    app = RateLimitMiddleware(routed_app(), rate="1/minute", key="route", clock=FakeClock())
    with TestClient(app) as client:
        assert client.post("/other").status_code == 405
        assert client.post("/other").status_code == 429
    assert ("POST", "/other") in app.limiter


def test_the_fastapi_dependency_keys_by_the_route_template() -> None:
    limit = RouteRateLimit(rate="2/minute", key="route", clock=FakeClock())
    api = FastAPI()

    @api.get("/users/{user_id}", dependencies=[Depends(limit)])
    async def user(user_id: int) -> dict[str, int]:
        return {"user": user_id}

    with TestClient(api) as client:
        assert [client.get(f"/users/{n}").status_code for n in range(4)] == [200, 200, 429, 429]
    assert ("GET", "/users/{user_id}") in limit.limiter


def test_a_fastapi_app_behind_the_middleware_keys_by_template() -> None:
    api = FastAPI()

    @api.get("/users/{user_id}")
    async def user(user_id: int) -> dict[str, int]:
        return {"user": user_id}

    app = RateLimitMiddleware(api, rate="1/minute", key="route", clock=FakeClock())
    with TestClient(app) as client:
        assert [client.get(f"/users/{n}").status_code for n in range(3)] == [200, 429, 429]


# -- IPv6 prefixes -----------------------------------------------------------------------


def _scope(host: str) -> dict[str, Any]:
    return {"type": "http", "client": (host, 1234), "headers": []}


def test_ipv6_clients_are_grouped_by_their_64_prefix() -> None:
    one, two = client_key(_scope("2001:db8::1")), client_key(_scope("2001:db8::ffff:2"))
    assert one == two == "2001:db8::/64"
    assert client_key(_scope("2001:db8:0:1::1")) != one  # another /64
    assert client_key(_scope("2001:db8::1"), ipv6_prefix=48) == "2001:db8::/48"
    assert client_key(_scope("2001:db8::1"), ipv6_prefix=128) == "2001:db8::1"
    assert client_key(_scope("::ffff:10.0.0.1")) == "10.0.0.1"  # IPv4-mapped
    assert client_key(_scope("fe80::1%eth0")) == "fe80::/64"
    assert client_key(_scope("10.0.0.1")) == "10.0.0.1"
    assert client_key(_scope("not:an:address")) == "not:an:address"
    assert client_key({"type": "http"}) is None


async def _call(app: RateLimitMiddleware, scope: dict[str, Any]) -> int:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    full = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "query_string": b"",
        "root_path": "",
        **scope,
    }
    await app(full, receive, send)
    return int(sent[0]["status"])


@pytest.mark.anyio
@pytest.mark.parametrize(("prefix", "codes"), [(64, [200, 429, 429]), (128, [200, 200, 200])])
async def test_the_middleware_groups_ipv6_by_its_ipv6_prefix(
    prefix: int, codes: list[int], anyio_backend: str
) -> None:
    del anyio_backend
    app = RateLimitMiddleware(routed_app(), rate="1/minute", ipv6_prefix=prefix, clock=FakeClock())
    got = [await _call(app, _scope(f"2001:db8::{n}")) for n in (1, 2, 3)]
    assert [200 if code == 404 else code for code in got] == codes


@pytest.mark.parametrize("prefix", [0, 129, -1])
def test_a_bad_ipv6_prefix_is_refused(prefix: int) -> None:
    with pytest.raises(ConfigError, match="ipv6_prefix"):
        RateLimitMiddleware(routed_app(), rate="1/s", ipv6_prefix=prefix)
    with pytest.raises(ConfigTypeError):
        RateLimitMiddleware(routed_app(), rate="1/s", ipv6_prefix="64")  # type: ignore[arg-type]


# -- bounded keys and memory -------------------------------------------------------------


def test_long_header_keys_are_digests() -> None:
    key = header_key("X-API-Key")
    long = key({"headers": [(b"x-api-key", b"k" * 1024)]})
    assert isinstance(long, tuple)
    assert isinstance(long[1], HashedKey)
    assert key({"headers": [(b"x-api-key", b"short")]}) == ("X-API-Key", "short")


@pytest.mark.anyio
async def test_rotating_header_keys_hold_max_clients_and_never_over_admit(
    anyio_backend: str,
) -> None:
    del anyio_backend
    clock = FakeClock()
    app = RateLimitMiddleware(
        routed_app(),
        rate="2/minute",
        key="header:X-API-Key",
        max_clients=100,
        clock=clock,
    )
    admitted: dict[int, int] = defaultdict(int)
    for n in range(3000):
        value = n % 700
        header = f"{value:04d}".encode() + b"k" * 1024
        code = await _call(app, {"headers": [(b"x-api-key", header)], "client": ("10.0.0.1", 1)})
        if code != 429:
            admitted[value] += 1
        assert len(app.limiter) <= 100
    assert max(admitted.values()) <= 2  # burst 2; nothing refills within the test
    assert app.limiter.stats.overflows > 0


# -- construction: limits and costs that cannot make valid headers -----------------------


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"rate": "1e16/s"}, "15 digits"),
        ({"rate": "1/s", "burst": 1e15}, "15 digits"),
        ({"rate": BucketConfig(capacity=1, seconds=2e15)}, "15 digits"),
        ({"rate": "2/s", "cost": 3}, "above the burst"),
    ],
)
def test_limits_that_cannot_make_valid_headers_are_refused(
    options: dict[str, Any], match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        RateLimitMiddleware(routed_app(), **options)
    with pytest.raises(ConfigError, match=match):
        RouteRateLimit(**options)


def test_the_largest_limits_that_fit_still_make_valid_headers() -> None:
    app = RateLimitMiddleware(
        routed_app(), rate=f"{10**15 - 1}/s", cost=10**15 - 1, clock=FakeClock()
    )
    with TestClient(app) as client:
        response = client.get("/other")
    assert response.status_code == 200
    assert response.headers["RateLimit-Policy"] == f'"default";q={10**15 - 1};w=1'


def test_an_unhashable_key_is_a_limitor_error() -> None:
    app = RateLimitMiddleware(routed_app(), rate="1/s", key=lambda scope: [1, 2])
    with TestClient(app, raise_server_exceptions=True) as client, pytest.raises(KeyTypeError):
        client.get("/other")
    assert issubclass(KeyTypeError, LimitorError)
    assert issubclass(KeyTypeError, TypeError)


# -- a real uvicorn server, rotating header keys -----------------------------------------

served: list[str] = []


async def hello(request: Request) -> PlainTextResponse:
    served.append(request.headers.get("x-api-key", ""))
    return PlainTextResponse("hello")


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, RateLimitMiddleware]]:
    app = RateLimitMiddleware(
        Starlette(routes=[Route("/", hello)]),
        rate="2/hour",  # nothing refills within the test
        key="header:X-API-Key",
        max_clients=50,
    )
    with uvicorn_server(app) as url:
        yield url, app


def test_a_real_server_under_rotating_header_keys(server: tuple[str, Any]) -> None:
    """300 requests over 120 rotating 512-byte keys through uvicorn at max_clients=50:
    the cache never passes 50 buckets, memory stays within 50 x 500 bytes + 10%, and no
    key is served more than its burst (2; nothing refills within the test)."""
    url, app = server
    served.clear()
    gc.collect()
    tracemalloc.start()
    try:
        with httpx.Client(base_url=url, timeout=10) as client:
            for n in range(300):
                value = f"{n % 120:04d}" + "k" * 508
                client.get("/", headers={"X-API-Key": value})
                assert len(app.limiter) <= 50
        gc.collect()
        # What the limiter holds: allocations made by limitor and its cache (the server's
        # and the client's buffers are not the limiter's).
        snapshot = tracemalloc.take_snapshot().filter_traces(
            [
                tracemalloc.Filter(True, "*/limitor/*"),
                tracemalloc.Filter(True, "*/cachetools/*"),
            ]
        )
        used = sum(stat.size for stat in snapshot.statistics("filename"))
    finally:
        tracemalloc.stop()
    assert app.limiter.stats.users <= 50
    counts: dict[str, int] = defaultdict(int)
    for value in served:
        counts[value] += 1
    assert max(counts.values()) <= 2
    assert app.limiter.stats.overflows > 0
    assert used <= 50 * 500 * 1.1, used


def test_a_hold_of_centuries_still_makes_valid_headers() -> None:
    app = RateLimitMiddleware(routed_app(), rate="1/s", clock=FakeClock())
    app.limiter.hold(1e20, key="testclient")
    with TestClient(app) as client:
        response = client.get("/other")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == str(10**15 - 1)
    assert response.headers["RateLimit"] == f'"default";r=0;t={10**15 - 1}'


def test_routes_added_after_the_middleware_was_made_count() -> None:
    api = FastAPI()
    app = RateLimitMiddleware(api, rate="1/minute", key="route", clock=FakeClock())

    @api.get("/late/{n}")
    async def late(n: int) -> dict[str, int]:
        return {"n": n}

    with TestClient(app) as client:
        assert [client.get(f"/late/{n}").status_code for n in range(3)] == [200, 429, 429]
