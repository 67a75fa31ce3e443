"""A real uvicorn server on a loopback port, limited by the middleware, and an httpx client
using our transport against it (real time: generous bounds, stops by itself)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from limitor.contrib.asgi import RateLimitMiddleware
from limitor.contrib.httpx import AsyncRateLimitedTransport, RateLimitedTransport
from tests.contrib.serving import uvicorn_server

SERVER_RATE, SERVER_BURST = 20.0, 5.0  # the server allows 20/s, bursts of 5
admissions: list[float] = []


async def hello(request: Request) -> PlainTextResponse:
    admissions.append(time.monotonic())
    return PlainTextResponse("hello")


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, RateLimitMiddleware]]:
    app = RateLimitMiddleware(
        Starlette(routes=[Route("/", hello)]), rate=f"{SERVER_RATE:g}/s", burst=SERVER_BURST
    )
    with uvicorn_server(app) as url:
        yield url, app


def busiest(times: list[float], window: float) -> int:
    """The most admissions in any window of ``window`` seconds."""
    return max(sum(1 for t in times[i:] if t - start <= window) for i, start in enumerate(times))


def check_server_bound(times: list[float]) -> None:
    # the server's own limit held (its middleware polices), with slack for clock reads
    for window in (0.25, 0.5, 1.0):
        assert busiest(times, window) <= SERVER_BURST + SERVER_RATE * window + 1


def test_a_client_faster_than_the_server_obeys_its_429s(server: tuple[str, Any]) -> None:
    url, app = server
    app.limiter.reset()
    admissions.clear()
    # the client believes in 100/s: the server's 429s, Retry-After and RateLimit headers
    # slow it down, and its retries get every request through
    transport = RateLimitedTransport(rate="100/s", retries=10, max_retry_after=5)
    started = time.monotonic()
    with httpx.Client(transport=transport, timeout=10) as client:
        statuses = [client.get(f"{url}/").status_code for _ in range(25)]
    elapsed = time.monotonic() - started
    assert statuses == [200] * 25
    assert len(admissions) == 25
    check_server_bound(admissions)
    # 5 at once then 20 at 20/s take about 1 s; Retry-After is in whole seconds
    assert 0.5 < elapsed < 25
    assert app.limiter.stats.admitted == 25


def test_a_client_within_the_limit_is_never_refused(server: tuple[str, Any]) -> None:
    url, app = server
    app.limiter.reset()
    admissions.clear()

    async def main() -> list[int]:
        transport = AsyncRateLimitedTransport(rate="10/s", burst=2)  # half the server's rate
        async with httpx.AsyncClient(transport=transport, timeout=10) as client:
            return [(await client.get(f"{url}/")).status_code for _ in range(10)]

    assert anyio.run(main) == [200] * 10
    assert app.limiter.stats.rejected == 0
    check_server_bound(admissions)
