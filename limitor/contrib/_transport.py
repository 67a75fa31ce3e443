"""What every transport of limitor is made of, whatever it limits.

The libraries served (httpx, httpx2 or both) and the wrapped transport (:class:`Inner`);
the keywords every transport takes (:class:`TransportKeywords`); the decisions every
transport makes alike (:class:`Policy`: the key, the timeout, reading the response's
headers, retrying a 429/503); and the two faces, :class:`SyncFace` and
:class:`AsyncFace`, which hand each request to the policy's ``send`` or ``send_async``.
A family of transports (``limitor.contrib.httpx``, ``limitor.contrib.llm_transport``)
adds its limiter and its way of sending one request.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable, Hashable
from types import ModuleType
from typing import TYPE_CHECKING, Any, Generic, TypeAlias, TypedDict, TypeVar, Union, overload

from limitor._checks import check_timeout
from limitor.configs import check_positive
from limitor.contrib._headers import RETRY_STATUSES
from limitor.errors import BackendError, ConfigError, ConfigTypeError

log = logging.getLogger("limitor")

Transport = TypeVar("Transport")
"""The type of the transport a transport wraps (sync or async, of httpx or httpx2)."""

F = TypeVar("F")
"""What a family of transports reads from a response's headers (:meth:`Policy.read`)."""


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

    Request: TypeAlias = httpx.Request | httpx2.Request
    Response: TypeAlias = httpx.Response | httpx2.Response
    SyncTransport: TypeAlias = httpx.BaseTransport | httpx2.BaseTransport
    AsyncTransport: TypeAlias = httpx.AsyncBaseTransport | httpx2.AsyncBaseTransport

    class SyncBase(httpx.BaseTransport, httpx2.BaseTransport):  # type: ignore[misc]
        """A transport for clients of both libraries."""

    class AsyncBase(httpx.AsyncBaseTransport, httpx2.AsyncBaseTransport):  # type: ignore[misc]
        """An async transport for clients of both libraries."""

else:
    SyncBase = type("SyncBase", tuple(lib.BaseTransport for lib in LIBRARIES), {})
    AsyncBase = type("AsyncBase", tuple(lib.AsyncBaseTransport for lib in LIBRARIES), {})
    SyncTransport = Union[tuple(lib.BaseTransport for lib in LIBRARIES)]  # noqa: UP007
    AsyncTransport = Union[tuple(lib.AsyncBaseTransport for lib in LIBRARIES)]  # noqa: UP007


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


