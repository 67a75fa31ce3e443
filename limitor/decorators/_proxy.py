"""The object a decorator returns: a wrapt proxy of the function, with its limiter.

:class:`RateLimitedFunction` is a ``wrapt.FunctionWrapper``, so the decorated function
keeps what wrapt guarantees: its name, docstring, signature, ``__wrapped__``,
``inspect.iscoroutinefunction``, and descriptor binding for methods, static and class
methods (:class:`BoundRateLimitedFunction`, made by wrapt on attribute access, takes
wrapt's own call path with the ``(wrapped, instance, args, kwargs)`` wrapper).

A plain call of the decorated function skips wrapt's generic call path (which costs
about as much as the limiter's own decision): the proxy's ``__call__`` is the slot
``_self_call``, a closure made for this function and configuration. Python looks special
methods up on the type and calls a descriptor's ``__get__`` for them, so the slot's
member descriptor hands back the closure and the call costs about what a hand-written
closure decorator does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import wrapt

from limitor.errors import ConfigTypeError

__all__ = ("BoundRateLimitedFunction", "RateLimitedFunction", "limiter_of")

if TYPE_CHECKING:  # wrapt's classes are generic in its stubs, not at runtime (before 2.2)
    _FunctionWrapper = wrapt.FunctionWrapper[..., Any]
    _BoundFunctionWrapper = wrapt.BoundFunctionWrapper[..., Any]
else:
    _FunctionWrapper = wrapt.FunctionWrapper
    _BoundFunctionWrapper = wrapt.BoundFunctionWrapper

Wrapper = Callable[[Any, Any, tuple[Any, ...], dict[str, Any]], Any]
"""A wrapt wrapper: ``wrapper(wrapped, instance, args, kwargs)``."""


class BoundRateLimitedFunction(_BoundFunctionWrapper):
    """A decorated method, bound to its instance or class (made by wrapt)."""

    @property
    def limiter(self) -> Any:
        """The limiter this method waits on."""
        return self._self_parent._self_limiter


class RateLimitedFunction(_FunctionWrapper):
    """What a decorator returns: the function, wrapped, with its ``limiter`` attached.

    Args:
        wrapped: the function (or static/class method object) being decorated.
        wrapper: the wrapt wrapper, ``wrapper(wrapped, instance, args, kwargs)``, used
            when the function is called as a bound method.
        limiter: the limiter calls wait on (exposed as :attr:`limiter`).
        call: what a plain call runs, ``call(*args, **kwargs)``; by default the wrapper
            with no instance.
    """

    __slots__ = ("_self_call", "_self_limiter")
    __bound_function_wrapper__ = BoundRateLimitedFunction

    def __init__(
        self,
        wrapped: Any,
        wrapper: Wrapper,
        limiter: Any,
        call: Callable[..., Any] | None = None,
    ) -> None:
        super().__init__(wrapped, wrapper)
        if call is None:

            def call(*args: Any, **kwargs: Any) -> Any:
                return wrapper(wrapped, None, args, kwargs)

        self._self_limiter = limiter
        self._self_call = call

    @property
    def limiter(self) -> Any:
        """The limiter this function waits on (a bucket, a per-user or an LLM limiter)."""
        return self._self_limiter


# The slot's member descriptor as ``__call__``: ``f(...)`` runs ``f._self_call(...)``.
RateLimitedFunction.__call__ = RateLimitedFunction.__dict__["_self_call"]  # type: ignore[method-assign]


def limiter_of(func: Callable[..., Any]) -> Any:
    """The limiter of a function decorated by limitor (typed access to ``func.limiter``).

    Raises:
        ConfigTypeError: ``func`` was not decorated by limitor.
    """
    if not isinstance(func, (RateLimitedFunction, BoundRateLimitedFunction)):
        raise ConfigTypeError(f"{func!r} is not decorated by limitor")
    return func.limiter
