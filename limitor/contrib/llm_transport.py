"""httpx / httpx2 transports that keep an LLM client within requests *and* tokens per minute.

Put one under the official SDKs' HTTP client and every call of that client is limited,
with no other change to the code::

    import httpx2
    import openai
    from limitor.contrib.llm_transport import LLMTransport

    client = openai.OpenAI(
        http_client=httpx2.Client(transport=LLMTransport(rpm=500, tpm=200_000))
    )

For each request the transport:

1. estimates its tokens from the JSON body (the text of ``messages``, ``input``,
   ``instructions``, ``system``, as :func:`limitor.llm.estimate_tokens` counts it, plus
   ``max_tokens`` / ``max_completion_tokens`` / ``max_output_tokens``), and waits until
   one request and those tokens fit, in one :class:`~limitor.llm.LLMLimiter` decision;
2. reads the provider's rate-limit headers (OpenAI's ``x-ratelimit-*``, Anthropic's
   ``anthropic-ratelimit-*``, ``retry-after``): they tighten the limits, never loosen them;
3. reconciles the estimate with the usage the response reports, read from the bytes as
   they pass to the caller, unchanged: the JSON body's ``usage``, or a stream's usage event
   (OpenAI's final chunk with ``stream_options={"include_usage": True}``, the Responses
   API's ``response.completed``, Anthropic's ``message_start`` and ``message_delta``). A
   stream without usage is reconciled from the text it carried (characters / 4).

After a ``429`` with ``Retry-After``, nothing is sent to that host until then, and then
the waiting requests go one request interval apart, as the provider's emptied bucket
refills (no thundering herd).

Retries: the SDKs retry a 429 themselves (``max_retries``, 2 by default), and each retry
passes through this transport again, so it waits for the limiter. That is the default
(``retries=0`` here). To let the transport retry instead, give it ``retries=N`` *and*
build the SDK client with ``max_retries=0``; never both, or the retries multiply.

Limits live in this process by default; with ``backend=`` (a
:class:`~limitor.backends.redis.RedisBackend`) and ``name=`` every process using that
backend shares them. Needs ``pip install "limitor[httpx2]"`` (or ``[httpx]``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Hashable, Mapping
from typing import TYPE_CHECKING, Any, Literal, TypedDict, overload

import anyio

from limitor._keywords import Keywords
from limitor.backends.base import Backend
from limitor.contrib._llm_usage import Call, UsageReader, default_estimate, observed, request_body
from limitor.contrib._llm_usage import Dialect as Dialect
from limitor.contrib._llm_usage import dialect_of as dialect_of
from limitor.contrib.httpx import (
    LIBRARIES,
    TRANSPORT_DEFAULTS,
    AsyncBase,
    Inner,
    RetryRule,
    SyncBase,
    TransportKeywords,
    library_of,
)
from limitor.errors import BackendError, ConfigError, ConfigTypeError
from limitor.llm.headers import MAX_HEADER_WAIT, parse_rate_limit_headers
from limitor.llm.limits import Cost, LLMLimiter
from limitor.results import Reservation

if TYPE_CHECKING:
    import httpx
    import httpx2
    from typing_extensions import Unpack

    from limitor.contrib.httpx import Request, Response

__all__ = ("AsyncLLMTransport", "LLMTransport", "UsageReader", "default_estimate", "dialect_of")

log = logging.getLogger("limitor")

_RETRY_STATUSES = frozenset({429, 503})
_WAIT_HEADERS = frozenset({"retry-after", "retry-after-ms"})


class _LLMKeywords(TypedDict, total=False):
    rpm: float | None
    tpm: float | None
    limiter: LLMLimiter | None
    provider: Literal["auto", "openai", "anthropic"]
    estimate: Callable[[Mapping[str, Any]], object] | None
    backend: Backend | None


class LLMTransportKeywords(_LLMKeywords, TransportKeywords, total=False):
    """The keywords of :class:`LLMTransport` and :class:`AsyncLLMTransport`."""


_KEYWORDS = Keywords(LLMTransportKeywords, {**TRANSPORT_DEFAULTS, "provider": "auto"})


class _Policy(RetryRule):
    """What both LLM transports share: the limiter, estimate, headers and retry rule."""

    def __init__(self, options: LLMTransportKeywords) -> None:
        rpm, tpm, limiter = options["rpm"], options["tpm"], options["limiter"]
        backend = options["backend"]
        if limiter is not None:
            if not isinstance(limiter, LLMLimiter):
                raise ConfigTypeError(f"limiter must be an LLMLimiter, got {limiter!r}")
            if rpm is not None or tpm is not None or backend is not None:
                raise ConfigError("give either limiter= or rpm=/tpm=/backend=, not both")
            self.limiter = limiter
        else:
            if rpm is None and tpm is None:
                raise ConfigError("give rpm= and/or tpm= (or limiter=)")
            self.limiter = LLMLimiter(
                requests_per_minute=rpm,
                tokens_per_minute=tpm,
                backend=backend,
                name=options["name"],
                clock=options["clock"],
            )
        provider = options["provider"]
        if provider not in ("auto", "openai", "anthropic"):
            raise ConfigError(f"provider must be 'auto', 'openai' or 'anthropic', got {provider!r}")
        self.provider = provider
        super().__init__(options)
        estimate = options["estimate"]
        if estimate is not None and not callable(estimate):
            raise ConfigTypeError(f"estimate must be a function of the body, got {estimate!r}")
        self.estimate = default_estimate if estimate is None else estimate
        self._tokens_burst = min(
            (limit.max_burst for limit in self.limiter.limits if limit.unit == "tokens"),
            default=math.inf,
        )
        requests = [limit for limit in self.limiter.limits if limit.unit == "requests"]
        self._requests = min(requests, key=lambda limit: limit.seconds, default=None)

    def cost_of(self, request: Request) -> Cost:
        """The request's estimated cost (one request, the body's tokens), within the burst."""
        body = request_body(request)
        if body is None:
            return Cost(tokens=0.0)
        try:
            value = self.estimate(body)
        except Exception:
            log.exception("the token estimate failed; counting the request only")
            return Cost(tokens=0.0)
        cost = value if isinstance(value, Cost) else Cost(tokens=float(value))  # type: ignore[arg-type]
        if cost.total_tokens > self._tokens_burst:  # the provider will say no; let it say so
            scale = self._tokens_burst / cost.total_tokens
            cost = Cost(
                input_tokens=cost.input_tokens * scale, output_tokens=cost.output_tokens * scale
            )
        return cost

    @staticmethod
    def prepare(request: Request) -> None:
        """Ask for encodings whose bytes the usage reader can read (gzip, deflate)."""
        accepted = request.headers.get("accept-encoding")
        if accepted is not None and any(name in accepted for name in ("br", "zstd")):
            request.headers["accept-encoding"] = "gzip, deflate"

    def reader_for(self, response: Response, estimate: Cost) -> UsageReader:
        headers = response.headers
        return UsageReader(
            headers.get("content-type", ""), headers.get("content-encoding", ""), estimate
        )

    def _feedback(self, response: Response) -> tuple[list[tuple[str, str]], float | None] | None:
        """The headers to tighten the limits by, and the hold a 429/503 asks (None: none)."""
        if not self.use_headers:
            return None
        pairs = response.headers.multi_items()
        waits = [(name, value) for name, value in pairs if name.lower() in _WAIT_HEADERS]
        if waits:  # the hold comes after the rest, which it must not hide
            pairs = [(name, value) for name, value in pairs if name.lower() not in _WAIT_HEADERS]
        if not waits or response.status_code not in _RETRY_STATUSES:
            return pairs, None
        return pairs, parse_rate_limit_headers(waits, strict=False).retry_after

    def learn(self, key: Hashable, response: Response) -> float | None:
        """Tighten the limits by the response's headers; the server's Retry-After if any.

        A backend that fails here is logged, never raised: the response has arrived.
        """
        feedback = self._feedback(response)
        if feedback is None:
            return None
        pairs, retry_after = feedback
        try:
            self.limiter.update_from_headers(pairs, key=key)
            if retry_after is not None:
                self.pace_after_hold(key, min(retry_after, MAX_HEADER_WAIT))
        except BackendError as error:
            log.warning("could not apply the response's rate-limit headers: %s", error)
        return retry_after

    async def learn_async(self, key: Hashable, response: Response) -> float | None:
        """:meth:`learn` for tasks: the limiter's async verbs only."""
        feedback = self._feedback(response)
        if feedback is None:
            return None
        pairs, retry_after = feedback
        try:
            await self.limiter.update_from_headers_async(pairs, key=key)
            if retry_after is not None:
                await self.pace_after_hold_async(key, min(retry_after, MAX_HEADER_WAIT))
        except BackendError as error:
            log.warning("could not apply the response's rate-limit headers: %s", error)
        return retry_after

    def _charges(self, remaining: float, seconds: float) -> int:
        """How many requests to charge so that, after the hold, one goes per interval.

        ``charge`` takes one request a call (a Cost's requests stay 1), so one call per
        request; bounded by what the limit can hold and refill meanwhile.
        """
        limit = self._requests
        assert limit is not None
        excess = remaining + limit.rate * seconds - 1.0
        return min(math.floor(excess + 1e-9), math.ceil(limit.max_burst * 2))

    def pace_after_hold(self, key: Hashable, seconds: float) -> None:
        """Model the provider's emptied bucket: after the hold, one request per interval.

        A hold alone would end with the limiter as it would have been (often full), and
        every waiting request would go at once. A 429 says the provider's bucket is empty:
        so the requests limit is charged what it would refill during the hold, less one
        request, and the waiters then go one request interval apart.
        """
        limit = self._requests
        if limit is not None:
            remaining = self.limiter.status(key)[limit.name].remaining
            for _ in range(self._charges(remaining, seconds)):
                self.limiter.charge(0, key=key)
        self.limiter.hold(seconds, key=key)

    async def pace_after_hold_async(self, key: Hashable, seconds: float) -> None:
        """:meth:`pace_after_hold` for tasks: the limiter's async verbs only."""
        limit = self._requests
        if limit is not None:
            remaining = (await self.limiter.status_async(key))[limit.name].remaining
            for _ in range(self._charges(remaining, seconds)):
                await self.limiter.charge_async(0, key=key)
        await self.limiter.hold_async(seconds, key=key)

    def _backoff(self, left: int, wait: float | None) -> float | None:
        """The hold before retrying without a Retry-After; None: nothing to hold."""
        if wait is not None:
            return None
        return self.backoff(left)

    def _retry(self, response: Response, left: int, wait: float | None) -> bool:
        if left <= 0 or response.status_code not in _RETRY_STATUSES:
            return False
        return wait is None or wait <= self.max_retry_after

    def hold_for_retry(
        self, key: Hashable, response: Response, left: int, wait: float | None
    ) -> bool:
        """Whether to send a 429/503 again (``left`` retries remain); holds when no Retry-After."""
        if not self._retry(response, left, wait):
            return False
        backoff = self._backoff(left, wait)
        if backoff is not None:
            self.pace_after_hold(key, backoff)
        return True

    async def hold_for_retry_async(
        self, key: Hashable, response: Response, left: int, wait: float | None
    ) -> bool:
        """:meth:`hold_for_retry` for tasks: the limiter's async verbs only."""
        if not self._retry(response, left, wait):
            return False
        backoff = self._backoff(left, wait)
        if backoff is not None:
            await self.pace_after_hold_async(key, backoff)
        return True

    @staticmethod
    def replayable(request: Request) -> bool:
        return isinstance(request.stream, library_of(request).ByteStream)