class Policy(Generic[F]):
    """What every transport decides the same way: the key, the timeout, the retries, the headers.

    A family of transports (the plain ones here, the LLM ones) subclasses it with its
    limiter, what it reads from a response's headers (``F``: :meth:`read`), how it applies
    that (:meth:`apply`) and how it holds a key (:meth:`hold`), and its way of sending
    one request (:meth:`send`); each of those that does I/O has its async twin.

    Args:
        options: the transport's keywords, every one given (:meth:`Keywords.fill`).

    Raises:
        ConfigError: a value is invalid (``ConfigTypeError``: ``key`` is not callable).
    """

    retry_statuses: frozenset[int] = RETRY_STATUSES
    """The statuses that are sent again (while retries are left)."""

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

    def send(self, transport: Any, request: Request) -> Response:
        """Send ``request`` through ``transport`` within the limits."""
        raise NotImplementedError

    async def send_async(self, transport: Any, request: Request) -> Response:
        """:meth:`send` for tasks."""
        raise NotImplementedError

    def read(self, response: Response) -> tuple[F, float | None]:
        """What the response's headers say, and the server's ``Retry-After`` (if any)."""
        raise NotImplementedError

    def apply(self, key: Hashable, feedback: F) -> None:
        """Tighten ``key``'s limits by what :meth:`read` found."""
        raise NotImplementedError

    async def apply_async(self, key: Hashable, feedback: F) -> None:
        """:meth:`apply` for tasks: the limiter's async verbs."""
        raise NotImplementedError

    def hold(self, key: Hashable, seconds: float) -> None:
        """Send nothing for ``key`` for ``seconds`` (before a retry)."""
        raise NotImplementedError

    async def hold_async(self, key: Hashable, seconds: float) -> None:
        """:meth:`hold` for tasks: the limiter's async verbs."""
        raise NotImplementedError

    def retries_for(self, request: Request) -> int:
        """How many retries ``request`` may have: none if its body cannot be sent again."""
        replayable = isinstance(request.stream, library_of(request).ByteStream)
        return self.retries if replayable else 0

    def learn(self, key: Hashable, response: Response) -> float | None:
        """Feed the response's headers to the limiter; the server's Retry-After if any.

        A backend that fails here is logged, never raised: the response has arrived.
        """
        if not self.use_headers:
            return None
        feedback, retry_after = self.read(response)
        try:
            self.apply(key, feedback)
        except BackendError as error:
            log.warning("could not apply the response's rate-limit headers: %s", error)
        return retry_after

    async def learn_async(self, key: Hashable, response: Response) -> float | None:
        """:meth:`learn` for tasks: the limiter's async verbs."""
        if not self.use_headers:
            return None
        feedback, retry_after = self.read(response)
        try:
            await self.apply_async(key, feedback)
        except BackendError as error:
            log.warning("could not apply the response's rate-limit headers: %s", error)
        return retry_after

    def retry_hold(self, response: Response, left: int, wait: float | None) -> float | None:
        """Whether to send a 429/503 again (``left`` retries remain), and what to hold first.

        Returns:
            ``None``: no retry (none left, another status, or a ``Retry-After`` beyond
            ``max_retry_after``: the caller sees the response); ``0.0``: retry, the
            server's ``Retry-After`` being held already; else retry after holding the key
            this many seconds: ``retry_backoff``, doubled on each retry (never beyond
            ``max_retry_after``).
        """
        if left <= 0 or response.status_code not in self.retry_statuses:
            return None
        if wait is None:
            return min(self.retry_backoff * 2.0 ** (self.retries - left), self.max_retry_after)
        return 0.0 if wait <= self.max_retry_after else None

    def retry(self, key: Hashable, response: Response, left: int, wait: float | None) -> bool:
        """Whether to send ``response``'s request again, after the hold it needs."""
        hold = self.retry_hold(response, left, wait)
        if hold:
            self.hold(key, hold)
        return hold is not None

    async def retry_async(
        self, key: Hashable, response: Response, left: int, wait: float | None
    ) -> bool:
        """:meth:`retry` for tasks: the limiter's async verbs."""
        hold = self.retry_hold(response, left, wait)
        if hold:
            await self.hold_async(key, hold)
        return hold is not None


class Face:
    """What every transport of limitor is: the transport(s) it wraps, and its policy."""

    _IS_ASYNC = False
    _inner: Inner
    _policy: Policy[Any]

    def _wrap(self, transport: object, policy: Policy[Any]) -> None:
        """Wrap ``transport`` (None: a default one per library) and send through ``policy``."""
        self._inner = Inner(transport, is_async=self._IS_ASYNC)
        self._policy = policy


class SyncFace(Face, SyncBase):
    """A sync transport: each request goes through the policy's :meth:`Policy.send`."""

    @overload
    def handle_request(self, request: httpx.Request) -> httpx.Response: ...
    @overload
    def handle_request(self, request: httpx2.Request) -> httpx2.Response: ...
    def handle_request(self, request: Request) -> Response:
        """Send ``request`` within the limits (waiting for them, or refused)."""
        return self._policy.send(self._inner.for_request(request), request)

    def close(self) -> None:
        """Close the wrapped transport."""
        for transport in self._inner.all():
            transport.close()


class AsyncFace(Face, AsyncBase):
    """An async transport: each request goes through the policy's :meth:`Policy.send_async`."""

    _IS_ASYNC = True

    @overload
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response: ...
    @overload
    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response: ...
    async def handle_async_request(self, request: Request) -> Response:
        """Send ``request`` within the limits (awaiting them, or refused)."""
        return await self._policy.send_async(self._inner.for_request(request), request)

    async def aclose(self) -> None:
        """Close the wrapped transport."""
        for transport in self._inner.all():
            await transport.aclose()
