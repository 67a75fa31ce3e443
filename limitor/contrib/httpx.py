"""httpx transports that keep a client within a rate limit, per host.

Wrap any transport; every request then waits for its host's limit (*shaping*, the
default) or is refused at once with :class:`~limitor.errors.RateLimitExceeded`
(``on_limit="raise"``)::

    import httpx
    from limitor.contrib.httpx import RateLimitedTransport

    client = httpx.Client(transport=RateLimitedTransport(rate="10/s"))

Each host has its own bucket (or each key of ``key=``, a function of the request). What
the server says in its response headers tightens that bucket, never loosens it:

* ``Retry-After`` on a 429 or 503 (seconds or an HTTP date): nothing is sent to that host
  until then (``limiter.hold``);
* fewer units left than the bucket believes (the IETF ``RateLimit`` / ``RateLimit-Policy``
  fields, ``RateLimit-Remaining``, ``x-ratelimit-remaining``, OpenAI-style
  ``x-ratelimit-remaining-requests``): the difference is charged as debt
  (``limiter.charge``).

With ``retries=N``, a 429 or 503 is retried up to N times: each retry goes through the
limiter again, so it waits what the server asked and never exceeds the limit. A request
whose body is a stream that cannot be replayed is not retried.

The transports work with `httpx <https://www.python-httpx.org>`_ and with its fork
``httpx2`` (which the official ``openai`` and ``anthropic`` SDKs use) alike: wrap a
transport of either library, and put the result in a client of the same library
(``httpx2.Client(transport=RateLimitedTransport(httpx2.HTTPTransport(), rate=...))``).
Without a transport to wrap, each request is sent by a default transport of its own
client's library.

Needs ``pip install "limitor[httpx]"`` or ``pip install "limitor[httpx2]"``.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable, Hashable, Iterable
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, TypedDict, overload

from limitor._checks import check_timeout
from limitor._keywords import Keywords
from limitor.configs import BucketConfig, check_positive
from limitor.contrib._common import keyed_limiter, missing
from limitor.contrib._headers import (
    RETRY_STATUSES,
    apply_feedback,
    apply_feedback_async,
    read_feedback,
)
from limitor.errors import BackendError, ConfigError, ConfigTypeError, RateLimitExceeded
from limitor.per_user import PerUserLimiter

log = logging.getLogger("limitor")

try:
    import http_sf  # noqa: F401  (the headers' parser: part of the same extra)
except ImportError as error:  # pragma: no cover - depends on the environment
    raise missing("limitor.contrib.httpx", "httpx", error) from error


def _libraries() -> tuple[ModuleType, ...]:
    """The installed ones of httpx and httpx2 (at least one)."""
    found: list[ModuleType] = []
    failure: ImportError | None = None
    for name in ("httpx", "httpx2"):
        try:
            found.append(importlib.import_module(name))
        except ImportError as error:
            failure = error
    if not found:
        raise ImportError(
            "limitor.contrib.httpx needs httpx or httpx2: "
            "pip install 'limitor[httpx]' or 'limitor[httpx2]'",
            name="httpx",
        ) from failure
    return tuple(found)


LIBRARIES = _libraries()
"""The installed HTTP libraries the transports serve: ``httpx``, ``httpx2`` or both."""

if TYPE_CHECKING:
    import httpx
    import httpx2
    from typing_extensions import Unpack

    Request: TypeAlias = httpx.Request | httpx2.Request
    Response: TypeAlias = httpx.Response | httpx2.Response

    class SyncBase(httpx.BaseTransport, httpx2.BaseTransport):  # type: ignore[misc]
        """A transport for clients of both libraries."""

    class AsyncBase(httpx.AsyncBaseTransport, httpx2.AsyncBaseTransport):  # type: ignore[misc]
        """An async transport for clients of both libraries."""

else:
    SyncBase = type("SyncBase", tuple(lib.BaseTransport for lib in LIBRARIES), {})
    AsyncBase = type("AsyncBase", tuple(lib.AsyncBaseTransport for lib in LIBRARIES), {})

__all__ = ("AsyncRateLimitedTransport", "RateLimitedTransport", "host_key")


def host_key(request: Request) -> Hashable:
    """The default key: the request's host (``api.example.com``)."""
    host: str = request.url.host
    return host


