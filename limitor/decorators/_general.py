"""The general form of a call: key, estimate, wait or police, call, reconcile, report.

Used when a call needs more than a wait (an amount, a key with a foreign limiter,
``token_reconcile``, feedback, streams, ``on_limit="raise"``); the common cases get the
plain forms of :mod:`limitor.decorators._forms`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from limitor.decorators._adapters import Adapter
from limitor.decorators._callables import AWAITABLE_TYPES, is_awaitable, warn_awaitable
from limitor.decorators._forms import KeyOf
from limitor.decorators._options import DecoratorOptions
from limitor.decorators._outcome import (
    StreamOf,
    reconciled,
    reconciled_async,
    report,
    report_async,
    settle_safely,
    settle_safely_async,
    stream_proxy,
)
from limitor.decorators._proxy import Wrapper
from limitor.results import Reservation

__all__ = ("Plan", "general", "plan_of")


@dataclass(frozen=True)
class Plan:
    """What the general form of one decorated function does around each call."""

    adapter: Adapter
    func: Any
    key_of: KeyOf | None
    token_estimate: Callable[..., Any] | None
    token_reconcile: Callable[[Any], Any] | None
    police: bool
    timeout: float | None
    on_outcome: Callable[[Any, Any], Any] | None
    on_outcome_async: Callable[[Any, Any], Awaitable[None]] | None
    stream_of: StreamOf | None

    @property
    def simple(self) -> bool:
        """One unit a call, with nothing to reconcile, report or stream."""
        return (
            self.token_estimate is None
            and self.token_reconcile is None
            and self.on_outcome is None
            and self.stream_of is None
        )

    @property
    def keep(self) -> bool:
        """Keep a reservation after the call (to reconcile it, or its stream)."""
        return self.token_reconcile is not None or self.stream_of is not None


def plan_of(
    adapter: Adapter,
    options: DecoratorOptions,
    *,
    func: Any,
    is_async: bool,
    key_of: KeyOf | None,
    token_estimate: Callable[..., Any] | None,
    on_outcome: Callable[[Any, Any], Any] | None,
    on_outcome_async: Callable[[Any, Any], Awaitable[None]] | None = None,
    stream_of: StreamOf | None = None,
) -> Plan:
    """The :class:`Plan` of one decorated function (see :func:`~limitor.decorators.decorate`)."""
    token_reconcile = options.token_reconcile
    if is_async and token_reconcile is not None:  # its async twin, if it names one
        token_reconcile = getattr(token_reconcile, "limitor_async", token_reconcile)
    return Plan(
        adapter=adapter,
        func=func,
        key_of=key_of,
        token_estimate=token_estimate,
        token_reconcile=token_reconcile,
        police=options.police,
        timeout=options.max_wait,
        on_outcome=on_outcome,
        on_outcome_async=on_outcome_async,
        stream_of=stream_of,
    )


def general(plan: Plan, is_async: bool) -> Wrapper:
    """The wrapt wrapper that does everything: key, estimate, wait or police, reconcile.

    A result that is a stream (``plan.stream_of`` recognises it) is returned as a proxy
    that reconciles when the stream ends; ``token_reconcile`` and ``on_outcome`` may
    return awaitables in async code (awaited).
    """
    return _general_async(plan) if is_async else _general_sync(plan)


def _general_async(plan: Plan) -> Wrapper:
    """The general form for an async function."""
    adapter, key_of, token_estimate = plan.adapter, plan.key_of, plan.token_estimate
    police, timeout, keep = plan.police, plan.timeout, plan.keep
    bare = not keep and plan.on_outcome is None

    async def general_async(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        call_args = args if instance is None else (instance, *args)
        key = None if key_of is None else key_of(call_args, kwargs)
        amount = 1.0 if token_estimate is None else token_estimate(*call_args, **kwargs)
        if police:
            reservation = await adapter.police_async(key, amount, keep)
        else:
            reservation = await adapter.wait_async(key, amount, timeout, keep)
        if bare:
            return await wrapped(*args, **kwargs)
        return await _finish_async(plan, reservation, amount, key, lambda: wrapped(*args, **kwargs))

    return general_async


def _general_sync(plan: Plan) -> Wrapper:
    """The general form for a plain function (which may return an awaitable anyway)."""
    adapter, key_of, token_estimate = plan.adapter, plan.key_of, plan.token_estimate
    police, timeout, keep, func = plan.police, plan.timeout, plan.keep, plan.func
    on_outcome, stream_of, token_reconcile = plan.on_outcome, plan.stream_of, plan.token_reconcile
    warned: list[bool] = []
    known = AWAITABLE_TYPES.get  # bound once: read on every call

    def general(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        call_args = args if instance is None else (instance, *args)
        key = None if key_of is None else key_of(call_args, kwargs)
        amount = 1.0 if token_estimate is None else token_estimate(*call_args, **kwargs)
        if police:
            reservation = adapter.police(key, amount, keep)
        else:
            reservation = adapter.wait(key, amount, timeout, keep)
        if not keep and on_outcome is None:
            result = wrapped(*args, **kwargs)
            if known(type(result), True) and is_awaitable(result):
                warn_awaitable(func, warned)
            return result
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as error:
            if keep:
                settle_safely(adapter, reservation, amount, 0.0)  # refund the estimate
            report(on_outcome, key, error)
            raise
        if known(type(result), True) and is_awaitable(result):
            warn_awaitable(func, warned)  # a plain function returning a coroutine
            return _finish_async(plan, reservation, amount, key, lambda: result)
        if stream_of is not None:
            proxy = stream_proxy(stream_of, adapter, reservation, amount, result, blocking=True)
            if proxy is not None:
                report(on_outcome, key, result)
                return proxy
        if token_reconcile is not None:
            actual = reconciled(token_reconcile, result)
            if actual is not None:
                settle_safely(adapter, reservation, amount, actual)
        report(on_outcome, key, result)  # the headers count the call's usage: after it
        return result

    return general


async def _finish_async(
    plan: Plan,
    reservation: Reservation | None,
    amount: Any,
    key: Any,
    call: Callable[[], Awaitable[Any]],
) -> Any:
    """Await ``call()``, then reconcile and report (a refund of all if it raises)."""
    adapter, on_outcome, on_outcome_async = plan.adapter, plan.on_outcome, plan.on_outcome_async
    try:
        result = await call()
    except BaseException as error:
        if plan.keep:
            await settle_safely_async(adapter, reservation, amount, 0.0)  # refund all
        await report_async(on_outcome, key, error, on_outcome_async)
        raise
    if plan.stream_of is not None:
        proxy = stream_proxy(plan.stream_of, adapter, reservation, amount, result)
        if proxy is not None:
            await report_async(on_outcome, key, result, on_outcome_async)
            return proxy
    if plan.token_reconcile is not None:
        actual = await reconciled_async(plan.token_reconcile, result)
        if actual is not None:
            await settle_safely_async(adapter, reservation, amount, actual)
    await report_async(on_outcome, key, result, on_outcome_async)
    return result
