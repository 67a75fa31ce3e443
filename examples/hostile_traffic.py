"""A flood of rotating keys against a per-client limit: memory stays bounded, nobody gets more.

1. 12,000 requests from 3,000 rotating client addresses (each comes 4 times) against
   ``2/minute`` per client with room for 1,000 clients (``max_clients``). Every bucket is
   still refilling, and none is ever forgotten (that would hand its client a fresh
   burst): the newcomers beyond 1,000 share one overflow bucket with the same limit, so
   the cache never grows past 1,000 and no client is served more than its burst.
2. IPv6 clients of one /64 network (what one customer usually gets) share one bucket.
3. A route's bucket is keyed by its template: ``/items/1`` ... ``/items/6`` are one route.

Run it with::

    python examples/hostile_traffic.py

It needs the ``asgi`` extra (``pip install "limitor[asgi]"``) and takes a second or two.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections import Counter
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from limitor.contrib.asgi import RateLimitMiddleware
from limitor.testing import FakeClock

logging.basicConfig(level=logging.WARNING, format="  log: %(message)s", stream=sys.stdout)


async def item(request: Request) -> PlainTextResponse:
    return PlainTextResponse(f"item {request.path_params['item_id']}")


APP = Starlette(routes=[Route("/items/{item_id}", item)])


async def call(app: RateLimitMiddleware, path: str, client: str) -> int:
    """One GET through the middleware; its status code."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "root_path": "",
        "query_string": b"",
        "headers": [],
        "client": (client, 40000),
    }
    await app(scope, receive, send)
    return int(sent[0]["status"])


async def main() -> None:
    clock = FakeClock()
    print("1. 3,000 rotating client addresses, 4 requests each, 2/minute, max_clients=1000:")
    app = RateLimitMiddleware(APP, rate="2/minute", max_clients=1000, clock=clock)
    served: Counter[int] = Counter()
    for n in range(12_000):
        client = n % 3000
        if await call(app, "/items/1", f"10.0.{client >> 8}.{client & 255}") == 200:
            served[client] += 1
        clock.advance(0.001)  # 12 s in all: less than one refill (30 s)
    stats = app.limiter.stats
    print(f"  buckets held: {stats.users} (never more than 1000)")
    print(f"  the most any client was served: {max(served.values())} (its burst: 2)")
    print(f"  requests of clients that found no room (stats.overflows): {stats.overflows}")

    print("2. IPv6: one /64 network, 3 addresses, 1/minute:")
    app = RateLimitMiddleware(APP, rate="1/minute", clock=clock)
    codes = [await call(app, "/items/1", f"2001:db8::{n}") for n in (1, 2, 3)]
    print(f"  status codes: {codes}")

    print('3. key="route": /items/1 ... /items/6 at 2/minute for the whole route:')
    app = RateLimitMiddleware(APP, rate="2/minute", key="route", clock=clock)
    codes = [await call(app, f"/items/{n}", "10.0.0.1") for n in range(1, 7)]
    print(f"  status codes: {codes}")


if __name__ == "__main__":
    asyncio.run(main())