def library_of(request: Request) -> ModuleType:
    """The library (``httpx`` or ``httpx2``) that made ``request``."""
    name = type(request).__module__.partition(".")[0]
    for library in LIBRARIES:
        if library.__name__ == name:
            return library
    return LIBRARIES[0]


def check_transport(transport: object, is_async: bool) -> Any:
    """``transport`` if it is a transport of httpx or httpx2 of the right kind (sync/async).

    Raises:
        ConfigTypeError: it is not.
    """
    kind = "AsyncBaseTransport" if is_async else "BaseTransport"
    if not any(isinstance(transport, getattr(lib, kind)) for lib in LIBRARIES):
        names = " or ".join(f"{lib.__name__}.{kind}" for lib in LIBRARIES)
        raise ConfigTypeError(f"transport must be an {names}, got {transport!r}")
    return transport


class Inner:
    """The wrapped transport: the one given, or a default one per library, made on first use."""

    __slots__ = ("_by_library", "_given", "_is_async", "_lock")

    def __init__(self, transport: object, is_async: bool) -> None:
        self._given = None if transport is None else check_transport(transport, is_async)
        self._is_async = is_async
        self._by_library: dict[str, Any] = {}
        self._lock = threading.Lock()

    def for_request(self, request: Request) -> Any:
        """The transport that sends ``request``."""
        if self._given is not None:
            return self._given
        library = library_of(request)
        transport = self._by_library.get(library.__name__)
        if transport is None:
            with self._lock:
                transport = self._by_library.get(library.__name__)
                if transport is None:
                    kind = "AsyncHTTPTransport" if self._is_async else "HTTPTransport"
                    transport = getattr(library, kind)()
                    self._by_library[library.__name__] = transport
        return transport

    def all(self) -> list[Any]:
        """Every transport made or given, to close them."""
        with self._lock:
            return [self._given] if self._given is not None else list(self._by_library.values())


class TransportKeywords(TypedDict, total=False):
    """The keywords of every transport of limitor (these and the LLM ones)."""

    key: Callable[[Request], Hashable] | None
    timeout: float | None
    retries: int
    max_retry_after: float
    retry_backoff: float
    use_headers: bool
    name: str | None
    clock: object


TRANSPORT_DEFAULTS: dict[str, object] = {
    "retries": 0,
    "max_retry_after": 60.0,
    "retry_backoff": 1.0,
    "use_headers": True,
}
"""The defaults of :class:`TransportKeywords` that are not ``None``."""


class _RateKeywords(TypedDict, total=False):
    rate: str | BucketConfig | None
    burst: float | None
    limiter: PerUserLimiter | None
    algorithm: str
    on_limit: Literal["wait", "raise"]
    retry_statuses: Iterable[int]
    max_hosts: int


class RateLimitedTransportKeywords(_RateKeywords, TransportKeywords, total=False):
    """The keywords of :class:`RateLimitedTransport` and :class:`AsyncRateLimitedTransport`."""


_KEYWORDS = Keywords(
    RateLimitedTransportKeywords,
    {
        **TRANSPORT_DEFAULTS,
        "algorithm": "leaky_bucket",
        "on_limit": "wait",
        "retry_statuses": (429, 503),
        "max_hosts": 10_000,
    },
)


class RetryRule:
    """What every transport checks the same way: the key, the timeout, the retries.

    Args:
        options: the transport's keywords, every one given (:meth:`Keywords.fill`).

    Raises:
        ConfigError: a value is invalid (``ConfigTypeError``: ``key`` is not callable).
    """

    def __init__(self, options: TransportKeywords) -> None:
        key, timeout, retries = options["key"], options["timeout"], options["retries"]
        if key is not None and not callable(key):
            raise ConfigTypeError(f"key must be a function of the request, got {key!r}")
        self.key = host_key if key is None else key
        self.timeout = None if timeout is None else check_timeout(timeout)
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ConfigError(f"retries must be a whole number of zero or more, got {retries!r}")
        self.retries = retries
        self.max_retry_after = check_positive("max_retry_after", options["max_retry_after"])
        self.retry_backoff = check_positive("retry_backoff", options["retry_backoff"])
        self.use_headers = bool(options["use_headers"])

    def backoff(self, retries_left: int) -> float:
        """The hold before a retry without ``Retry-After``: doubled on each retry."""
        done = self.retries - retries_left
        return min(self.retry_backoff * 2.0**done, self.max_retry_after)


