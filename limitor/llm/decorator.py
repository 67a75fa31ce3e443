"""``@llm_rate_limit``: requests and tokens per minute for a function that calls an LLM."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, overload

from limitor._binding import ArgumentBinder
from limitor._keywords import Keywords
from limitor.configs import parse_rate
from limitor.decorators import (
    Decorator,
    DecoratorOptions,
    custom_key,
    no_settings_with_limiter,
    param_key,
    target_of,
)
from limitor.decorators._forms import KeyOf
from limitor.decorators._options import BACKEND_DEFAULTS, BackendKeywords, FairKeywords
from limitor.errors import ConfigTypeError
from limitor.llm.limits import (
    LIMIT_NAMES,
    TOTAL_NAMES,
    Limit,
    LLMLimiter,
    NamedLimits,
    NamedTotals,
)
from limitor.llm.raw import response_headers
from limitor.llm.streams import wrap_stream
from limitor.llm.tokens import OUTPUT_LIMIT_NAMES, estimate_tokens

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ("llm_rate_limit",)

P = ParamSpec("P")
R = TypeVar("R")


def _default_estimate(func: Any) -> Callable[..., Any]:
    """:func:`estimate_tokens`, counting the signature's default ``max_tokens`` too.

    ``chat(messages)`` on ``def chat(messages, max_tokens=512)`` reserves the 512 output
    tokens the call allows, as ``chat(messages, max_tokens=512)`` does; a ``max_tokens``
    given by position counts as well.
    """
    try:
        binder = ArgumentBinder(target_of(func))
    except (TypeError, ValueError):  # no signature to read (some builtins)
        return estimate_tokens
    defaults = binder.defaults(OUTPUT_LIMIT_NAMES)
    if not defaults and not any(name in binder.parameters for name in OUTPUT_LIMIT_NAMES):
        return estimate_tokens  # nothing to bind: the call's keywords say it all
    normalize = binder.normalize

    def estimate(*args: Any, **kwargs: Any) -> Any:
        try:
            args, kwargs = normalize(args, kwargs)
        except TypeError:  # the call itself will say what is wrong
            return estimate_tokens(*args, **kwargs)
        for name, value in defaults.items():
            kwargs.setdefault(name, value)
        return estimate_tokens(*args, **kwargs)

    return estimate


def _rate_limits(requests: object, tokens: object) -> list[Limit]:
    """``requests="500/minute"``, ``tokens="200000/minute"`` as :class:`Limit` s."""
    found = []
    for unit, rate in (("requests", requests), ("tokens", tokens)):
        if rate is not None:
            if not isinstance(rate, str):
                raise ConfigTypeError(f"{unit} must be a rate string such as '500/minute'")
            config = parse_rate(rate)
            found.append(Limit(unit, config.capacity, config.seconds))  # type: ignore[arg-type]
    return found


def _feedback(
    read_headers: Callable[[Any], Any], limiter: Callable[[], LLMLimiter]
) -> tuple[Callable[[Any, Any], Any], Callable[[Any, Any], Awaitable[None]]]:
    """``on_outcome`` and ``on_outcome_async``: the provider's headers, applied to the limits.

    ``read_headers`` is ``rate_limit_headers`` (it may be async); ``limiter()`` is the
    decorator's limiter, made on first use.
    """

    def apply(call_key: Any, headers: Any) -> None:
        headers = response_headers(headers)  # a raw response, an SDK error...
        if headers is not None:
            limiter().update_from_headers(headers, key=call_key)

    async def feedback_async(call_key: Any, outcome: Any) -> None:
        headers = read_headers(outcome)
        if hasattr(type(headers), "__await__"):  # an async rate_limit_headers
            headers = await headers
        headers = response_headers(headers)  # a raw response, an SDK error...
        if headers is not None:
            await limiter().update_from_headers_async(headers, key=call_key)

    async def apply_later(call_key: Any, pending: Any) -> None:
        apply(call_key, await pending)

    def feedback(call_key: Any, outcome: Any) -> Any:
        headers = read_headers(outcome)
        if hasattr(type(headers), "__await__"):  # an async rate_limit_headers
            return apply_later(call_key, headers)
        apply(call_key, headers)
        return None

    return feedback, feedback_async


def _limiter_or_maker(
    given: LLMRateLimitKeywords, checked: DecoratorOptions
) -> tuple[LLMLimiter | None, Callable[[Any, bool], LLMLimiter] | None]:
    """The ``limiter=`` given (checked alone), or how to make the decorator's own limiter.

    Raises:
        ConfigError: a setting is invalid, or given beside ``limiter=``.
    """
    values: Mapping[str, Any] = given
    totals = {name: values[name] for name in _TOTALS}
    limiter = given["limiter"]
    if limiter is not None:
        if not isinstance(limiter, LLMLimiter):
            raise ConfigTypeError(f"limiter must be an LLMLimiter, got {limiter!r}")
        settings = ("requests", "tokens", "limits", "ttl", "safety_margin")
        no_settings_with_limiter(
            **{name: values[name] for name in LIMIT_NAMES},
            **{name: values[name] or None for name in settings},
            **{name: value or None for name, value in totals.items()},
            **checked.given_limiter_settings(),
        )
        return limiter, None
    arguments: dict[str, Any] = {
        **{name: values[name] for name in LIMIT_NAMES},
        "limits": (*_rate_limits(given["requests"], given["tokens"]), *given["limits"]),
        "max_keys": given["max_keys"],
        "ttl": given["ttl"],
        "safety_margin": given["safety_margin"],
        **totals,
    }
    LLMLimiter(**arguments)  # check now

    def make(func: Any, is_async: bool) -> LLMLimiter:
        return LLMLimiter(clock=checked.clock, **arguments, **checked.limiter_arguments(func))

    return None, make


def _key_of(key: object) -> Callable[[Any], KeyOf] | None:
    """How to find a call's key: ``None`` (one set of limits), a callable, or a parameter.

    Raises:
        ConfigTypeError: ``key`` is neither a callable nor a parameter name.
    """
    if key is None:
        return None
    if isinstance(key, str):
        if not key.isidentifier():
            raise ConfigTypeError(f"key must be a parameter name or a callable, got {key!r}")
        return lambda func: param_key(func, key)
    if not callable(key):
        raise ConfigTypeError(f"key must be a parameter name or a callable, got {key!r}")
    return lambda func: custom_key(func, key)


class LLMRateLimitKeywords(NamedLimits, BackendKeywords, NamedTotals, FairKeywords, total=False):
    """The keywords of :func:`llm_rate_limit`."""

    requests: str | None
    tokens: str | None
    limits: tuple[Limit, ...]
    token_estimate: Callable[..., Any] | None
    token_reconcile: Callable[[Any], Any] | None
    rate_limit_headers: Callable[[Any], Any] | None
    key: Callable[..., Hashable] | str | None
    max_keys: int
    ttl: float | None
    limiter: LLMLimiter | None
    safety_margin: float
    total_limits: tuple[Limit, ...]


_LLM_RATE_LIMIT = Keywords(
    LLMRateLimitKeywords,
    {
        **BACKEND_DEFAULTS,
        "limits": (),
        "max_keys": 10_000,
        "safety_margin": 0.0,
        "total_limits": (),
        "fair": False,
    },
)
_TOTALS = (*TOTAL_NAMES, "total_limits", "fair", "weight")


@overload
def llm_rate_limit(_func: Callable[P, R]) -> Callable[P, R]: ...


@overload
def llm_rate_limit(
    _func: None = None, **options: Unpack[LLMRateLimitKeywords]
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


@_LLM_RATE_LIMIT.signature
def llm_rate_limit(
    _func: Callable[P, R] | None = None, **options: Unpack[LLMRateLimitKeywords]
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Keep a function that calls an LLM within its requests and tokens per minute.

    Each call is admitted only when every limit has room, all at once. Its cost is
    estimated before it runs (one request plus ``token_estimate(*args, **kwargs)``
    tokens: a number, or a :class:`~limitor.llm.Cost` with input and output tokens) and,
    with ``token_reconcile``, corrected from the result afterwards: unused tokens come
    back at once, an underestimate becomes debt that delays later calls. The caller always
    gets its result; if the call raises, its estimate is refunded.

    Args:
        requests_per_minute: RPM. Each limit's burst is its whole per-minute amount.
        tokens_per_minute: TPM (input plus output tokens).
        input_tokens_per_minute: ITPM, for providers that limit input separately.
        output_tokens_per_minute: OTPM.
        requests_per_day: RPD.
        tokens_per_day: TPD.
        requests: a requests limit as a rate string (``"500/minute"``).
        tokens: a tokens limit as a rate string (``"200000/minute"``).
        limits: more :class:`~limitor.llm.Limit` s (custom periods or bursts).
        token_estimate: the call's cost from its arguments; default
            :func:`~limitor.llm.estimate_tokens` (characters / 4 plus ``max_tokens``,
            the signature's default ``max_tokens`` included).
        token_reconcile: the call's real cost from its result, for example
            :func:`~limitor.llm.usage_tokens`; it may be ``async`` for an async function
            (awaited).
        rate_limit_headers: returns the response's headers (or ``None``) from the result,
            or from the exception when the call raised (a 429); the limits are then
            tightened to what the provider reports, never loosened. It may return an
            SDK raw response, stream or error instead of headers
            (:func:`~limitor.llm.response_headers` finds them; pass that function
            itself for the common case), and may be ``async`` for an async function.
        key: limits per key (user, tenant, model...): a function of the call's
            arguments, or the name of the parameter that holds the key (its default
            when the call gives none); default: one set of limits for every call.
        max_keys: with ``key``, how many keys' limits to keep in memory.
        ttl: with ``key``, keep a key's limits at least this long after they were stored.
        limiter: an existing :class:`~limitor.llm.LLMLimiter` to share.
        timeout: the longest wait accepted; a longer one raises ``AcquireTimeout`` at once.
        on_limit: ``"wait"`` (default) or ``"raise"`` (``RateLimitExceeded`` at once).
        clock: the time source (tests pass a ``FakeClock``).
        backend: where the limits' state lives (default: in this process's memory).
        name: the limits' identity in the backend (default: the first decorated
            function's module and qualified name).
        on_backend_error: ``"raise"`` (default) or ``"allow"``.
        safety_margin: seconds of refill held back from each limit's burst, so that
            limits equal to the provider's never over-admit its bucket (the client
            starts refilling one request latency before the provider does). Default 0
            (the exact limits); :data:`~limitor.llm.SAFETY_MARGIN` (0.2 s) is the
            recommended value when the limits are the provider's own.
        total_requests_per_minute: with ``key``, requests per minute for every key
            together (the provider key's RPM over the per-key limits); the other
            ``total_...`` arguments likewise (see :class:`~limitor.llm.LLMLimiter`).
        total_tokens_per_minute: tokens per minute for every key together.
        total_input_tokens_per_minute: input tokens per minute for every key together.
        total_output_tokens_per_minute: output tokens per minute for every key together.
        total_requests_per_day: requests per day for every key together.
        total_tokens_per_day: tokens per day for every key together.
        total_limits: more totals as :class:`~limitor.llm.Limit` s.
        fair: while a total binds, waiting calls take turns across keys (weighted round
            robin, each key FIFO); default FIFO. Needs a total.
        weight: with ``fair=True``, a key's share of the totals (callable key ->
            positive number; default 1).

    Example:
        >>> @llm_rate_limit(requests_per_minute=500, tokens_per_minute=200_000)
        ... def complete(prompt: str, max_tokens: int = 256) -> str:
        ...     return prompt
        >>> @llm_rate_limit(  # a gateway: each user's limits under the provider key's
        ...     requests_per_minute=20, tokens_per_minute=20_000, key="user",
        ...     total_requests_per_minute=500, total_tokens_per_minute=200_000, fair=True,
        ... )
        ... def answer(prompt: str, user: str, max_tokens: int = 256) -> str:
        ...     return prompt
    """
    decorator = _decorator(_LLM_RATE_LIMIT.fill(options, "llm_rate_limit"))
    return decorator if _func is None else decorator(_func)