def _settled_now(reservation: Reservation, response: Response) -> bool:
    """A response that did not generate (any status but 2xx) costs its request only."""
    if 200 <= response.status_code < 300:
        return False
    try:
        reservation.reconcile(Cost(tokens=0.0))  # type: ignore[arg-type]
    except Exception:
        log.exception("could not give back an unanswered LLM call's tokens")
    return True


async def _settled_now_async(reservation: Reservation, response: Response) -> bool:
    """:func:`_settled_now` for tasks: the reservation's async verb."""
    if 200 <= response.status_code < 300:
        return False
    try:
        await reservation.reconcile_async(Cost(tokens=0.0))  # type: ignore[arg-type]
    except Exception:
        log.exception("could not give back an unanswered LLM call's tokens")
    return True


class LLMTransport(SyncBase):
    """A sync transport that limits requests and tokens per minute for an LLM client.

    Args:
        transport: the transport that sends the requests, of httpx or httpx2 (default:
            ``HTTPTransport()`` of each request's library).
        rpm: requests per minute.
        tpm: tokens (input plus output) per minute.
        limiter: an existing :class:`~limitor.llm.LLMLimiter` instead of ``rpm``/``tpm``
            (to share one set of limits between clients, or to set more limits).
        provider: ``"openai"``, ``"anthropic"`` or ``"auto"`` (from the URL); the
            transport reads both providers' headers and usage either way.
        key: a function of the request giving the key of its limits (default: its
            host; return ``None`` for one set shared by every host).
        estimate: a function of the JSON body giving its cost (a number of tokens or a
            :class:`~limitor.llm.Cost`; default: :func:`default_estimate`).
        timeout: the longest wait accepted (``AcquireTimeout`` beyond it, at once).
        retries: how many times the transport itself retries a 429 or 503 (default 0:
            the SDKs retry; see the module's notes).
        max_retry_after: a ``Retry-After`` above this many seconds is not retried.
        retry_backoff: the hold before retrying a 429/503 without ``Retry-After``,
            doubled on each further retry.
        use_headers: read the providers' rate-limit headers (default True).
        backend: where the limits live (a Redis backend shares them across processes).
        name: the limits' identity in the backend.
        clock: the time source (tests: ``limitor.testing.FakeClock``).
    """

    @_KEYWORDS.signature
    def __init__(
        self,
        transport: httpx.BaseTransport | httpx2.BaseTransport | None = None,
        **options: Unpack[LLMTransportKeywords],
    ) -> None:
        self._inner = Inner(transport, is_async=False)
        self._policy = _Policy(_KEYWORDS.fill(options, "LLMTransport.__init__"))

    @property
    def limiter(self) -> LLMLimiter:
        """The limits (``limiter.status(host)``, ``limiter.stats``...)."""
        return self._policy.limiter

    @overload
    def handle_request(self, request: httpx.Request) -> httpx.Response: ...
    @overload
    def handle_request(self, request: httpx2.Request) -> httpx2.Response: ...
    def handle_request(self, request: Request) -> Response:
        """Wait for the request's cost, send it, learn, and reconcile as the body passes."""
        policy = self._policy
        transport = self._inner.for_request(request)
        key = policy.key(request)
        cost = policy.cost_of(request)
        policy.prepare(request)
        left = policy.retries if policy.replayable(request) else 0
        while True:
            reservation = policy.limiter.acquire(cost, key=key, timeout=policy.timeout)
            try:
                response: Response = transport.handle_request(request)
            except BaseException:
                reservation.cancel()
                raise
            wait = policy.learn(key, response)
            if _settled_now(reservation, response):
                if policy.hold_for_retry(key, response, left, wait):
                    response.close()
                    left -= 1
                    continue
                return response
            call = Call(policy.limiter, reservation, cost, policy.reader_for(response, cost))
            return observed(request, response, call)  # type: ignore[no-any-return]

    def close(self) -> None:
        """Close the wrapped transport."""
        for transport in self._inner.all():
            transport.close()


