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
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeAlias, TypedDict

import anyio

from limitor._keywords import Keywords
from limitor.backends.base import Backend
from limitor.contrib._llm_usage import Call, UsageReader, default_estimate, observed, request_body
from limitor.contrib._llm_usage import Dialect as Dialect
from limitor.contrib._llm_usage import dialect_of as dialect_of
from limitor.contrib._transport import (
    LIBRARIES,
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
from limitor.errors import ConfigError, ConfigTypeError
from limitor.llm.headers import MAX_HEADER_WAIT, parse_rate_limit_headers
from limitor.llm.limits import Cost, LLMLimiter
from limitor.results import Reservation

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from limitor.contrib._transport import Request, Response

__all__ = ("AsyncLLMTransport", "LLMTransport", "UsageReader", "default_estimate", "dialect_of")

log = logging.getLogger("limitor")

_WAIT_HEADERS = frozenset({"retry-after", "retry-after-ms"})

_Feedback: TypeAlias = "tuple[list[tuple[str, str]], float | None]"
"""The headers that tighten the limits, and the hold a 429/503 asks (``None``: none)."""


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


class _LLMPolicy(Policy[_Feedback]):
    """What both LLM transports share: the limiter, the estimate, the headers, the retries."""

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

    def read(self, response: Response) -> tuple[_Feedback, float | None]:
        pairs = response.headers.multi_items()
        waits = [(name, value) for name, value in pairs if name.lower() in _WAIT_HEADERS]
        if waits:  # the hold comes after the rest, which it must not hide
            pairs = [(name, value) for name, value in pairs if name.lower() not in _WAIT_HEADERS]
        if not waits or response.status_code not in self.retry_statuses:
            return (pairs, None), None
        retry_after = parse_rate_limit_headers(waits, strict=False).retry_after
        return (pairs, retry_after), retry_after

    def apply(self, key: Hashable, feedback: _Feedback) -> None:
        pairs, retry_after = feedback
        self.limiter.update_from_headers(pairs, key=key)
        if retry_after is not None:
            self.hold(key, min(retry_after, MAX_HEADER_WAIT))

    async def apply_async(self, key: Hashable, feedback: _Feedback) -> None:
        pairs, retry_after = feedback
        await self.limiter.update_from_headers_async(pairs, key=key)
        if retry_after is not None:
            await self.hold_async(key, min(retry_after, MAX_HEADER_WAIT))

    def _charges(self, remaining: float, seconds: float) -> int:
        """How many requests to charge so that, after the hold, one goes per interval.

        ``charge`` takes one request a call (a Cost's requests stay 1), so one call per
        request; bounded by what the limit can hold and refill meanwhile.
        """
        limit = self._requests
        assert limit is not None
        excess = remaining + limit.rate * seconds - 1.0
        return min(math.floor(excess + 1e-9), math.ceil(limit.max_burst * 2))

    def hold(self, key: Hashable, seconds: float) -> None:
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

    async def hold_async(self, key: Hashable, seconds: float) -> None:
        """:meth:`hold` for tasks: the limiter's async verbs only."""
        limit = self._requests
        if limit is not None:
            remaining = (await self.limiter.status_async(key))[limit.name].remaining
            for _ in range(self._charges(remaining, seconds)):
                await self.limiter.charge_async(0, key=key)
        await self.limiter.hold_async(seconds, key=key)

    def _start(self, request: Request) -> tuple[Hashable, Cost, int]:
        """A request's key, its estimated cost and its retries; its encodings made readable."""
        key = self.key(request)
        cost = self.cost_of(request)
        self.prepare(request)
        return key, cost, self.retries_for(request)

    def _observed(
        self, request: Request, response: Response, reservation: Reservation, cost: Cost
    ) -> Response:
        """``response`` with its body settling ``reservation`` as it passes."""
        headers = response.headers
        reader = UsageReader(
            headers.get("content-type", ""), headers.get("content-encoding", ""), cost
        )
        return observed(request, response, Call(reservation, reader))  # type: ignore[no-any-return]

    def send(self, transport: Any, request: Request) -> Response:
        """Wait for the request's cost, send it, learn, and reconcile as the body passes."""
        key, cost, left = self._start(request)
        while True:
            reservation = self.limiter.acquire(cost, key=key, timeout=self.timeout)
            try:
                response: Response = transport.handle_request(request)
            except BaseException:
                reservation.cancel()
                raise
            wait = self.learn(key, response)
            if not _unanswered(response):
                return self._observed(request, response, reservation, cost)
            _give_back(reservation)
            if not self.retry(key, response, left, wait):
                return response
            response.close()
            left -= 1

    async def send_async(self, transport: Any, request: Request) -> Response:
        """:meth:`send` for tasks: the limiter's async verbs only."""
        key, cost, left = self._start(request)
        while True:
            reservation = await self.limiter.acquire_async(cost, key=key, timeout=self.timeout)
            try:
                response: Response = await transport.handle_async_request(request)
            except BaseException:
                with anyio.CancelScope(shield=True):  # give back, even when cancelled
                    await reservation.cancel_async()
                raise
            wait = await self.learn_async(key, response)
            if not _unanswered(response):
                return self._observed(request, response, reservation, cost)
            await _give_back_async(reservation)
            if not await self.retry_async(key, response, left, wait):
                return response
            await response.aclose()
            left -= 1


def _unanswered(response: Response) -> bool:
    """A response that did not generate (any status but 2xx): it costs its request only."""
    return not 200 <= response.status_code < 300


def _give_back(reservation: Reservation) -> None:
    """Give back an unanswered call's tokens (its request stays spent)."""
    try:
        reservation.reconcile(Cost(tokens=0.0))  # type: ignore[arg-type]
    except Exception:
        log.exception("could not give back an unanswered LLM call's tokens")


async def _give_back_async(reservation: Reservation) -> None:
    """:func:`_give_back` for tasks: the reservation's async verb."""
    try:
        await reservation.reconcile_async(Cost(tokens=0.0))  # type: ignore[arg-type]
    except Exception:
        log.exception("could not give back an unanswered LLM call's tokens")


class _LLMLimited(Face, Generic[Transport]):
    """The keywords and limiter of both LLM transports, whatever they wrap."""

    _policy: _LLMPolicy

    @_KEYWORDS.signature
    def __init__(
        self, transport: Transport | None = None, **options: Unpack[LLMTransportKeywords]
    ) -> None:
        owner = f"{type(self).__name__}.__init__"
        self._wrap(transport, _LLMPolicy(_KEYWORDS.fill(options, owner)))

    @property
    def limiter(self) -> LLMLimiter:
        """The limits (``limiter.status(host)``, ``limiter.stats``...)."""
        return self._policy.limiter


class LLMTransport(_LLMLimited[SyncTransport], SyncFace):
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


class AsyncLLMTransport(_LLMLimited[AsyncTransport], AsyncFace):
    """The async twin of :class:`LLMTransport` (asyncio and trio); same arguments.

    Use it under ``httpx2.AsyncClient`` (``openai.AsyncOpenAI(http_client=...)``,
    ``anthropic.AsyncAnthropic(http_client=...)``); waiting never blocks the event loop.
    """


assert LIBRARIES  # the import of limitor.contrib._transport found httpx or httpx2
