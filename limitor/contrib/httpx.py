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

from collections.abc import Hashable, Iterable
from typing import TYPE_CHECKING, Any, Generic, Literal, TypedDict

from limitor._keywords import Keywords
from limitor.configs import BucketConfig
from limitor.contrib._common import missing
from limitor.contrib._headers import (
    RETRY_STATUSES,
    Feedback,
    apply_feedback,
    apply_feedback_async,
    read_feedback,
)
from limitor.contrib._keyed import limiter_from
from limitor.contrib._transport import LIBRARIES as LIBRARIES
from limitor.contrib._transport import (
    TRANSPORT_DEFAULTS,
    AsyncFace,
    AsyncTransport,
    Face,
    Policy,
    SyncFace,
    SyncTransport,
    Transport,
    TransportKeywords,
)
from limitor.contrib._transport import host_key as host_key
from limitor.errors import ConfigError, RateLimitExceeded
from limitor.per_user import PerUserLimiter

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from limitor.contrib._transport import Request, Response

try:
    import http_sf  # noqa: F401  (the headers' parser: part of the same extra)
except ImportError as error:  # pragma: no cover - depends on the environment
    raise missing("limitor.contrib.httpx", "httpx", error) from error

__all__ = ("AsyncRateLimitedTransport", "RateLimitedTransport", "host_key")


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


class _Limits(Policy[Feedback]):
    """The policy of both rate-limited transports: one bucket per key, the server's headers."""

    def __init__(self, options: RateLimitedTransportKeywords) -> None:
        self.limiter = limiter_from(options, options["max_hosts"])
        on_limit = options["on_limit"]
        if on_limit not in ("wait", "raise"):
            raise ConfigError(f"on_limit must be 'wait' or 'raise', got {on_limit!r}")
        self.police = on_limit == "raise"
        super().__init__(options)
        statuses = frozenset(options["retry_statuses"])
        if not statuses <= RETRY_STATUSES | {500, 502, 504}:
            raise ConfigError(f"retry_statuses must be among 429, 500, 502, 503, 504: {statuses!r}")
        self.retry_statuses = statuses

    def send(self, transport: Any, request: Request) -> Response:
        """Wait for the request's bucket, send it, learn from the response, maybe retry."""
        limiter = self.limiter
        key = self.key(request)
        left = self.retries_for(request)
        while True:
            if not self.police:
                limiter.acquire(key, 1, self.timeout)
            elif not limiter.try_acquire(key):
                raise self.refusal(key, limiter.status(key).retry_after)
            response: Response = transport.handle_request(request)
            wait = self.learn(key, response)
            if not self.retry(key, response, left, wait):
                return response
            response.close()
            left -= 1

    async def send_async(self, transport: Any, request: Request) -> Response:
        """:meth:`send` for tasks: the limiter's async verbs."""
        limiter = self.limiter
        key = self.key(request)
        left = self.retries_for(request)
        while True:
            if not self.police:
                await limiter.acquire_async(key, 1, self.timeout)
            elif not await limiter.try_acquire_async(key):
                raise self.refusal(key, (await limiter.status_async(key)).retry_after)
            response: Response = await transport.handle_async_request(request)
            wait = await self.learn_async(key, response)
            if not await self.retry_async(key, response, left, wait):
                return response
            await response.aclose()
            left -= 1

    @staticmethod
    def refusal(key: Hashable, retry_after: float) -> RateLimitExceeded:
        return RateLimitExceeded(
            f"rate limit for {key!r} exceeded; retry in {retry_after:.6g}s",
            retry_after=retry_after,
        )

    def read(self, response: Response) -> tuple[Feedback, float | None]:
        feedback = read_feedback(response.headers.multi_items(), response.status_code)
        return feedback, feedback.retry_after

    def apply(self, key: Hashable, feedback: Feedback) -> None:
        apply_feedback(self.limiter, key, feedback, max_hold=self.max_retry_after)

    async def apply_async(self, key: Hashable, feedback: Feedback) -> None:
        await apply_feedback_async(self.limiter, key, feedback, max_hold=self.max_retry_after)

    def hold(self, key: Hashable, seconds: float) -> None:
        self.limiter.hold(seconds, key=key)

    async def hold_async(self, key: Hashable, seconds: float) -> None:
        await self.limiter.hold_async(seconds, key=key)


class _RateLimited(Face, Generic[Transport]):
    """The keywords and limiter of both rate-limited transports, whatever they wrap."""

    _policy: _Limits

    @_KEYWORDS.signature
    def __init__(
        self, transport: Transport | None = None, **options: Unpack[RateLimitedTransportKeywords]
    ) -> None:
        owner = f"{type(self).__name__}.__init__"
        self._wrap(transport, _Limits(_KEYWORDS.fill(options, owner)))

    @property
    def limiter(self) -> PerUserLimiter:
        """The per-key limiter (``limiter.status(host)``, ``limiter.stats``...)."""
        return self._policy.limiter


class RateLimitedTransport(_RateLimited[SyncTransport], SyncFace):
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


class AsyncRateLimitedTransport(_RateLimited[AsyncTransport], AsyncFace):
    """The async twin of :class:`RateLimitedTransport` (asyncio and trio).

    It takes the same arguments, with an httpx or httpx2 ``AsyncBaseTransport`` to wrap
    (default: ``AsyncHTTPTransport()`` of each request's library); waiting never blocks
    the event loop.
    """
