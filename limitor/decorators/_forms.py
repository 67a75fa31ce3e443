"""The plain forms of a call: wait (for one unit, or one unit of a key), then call.

Each builder returns two forms of the same call: a wrapt wrapper (for bound methods) and
a plain closure (for direct calls), with nothing in them but the wait; :func:`gated`
holds an async bucket's ``max_concurrent`` place around either.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from limitor.decorators._callables import AWAITABLE_TYPES, is_awaitable, warn_awaitable
from limitor.decorators._proxy import Wrapper

__all__ = ("KeyOf", "context_forms", "gated", "keyed_forms", "wait_forms")

KeyOf = Callable[[tuple[Any, ...], dict[str, Any]], Any]
"""``key_of(call_args, kwargs)``: the key of one call (``self`` first for methods)."""


def wait_forms(
    run: Callable[[], Any], func: Any, is_async: bool
) -> tuple[Wrapper, Callable[..., Any]]:
    """The wrapt wrapper and the direct closure for "``run()``, then call"."""
    if is_async:

        async def wrapper_async(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            await run()
            return await wrapped(*args, **kwargs)

        async def call_async(*args: Any, **kwargs: Any) -> Any:
            await run()
            return await func(*args, **kwargs)

        return wrapper_async, call_async

    warned: list[bool] = []
    known = AWAITABLE_TYPES.get  # bound once: read on every call (a dict read, not hasattr)

    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        run()
        result = wrapped(*args, **kwargs)
        if known(type(result), True) and is_awaitable(result):
            warn_awaitable(func, warned)
        return result

    def call(*args: Any, **kwargs: Any) -> Any:
        run()
        result = func(*args, **kwargs)
        if known(type(result), True) and is_awaitable(result):
            warn_awaitable(func, warned)
        return result

    return wrapper, call


def context_forms(bucket: Any, func: Any, is_async: bool) -> tuple[Wrapper, Callable[..., Any]]:
    """The two forms of "call inside ``with bucket:``" (or ``async with``)."""
    if is_async:

        async def wrapper_async(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            async with bucket:
                return await wrapped(*args, **kwargs)

        async def call_async(*args: Any, **kwargs: Any) -> Any:
            async with bucket:
                return await func(*args, **kwargs)

        return wrapper_async, call_async

    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        with bucket:
            return wrapped(*args, **kwargs)

    def call(*args: Any, **kwargs: Any) -> Any:
        with bucket:
            return func(*args, **kwargs)

    return wrapper, call


def keyed_forms(
    go: Callable[..., Any], key_of: KeyOf, timeout: float | None, func: Any, is_async: bool
) -> tuple[Wrapper, Callable[..., Any]]:
    """The two forms of "wait for one unit of the call's key, then call"."""
    if is_async:

        async def wrapper_async(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            await go(key_of(args if instance is None else (instance, *args), kwargs), 1, timeout)
            return await wrapped(*args, **kwargs)

        async def call_async(*args: Any, **kwargs: Any) -> Any:
            await go(key_of(args, kwargs), 1, timeout)
            return await func(*args, **kwargs)

        return wrapper_async, call_async

    warned: list[bool] = []
    known = AWAITABLE_TYPES.get  # bound once: read on every call (a dict read, not hasattr)

    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        go(key_of(args if instance is None else (instance, *args), kwargs), 1, timeout)
        result = wrapped(*args, **kwargs)
        if known(type(result), True) and is_awaitable(result):
            warn_awaitable(func, warned)
        return result

    def call(*args: Any, **kwargs: Any) -> Any:
        go(key_of(args, kwargs), 1, timeout)
        result = func(*args, **kwargs)
        if known(type(result), True) and is_awaitable(result):
            warn_awaitable(func, warned)
        return result

    return wrapper, call


def gated(
    gate: Any, wrapper: Wrapper, call: Callable[..., Any]
) -> tuple[Wrapper, Callable[..., Any]]:
    """``max_concurrent``: hold a place for the whole call, taken before the rate's wait."""

    async def gated_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        await gate.acquire()
        try:
            return await wrapper(wrapped, instance, args, kwargs)
        finally:
            gate.release()

    async def gated_call(*args: Any, **kwargs: Any) -> Any:
        await gate.acquire()
        try:
            return await call(*args, **kwargs)
        finally:
            gate.release()

    return gated_wrapper, gated_call
