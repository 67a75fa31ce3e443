"""``@llm_rate_limit``: requests and tokens per minute for a function that calls an LLM."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, ParamSpec, TypeVar, overload

from limitor.clock import Clock
from limitor.decorators import (
    OnLimit,
    _build_wrapper,
    _call_options,
    _custom_key,
    _is_async,
    _no_settings_with_limiter,
    _wrap,
)
from limitor.errors import ConfigTypeError
from limitor.llm.limits import Limit, LLMLimiter
from limitor.llm.tokens import estimate_tokens

__all__ = ("llm_rate_limit",)

P = ParamSpec("P")
R = TypeVar("R")


@overload
def llm_rate_limit(_func: Callable[P, R]) -> Callable[P, R]: ...


@overload
def llm_rate_limit(
    _func: None = None,
    *,
    requests_per_minute: float | None = None,
    tokens_per_minute: float | None = None,
    input_tokens_per_minute: float | None = None,
    output_tokens_per_minute: float | None = None,
    requests_per_day: float | None = None,
    tokens_per_day: float | None = None,
    limits: tuple[Limit, ...] = (),
    token_estimate: Callable[..., Any] | None = None,
    token_reconcile: Callable[[Any], Any] | None = None,
    rate_limit_headers: Callable[[Any], Any] | None = None,
    key: Callable[..., Hashable] | None = None,
    max_keys: int = 10_000,
    ttl: float | None = None,
    limiter: LLMLimiter | None = None,
    timeout: float | None = None,
    on_limit: OnLimit = "wait",
    clock: Clock | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def llm_rate_limit(
    _func: Callable[P, R] | None = None,
    *,
    requests_per_minute: float | None = None,
    tokens_per_minute: float | None = None,
    input_tokens_per_minute: float | None = None,
    output_tokens_per_minute: float | None = None,
    requests_per_day: float | None = None,
    tokens_per_day: float | None = None,
    limits: tuple[Limit, ...] = (),
    token_estimate: Callable[..., Any] | None = None,
    token_reconcile: Callable[[Any], Any] | None = None,
    rate_limit_headers: Callable[[Any], Any] | None = None,
    key: Callable[..., Hashable] | None = None,
    max_keys: int = 10_000,
    ttl: float | None = None,
    limiter: LLMLimiter | None = None,
    timeout: float | None = None,
    on_limit: OnLimit = "wait",
    clock: Clock | None = None,
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
        limits: more :class:`~limitor.llm.Limit` s (custom periods or bursts).
        token_estimate: the call's cost from its arguments; default
            :func:`~limitor.llm.estimate_tokens` (characters / 4 plus ``max_tokens``).
        token_reconcile: the call's real cost from its result, for example
            :func:`~limitor.llm.usage_tokens`.
        rate_limit_headers: returns the response's headers (or ``None``) from the result,
            or from the exception when the call raised (a 429); the limits are then
            tightened to what the provider reports, never loosened.
        key: limits per key (user, model...) from the call's arguments; default: one set.
        max_keys: with ``key``, how many keys' limits to keep in memory.
        ttl: with ``key``, keep a key's limits at least this long after they were stored.
        limiter: an existing :class:`~limitor.llm.LLMLimiter` to share.
        timeout: the longest wait accepted; a longer one raises ``AcquireTimeout`` at once.
        on_limit: ``"wait"`` (default) or ``"raise"`` (``RateLimitExceeded`` at once).
        clock: the time source (tests pass a ``FakeClock``).

    Example:
        >>> @llm_rate_limit(requests_per_minute=500, tokens_per_minute=200_000)
        ... def complete(prompt: str, max_tokens: int = 256) -> str:
        ...     return prompt
    """
    police, max_wait = _call_options(
        on_limit,
        timeout,
        token_estimate=token_estimate,
        token_reconcile=token_reconcile,
        rate_limit_headers=rate_limit_headers,
        key=key,
    )
    if limiter is not None:
        if not isinstance(limiter, LLMLimiter):
            raise ConfigTypeError(f"limiter must be an LLMLimiter, got {limiter!r}")
        _no_settings_with_limiter(
            requests_per_minute=requests_per_minute,
            tokens_per_minute=tokens_per_minute,
            input_tokens_per_minute=input_tokens_per_minute,
            output_tokens_per_minute=output_tokens_per_minute,
            requests_per_day=requests_per_day,
            tokens_per_day=tokens_per_day,
            limits=limits or None,
            ttl=ttl,
            clock=clock,
        )
        shared = limiter
    else:
        shared = LLMLimiter(
            requests_per_minute,
            tokens_per_minute,
            input_tokens_per_minute=input_tokens_per_minute,
            output_tokens_per_minute=output_tokens_per_minute,
            requests_per_day=requests_per_day,
            tokens_per_day=tokens_per_day,
            limits=limits,
            max_keys=max_keys,
            ttl=ttl,
            clock=clock,
        )
    feedback = None
    if rate_limit_headers is not None:
        read_headers = rate_limit_headers

        def feedback(call_key: Any, outcome: Any) -> None:
            headers = read_headers(outcome)
            if headers is not None:
                shared.update_from_headers(headers, key=call_key)

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        wrapper = _build_wrapper(
            func,
            shared,
            is_async=_is_async(func),
            key_of=None if key is None else _custom_key(func, key),
            token_estimate=estimate_tokens if token_estimate is None else token_estimate,
            token_reconcile=token_reconcile,
            timeout=max_wait,
            police=police,
            on_outcome=feedback,
        )
        return _wrap(func, wrapper, shared)  # type: ignore[no-any-return]

    return decorate if _func is None else decorate(_func)
