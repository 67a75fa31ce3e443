"""The ASGI middleware and the FastAPI dependency, through Starlette's TestClient and bare ASGI."""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient, WebSocketDenialResponse
from starlette.websockets import WebSocket, WebSocketDisconnect

from limitor import PerUserLimiter
from limitor.configs import BucketConfig
from limitor.contrib.asgi import RateLimitMiddleware, RouteRateLimit, header_key
from limitor.errors import AmountError, ConfigError, ConfigTypeError
from limitor.testing import FakeClock


async def home(request: Request) -> PlainTextResponse:
    return PlainTextResponse("home")


async def search(request: Request) -> PlainTextResponse:
    return PlainTextResponse("results")


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text("hello")
    await websocket.close()


def starlette_app() -> Starlette:
    return Starlette(
        routes=[Route("/", home), Route("/search", search), WebSocketRoute("/ws", echo)]
    )


def parse(field: str) -> tuple[str, dict[str, int]]:
    """``"name";a=1;b=2`` as ("name", {"a": 1, "b": 2}) (one member, integers)."""
    name, *params = field.split(";")
    return name.strip('"'), {k: int(v) for k, v in (p.split("=") for p in params)}


def test_over_the_limit_is_a_429_with_retry_after() -> None:
    clock = FakeClock()
    app = RateLimitMiddleware(starlette_app(), rate="2/s", clock=clock)  # 2/s, burst 2
    with TestClient(app) as client:
        assert [client.get("/").status_code for _ in range(3)] == [200, 200, 429]
        refused = client.get("/")
        assert refused.status_code == 429
        assert refused.text == "Too Many Requests\n"
        exact = app.limiter.status("testclient").retry_after
        assert refused.headers["Retry-After"] == str(math.ceil(exact)) == "1"
        clock.advance(0.5)  # one unit back
        assert client.get("/").status_code == 200
        assert client.get("/").status_code == 429
    stats = app.limiter.stats
    assert (stats.admitted, stats.rejected) == (3, 3)


def test_ratelimit_headers_on_every_response() -> None:
    clock = FakeClock()
    app = RateLimitMiddleware(starlette_app(), rate="10/s", burst=20, clock=clock)
    with TestClient(app) as client:
        responses = [client.get("/") for _ in range(21)] + [client.get("/missing")]
    assert [r.status_code for r in responses] == [200] * 20 + [429, 429]
    for number, response in enumerate(responses[:20], start=1):
        assert parse(response.headers["RateLimit-Policy"]) == ("default", {"q": 20, "w": 2})
        name, params = parse(response.headers["RateLimit"])
        assert name == "default"
        assert params == {"r": 20 - number, "t": math.ceil(number / 10)}
        assert "Retry-After" not in response.headers
    for response in responses[20:]:
        assert parse(response.headers["RateLimit"]) == ("default", {"r": 0, "t": 1})
        assert response.headers["Retry-After"] == "1"  # never before the end of t


def test_an_app_error_page_gets_the_headers_too() -> None:
    app = RateLimitMiddleware(starlette_app(), rate="5/s", clock=FakeClock())
    with TestClient(app) as client:
        response = client.get("/nowhere")
    assert response.status_code == 404
    assert parse(response.headers["RateLimit"]) == ("default", {"r": 4, "t": 1})


def test_keys_are_separate() -> None:
    clock = FakeClock()
    app = RateLimitMiddleware(starlette_app(), rate="1/s", key="header:X-API-Key", clock=clock)
    with TestClient(app) as client:
        alice = {"X-API-Key": "alice"}
        bob = {"X-API-Key": "bob"}
        assert client.get("/", headers=alice).status_code == 200
        assert client.get("/", headers=alice).status_code == 429
        assert client.get("/", headers=bob).status_code == 200  # his own bucket
        assert client.get("/").status_code == 200  # no header: the client's address
        assert client.get("/").status_code == 429
    assert app.limiter.stats.users == 3