class AsyncLLMTransport(AsyncBase):
    """The async twin of :class:`LLMTransport` (asyncio and trio); same arguments.

    Use it under ``httpx2.AsyncClient`` (``openai.AsyncOpenAI(http_client=...)``,
    ``anthropic.AsyncAnthropic(http_client=...)``); waiting never blocks the event loop.
    """

    @_KEYWORDS.signature
    def __init__(
        self,
        transport: httpx.AsyncBaseTransport | httpx2.AsyncBaseTransport | None = None,
        **options: Unpack[LLMTransportKeywords],
    ) -> None:
        self._inner = Inner(transport, is_async=True)
        self._policy = _Policy(_KEYWORDS.fill(options, "AsyncLLMTransport.__init__"))

    @property
    def limiter(self) -> LLMLimiter:
        """The limits (``limiter.status(host)``, ``limiter.stats``...)."""
        return self._policy.limiter

    @overload
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response: ...
    @overload
    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response: ...
    async def handle_async_request(self, request: Request) -> Response:
        """Await the request's cost, send it, learn, and reconcile as the body passes."""
        policy = self._policy
        transport = self._inner.for_request(request)
        key = policy.key(request)
        cost = policy.cost_of(request)
        policy.prepare(request)
        left = policy.retries if policy.replayable(request) else 0
        while True:
            reservation = await policy.limiter.acquire_async(cost, key=key, timeout=policy.timeout)
            try:
                response: Response = await transport.handle_async_request(request)
            except BaseException:
                with anyio.CancelScope(shield=True):  # give back, even when cancelled
                    await reservation.cancel_async()
                raise
            wait = await policy.learn_async(key, response)
            if await _settled_now_async(reservation, response):
                if await policy.hold_for_retry_async(key, response, left, wait):
                    await response.aclose()
                    left -= 1
                    continue
                return response
            call = Call(policy.limiter, reservation, cost, policy.reader_for(response, cost))
            return observed(request, response, call)  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        """Close the wrapped transport."""
        for transport in self._inner.all():
            await transport.aclose()


assert LIBRARIES  # the import of limitor.contrib.httpx found httpx or httpx2
