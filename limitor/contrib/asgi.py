"""Rate limits for ASGI applications (Starlette, FastAPI, Litestar, Quart...).

:class:`RateLimitMiddleware` is plain ASGI (no framework needed): it polices every
HTTP request per key (the client's address by default, or a header, the route, or any
function of the ASGI scope), answers ``429 Too Many Requests`` with ``Retry-After`` when
the key is over its limit, and sets the IETF ``RateLimit-Policy`` and ``RateLimit``
headers (draft-ietf-httpapi-ratelimit-headers) on every response::

    from starlette.applications import Starlette
    from limitor.contrib.asgi import RateLimitMiddleware

    app = RateLimitMiddleware(Starlette(routes=...), rate="10/s", burst=20)

For example, a bucket of 10 per second with bursts of 20 writes, after one request::

    RateLimit-Policy: "default";q=20;w=2
    RateLimit: "default";r=19;t=1

``q`` is the burst and ``w`` the whole seconds an empty bucket needs to refill; ``r`` is
what is left now and ``t`` the whole seconds until the bucket is full again (on a 429,
until the request would be admitted: the same as ``Retry-After``).

WebSocket connections are counted once, when they connect: one over the limit is closed
with code 1008 (policy violation) before it is accepted, or, with ``websocket="deny"``
and a server that supports the ASGI denial response, refused with an HTTP 429. Lifespan
and other scopes pass through untouched.

:class:`RouteRateLimit` is the same policing as a FastAPI dependency, for one route::

    search_limit = RouteRateLimit(rate="5/minute")

    @app.get("/search", dependencies=[Depends(search_limit)])
    async def search(q: str): ...

The headers need ``http-sf`` (``pip install "limitor[asgi]"``).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Awaitable, Callable, Hashable, MutableMapping
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from limitor._checks import check_amount
from limitor._keywords import Keywords
from limitor.configs import BucketConfig
from limitor.contrib._asgi_keys import KeyFunction, Scope, check_ipv6_prefix, key_function
from limitor.contrib._asgi_keys import client_key as client_key
from limitor.contrib._asgi_keys import header_key as header_key
from limitor.contrib._asgi_keys import route_key as route_key
from limitor.contrib._asgi_keys import route_key_for as route_key_for
from limitor.contrib._common import missing, require
from limitor.contrib._headers import policy_fields
from limitor.contrib._keyed import limiter_from
from limitor.errors import ConfigError, ConfigTypeError
from limitor.per_user import PerUserLimiter

if TYPE_CHECKING:
    from typing_extensions import Unpack

try:
    import http_sf
except ImportError as error:  # pragma: no cover - depends on the environment
    raise missing("limitor.contrib.asgi", "asgi", error) from error

__all__ = (
    "RateLimitMiddleware",
    "RouteRateLimit",
    "client_key",
    "header_key",
    "route_key",
    "route_key_for",
)

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

REFUSED_BODY = b"Too Many Requests\n"


MAX_HEADER_INTEGER = 10**15 - 1
"""The largest integer an HTTP Structured Field may carry (15 digits)."""


def _check_policy(policy: object) -> str:
    if not isinstance(policy, str) or not policy:
        raise ConfigTypeError(f"policy must be a non-empty string, got {policy!r}")
    try:
        http_sf.ser([(policy, {})])
    except (ValueError, TypeError, http_sf.StructuredFieldError):
        raise ConfigError(f"policy must be printable ASCII, got {policy!r}") from None
    return policy


class _LimitKeywords(TypedDict, total=False):
    rate: str | BucketConfig | None
    burst: float | None
    limiter: PerUserLimiter | None
    key: str | KeyFunction | None
    cost: float | Callable[[Scope], float]
    algorithm: str
    policy: str


class _MiddlewareKeywords(_LimitKeywords, total=False):
    websocket: Literal["close", "deny", "ignore"]
    exempt: Callable[[Scope], bool] | None
    headers: bool


class _KeysKeywords(TypedDict, total=False):
    max_clients: int
    ipv6_prefix: int
    name: str | None
    clock: object


class RouteRateLimitKeywords(_LimitKeywords, _KeysKeywords, total=False):
    """The keywords of :class:`RouteRateLimit` (and of the policing of both classes)."""


class RateLimitMiddlewareKeywords(_MiddlewareKeywords, _KeysKeywords, total=False):
    """The keywords of :class:`RateLimitMiddleware`: :class:`RouteRateLimitKeywords` and its own."""


_ROUTE_DEFAULTS: dict[str, object] = {
    "cost": 1,
    "algorithm": "leaky_bucket",
    "policy": "default",
    "max_clients": 100_000,
    "ipv6_prefix": 64,
}
_ROUTE_KEYWORDS = Keywords(RouteRateLimitKeywords, _ROUTE_DEFAULTS)
_MIDDLEWARE_KEYWORDS = Keywords(
    RateLimitMiddlewareKeywords, {**_ROUTE_DEFAULTS, "websocket": "close", "headers": True}
)


class _Policer:
    """The shared part: a per-key limiter, how to key and cost a request, the headers.

    Args:
        options: the keywords of the policing, every one given (:meth:`Keywords.fill`).
        app: the application protected (its routes key ``key="route"``), if known.
    """

    def __init__(self, options: RouteRateLimitKeywords, app: object = None) -> None:
        self.limiter = limiter_from(options, options["max_clients"])
        self.key = key_function(options["key"], app, check_ipv6_prefix(options["ipv6_prefix"]))
        _check_header_integers(self.limiter)
        cost = options["cost"]
        if not callable(cost):
            check_amount(cost, math.inf)  # a valid amount, checked now (AmountError)
            if cost > self.limiter.config.max_burst:
                raise ConfigError(
                    f"cost={cost!r} is above the burst ({self.limiter.config.max_burst:g}): "
                    "no request could ever be admitted"
                )
        self.cost = cost
        self.policy = _check_policy(options["policy"])

    async def admit(self, scope: Scope) -> tuple[Hashable, float, bool]:
        """``(key, amount, admitted)`` for a request (admitted: taken from its bucket).

        Raises:
            KeyTypeError: the key function gave an unhashable key.
        """
        key = self.key(scope)
        amount = self.cost(scope) if callable(self.cost) else self.cost
        return key, amount, await self.limiter.try_acquire_async(key, amount)

    async def headers(
        self, key: Hashable, amount: float, *, refused: bool
    ) -> list[tuple[str, str]]:
        """The rate-limit headers for ``key`` now (with ``Retry-After`` when refused)."""
        status = await self.limiter.status_async(key, amount)
        wait = min(status.retry_after, MAX_HEADER_INTEGER)  # a hold of years still fits
        retry_after = max(1, math.ceil(wait - 1e-9)) if refused else None
        fields = policy_fields(self.policy, status, self.limiter.rate, retry_after=retry_after)
        pairs = list(fields.items())
        if retry_after is not None:
            pairs.append(("Retry-After", str(retry_after)))
        return pairs


def _check_header_integers(limiter: PerUserLimiter) -> None:
    """Refuse a limit whose ``RateLimit`` header integers would pass 15 digits."""
    burst = limiter.config.max_burst
    window = math.ceil(burst / limiter.rate - 1e-9)
    if burst > MAX_HEADER_INTEGER or window > MAX_HEADER_INTEGER:
        raise ConfigError(
            f"a limit of {limiter.rate:g}/s with a burst of {burst:g} cannot be written in "
            f"RateLimit headers (integers of at most 15 digits: q={burst:.0f}, w={window})"
        )


def _encode(pairs: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in pairs]


class RateLimitMiddleware:
    """Police an ASGI application per key, with ``Retry-After`` and ``RateLimit`` headers.

    Args:
        app: the ASGI application to protect.
        rate: the limit per key, as ``"10/s"``, ``"100/minute"`` or a ``BucketConfig``.
        burst: the burst of ``rate`` (default: its amount).
        limiter: an existing :class:`~limitor.per_user.PerUserLimiter` instead of ``rate``.
        key: ``"client"`` (the client's address, default), ``"route"`` (method and the
            matched route's template, such as ``/items/{item_id}``; the raw path only
            where no route matched),
            ``"header:X-API-Key"`` (a header's value), or a function of the ASGI scope
            (for example the authenticated user); a key of ``None`` is one shared bucket.
        cost: units each request takes (a number, or a function of the scope).
        algorithm: the bucket's algorithm (``"leaky_bucket"``, ``"token_bucket"``, ``"gcra"``).
        policy: the policy's name in the ``RateLimit*`` headers.
        websocket: ``"close"`` (close with 1008 before accepting, default), ``"deny"``
            (an HTTP 429 where the server supports the ASGI denial response, else close)
            or ``"ignore"`` (WebSockets are not limited).
        exempt: a function of the scope; True lets the request through untouched (not
            counted, no headers), for example health checks.
        headers: set the ``RateLimit*`` headers on admitted responses too (default True).
        max_clients: how many keys' buckets are kept, at most (full ones beyond it are
            dropped; while all are refilling, new keys share one overflow bucket).
        ipv6_prefix: IPv6 clients are keyed by their network of this prefix length
            (default 64; 128 keys every address apart).
        name: the limiter's name in listener events.
        clock: the time source (tests: ``limitor.testing.FakeClock``).

    Raises:
        ConfigError: a limit whose ``RateLimit`` header integers would pass 15 digits
            (such as ``1e16/s``), or a ``cost`` above the burst.
        KeyTypeError: (per request) a key function returned an unhashable key.
    """

    @_MIDDLEWARE_KEYWORDS.signature
    def __init__(self, app: ASGIApp, **options: Unpack[RateLimitMiddlewareKeywords]) -> None:
        every = _MIDDLEWARE_KEYWORDS.fill(options, "RateLimitMiddleware.__init__")
        if not callable(app):
            raise ConfigTypeError(f"app must be an ASGI application, got {app!r}")
        websocket, exempt = every["websocket"], every["exempt"]
        if websocket not in ("close", "deny", "ignore"):
            raise ConfigError(f"websocket must be 'close', 'deny' or 'ignore', got {websocket!r}")
        if exempt is not None and not callable(exempt):
            raise ConfigTypeError(f"exempt must be a function of the scope, got {exempt!r}")
        self.app = app
        self._exempt = exempt
        self._policer = _Policer(every, app)
        self._websocket = websocket
        self._headers = bool(every["headers"])

    @property
    def limiter(self) -> PerUserLimiter:
        """The per-key limiter (``limiter.status(key)``, ``limiter.stats``, ``reset()``)."""
        return self._policer.limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        kind = scope["type"]
        if self._exempt is not None and kind != "lifespan" and self._exempt(scope):
            await self.app(scope, receive, send)
        elif kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket" and self._websocket != "ignore":
            await self._connect(scope, receive, send)
        else:  # lifespan, and anything newer
            await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        policer = self._policer
        key, amount, admitted = await policer.admit(scope)
        if not admitted:
            headers = _encode(await policer.headers(key, amount, refused=True))
            headers.append((b"content-type", b"text/plain; charset=utf-8"))
            await send({"type": "http.response.start", "status": 429, "headers": headers})
            await send({"type": "http.response.body", "body": REFUSED_BODY})
            return
        if not self._headers:
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = _encode(await policer.headers(key, amount, refused=False))
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _connect(self, scope: Scope, receive: Receive, send: Send) -> None:
        policer = self._policer
        key, amount, admitted = await policer.admit(scope)
        if admitted:
            await self.app(scope, receive, send)
            return
        message = await receive()  # the client's websocket.connect
        if message["type"] != "websocket.connect":
            return  # it went away
        extensions = scope.get("extensions") or {}
        if self._websocket == "deny" and "websocket.http.response" in extensions:
            headers = _encode(await policer.headers(key, amount, refused=True))
            headers.append((b"content-type", b"text/plain; charset=utf-8"))
            await send({"type": "websocket.http.response.start", "status": 429, "headers": headers})
            await send({"type": "websocket.http.response.body", "body": REFUSED_BODY})
            return
        await send({"type": "websocket.close", "code": 1008, "reason": "rate limit exceeded"})


class RouteRateLimit:
    """A rate limit for one route, as a FastAPI dependency (``Depends(limit)``).

    It takes the same limit and key arguments as :class:`RateLimitMiddleware`. Each
    instance has its own limiter, so ``Depends`` on two routes gives two limits. Over the
    limit it raises Starlette's ``HTTPException(429)`` with ``Retry-After`` and the
    ``RateLimit*`` headers; admitted, it sets the ``RateLimit*`` headers on the response.

    Needs Starlette (FastAPI brings it).
    """

    @_ROUTE_KEYWORDS.signature
    def __init__(self, **options: Unpack[RouteRateLimitKeywords]) -> None:
        every = _ROUTE_KEYWORDS.fill(options, "RouteRateLimit.__init__")
        requests = require("starlette.requests", "asgi")
        responses = require("starlette.responses", "asgi")
        self._http_exception = require("starlette.exceptions", "asgi").HTTPException
        self._policer = _Policer(every)
        # FastAPI reads what to inject from the signature: the connection and the response.
        self.__signature__ = inspect.Signature(
            [
                inspect.Parameter(
                    "connection",
                    inspect.Parameter.POSITIONAL_OR_KEYWORD,
                    annotation=requests.HTTPConnection,
                ),
                inspect.Parameter(
                    "response",
                    inspect.Parameter.POSITIONAL_OR_KEYWORD,
                    annotation=responses.Response,
                ),
            ]
        )

    @property
    def limiter(self) -> PerUserLimiter:
        """The per-key limiter of this route."""
        return self._policer.limiter

    async def __call__(self, connection: Any, response: Any) -> None:
        """Admit the request or raise ``HTTPException(429)``."""
        policer = self._policer
        key, amount, admitted = await policer.admit(connection.scope)
        headers = dict(await policer.headers(key, amount, refused=not admitted))
        if not admitted:
            raise self._http_exception(429, detail="Too Many Requests", headers=headers)
        response.headers.update(headers)
