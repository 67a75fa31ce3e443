"""The public decorators: ``@rate_limit`` and ``@rate_limit_per_user``."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, overload

from limitor._keywords import Keywords
from limitor.configs import BucketConfig
from limitor.decorators._limiters import bucket_maker, custom_key, engine_type, user_id_key
from limitor.decorators._options import (
    BUCKET_DEFAULTS,
    BucketKeywords,
    DecoratorOptions,
    FairKeywords,
    bucket_config,
    check_one_unit_fits,
    no_settings_with_limiter,
)
from limitor.decorators._options import given as given_value
from limitor.decorators._shared import Decorator
from limitor.errors import ConfigError, ConfigTypeError
from limitor.per_user import PerUserLimiter

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ("async_rate_limit", "rate_limit", "rate_limit_per_user")

P = ParamSpec("P")
R = TypeVar("R")


def _split_first(_func: object) -> tuple[Any, str | None]:
    """``(function, rate string)`` from the decorator's first positional argument."""
    if isinstance(_func, str):
        return None, _func
    return _func, None


class RateLimitKeywords(BucketKeywords, total=False):
    """The keywords of :func:`rate_limit`."""

    bucket_cls: Callable[..., Any] | None
    limiter: Any
    max_concurrent: int | None


_RATE_LIMIT = Keywords(RateLimitKeywords, BUCKET_DEFAULTS)


@overload
def rate_limit(_func: Callable[P, R]) -> Callable[P, R]: ...


