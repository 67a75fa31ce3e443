"""The options every decorator shares, checked once when the decorator is made.

:class:`DecoratorOptions` holds what happens around each call (wait or police, the
timeout, the amount callbacks, the key) and what the limiter is made with beyond its
limit (``clock``, ``backend``, ``name``, ``on_backend_error``). ``rate_limit``,
``rate_limit_per_user`` and ``llm_rate_limit`` all build one, so an option is added in
one place for all three.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

from limitor._checks import OnBackendError, check_name, check_on_backend_error, check_timeout
from limitor.clock import Clock
from limitor.configs import BucketConfig, parse_rate
from limitor.errors import ConfigError, ConfigTypeError

__all__ = (
    "BACKEND_DEFAULTS",
    "BUCKET_DEFAULTS",
    "CAPACITY",
    "SECONDS",
    "BackendKeywords",
    "BucketKeywords",
    "DecoratorOptions",
    "FairKeywords",
    "OnBackendError",
    "OnLimit",
    "bucket_config",
    "check_one_unit_fits",
    "default_name",
    "no_settings_with_limiter",
)

OnLimit = Literal["wait", "raise"]


class BackendKeywords(TypedDict, total=False):
    """The keywords of every decorator: how a call waits, and where its limit lives."""

    timeout: float | None
    on_limit: OnLimit
    clock: Clock | None
    backend: Any
    name: str | None
    on_backend_error: OnBackendError | None


class _LimitKeywords(TypedDict, total=False):
    rate: str | None
    capacity: float
    seconds: float
    burst: float | None
    algorithm: str | None
    token_estimate: Callable[..., float] | None
    token_reconcile: Callable[[Any], float] | None


class BucketKeywords(_LimitKeywords, BackendKeywords, total=False):
    """The keywords of ``rate_limit`` and ``rate_limit_per_user``: one bucket's limit."""


class FairKeywords(TypedDict, total=False):
    """The keywords of a decorator whose keys share a total: take turns, and by what weight."""

    fair: bool
    weight: Callable[[Hashable], float] | None


def default_name(func: Any) -> str:
    """The default ``name=`` of a limit: the function's module and qualified name."""
    target = getattr(func, "__func__", func)
    module = getattr(target, "__module__", None) or "__main__"
    qualname = getattr(target, "__qualname__", None) or type(target).__qualname__
    return f"{module}.{qualname}"


@dataclass(frozen=True)
class DecoratorOptions:
    """What a decorator does around each call, checked once and shared by every function.

    Made with :meth:`check`; the fields are the checked values.
    """

    police: bool = False
    """``on_limit="raise"``: refuse at once instead of waiting."""
    max_wait: float | None = None
    """The ``timeout``, in seconds (``None``: wait as long as it takes)."""
    token_estimate: Callable[..., Any] | None = None
    """The amount of a call from its arguments (``None``: 1 unit, or the decorator's own)."""
    token_reconcile: Callable[[Any], Any] | None = None
    """The real amount of a call from its result (``None``: the estimate stands)."""
    key: Callable[..., Hashable] | None = None
    """The key of a call from its arguments (per-user and LLM decorators)."""
    clock: Clock | None = None
    """The clock given, for the limiter the decorator makes."""
    backend: Any = None
    """The backend given (``None``: the limiter's default, in memory)."""
    name: str | None = None
    """The limit's identity in the backend, if given (see :meth:`limiter_arguments`)."""
    on_backend_error: OnBackendError | None = None
    """What to do when the backend fails, if given."""

    @classmethod
    def check(
        cls,
        *,
        on_limit: object = "wait",
        timeout: object = None,
        token_estimate: object = None,
        token_reconcile: object = None,
        key: object = None,
        clock: object = None,
        backend: object = None,
        name: object = None,
        on_backend_error: object = None,
        **callbacks: object,
    ) -> DecoratorOptions:
        """Check the shared options and return them; ``callbacks`` are more to check.

        Raises:
            ConfigError: an option is invalid (``ConfigTypeError``: of the wrong type).
        """
        if on_limit not in ("wait", "raise"):
            raise ConfigError(f"on_limit must be 'wait' or 'raise', got {on_limit!r}")
        police = on_limit == "raise"
        if police and timeout is not None:
            raise ConfigError("timeout= is for on_limit='wait'; on_limit='raise' never waits")
        checked = dict(
            callbacks, token_estimate=token_estimate, token_reconcile=token_reconcile, key=key
        )
        for option, callback in checked.items():
            if callback is not None and not callable(callback):
                raise ConfigTypeError(f"{option} must be callable, got {callback!r}")
        if clock is not None and isinstance(clock, type):
            raise ConfigTypeError(f"clock must be a clock object, not the class {clock!r}")
        named = check_name(name)
        policy = None if on_backend_error is None else check_on_backend_error(on_backend_error)
        max_wait = None if timeout is None else check_timeout(timeout)
        return cls(
            police=police,
            max_wait=None if max_wait == math.inf else max_wait,
            token_estimate=token_estimate,  # type: ignore[arg-type]
            token_reconcile=token_reconcile,  # type: ignore[arg-type]
            key=key,  # type: ignore[arg-type]
            clock=clock,  # type: ignore[arg-type]
            backend=backend,
            name=named,
            on_backend_error=policy,
        )

    def limiter_arguments(self, func: Any) -> dict[str, Any]:
        """The keyword arguments for the limiter made for ``func``: only those given.

        ``backend``, ``name`` and ``on_backend_error`` are passed only when the user gave
        them; with a ``backend``, ``name`` defaults to :func:`default_name` of ``func``
        (the first function decorated), the same in every process.
        """
        arguments: dict[str, Any] = {}
        if self.backend is not None:
            arguments["backend"] = self.backend
        if self.name is not None or self.backend is not None:
            arguments["name"] = self.name if self.name is not None else default_name(func)
        if self.on_backend_error is not None:
            arguments["on_backend_error"] = self.on_backend_error
        return arguments

    def given_limiter_settings(self) -> dict[str, object]:
        """The options that only a limiter the decorator makes can use (for ``limiter=``)."""
        return {
            "clock": self.clock,
            "backend": self.backend,
            "name": self.name,
            "on_backend_error": self.on_backend_error,
        }


