"""An httpx client that keeps to each host's rate limit and obeys the server's 429s.

``RateLimitedTransport`` wraps the transport that sends the requests. Here it wraps
``httpx.MockTransport`` (a fake API in this process, so the example runs offline); in
your code leave ``transport=`` out and it wraps httpx's own.

* ``api.example`` allows 5 requests per second with bursts of 2: eight requests in a row
  go two at once, then one every 0.2 s (the client waits, it is never refused);
* ``other.example`` has its own bucket: it is never slowed by the first host;
* ``busy.example`` answers its first request with ``429`` and ``Retry-After: 1``: the
  transport holds that host for a second and retries (``retries=1``), within its limit;
* a response that says ``RateLimit: "default";r=0;t=1`` (the IETF header) empties the
  client's bucket for that host: fewer left than it believed.

The async twin, ``AsyncRateLimitedTransport``, does the same with ``httpx.AsyncClient``.

Run it with::

    python examples/httpx_client.py

It takes about three seconds.
"""

from __future__ import annotations

import time

import anyio
import httpx

from limitor.contrib.httpx import AsyncRateLimitedTransport, RateLimitedTransport

START = time.monotonic()
busy_calls = 0


def fake_api(request: httpx.Request) -> httpx.Response:
    """A server: busy.example is over its quota once; tight.example says none are left."""
    global busy_calls
    if request.url.host == "busy.example":
        busy_calls += 1
        if busy_calls == 1:
            return httpx.Response(429, headers={"Retry-After": "1"}, text="slow down")
    if request.url.host == "tight.example":
        return httpx.Response(200, headers={"RateLimit": '"default";r=0;t=1'}, text="ok")
    return httpx.Response(200, text="ok")


def at() -> str:
    return f"+{time.monotonic() - START:.1f}s"


def main() -> None:
    transport = RateLimitedTransport(httpx.MockTransport(fake_api), rate="5/s", burst=2, retries=1)
    with httpx.Client(transport=transport) as client:
        print("eight requests to api.example (5/s, bursts of 2):")
        for number in range(1, 9):
            response = client.get("https://api.example/items")
            print(f"  request {number}: {response.status_code} at {at()}")
        before = time.monotonic()
        client.get("https://other.example/")
        print(f"other.example has its own bucket: waited {time.monotonic() - before:.2f} s")

        before = time.monotonic()
        response = client.get("https://busy.example/")
        waited = time.monotonic() - before
        print(f"busy.example: 429, Retry-After: 1, retried once -> {response.status_code}")
        print(f"  the retry waited {waited:.1f} s, as the server asked")
        assert response.status_code == 200
        assert busy_calls == 2
        assert waited >= 1.0

        client.get("https://tight.example/")
        left = transport.limiter.status("tight.example").remaining
        print(f"tight.example said r=0: the client now believes {left:.0f} left (it had 1)")
        assert left < 0.5  # (it refills at 5/s from now on)

    async def with_asyncio() -> None:
        async_transport = AsyncRateLimitedTransport(httpx.MockTransport(fake_api), rate="5/s")
        async with httpx.AsyncClient(transport=async_transport) as client:
            responses = [await client.get("https://api.example/") for _ in range(3)]
        print(f"async client: {[r.status_code for r in responses]}")

    anyio.run(with_asyncio)


if __name__ == "__main__":
    main()
