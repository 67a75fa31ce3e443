"""Building the call around a decorated function, for one limiter and one set of options.

:func:`decorate` looks at the function once (sync or async; generators refused:
:mod:`~limitor.decorators._callables`), picks how to wait on the limiter
(:mod:`~limitor.decorators._adapters`), and returns a :class:`RateLimitedFunction` with
two forms of the same call: a wrapt wrapper for bound methods and a plain closure for
direct calls. The common case (one unit, no key, nothing to reconcile) gets closures with
nothing but the wait in them (:mod:`~limitor.decorators._forms`); the rest gets the
general form (:mod:`~limitor.decorators._general`, settling and reporting through
:mod:`~limitor.decorators._outcome`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from limitor.base import AsyncBucket, Bucket
from limitor.decorators._adapters import Foreign, Ours, adapter_for
from limitor.decorators._callables import (
    coroutine_shim,
    is_async_callable,
    marked_async,
    target_of,
)
from limitor.decorators._forms import KeyOf, context_forms, gated, keyed_forms, wait_forms
from limitor.decorators._general import Plan, general, plan_of
from limitor.decorators._options import DecoratorOptions, check_one_unit_fits
from limitor.decorators._outcome import StreamOf
from limitor.decorators._proxy import RateLimitedFunction, Wrapper
from limitor.per_user import PerUserLimiter

__all__ = ("KeyOf", "StreamOf", "decorate", "is_async_callable", "target_of")


def _unit_amount_fits(limiter: Any, token_estimate: object) -> None:
    """Calls of one unit must fit the burst of a limiter given with ``limiter=``."""
    if isinstance(limiter, Bucket | PerUserLimiter):
        check_one_unit_fits(limiter.burst, token_estimate)


def _call_forms(plan: Plan, is_async: bool) -> tuple[Wrapper, Callable[..., Any] | None]:
    """The wrapt wrapper and the direct closure (None: the wrapper's) for one plan.

    One unit with nothing to reconcile or report gets closures with only the wait in them.
    """
    adapter, key_of, timeout, func = plan.adapter, plan.key_of, plan.timeout, plan.func
    if plan.simple and plan.police and key_of is None and isinstance(adapter, Ours):
        return wait_forms(adapter.one_unit_police(is_async), func, is_async)
    if plan.simple and not plan.police:
        if key_of is None and isinstance(adapter, Ours):
            run = adapter.one_unit_async(timeout) if is_async else adapter.one_unit(timeout)
            return wait_forms(run, func, is_async)
        if key_of is None and isinstance(adapter, Foreign):
            bucket = adapter.context(is_async, timeout)
            if bucket is not None:  # 0.6 style: with bucket:
                return context_forms(bucket, func, is_async)
        elif key_of is not None and isinstance(adapter, Ours):
            go = adapter.keyed_async() if is_async else adapter.keyed()
            return keyed_forms(go, key_of, timeout, func, is_async)
    return general(plan, is_async), None


def decorate(
    func: Any,
    limiter: Any,
    options: DecoratorOptions,
    *,
    is_async: bool,
    key_of: KeyOf | None = None,
    token_estimate: Callable[..., Any] | None = None,
    on_outcome: Callable[[Any, Any], Any] | None = None,
    on_outcome_async: Callable[[Any, Any], Awaitable[None]] | None = None,
    stream_of: StreamOf | None = None,
) -> RateLimitedFunction:
    """``func`` limited by ``limiter`` as ``options`` say: the decorated function.

    Args:
        func: the function, method, or static/class method object.
        limiter: a limitor limiter (any ``LimiterCore``, sync or async alike) or an
            object following the limitor 0.6 protocols.
        options: the decorator's checked options.
        is_async: from :func:`is_async_callable`.
        key_of: the key of a call, from its arguments (``None``: no key).
        token_estimate: the amount of a call (default ``options.token_estimate``;
            ``None``: one unit).
        on_outcome: ``on_outcome(key, result_or_exception)`` after each call (errors
            in it are logged, never raised); in async code it may return an awaitable.
        on_outcome_async: the same for async code, awaited (default: ``on_outcome``).
        stream_of: recognises streamed results and wraps them to reconcile at their end
            (:data:`StreamOf`); None: results are reconciled as they are returned.

    Raises:
        ConfigError: the combination cannot work (an async-only limiter for a plain
            function, a burst below one unit with no estimate).
    """
    if token_estimate is None:
        token_estimate = options.token_estimate
    _unit_amount_fits(limiter, token_estimate)
    if (
        is_async
        and not marked_async(func)
        and (
            inspect.isfunction(func)
            or inspect.ismethod(func)
            or isinstance(func, functools.partial)
        )
    ):
        func = coroutine_shim(func)  # async behind a plain wrapper (the SDKs' methods)
    plan = plan_of(
        adapter_for(limiter, is_async),
        options,
        func=func,
        is_async=is_async,
        key_of=key_of,
        token_estimate=token_estimate,
        on_outcome=on_outcome,
        on_outcome_async=on_outcome_async,
        stream_of=stream_of,
    )
    wrapper, call = _call_forms(plan, is_async)
    gate = limiter.gate if isinstance(limiter, AsyncBucket) else None
    if gate is not None and is_async:
        if call is None:
            general_wrapper = wrapper

            async def call(*args: Any, **kwargs: Any) -> Any:
                return await general_wrapper(func, None, args, kwargs)

        wrapper, call = gated(gate, wrapper, call)
    return RateLimitedFunction(func, wrapper, limiter, call)