class _Limits(RetryRule):
    """What both transports share: the limiter, the key, the policy and the retry rule."""

    def __init__(self, options: RateLimitedTransportKeywords) -> None:
        self.limiter = keyed_limiter(
            options["rate"],
            options["burst"],
            options["limiter"],
            algorithm=options["algorithm"],
            max_keys=options["max_hosts"],
            clock=options["clock"],
            name=options["name"],
        )
        on_limit = options["on_limit"]
        if on_limit not in ("wait", "raise"):
            raise ConfigError(f"on_limit must be 'wait' or 'raise', got {on_limit!r}")
        self.police = on_limit == "raise"
        super().__init__(options)
        statuses = frozenset(options["retry_statuses"])
        if not statuses <= RETRY_STATUSES | {500, 502, 504}:
            raise ConfigError(f"retry_statuses must be among 429, 500, 502, 503, 504: {statuses!r}")
        self.retry_statuses = statuses

    def refuse(self, key: Hashable) -> RateLimitExceeded:
        return self.refusal(key, self.limiter.status(key).retry_after)

    async def refuse_async(self, key: Hashable) -> RateLimitExceeded:
        return self.refusal(key, (await self.limiter.status_async(key)).retry_after)

    @staticmethod
    def refusal(key: Hashable, retry_after: float) -> RateLimitExceeded:
        return RateLimitExceeded(
            f"rate limit for {key!r} exceeded; retry in {retry_after:.6g}s",
            retry_after=retry_after,
        )

    def learn(self, key: Hashable, response: Response) -> float | None:
        """Feed the response's headers to the limiter; the server's Retry-After if any.

        A backend that fails here is logged, never raised: the response has arrived.
        """
        if not self.use_headers:
            return None
        feedback = read_feedback(response.headers.multi_items(), response.status_code)
        try:
            apply_feedback(self.limiter, key, feedback, max_hold=self.max_retry_after)
        except BackendError as error:
            log.warning("could not apply the response's rate-limit headers: %s", error)
        return feedback.retry_after

    async def learn_async(self, key: Hashable, response: Response) -> float | None:
        """:meth:`learn` for tasks: the limiter's async verbs."""
        if not self.use_headers:
            return None
        feedback = read_feedback(response.headers.multi_items(), response.status_code)
        try:
            await apply_feedback_async(self.limiter, key, feedback, max_hold=self.max_retry_after)
        except BackendError as error:
            log.warning("could not apply the response's rate-limit headers: %s", error)
        return feedback.retry_after

    def retries_for(self, request: Request) -> int:
        """How many retries ``request`` may have: none if its body cannot be sent again."""
        replayable = isinstance(request.stream, library_of(request).ByteStream)
        return self.retries if replayable else 0

    def should_retry(
        self, key: Hashable, response: Response, retries_left: int, wait: float | None
    ) -> bool:
        """Retry a 429/503 once more if retries are left and the wait is bearable.

        Without a ``Retry-After`` to obey, the host is held for ``retry_backoff`` seconds,
        doubled on each retry (never beyond ``max_retry_after``).
        """
        if retries_left <= 0 or response.status_code not in self.retry_statuses:
            return False
        if wait is None:
            self.limiter.hold(self.backoff(retries_left), key=key)
            return True
        return wait <= self.max_retry_after  # else the caller sees the 429

    async def should_retry_async(
        self, key: Hashable, response: Response, retries_left: int, wait: float | None
    ) -> bool:
        """:meth:`should_retry` for tasks: the limiter's async verbs."""
        if retries_left <= 0 or response.status_code not in self.retry_statuses:
            return False
        if wait is None:
            await self.limiter.hold_async(self.backoff(retries_left), key=key)
            return True
        return wait <= self.max_retry_after  # else the caller sees the 429


