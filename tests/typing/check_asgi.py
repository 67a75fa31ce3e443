"""Type-checked by ``mypy --strict tests/typing`` in CI, never run.

The ASGI middleware and route limit take their keywords from one ``TypedDict`` each; a
misspelt keyword or a value of the wrong type is still an error (each ``type: ignore``
marks a call that mypy must reject; ``warn_unused_ignores`` fails the check if it does not).
"""

from __future__ import annotations

from typing import Any

from limitor.contrib.asgi import RateLimitMiddleware, RouteRateLimit


async def app(scope: Any, receive: Any, send: Any) -> None:
    """A do-nothing ASGI application."""


def check() -> None:
    RateLimitMiddleware(app, rate="10/s", burst=20, key="client", websocket="deny")
    RouteRateLimit(rate="5/minute", cost=2, max_clients=100)
    RateLimitMiddleware(app, rate="10/s", retries=2)  # type: ignore[call-arg]
    RateLimitMiddleware(app, rate="10/s", websocket="drop")  # type: ignore[arg-type]
    RouteRateLimit(rate="5/minute", websocket="close")  # type: ignore[call-arg]
    RouteRateLimit(rate="5/minute", max_clients="many")  # type: ignore[arg-type]
