"""Sorting callables: what a decorated function is, and whether its calls are awaited.

:func:`is_async_callable` sees through wrappers (``functools.wraps``, partials, bound
methods, callable objects) and refuses generators; :func:`coroutine_shim` gives an
``async def`` face to a function found async behind a plain wrapper; a plain function
that returns an awaitable anyway is warned about once (:func:`warn_awaitable`).
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable
from typing import Any

from limitor.errors import ConfigTypeError

__all__ = (
    "AWAITABLE_TYPES",
    "coroutine_shim",
    "is_async_callable",
    "is_awaitable",
    "layers",
    "marked_async",
    "target_of",
    "warn_awaitable",
)


def target_of(func: Any) -> Callable[..., Any]:
    """The plain function behind a staticmethod/classmethod object.

    Raises:
        ConfigTypeError: ``func`` is not callable.
    """
    target = func.__func__ if isinstance(func, (classmethod, staticmethod)) else func
    if not callable(target):
        raise ConfigTypeError(f"rate limits decorate callables, got {func!r}")
    return target


def layers(func: Any) -> list[Any]:
    """``func`` and the callables it stands for, outermost first.

    Follows ``__wrapped__`` (``functools.wraps``, as the OpenAI and Anthropic SDKs'
    argument checks use), ``functools.partial``, bound methods and a callable object's
    ``__call__``; at most 32 layers, each once.
    """
    layers: list[Any] = []
    todo = [func]
    seen: set[int] = set()
    while todo and len(layers) < 32:
        layer = todo.pop(0)
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        layers.append(layer)
        if isinstance(layer, functools.partial):
            todo.append(layer.func)
        elif inspect.ismethod(layer):
            todo.append(layer.__func__)
        elif not inspect.isfunction(layer) and not isinstance(layer, type):
            call = getattr(type(layer), "__call__", None)  # noqa: B004 - a callable object's method
            if call is not None and (inspect.isfunction(call) or inspect.ismethod(call)):
                todo.append(call)
        try:
            wrapped = inspect.getattr_static(layer, "__wrapped__", None)
            if wrapped is not None:
                wrapped = layer.__wrapped__
        except Exception:
            wrapped = None
        if wrapped is not None and callable(wrapped):
            todo.append(wrapped)
    return layers


def marked_async(func: Any) -> bool:
    """``inspect.iscoroutinefunction``, with ``markcoroutinefunction`` on any Python."""
    if inspect.iscoroutinefunction(func):
        return True
    try:  # Python 3.12+ sets this marker; 3.10 and 3.11 have no markcoroutinefunction
        marker = inspect.getattr_static(func, "_is_coroutine_marker", None)
    except Exception:
        return False
    return marker is not None and marker is getattr(inspect, "_is_coroutine_mark", object())


def is_async_callable(func: Any) -> bool:
    """Whether calls of ``func`` are awaited; generators are refused.

    Sees through wrappers: ``functools.wraps`` (``__wrapped__``), ``functools.partial``,
    bound methods, objects whose ``__call__`` is ``async def``, and functions marked with
    ``inspect.markcoroutinefunction``. So ``AsyncOpenAI().chat.completions.create`` (a
    plain function checking its arguments, wrapping a coroutine function) is async.

    Raises:
        ConfigTypeError: ``func`` is not callable, or is (or calls) a generator function:
            its body runs as it is iterated, after the call returned, so a limit on the
            call would not limit it.
    """
    target = target_of(func)
    call = None
    if not inspect.isfunction(target) and not isinstance(target, type):
        call = getattr(type(target), "__call__", None)  # noqa: B004 - a callable object's method
    for candidate in (target, call):
        if candidate is None:
            continue
        if inspect.isasyncgenfunction(candidate) or inspect.isgeneratorfunction(candidate):
            kind = "an async generator" if inspect.isasyncgenfunction(candidate) else "a generator"
            raise ConfigTypeError(
                f"{target!r} is {kind} function; rate limit the calls it makes instead, "
                "or the function that consumes it"
            )
    return any(marked_async(layer) for layer in layers(target))


def coroutine_shim(func: Any) -> Any:
    """An ``async def`` calling ``func`` (found async behind a plain wrapper).

    The decorated function then passes ``inspect.iscoroutinefunction`` on every Python,
    as frameworks that look before they call expect. Its ``__wrapped__`` is ``func``, so
    its signature is ``func``'s.
    """
    known = AWAITABLE_TYPES.get  # bound once: read on every call

    async def call(*args: Any, **kwargs: Any) -> Any:
        result = func(*args, **kwargs)
        if known(type(result), True) and is_awaitable(result):
            return await result
        return result

    functools.update_wrapper(call, func)
    return call


AWAITABLE_TYPES: dict[type, bool] = {}
"""Result types seen, and whether they are awaitable (a dict read is cheaper than hasattr)."""


def is_awaitable(result: object) -> bool:
    """Whether ``result`` can be awaited, remembered per type (at most 1024 types)."""
    cls = type(result)
    known = AWAITABLE_TYPES.get(cls)
    if known is None:
        known = hasattr(cls, "__await__")
        if len(AWAITABLE_TYPES) < 1024:
            AWAITABLE_TYPES[cls] = known
    return known


_AWAITABLE_HINT = (
    "{func!r} returned an awaitable but does not look async, so limitor waited for the "
    "limit with time.sleep (blocking an event loop, if one runs in this thread). Mark it: "
    "inspect.markcoroutinefunction(func) (Python 3.12+) or wrap it in an async def."
)


def warn_awaitable(func: Any, warned: list[bool]) -> None:
    """Warn once per decorated function that it returned an awaitable unannounced."""
    if not warned:
        warned.append(True)
        warnings.warn(_AWAITABLE_HINT.format(func=func), RuntimeWarning, stacklevel=3)