class RateLimitedTransport(SyncBase):
    """A sync transport that waits for (or polices) a rate limit per host.

    Args:
        transport: the transport that sends the requests: an httpx or httpx2 transport
            (default: ``HTTPTransport()`` of each request's library).
        rate: the limit per key, as ``"10/s"``, ``"100/minute"`` or a ``BucketConfig``.
        burst: the burst of ``rate`` (default: its amount).
        limiter: an existing :class:`~limitor.per_user.PerUserLimiter` instead of
            ``rate`` (to share one limit between clients).
        key: a function of the ``httpx.Request`` giving its bucket (default: the host;
            return ``None`` for one bucket shared by every request).
        algorithm: the bucket's algorithm (``"leaky_bucket"``, ``"token_bucket"``, ``"gcra"``).
        on_limit: ``"wait"`` (shape) or ``"raise"`` (police: raise ``RateLimitExceeded``
            without sending).
        timeout: the longest wait accepted (``AcquireTimeout`` beyond it, raised at once).
        retries: how many times a 429 or 503 is retried (default 0).
        retry_statuses: the statuses that are retried.
        max_retry_after: a server's ``Retry-After`` above this many seconds is not waited
            for: the response is returned (the host stays held).
        retry_backoff: the hold before the first retry of a 429/503 that has no
            ``Retry-After``, doubled on each further retry.
        use_headers: read rate-limit headers from responses (default True).
        max_hosts: how many keys' buckets are kept (full ones beyond it are dropped).
        name: the limiter's name in listener events.
        clock: the time source (tests: ``limitor.testing.FakeClock``).
    """

    @_KEYWORDS.signature
    def __init__(
        self,
        transport: httpx.BaseTransport | httpx2.BaseTransport | None = None,
        **options: Unpack[RateLimitedTransportKeywords],
    ) -> None:
        self._inner = Inner(transport, is_async=False)
        self._limits = _Limits(_KEYWORDS.fill(options, "RateLimitedTransport.__init__"))

    @property
    def limiter(self) -> PerUserLimiter:
        """The per-key limiter (``limiter.status(host)``, ``limiter.stats``...)."""
        return self._limits.limiter

    @overload
    def handle_request(self, request: httpx.Request) -> httpx.Response: ...
    @overload
    def handle_request(self, request: httpx2.Request) -> httpx2.Response: ...
    def handle_request(self, request: Request) -> Response:
        """Wait for the request's bucket, send it, learn from the response, maybe retry."""
        limits = self._limits
        transport = self._inner.for_request(request)
        key = limits.key(request)
        retries_left = limits.retries_for(request)
        while True:
            if limits.police:
                if not limits.limiter.try_acquire(key):
                    raise limits.refuse(key)
            else:
                limits.limiter.acquire(key, 1, limits.timeout)
            response: Response = transport.handle_request(request)
            wait = limits.learn(key, response)
            if not limits.should_retry(key, response, retries_left, wait):
                return response
            response.close()
            retries_left -= 1

    def close(self) -> None:
        """Close the wrapped transport."""
        for transport in self._inner.all():
            transport.close()


class AsyncRateLimitedTransport(AsyncBase):
    """The async twin of :class:`RateLimitedTransport` (asyncio and trio).

    It takes the same arguments, with an httpx or httpx2 ``AsyncBaseTransport`` to wrap
    (default: ``AsyncHTTPTransport()`` of each request's library); waiting never blocks
    the event loop.
    """

    @_KEYWORDS.signature
    def __init__(
        self,
        transport: httpx.AsyncBaseTransport | httpx2.AsyncBaseTransport | None = None,
        **options: Unpack[RateLimitedTransportKeywords],
    ) -> None:
        self._inner = Inner(transport, is_async=True)
        self._limits = _Limits(_KEYWORDS.fill(options, "AsyncRateLimitedTransport.__init__"))

    @property
    def limiter(self) -> PerUserLimiter:
        """The per-key limiter (``limiter.status(host)``, ``limiter.stats``...)."""
        return self._limits.limiter

    @overload
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response: ...
    @overload
    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response: ...
    async def handle_async_request(self, request: Request) -> Response:
        """Await the request's bucket, send it, learn from the response, maybe retry."""
        limits = self._limits
        transport = self._inner.for_request(request)
        key = limits.key(request)
        retries_left = limits.retries_for(request)
        while True:
            if limits.police:
                if not await limits.limiter.try_acquire_async(key):
                    raise await limits.refuse_async(key)
            else:
                await limits.limiter.acquire_async(key, 1, limits.timeout)
            response: Response = await transport.handle_async_request(request)
            wait = await limits.learn_async(key, response)
            if not await limits.should_retry_async(key, response, retries_left, wait):
                return response
            await response.aclose()
            retries_left -= 1

    async def aclose(self) -> None:
        """Close the wrapped transport."""
        for transport in self._inner.all():
            await transport.aclose()