@overload
def rate_limit(
    _func: str | None = None, **options: Unpack[RateLimitKeywords]
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


@_RATE_LIMIT.signature
def rate_limit(
    _func: Callable[P, R] | str | None = None, **options: Unpack[RateLimitKeywords]
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Limit how often a function runs: ``capacity`` calls (or units) per ``seconds``.

    Works bare (``@rate_limit``), with a rate string (``@rate_limit("100/minute")``) or
    with keyword options, on plain and ``async def`` functions, methods, static and class
    methods. A plain function blocks its thread until allowed; an async function awaits
    without blocking its event loop. One decorator object applied to several functions
    (``shared = rate_limit(...)``, then ``@shared``) puts them all behind one limiter.

    Args:
        rate: the limit as a string, ``"10/s"``, ``"100/minute"``, ``"5 per 2 seconds"``
            (instead of ``capacity`` and ``seconds``); it may also be the first
            positional argument.
        capacity: units per ``seconds`` (the rate is ``capacity / seconds``).
        seconds: the period of ``capacity``.
        burst: the most units at once after a quiet spell (default: ``capacity``, or the
            rate string's amount).
        algorithm: ``"leaky_bucket"`` (default), ``"token_bucket"``, ``"gcra"`` or
            ``"gcra_leaky_bucket"``; or give ``bucket_cls``.
        bucket_cls: a bucket class (``SyncLeakyBucket``...); a sync class given for an
            async function means its async twin. A class of your own that follows the
            0.6 protocols, or any callable returning a bucket (a ``functools.partial``,
            a factory), is called as ``bucket_cls(BucketConfig(...))`` and used as it is.
        limiter: an existing bucket to share between functions (then give no other
            limit settings).
        timeout: the longest wait accepted; a longer one raises
            :class:`~limitor.errors.AcquireTimeout` at once, before calling.
        on_limit: ``"wait"`` (shape, the default) or ``"raise"`` (police: raise
            :class:`~limitor.errors.RateLimitExceeded` with ``retry_after`` at once).
        clock: the time source (tests pass a :class:`~limitor.testing.FakeClock`).
        max_concurrent: for async functions, the most calls running at once.
        token_estimate: the amount for a call, from its arguments:
            ``token_estimate(*args, **kwargs)``.
        token_reconcile: the real amount, from the call's result: what was not used is
            refunded, the excess becomes debt that delays later calls. It never raises
            after the call ran; if the call raises, the estimate is refunded.
        backend: where the limit's state lives (default: in this process's memory).
        name: the limit's identity in the backend (default: the first decorated
            function's module and qualified name).
        on_backend_error: ``"raise"`` (default) or ``"allow"`` (admit when the backend
            fails).

    Raises:
        ConfigError: a setting is invalid (at decoration time).

    Example:
        >>> @rate_limit("10/s")
        ... def fetch(url: str) -> str:
        ...     return url
    """
    func, positional = _split_first(_func)
    given = _RATE_LIMIT.fill(options, "rate_limit")
    checked = _check_options(given)
    max_concurrent = given["max_concurrent"]
    if given["limiter"] is not None:
        no_settings_with_limiter(
            **_limit_settings(given, positional),
            bucket_cls=given["bucket_cls"],
            max_concurrent=max_concurrent,
            **checked.given_limiter_settings(),
        )
        decorator = Decorator(checked, limiter=given["limiter"])
    else:
        config = _bucket_config(given, positional)
        make = bucket_maker(
            config,
            checked,
            algorithm=given["algorithm"],
            bucket_cls=given["bucket_cls"],
            max_concurrent=max_concurrent,
        )
        decorator = Decorator(checked, make_limiter=make, check=_no_max_concurrent(max_concurrent))
    return _applied(decorator, func)


def _check_options(given: BucketKeywords, key: object = None) -> DecoratorOptions:
    """The options around each call, checked."""
    return DecoratorOptions.check(
        on_limit=given["on_limit"],
        timeout=given["timeout"],
        token_estimate=given["token_estimate"],
        token_reconcile=given["token_reconcile"],
        key=key,
        clock=given["clock"],
        backend=given["backend"],
        name=given["name"],
        on_backend_error=given["on_backend_error"],
    )


def _limit_settings(given: BucketKeywords, positional: str | None) -> dict[str, object]:
    """The limit's settings the user wrote (none may come with ``limiter=``)."""
    return {
        "rate": positional or given["rate"],
        "capacity": given_value(given["capacity"]),
        "seconds": given_value(given["seconds"]),
        "burst": given["burst"],
        "algorithm": given["algorithm"],
    }


def _bucket_config(given: BucketKeywords, positional: str | None) -> BucketConfig:
    """The limit of one bucket, checked to admit a call of one unit."""
    config = bucket_config(
        given["rate"], given["capacity"], given["seconds"], given["burst"], positional=positional
    )
    check_one_unit_fits(config.max_burst, given["token_estimate"])
    return config


def _no_max_concurrent(max_concurrent: int | None) -> Callable[[Any, bool], None]:
    def check(func: Any, is_async: bool) -> None:
        if max_concurrent is not None and not is_async:
            raise ConfigError("max_concurrent bounds async functions; this function is not async")

    return check


async_rate_limit = rate_limit
"""The limitor 0.6 name of :func:`rate_limit` (which serves async functions too)."""


class PerUserKeywords(BucketKeywords, FairKeywords, total=False):
    """The keywords of :func:`rate_limit_per_user`."""

    max_users: int
    ttl: float | None
    key: Callable[..., Hashable] | None
    bucket_cls: type[Any] | None
    limiter: PerUserLimiter | None
    total: BucketConfig | str | None
    total_burst: float | None


_PER_USER = Keywords(PerUserKeywords, {**BUCKET_DEFAULTS, "max_users": 10_000, "fair": False})


@overload
def rate_limit_per_user(_func: Callable[P, R]) -> Callable[P, R]: ...


@overload
def rate_limit_per_user(
    _func: str | None = None, **options: Unpack[PerUserKeywords]
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


@_PER_USER.signature
def rate_limit_per_user(
    _func: Callable[P, R] | str | None = None, **options: Unpack[PerUserKeywords]
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Limit each user (or IP, API key, tenant...) separately: one bucket per key.

    By default the key is the call's ``user_id`` argument (by keyword or position), which
    the function still receives; when the call gives none, the signature's default for
    ``user_id`` is the key, and ``None`` is one shared bucket. A function without a
    ``user_id`` parameter (or ``**kwargs``) needs ``key=``: it computes any other key from
    the call's arguments, bound to the function's signature so ``f(request)`` and
    ``f(request=request)`` give the same key.

    Buckets live in a ``cachetools`` cache (see :class:`~limitor.per_user.PerUserLimiter`):
    a bucket that still holds reservations or debt is never forgotten.

    Args:
        rate: the limit of each user as a string (``"10/s"``), instead of ``capacity``
            and ``seconds``; it may also be the first positional argument.
        capacity: units per ``seconds``, for each user.
        seconds: the period of ``capacity``.
        burst: the most units at once for each user (default: ``capacity``).
        max_users: how many users' buckets to keep (full ones beyond it are dropped).
        ttl: drop a full bucket once it has been unused this long (on the limiter's clock);
            a bucket still refilling is never dropped.
        key: a function of the call's arguments returning the key.
        algorithm: as for :func:`rate_limit`.
        bucket_cls: one of limitor's bucket classes, naming the algorithm.
        limiter: an existing :class:`~limitor.per_user.PerUserLimiter` to share.
        timeout: as for :func:`rate_limit`.
        on_limit: as for :func:`rate_limit`.
        clock: as for :func:`rate_limit`; it also drives the cache's expiry.
        token_estimate: as for :func:`rate_limit`.
        token_reconcile: as for :func:`rate_limit`.
        backend: as for :func:`rate_limit`; per-user keys are then ``name`` + user.
        name: as for :func:`rate_limit`.
        on_backend_error: as for :func:`rate_limit`.
        total: one more limit shared by every user (``"100/s"`` or a ``BucketConfig``):
            a call goes only when its user's limit and the total both allow it
            (see :class:`~limitor.per_user.PerUserLimiter`).
        total_burst: the total's burst (default: its amount per period).
        fair: while the total binds, waiting users take turns (weighted round robin).
        weight: with ``fair=True``, a function user -> share of the total (default 1).

    Raises:
        ConfigError: a setting is invalid, or the function has no ``user_id`` parameter
            and no ``key=`` is given (at decoration time).
    """
    func, positional = _split_first(_func)
    given = _PER_USER.fill(options, "rate_limit_per_user")
    return _applied(_per_user_decorator(given, positional), func)


def _per_user_decorator(given: PerUserKeywords, positional: str | None) -> Decorator:
    """The decorator :func:`rate_limit_per_user` makes from its keywords (defaults filled)."""
    key = given["key"]
    checked = _check_options(given, key=key)
    key_of = user_id_key if key is None else (lambda f: custom_key(f, key))
    totals: dict[str, Any] = {
        "total": given["total"],
        "total_burst": given["total_burst"],
        "fair": given["fair"],
        "weight": given["weight"],
    }
    limiter = given["limiter"]
    if limiter is not None:
        if not isinstance(limiter, PerUserLimiter):
            raise ConfigTypeError(f"limiter must be a PerUserLimiter, got {limiter!r}")
        no_settings_with_limiter(
            **_limit_settings(given, positional),
            bucket_cls=given["bucket_cls"],
            ttl=given["ttl"],
            **{**totals, "fair": given["fair"] or None},
            **checked.given_limiter_settings(),
        )
        return Decorator(checked, limiter=limiter, key_of=key_of)
    engine = engine_type(given["algorithm"], given["bucket_cls"])
    if engine is None:
        raise ConfigError("rate_limit_per_user needs one of limitor's bucket classes")
    config = _bucket_config(given, positional)
    arguments: dict[str, Any] = {
        "algorithm": engine.name,
        "max_users": given["max_users"],
        "ttl": given["ttl"],
        **totals,
    }
    PerUserLimiter(config, **arguments)  # check now

    def make(func: Any, is_async: bool) -> PerUserLimiter:
        return PerUserLimiter(
            config, clock=checked.clock, **arguments, **checked.limiter_arguments(func)
        )

    return Decorator(checked, make_limiter=make, key_of=key_of)


def _applied(
    decorator: Decorator, func: Callable[P, R] | None
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """The decorator, or ``func`` decorated when it was given bare."""
    return decorator if func is None else decorator(func)
