"""How the ASGI middleware keys a request: by client address, header, route or function.

:func:`client_key` (an IPv6 client by its network), :func:`header_key`, :func:`route_key`
and :func:`route_key_for` (which matches a Starlette or FastAPI application's routes
itself), and :func:`key_function`, which turns the middleware's ``key=`` into one of
them. Re-exported by :mod:`limitor.contrib.asgi`.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable, Hashable, MutableMapping
from typing import Any

from limitor.backends._keys import bounded_key
from limitor.errors import ConfigError, ConfigTypeError

__all__ = (
    "KeyFunction",
    "Scope",
    "check_ipv6_prefix",
    "client_key",
    "header_key",
    "key_function",
    "route_key",
    "route_key_for",
)

Scope = MutableMapping[str, Any]
KeyFunction = Callable[[Scope], Hashable]


def client_key(scope: Scope, ipv6_prefix: int = 64) -> Hashable:
    """The default key: the client's address (``None``, one shared bucket, if unknown).

    An IPv6 client is keyed by its ``/ipv6_prefix`` network (default ``/64``, what one
    customer usually gets: otherwise one host has 2**64 addresses to rotate through); an
    IPv4-mapped IPv6 address is its IPv4 address. Behind a reverse proxy this is the
    proxy's address: run the server with its proxy-headers option (uvicorn
    ``--forwarded-allow-ips``), or key by a header.
    """
    client = scope.get("client")
    if not client:
        return None
    host = client[0]
    if isinstance(host, str) and ":" in host and ipv6_prefix < 128:
        return _ipv6_network(host, ipv6_prefix)
    return bounded_key(host)


@functools.lru_cache(maxsize=4096)
def _ipv6_network(host: str, prefix: int) -> Hashable:
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return bounded_key(host)  # not an address (a unix socket path...): as it is
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, prefix), strict=False))
    return str(address)


def check_ipv6_prefix(prefix: object) -> int:
    if isinstance(prefix, bool) or not isinstance(prefix, int):
        raise ConfigTypeError(f"ipv6_prefix must be an int from 1 to 128, got {prefix!r}")
    if not 1 <= prefix <= 128:
        raise ConfigError(f"ipv6_prefix must be from 1 to 128, got {prefix!r}")
    return prefix


def header_key(name: str) -> KeyFunction:
    """A key function: the value of request header ``name`` (``X-API-Key``...).

    A request without the header is keyed by its client address. A value longer than 64
    bytes is kept as a 16-byte digest, so rotating long values cannot grow memory.
    """
    if not isinstance(name, str) or not name:
        raise ConfigTypeError(f"header name must be a non-empty string, got {name!r}")
    wanted = name.lower().encode("latin-1")

    def key(scope: Scope) -> Hashable:
        for header, value in scope.get("headers", ()):
            if header.lower() == wanted:
                return bounded_key((name, bytes(value).decode("latin-1")))
        return client_key(scope)

    return key


def route_key(scope: Scope) -> Hashable:
    """A key function: the method and the route's template (one bucket per route).

    The template is that of the route the request matched (``/items/{item_id}`` for
    ``/items/1`` and ``/items/2``): from ``scope["route"]`` once the framework has routed
    (a FastAPI dependency), or found by matching the application's routes (see
    :func:`route_key_for`). Only a request that no route matches is keyed by its raw path.
    """
    template = _template(scope.get("route"))
    return (scope.get("method", "WEBSOCKET"), template or _raw_path(scope))


def _raw_path(scope: Scope) -> Hashable:
    return bounded_key(scope.get("path"))


def _template(route: object) -> str | None:
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return template if isinstance(template, str) else None


def _routes_of(app: object) -> list[Any] | None:
    """The routes of a Starlette/FastAPI application, through wrapping middleware."""
    for _ in range(32):
        routes = getattr(app, "routes", None)
        if isinstance(routes, list):
            return routes
        router = getattr(app, "router", None)
        if router is not None and isinstance(getattr(router, "routes", None), list):
            return router.routes  # type: ignore[no-any-return]  # live: routes added later count
        app = getattr(app, "app", None)
        if app is None:
            return None
    return None


def _match(routes: list[Any], scope: Scope) -> str | None:
    """The template of the route ``scope`` matches (a method mismatch counts too)."""
    try:
        from starlette.routing import Match
    except ImportError:  # pragma: no cover - routes come from Starlette
        return None
    partial = None
    for route in routes:
        matches = getattr(route, "matches", None)
        if matches is None:
            continue
        try:
            match, child = matches(scope)
        except Exception:  # a route that cannot read this scope
            continue
        if match is Match.NONE:
            continue
        template = _template(route) or ""
        inner = getattr(route, "routes", None)
        if isinstance(inner, list) and inner:  # a Mount ("/v1/{path}"): the route inside it
            found = _match(inner, {**scope, **child})
            if found is not None:
                template = template.removesuffix("/{path}") + found
        if match is Match.FULL:
            return template
        if partial is None:
            partial = template
    return partial


def route_key_for(app: object) -> KeyFunction:
    """:func:`route_key` for a middleware around ``app``: matches ``app``'s routes.

    The middleware sees a request before the application routes it, so it matches the
    routes itself (Starlette and FastAPI applications, through other middleware, and
    their mounts); for an application without routes it is :func:`route_key`.
    """
    routes = _routes_of(app)
    if routes is None:
        return route_key

    def key(scope: Scope) -> Hashable:
        template = _template(scope.get("route")) or _match(routes, scope)
        return (scope.get("method", "WEBSOCKET"), template or _raw_path(scope))

    return key


def key_function(key: object, app: object = None, ipv6_prefix: int = 64) -> KeyFunction:
    if key is None or key == "client":
        if ipv6_prefix == 64:
            return client_key
        return functools.partial(client_key, ipv6_prefix=ipv6_prefix)
    if key == "route":
        return route_key if app is None else route_key_for(app)
    if isinstance(key, str) and key.startswith("header:"):
        return header_key(key.removeprefix("header:"))
    if callable(key):
        return key
    raise ConfigError(
        f"key must be 'client', 'route', 'header:<name>' or a function of the scope, got {key!r}"
    )