def test_client_addresses_are_separate() -> None:
    app = RateLimitMiddleware(starlette_app(), rate="1/s", clock=FakeClock())
    with TestClient(app, client=("203.0.113.7", 5000)) as first:
        assert first.get("/").status_code == 200
        assert first.get("/").status_code == 429
    with TestClient(app, client=("198.51.100.2", 5000)) as second:
        assert second.get("/").status_code == 200
    assert "203.0.113.7" in app.limiter
    assert "198.51.100.2" in app.limiter


def test_route_key_and_user_function() -> None:
    clock = FakeClock()
    by_route = RateLimitMiddleware(starlette_app(), rate="1/s", key="route", clock=clock)
    with TestClient(by_route) as client:
        assert client.get("/").status_code == 200
        assert client.get("/search").status_code == 200  # another route
        assert client.get("/search").status_code == 429

    def user(scope: Any) -> str:
        return dict(scope["headers"]).get(b"authorization", b"anonymous").decode()

    by_user = RateLimitMiddleware(starlette_app(), rate="1/s", key=user, clock=clock)
    with TestClient(by_user) as client:
        assert client.get("/", headers={"Authorization": "u1"}).status_code == 200
        assert client.get("/", headers={"Authorization": "u2"}).status_code == 200
        assert client.get("/", headers={"Authorization": "u1"}).status_code == 429


def test_cost_per_request() -> None:
    def cost(scope: Any) -> float:
        return 3 if scope["path"] == "/search" else 1

    app = RateLimitMiddleware(starlette_app(), rate="5/s", cost=cost, clock=FakeClock())
    with TestClient(app) as client:
        assert client.get("/search").status_code == 200  # 3 of 5
        assert client.get("/search").status_code == 429  # 3 more do not fit
        assert client.get("/").status_code == 200  # 1 does


def test_websockets_are_limited_when_they_connect() -> None:
    clock = FakeClock()
    app = RateLimitMiddleware(starlette_app(), rate="1/s", clock=clock)
    with TestClient(app) as client:
        with client.websocket_connect("/ws") as websocket:
            assert websocket.receive_text() == "hello"
        with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect("/ws"):
            pass
        assert closed.value.code == 1008
        clock.advance(1)
        with client.websocket_connect("/ws") as websocket:
            assert websocket.receive_text() == "hello"


def test_websockets_can_be_denied_with_a_429() -> None:
    app = RateLimitMiddleware(starlette_app(), rate="1/s", websocket="deny", clock=FakeClock())
    with TestClient(app) as client:
        with client.websocket_connect("/ws") as websocket:
            websocket.receive_text()
        with pytest.raises(WebSocketDenialResponse) as denied, client.websocket_connect("/ws"):
            pass
    assert denied.value.status_code == 429
    assert denied.value.headers["Retry-After"] == "1"


def test_websockets_can_be_left_alone() -> None:
    app = RateLimitMiddleware(starlette_app(), rate="1/s", websocket="ignore", clock=FakeClock())
    with TestClient(app) as client:
        for _ in range(3):
            with client.websocket_connect("/ws") as websocket:
                assert websocket.receive_text() == "hello"
    assert app.limiter.stats.admitted == 0


def test_lifespan_passes_through() -> None:
    events: list[str] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        events.append("startup")
        yield
        events.append("shutdown")

    inner = Starlette(routes=[Route("/", home)], lifespan=lifespan)
    app = RateLimitMiddleware(inner, rate="1/s", clock=FakeClock())
    with TestClient(app) as client:
        assert events == ["startup"]
        client.get("/")
    assert events == ["startup", "shutdown"]
    assert app.limiter.stats.admitted == 1  # the lifespan took nothing


def test_a_plain_asgi_app_without_any_framework() -> None:
    async def plain(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": [(b"x-app", b"1")]})
        await send({"type": "http.response.body", "body": b""})

    app = RateLimitMiddleware(plain, rate="1/s", clock=FakeClock())
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "client": ("h", 1)}

    async def main() -> None:
        await app(scope, receive, send)
        await app(scope, receive, send)

    anyio.run(main)
    assert [m.get("status") for m in sent if m["type"] == "http.response.start"] == [204, 429]
    first = dict(sent[0]["headers"])
    assert first[b"x-app"] == b"1"
    assert first[b"ratelimit"] == b'"default";r=0;t=1'
    assert dict(sent[2]["headers"])[b"retry-after"] == b"1"


