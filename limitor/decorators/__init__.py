"""The decorators ``@rate_limit`` and ``@rate_limit_per_user``, split by job.

``@llm_rate_limit`` (in :mod:`limitor.llm`) is built from the same pieces.

One decorator serves plain and ``async def`` functions alike: it looks at the function
once, when decorating, and waits with ``time.sleep`` for a plain function or awaits
(never blocking the event loop) for a coroutine function. Decorated functions keep their
name, docstring, signature, ``inspect.iscoroutinefunction`` and their types for type
checkers; they work as plain functions, methods, static and class methods; and they
expose their limiter as ``.limiter`` (typed access: :func:`limiter_of`).

Callbacks (``token_estimate``, ``token_reconcile``, ``key``) see the call's arguments as
the decorated function does: ``self`` or ``cls`` first for methods.

The modules, one job each:

- ``_proxy``: :class:`RateLimitedFunction`, the wrapt proxy a decorator returns;
- ``_options``: :class:`DecoratorOptions`, the options every decorator shares, checked
  once; rate strings;
- ``_callables``: sorting callables: :func:`is_async_callable`, :func:`target_of`;
- ``_adapters``: how to wait on a limiter: limitor's own, or a limitor 0.6 style object;
- ``_forms``: the plain forms of a call (wait, then call), for the common cases;
- ``_outcome``: after a call: reconcile its amount, report its outcome, wrap its stream;
- ``_general``: the general form of a call (key, amount, police, reconcile, report);
- ``_wrapper``: :func:`decorate`, building the call around a function for one limiter;
- ``_shared``: :class:`Decorator`, one configured decorator whose functions share one
  limiter;
- ``_limiters``: which limiter ``rate_limit`` makes; the per-user keys;
- ``_public``: ``rate_limit``, ``async_rate_limit``, ``rate_limit_per_user``.

:class:`Decorator`, :class:`DecoratorOptions`, :func:`decorate`, :func:`custom_key`,
:func:`target_of` and :func:`no_settings_with_limiter` are the pieces other limitor
decorators (``llm_rate_limit``) build on.
"""

from __future__ import annotations

from limitor.decorators._callables import is_async_callable, target_of
from limitor.decorators._limiters import custom_key, param_key, user_id_key
from limitor.decorators._options import (
    CAPACITY,
    SECONDS,
    DecoratorOptions,
    OnBackendError,
    OnLimit,
    default_name,
    no_settings_with_limiter,
)
from limitor.decorators._proxy import BoundRateLimitedFunction, RateLimitedFunction, limiter_of
from limitor.decorators._public import async_rate_limit, rate_limit, rate_limit_per_user
from limitor.decorators._shared import Decorator
from limitor.decorators._wrapper import decorate

__all__ = (
    "CAPACITY",
    "SECONDS",
    "BoundRateLimitedFunction",
    "Decorator",
    "DecoratorOptions",
    "OnBackendError",
    "OnLimit",
    "RateLimitedFunction",
    "async_rate_limit",
    "custom_key",
    "decorate",
    "default_name",
    "is_async_callable",
    "limiter_of",
    "no_settings_with_limiter",
    "param_key",
    "rate_limit",
    "rate_limit_per_user",
    "target_of",
    "user_id_key",
)
