"""After the call: reconcile its amount, report its outcome, wrap its stream.

Nothing here ever raises into the caller once the call ran: a failing ``token_reconcile``
or reconcile is logged and the estimate stands; a failing feedback callback is logged.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

from limitor.decorators._adapters import Adapter
from limitor.errors import LimitorError
from limitor.results import Reservation

__all__ = (
    "StreamOf",
    "discard",
    "reconciled",
    "reconciled_async",
    "report",
    "report_async",
    "settle_safely",
    "settle_safely_async",
    "stream_proxy",
)

log = logging.getLogger("limitor")

StreamOf = Callable[..., Any]
"""``stream_of(result, amount, settle, settle_async, blocking=...)``: a proxy reconciling
a streamed result at its end, or None when ``result`` is not a stream (see
:mod:`limitor.llm.streams`); ``blocking`` says the call waited with ``time.sleep``."""


def stream_proxy(
    stream_of: Any,
    adapter: Adapter,
    reservation: Reservation | None,
    amount: Any,
    result: Any,
    *,
    blocking: bool = False,
) -> Any:
    """``stream_of``'s proxy for ``result`` settling this call's reservation, or None.

    ``blocking``: the call waited with ``time.sleep`` (a plain function).
    """

    def settle(actual: Any) -> None:
        settle_safely(adapter, reservation, amount, actual)

    async def settle_async(actual: Any) -> None:
        await settle_safely_async(adapter, reservation, amount, actual)

    return stream_of(result, amount, settle, settle_async, blocking=blocking)


def settle_safely(
    adapter: Adapter, reservation: Reservation | None, estimated: Any, actual: object
) -> None:
    try:
        adapter.settle(reservation, estimated, actual)
    except (LimitorError, TypeError, ValueError, OverflowError) as error:
        log.warning("could not reconcile %r tokens: %s", actual, error)


async def settle_safely_async(
    adapter: Adapter, reservation: Reservation | None, estimated: Any, actual: object
) -> None:
    try:
        await adapter.settle_async(reservation, estimated, actual)
    except (LimitorError, TypeError, ValueError, OverflowError) as error:
        log.warning("could not reconcile %r tokens: %s", actual, error)


def reconciled(token_reconcile: Callable[[Any], Any] | None, result: Any) -> Any:
    """``token_reconcile(result)``, or None (logged) if it fails: the estimate then stands.

    An async ``token_reconcile`` cannot be awaited in sync code: its awaitable is closed
    and a ``RuntimeWarning`` says so (the estimate stands).
    """
    try:
        actual = token_reconcile(result)  # type: ignore[misc]
    except Exception as error:
        log.warning("token_reconcile failed, keeping the estimate: %r", error)
        return None
    if hasattr(type(actual), "__await__"):
        discard(actual, "token_reconcile")
        return None
    return actual


async def reconciled_async(token_reconcile: Callable[[Any], Any] | None, result: Any) -> Any:
    """As :func:`reconciled`, awaiting an async ``token_reconcile``."""
    try:
        actual = token_reconcile(result)  # type: ignore[misc]
        if hasattr(type(actual), "__await__"):
            actual = await actual
    except Exception as error:
        log.warning("token_reconcile failed, keeping the estimate: %r", error)
        return None
    return actual


def discard(awaitable: Any, what: str) -> None:
    """Close an awaitable sync code cannot await, and say so."""
    close = getattr(awaitable, "close", None)
    if callable(close):
        close()
    warnings.warn(
        f"{what} returned an awaitable in a sync call; it cannot be awaited there and was "
        "dropped: give a plain function, or decorate an async def",
        RuntimeWarning,
        stacklevel=4,
    )


def report(on_outcome: Callable[[Any, Any], Any] | None, key: Any, outcome: Any) -> None:
    if on_outcome is None or (
        isinstance(outcome, BaseException) and not isinstance(outcome, Exception)
    ):
        return  # nothing to learn from a cancellation or an interrupt
    try:
        pending = on_outcome(key, outcome)
    except Exception as error:
        log.warning("could not read the call's rate-limit feedback: %r", error)
        return
    if hasattr(type(pending), "__await__"):
        discard(pending, "rate_limit_headers")


async def report_async(
    on_outcome: Callable[[Any, Any], Any] | None,
    key: Any,
    outcome: Any,
    on_outcome_async: Callable[[Any, Any], Awaitable[None]] | None = None,
) -> None:
    """As :func:`report`, for async code.

    ``on_outcome_async`` when there is one, else ``on_outcome``, awaiting what it returns
    if that is awaitable.
    """
    if isinstance(outcome, BaseException) and not isinstance(outcome, Exception):
        return  # nothing to learn from a cancellation or an interrupt
    try:
        if on_outcome_async is not None:
            await on_outcome_async(key, outcome)
            return
        if on_outcome is None:
            return
        pending = on_outcome(key, outcome)
        if hasattr(type(pending), "__await__"):
            await pending
    except Exception as error:
        log.warning("could not read the call's rate-limit feedback: %r", error)
