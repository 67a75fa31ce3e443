"""One decorator object, many functions: the limiter is made once and shared.

``shared = rate_limit(capacity=2, seconds=0.2)`` then ``@shared`` on several functions
(plain and ``async def`` alike) puts them all behind one limiter, as in limitor 0.6. The
limiter is made when the first function is decorated (its kind, sync or async, picks
the bucket class; its name is the default ``name=``) and every later function waits on
that same object through the verbs that serve threads and tasks alike.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import Any

from limitor.decorators._callables import is_async_callable
from limitor.decorators._forms import KeyOf
from limitor.decorators._options import DecoratorOptions
from limitor.decorators._outcome import StreamOf
from limitor.decorators._proxy import RateLimitedFunction
from limitor.decorators._wrapper import decorate

__all__ = ("Decorator", "MakeLimiter")

MakeLimiter = Callable[[Any, bool], Any]
"""``make(func, is_async)``: the limiter, for the first function decorated."""


class Decorator:
    """A configured decorator: apply it to any number of functions; they share one limiter.

    Args:
        options: the checked options.
        limiter: an existing limiter to share (``limiter=``), or None to make one.
        make_limiter: ``make(func, is_async)`` when ``limiter`` is None.
        key_of: ``key_of(func)`` returns the function's :data:`KeyOf` (None: no key).
        estimate_of: ``estimate_of(func)`` returns the function's default estimate (None:
            ``options.token_estimate`` or one unit).
        on_outcome: as for :func:`~limitor.decorators.decorate`.
        on_outcome_async: as for :func:`~limitor.decorators.decorate`.
        check: ``check(func, is_async)`` runs before each function is decorated (and
            before the limiter is made).
        stream_of: as for :func:`~limitor.decorators.decorate`.
    """

    __slots__ = (
        "_check",
        "_estimate_of",
        "_key_of",
        "_limiter",
        "_lock",
        "_make_limiter",
        "_on_outcome",
        "_on_outcome_async",
        "_stream_of",
        "options",
    )

    def __init__(
        self,
        options: DecoratorOptions,
        *,
        limiter: Any = None,
        make_limiter: MakeLimiter | None = None,
        key_of: Callable[[Any], KeyOf | None] | None = None,
        estimate_of: Callable[[Any], Callable[..., Any] | None] | None = None,
        on_outcome: Callable[[Any, Any], Any] | None = None,
        on_outcome_async: Callable[[Any, Any], Awaitable[None]] | None = None,
        check: Callable[[Any, bool], None] | None = None,
        stream_of: StreamOf | None = None,
    ) -> None:
        if limiter is None and make_limiter is None:
            raise TypeError("give limiter or make_limiter")
        self.options = options
        self._limiter = limiter
        self._make_limiter = make_limiter
        self._key_of = key_of
        self._estimate_of = estimate_of
        self._on_outcome = on_outcome
        self._on_outcome_async = on_outcome_async
        self._check = check
        self._stream_of = stream_of
        self._lock = threading.Lock()

    @property
    def limiter(self) -> Any:
        """The shared limiter, or None until the first function is decorated."""
        return self._limiter

    def limiter_for(self, func: Any, is_async: bool) -> Any:
        """The shared limiter, made for ``func`` if it is the first function decorated."""
        with self._lock:
            if self._limiter is None:
                assert self._make_limiter is not None
                self._limiter = self._make_limiter(func, is_async)
            return self._limiter

    def __call__(self, func: Any) -> RateLimitedFunction:
        """Decorate ``func`` (a function, method, static or class method object)."""
        is_async = is_async_callable(func)
        if self._check is not None:
            self._check(func, is_async)
        limiter = self.limiter_for(func, is_async)
        return decorate(
            func,
            limiter,
            self.options,
            is_async=is_async,
            key_of=None if self._key_of is None else self._key_of(func),
            token_estimate=None if self._estimate_of is None else self._estimate_of(func),
            on_outcome=self._on_outcome,
            on_outcome_async=self._on_outcome_async,
            stream_of=self._stream_of,
        )

    def __repr__(self) -> str:
        return f"<limitor decorator limiter={self._limiter!r}>"