def test_a_shared_limiter_and_a_policy_name() -> None:
    shared = PerUserLimiter(BucketConfig(1, 1), clock=FakeClock())
    first = RateLimitMiddleware(starlette_app(), limiter=shared, policy="per-ip")
    second = RateLimitMiddleware(starlette_app(), limiter=shared)
    with TestClient(first) as one, TestClient(second) as two:
        response = one.get("/")
        assert parse(response.headers["RateLimit-Policy"])[0] == "per-ip"
        assert two.get("/").status_code == 429  # the same bucket


def test_headers_can_be_left_off_admitted_responses() -> None:
    app = RateLimitMiddleware(starlette_app(), rate="1/s", headers=False, clock=FakeClock())
    with TestClient(app) as client:
        assert "RateLimit" not in client.get("/").headers
        assert "RateLimit" in client.get("/").headers  # a 429 always says


def test_exempt_requests_are_not_counted() -> None:
    def health(scope: Any) -> bool:
        return bool(scope.get("path") == "/search")

    app = RateLimitMiddleware(starlette_app(), rate="1/s", exempt=health, clock=FakeClock())
    with TestClient(app) as client:
        searches = [client.get("/search") for _ in range(3)]
        assert [r.status_code for r in searches] == [200, 200, 200]
        assert "RateLimit" not in searches[0].headers
        assert client.get("/").status_code == 200
        assert client.get("/").status_code == 429
    assert app.limiter.stats.admitted == 1


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"rate": "1/s", "key": "ip"}, ConfigError, "ip"),
        ({"rate": "1/s", "key": "header:"}, ConfigTypeError, "header name"),
        ({"rate": "1/s", "websocket": "drop"}, ConfigError, "drop"),
        ({"rate": "1/s", "exempt": "/health"}, ConfigTypeError, "/health"),
        ({"rate": "1/s", "policy": "caf\u00e9"}, ConfigError, "caf"),
        ({"rate": "1/s", "policy": ""}, ConfigTypeError, "policy"),
        ({"rate": "1/s", "cost": -1}, AmountError, "-1"),
        ({}, ConfigError, "rate="),
    ],
)
def test_bad_options_are_refused_at_once(options: dict[str, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        RateLimitMiddleware(starlette_app(), **options)
    with pytest.raises(ConfigTypeError, match="ASGI"):
        RateLimitMiddleware("app", rate="1/s")  # type: ignore[arg-type]


def test_header_key_needs_a_name() -> None:
    with pytest.raises(ConfigTypeError):
        header_key("")


def test_fastapi_dependency_limits_each_route_on_its_own() -> None:
    clock = FakeClock()
    search_limit = RouteRateLimit(rate="2/minute", clock=clock)
    upload_limit = RouteRateLimit(rate="1/minute", clock=clock, policy="uploads")
    api = FastAPI()

    @api.get("/search", dependencies=[Depends(search_limit)])
    async def do_search() -> dict[str, str]:
        return {"result": "found"}

    @api.post("/upload", dependencies=[Depends(upload_limit)])
    async def do_upload() -> dict[str, str]:
        return {"stored": "yes"}

    @api.get("/free")
    async def free() -> dict[str, str]:
        return {"free": "always"}

    with TestClient(api) as client:
        first = client.get("/search")
        assert first.status_code == 200
        assert first.json() == {"result": "found"}
        assert parse(first.headers["RateLimit-Policy"]) == ("default", {"q": 2, "w": 60})
        assert parse(first.headers["RateLimit"]) == ("default", {"r": 1, "t": 30})
        assert client.get("/search").status_code == 200
        refused = client.get("/search")
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == "30"
        assert client.post("/upload").status_code == 200  # its own limit
        assert client.post("/upload").headers["RateLimit-Policy"].startswith('"uploads"')
        assert all(client.get("/free").status_code == 200 for _ in range(5))
    assert search_limit.limiter.stats.rejected == 1
