"""A FastAPI app limited per client, with a tighter limit on one route.

* ``RateLimitMiddleware`` (plain ASGI, any framework) gives every client address 5
  requests per second with bursts of 5. Over it, the answer is ``429 Too Many Requests``
  with ``Retry-After``; every response carries the IETF ``RateLimit-Policy`` and
  ``RateLimit`` headers, so well-behaved clients can slow down before they are refused.
* ``RouteRateLimit`` is a dependency: ``/search`` also allows each client only 2 searches
  per minute, on top of the app's limit.
* WebSockets would be counted when they connect (closed with 1008 over the limit).

Run it with::

    python examples/fastapi_app.py

to call the app in-process (``httpx.ASGITransport``; it takes a fraction of a second),
or serve it with uvicorn and try it with curl::

    python examples/fastapi_app.py --serve
    curl -i http://127.0.0.1:8000/items
"""

from __future__ import annotations

import sys

import anyio
import httpx
from fastapi import Depends, FastAPI

from limitor.contrib.asgi import RateLimitMiddleware, RouteRateLimit

api = FastAPI()
search_limit = RouteRateLimit(rate="2/minute", policy="search")


@api.get("/items")
async def items() -> list[str]:
    return ["apple", "pear"]


@api.get("/search", dependencies=[Depends(search_limit)])
async def search(q: str) -> dict[str, str]:
    return {"q": q, "result": "found"}


app = RateLimitMiddleware(api, rate="5/s", burst=5)


def show(response: httpx.Response) -> None:
    fields = ("RateLimit-Policy", "RateLimit", "Retry-After")
    headers = "  ".join(
        f"{name}: {response.headers[name]}" for name in fields if name in response.headers
    )
    print(f"  {response.request.url.path:8} {response.status_code}  {headers}")


async def demo() -> None:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 4711))
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        print("one client, six requests at once (5/s, bursts of 5):")
        statuses = []
        for _ in range(6):
            response = await client.get("/items")
            statuses.append(response.status_code)
            show(response)
        assert statuses == [200] * 5 + [429]

    other = httpx.ASGITransport(app=app, client=("198.51.100.2", 4711))
    async with httpx.AsyncClient(transport=other, base_url="http://app") as client:
        print("another client has its own limit; /search allows 2 per minute:")
        searches = []
        for _ in range(3):
            response = await client.get("/search", params={"q": "pear"})
            searches.append(response.status_code)
            show(response)
        assert searches == [200, 200, 429]
    print(f"app limit: {app.limiter.stats.admitted} admitted, {app.limiter.stats.rejected} refused")


if __name__ == "__main__":
    if "--serve" in sys.argv:
        import uvicorn

        uvicorn.run(app, host="127.0.0.1", port=8000)
    else:
        anyio.run(demo)