class _Default(float):
    """A default limit setting that can tell it was not given (``limiter=`` needs none)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"{float(self):g}"


CAPACITY = _Default(10)
"""The default ``capacity`` of the decorators: 10 per ``seconds``."""
SECONDS = _Default(1)
"""The default ``seconds`` of the decorators: 1."""

BACKEND_DEFAULTS: dict[str, object] = {"on_limit": "wait"}
"""The defaults of :class:`BackendKeywords` that are not ``None``."""
BUCKET_DEFAULTS: dict[str, object] = {**BACKEND_DEFAULTS, "capacity": CAPACITY, "seconds": SECONDS}
"""The defaults of :class:`BucketKeywords` that are not ``None``."""


def given(value: object) -> object:
    """``value``, or None when it is a default the user did not write."""
    return None if isinstance(value, _Default) else value


def no_settings_with_limiter(**settings: object) -> None:
    """Raise if any setting is given (not None) alongside ``limiter=``."""
    named = sorted(name for name, value in settings.items() if value is not None)
    if named:
        raise ConfigError(f"limiter= brings its own settings; do not also give {', '.join(named)}")


def check_one_unit_fits(burst: float, token_estimate: object) -> None:
    """Calls of one unit (no ``token_estimate``) must fit the burst.

    Raises:
        ConfigError: ``burst`` is below 1, so no call could ever be admitted.
    """
    if token_estimate is None and burst < 1:
        raise ConfigError(
            f"burst {burst:g} is below 1, the amount of each call, so no call could ever "
            "be admitted; raise the burst or give token_estimate="
        )


def bucket_config(
    rate: object, capacity: object, seconds: object, burst: object, *, positional: object = None
) -> BucketConfig:
    """The limit from a rate string (``"100/minute"``) or ``capacity`` per ``seconds``.

    ``positional`` is a rate string given as the decorator's first argument.

    Raises:
        ConfigError: both a rate and ``capacity``/``seconds``, two rates, or a bad value.
    """
    if positional is not None:
        if rate is not None:
            raise ConfigError(f"give the rate once, not {positional!r} and rate={rate!r}")
        rate = positional
    if rate is None:
        return BucketConfig(capacity=capacity, seconds=seconds, burst=burst)  # type: ignore[arg-type]
    pairs = (("capacity", capacity), ("seconds", seconds))
    both = [name for name, value in pairs if given(value) is not None]
    if both:
        raise ConfigError(f"give rate={rate!r} or {' and '.join(both)}, not both")
    if not isinstance(rate, str):
        raise ConfigTypeError(f"rate must be a string such as '10/s', got {rate!r}")
    return parse_rate(rate, burst=burst)  # type: ignore[arg-type]