def _decorator(given: LLMRateLimitKeywords) -> Decorator:
    """The decorator :func:`llm_rate_limit` makes from its keywords (defaults filled in).

    Raises:
        ConfigError: a setting is invalid, or given beside ``limiter=``.
    """
    checked = _check_options(given)
    key_of = _key_of(given["key"])  # a bad key is reported before a bad limit
    shared, make = _limiter_or_maker(given, checked)
    read_headers = given["rate_limit_headers"]
    feedback, feedback_async = (
        (None, None) if read_headers is None else _feedback(read_headers, lambda: decorator.limiter)
    )
    decorator = Decorator(
        checked,
        limiter=shared,
        make_limiter=make,
        key_of=key_of,
        estimate_of=None if given["token_estimate"] is not None else _default_estimate,
        on_outcome=feedback,
        on_outcome_async=feedback_async,
        stream_of=wrap_stream,
    )
    return decorator


def _check_options(given: LLMRateLimitKeywords) -> DecoratorOptions:
    """The options around each call, checked (a ``key`` naming a parameter is not a callable)."""
    key = given["key"]
    return DecoratorOptions.check(
        on_limit=given["on_limit"],
        timeout=given["timeout"],
        token_estimate=given["token_estimate"],
        token_reconcile=given["token_reconcile"],
        key=None if isinstance(key, str) else key,
        clock=given["clock"],
        backend=given["backend"],
        name=given["name"],
        on_backend_error=given["on_backend_error"],
        rate_limit_headers=given["rate_limit_headers"],
    )
