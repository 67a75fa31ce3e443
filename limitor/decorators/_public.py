"""The public decorators: ``@rate_limit`` and ``@rate_limit_per_user``."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, ParamSpec, TypeVar, overload

from limitor.clock import Clock
from limitor.configs import BucketConfig
from limitor.decorators._limiters import bucket_maker, custom_key, engine_type, user_id_key
from limitor.decorators._options import (
    CAPACITY,
    SECONDS,
    DecoratorOptions,
    OnBackendError,
    OnLimit,
    bucket_config,
    check_one_unit_fits,
    given,
    no_settings_with_limiter,
)
from limitor.decorators._shared import Decorator
from limitor.errors import ConfigError, ConfigTypeError
from limitor.per_user import PerUserLimiter

__all__ = ("async_rate_limit", "rate_limit", "rate_limit_per_user")

P = ParamSpec("P")
R = TypeVar("R")


def _split_first(_func: object) -> tuple[Any, str | None]:
    """``(function, rate string)`` from the decorator's first positional argument."""
    if isinstance(_func, str):
        return None, _func
    return _func, None


@overload
def rate_limit(_func: Callable[P, R]) -> Callable[P, R]: ...


@overload
def rate_limit(
    _func: str | None = None,
    *,
    rate: str | None = None,
    capacity: float = CAPACITY,
    seconds: float = SECONDS,
    burst: float | None = None,
    algorithm: str | None = None,
    bucket_cls: Callable[..., Any] | None = None,
    limiter: Any = None,
    timeout: float | None = None,
    on_limit: OnLimit = "wait",
    clock: Clock | None = None,
    max_concurrent: int | None = None,
    token_estimate: Callable[..., float] | None = None,
    token_reconcile: Callable[[Any], float] | None = None,
    backend: Any = None,
    name: str | None = None,
    on_backend_error: OnBackendError | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def rate_limit(
    _func: Callable[P, R] | str | None = None,
    *,
    rate: str | None = None,
    capacity: float = CAPACITY,
    seconds: float = SECONDS,
    burst: float | None = None,
    algorithm: str | None = None,
    bucket_cls: Callable[..., Any] | None = None,
    limiter: Any = None,
    timeout: float | None = None,
    on_limit: OnLimit = "wait",
    clock: Clock | None = None,
    max_concurrent: int | None = None,
    token_estimate: Callable[..., float] | None = None,
    token_reconcile: Callable[[Any], float] | None = None,
    backend: Any = None,
    name: str | None = None,
    on_backend_error: OnBackendError | None = None,
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
    options = DecoratorOptions.check(
        on_limit=on_limit,
        timeout=timeout,
        token_estimate=token_estimate,
        token_reconcile=token_reconcile,
        clock=clock,
        backend=backend,
        name=name,
        on_backend_error=on_backend_error,
    )
    if limiter is not None:
        no_settings_with_limiter(
            rate=positional or rate,
            capacity=given(capacity),
            seconds=given(seconds),
            burst=burst,
            algorithm=algorithm,
            bucket_cls=bucket_cls,
            max_concurrent=max_concurrent,
            **options.given_limiter_settings(),
        )
        decorator = Decorator(options, limiter=limiter)
    else:
        config = bucket_config(rate, capacity, seconds, burst, positional=positional)
        check_one_unit_fits(config.max_burst, token_estimate)
        make = bucket_maker(
            config,
            options,
            algorithm=algorithm,
            bucket_cls=bucket_cls,
            max_concurrent=max_concurrent,
        )
        decorator = Decorator(options, make_limiter=make, check=_no_max_concurrent(max_concurrent))
    return decorator if func is None else decorator(func)


def _no_max_concurrent(max_concurrent: int | None) -> Callable[[Any, bool], None]:
    def check(func: Any, is_async: bool) -> None:
        if max_concurrent is not None and not is_async:
            raise ConfigError("max_concurrent bounds async functions; this function is not async")

    return check


async_rate_limit = rate_limit
"""The limitor 0.6 name of :func:`rate_limit` (which serves async functions too)."""


@overload
def rate_limit_per_user(_func: Callable[P, R]) -> Callable[P, R]: ...


@overload
def rate_limit_per_user(
    _func: str | None = None,
    *,
    rate: str | None = None,
    capacity: float = CAPACITY,
    seconds: float = SECONDS,
    burst: float | None = None,
    max_users: int = 10_000,
    ttl: float | None = None,
    key: Callable[..., Hashable] | None = None,
    algorithm: str | None = None,
    bucket_cls: type[Any] | None = None,
    limiter: PerUserLimiter | None = None,
    timeout: float | None = None,
    on_limit: OnLimit = "wait",
    clock: Clock | None = None,
    token_estimate: Callable[..., float] | None = None,
    token_reconcile: Callable[[Any], float] | None = None,
    backend: Any = None,
    name: str | None = None,
    on_backend_error: OnBackendError | None = None,
    total: BucketConfig | str | None = None,
    total_burst: float | None = None,
    fair: bool = False,
    weight: Callable[[Hashable], float] | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def rate_limit_per_user(
    _func: Callable[P, R] | str | None = None,
    *,
    rate: str | None = None,
    capacity: float = CAPACITY,
    seconds: float = SECONDS,
    burst: float | None = None,
    max_users: int = 10_000,
    ttl: float | None = None,
    key: Callable[..., Hashable] | None = None,
    algorithm: str | None = None,
    bucket_cls: type[Any] | None = None,
    limiter: PerUserLimiter | None = None,
    timeout: float | None = None,
    on_limit: OnLimit = "wait",
    clock: Clock | None = None,
    token_estimate: Callable[..., float] | None = None,
    token_reconcile: Callable[[Any], float] | None = None,
    backend: Any = None,
    name: str | None = None,
    on_backend_error: OnBackendError | None = None,
    total: BucketConfig | str | None = None,
    total_burst: float | None = None,
    fair: bool = False,
    weight: Callable[[Hashable], float] | None = None,
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
    options = DecoratorOptions.check(
        on_limit=on_limit,
        timeout=timeout,
        token_estimate=token_estimate,
        token_reconcile=token_reconcile,
        key=key,
        clock=clock,
        backend=backend,
        name=name,
        on_backend_error=on_backend_error,
    )
    key_of = user_id_key if key is None else (lambda f: custom_key(f, key))
    if limiter is not None:
        if not isinstance(limiter, PerUserLimiter):
            raise ConfigTypeError(f"limiter must be a PerUserLimiter, got {limiter!r}")
        no_settings_with_limiter(
            rate=positional or rate,
            capacity=given(capacity),
            seconds=given(seconds),
            burst=burst,
            algorithm=algorithm,
            bucket_cls=bucket_cls,
            ttl=ttl,
            total=total,
            total_burst=total_burst,
            fair=fair or None,
            weight=weight,
            **options.given_limiter_settings(),
        )
        decorator = Decorator(options, limiter=limiter, key_of=key_of)
    else:
        engine = engine_type(algorithm, bucket_cls)
        if engine is None:
            raise ConfigError("rate_limit_per_user needs one of limitor's bucket classes")
        config = bucket_config(rate, capacity, seconds, burst, positional=positional)
        check_one_unit_fits(config.max_burst, token_estimate)
        algorithm_name = engine.name
        totals: dict[str, Any] = {
            "total": total,
            "total_burst": total_burst,
            "fair": fair,
            "weight": weight,
        }
        PerUserLimiter(  # check now
            config, algorithm=algorithm_name, max_users=max_users, ttl=ttl, **totals
        )

        def make(func: Any, is_async: bool) -> PerUserLimiter:
            return PerUserLimiter(
                config,
                algorithm=algorithm_name,
                max_users=max_users,
                ttl=ttl,
                clock=options.clock,
                **totals,
                **options.limiter_arguments(func),
            )

        decorator = Decorator(options, make_limiter=make, key_of=key_of)
    return decorator if func is None else decorator(func)
