"""The decorators: ``@rate_limit`` and ``@rate_limit_per_user``.

One decorator serves plain and ``async def`` functions alike: it looks at the function
once, when decorating, and waits with ``time.sleep`` for a plain function or awaits
(never blocking the event loop) for a coroutine function. Decorated functions keep their
name, docstring, signature, ``inspect.iscoroutinefunction`` and their types for type
checkers; they work as plain functions, methods, static and class methods; and they
expose their limiter as ``.limiter`` (typed access: :func:`limiter_of`).

Callbacks (``token_estimate``, ``token_reconcile``, ``key``) see the call's arguments as
the decorated function does: ``self`` or ``cls`` first for methods.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Literal, ParamSpec, TypeVar, overload

import anyio.to_thread
import wrapt

from limitor._binding import ArgumentBinder
from limitor._checks import check_timeout
from limitor._core import LimiterCore
from limitor.base import AsyncBucket, Bucket, SyncBucket
from limitor.clock import Clock
from limitor.configs import BucketConfig
from limitor.engines import ENGINES, Engine
from limitor.errors import ConfigError, ConfigTypeError, LimitorError, RateLimitExceeded
from limitor.generic_cell_rate.core import (
    AsyncLeakyBucketGCRA,
    AsyncVirtualSchedulingGCRA,
    SyncLeakyBucketGCRA,
    SyncVirtualSchedulingGCRA,
)
from limitor.leaky_bucket.core import AsyncLeakyBucket, SyncLeakyBucket
from limitor.per_user import PerUserLimiter
from limitor.results import Reservation
from limitor.token_bucket.core import AsyncTokenBucket, SyncTokenBucket

__all__ = ("async_rate_limit", "limiter_of", "rate_limit", "rate_limit_per_user")

P = ParamSpec("P")
R = TypeVar("R")

OnLimit = Literal["wait", "raise"]

log = logging.getLogger("limitor")

_SYNC: dict[type[Engine[Any]], type[SyncBucket]] = {
    cls.engine_type: cls
    for cls in (SyncLeakyBucket, SyncTokenBucket, SyncVirtualSchedulingGCRA, SyncLeakyBucketGCRA)
}
_ASYNC: dict[type[Engine[Any]], type[AsyncBucket]] = {
    cls.engine_type: cls
    for cls in (
        AsyncLeakyBucket,
        AsyncTokenBucket,
        AsyncVirtualSchedulingGCRA,
        AsyncLeakyBucketGCRA,
    )
}


# -- the decorated function ------------------------------------------------------------


class _BoundRateLimitedFunction(wrapt.BoundFunctionWrapper[..., Any]):
    """A decorated method, bound to its instance or class."""

    @property
    def limiter(self) -> Any:
        """The limiter this method waits on."""
        return self._self_parent._self_limiter


class RateLimitedFunction(wrapt.FunctionWrapper[..., Any]):
    """What a decorator returns: the function, wrapped, with its ``limiter`` attached."""

    __bound_function_wrapper__ = _BoundRateLimitedFunction

    def __init__(self, wrapped: Any, wrapper: Any, limiter: Any) -> None:
        super().__init__(wrapped, wrapper)
        self._self_limiter = limiter

    @property
    def limiter(self) -> Any:
        """The limiter this function waits on (a bucket or a :class:`PerUserLimiter`)."""
        return self._self_limiter


def limiter_of(func: Callable[..., Any]) -> Any:
    """The limiter of a function decorated by limitor (typed access to ``func.limiter``).

    Raises:
        ConfigTypeError: ``func`` was not decorated by limitor.
    """
    limiter = getattr(func, "limiter", None)
    if limiter is None or not isinstance(func, (RateLimitedFunction, _BoundRateLimitedFunction)):
        raise ConfigTypeError(f"{func!r} is not decorated by limitor")
    return limiter


# -- how to wait on each kind of limiter -------------------------------------------------


class _Adapter:
    """The verbs the wrappers need, for one kind of limiter.

    ``wait`` returns a reservation when ``hold`` asks for one (to reconcile later).
    """

    def wait(self, key: Any, amount: float, timeout: float | None, hold: bool) -> Any:
        raise NotImplementedError

    async def wait_async(self, key: Any, amount: float, timeout: float | None, hold: bool) -> Any:
        raise NotImplementedError

    def police(self, key: Any, amount: float, hold: bool) -> Reservation | None:
        raise NotImplementedError

    def settle(self, reservation: Reservation | None, estimated: float, actual: float) -> None:
        raise NotImplementedError

    async def settle_async(
        self, reservation: Reservation | None, estimated: float, actual: float
    ) -> None:
        self.settle(reservation, estimated, actual)


class _Ours(_Adapter):
    """A limitor limiter: reservations give exact refunds and debt."""

    def __init__(self, limiter: LimiterCore) -> None:
        self.limiter = limiter
        # The fastest way to wait without keeping a reservation, per kind of limiter.
        self.go: Callable[[Any, float, float | None], Any]
        self.go_async: Callable[[Any, float, float | None], Awaitable[Any]]
        if isinstance(limiter, PerUserLimiter):
            self.go, self.go_async = limiter.acquire, limiter.acquire_async
        else:
            self.go, self.go_async = limiter._acquire_sync, limiter._acquire_async
            if isinstance(limiter, SyncBucket):
                acquire = limiter.acquire
                self.go = lambda key, amount, timeout: acquire(amount, timeout)
            elif isinstance(limiter, AsyncBucket):
                acquire_async = limiter.acquire

                def go_async(key: Any, amount: float, timeout: float | None) -> Awaitable[Any]:
                    return acquire_async(amount, timeout)

                self.go_async = go_async

    def wait(self, key: Any, amount: float, timeout: float | None, hold: bool) -> Any:
        if hold:
            return self.limiter._acquire_sync(key, amount, timeout)
        return self.go(key, amount, timeout)

    async def wait_async(self, key: Any, amount: float, timeout: float | None, hold: bool) -> Any:
        if hold:
            return await self.limiter._acquire_async(key, amount, timeout)
        return await self.go_async(key, amount, timeout)

    def police(self, key: Any, amount: float, hold: bool) -> Reservation | None:
        return self.limiter._police_checked(key, amount, hold=hold)

    def settle(self, reservation: Reservation | None, estimated: float, actual: float) -> None:
        if reservation is not None:
            reservation.reconcile(actual)


class _Foreign(_Adapter):
    """An object following the limitor 0.6 protocols (``acquire``/``reconcile``)."""

    def __init__(self, limiter: Any) -> None:
        self.limiter = limiter
        self.async_acquire = inspect.iscoroutinefunction(getattr(limiter, "acquire", None))
        self.async_reconcile = inspect.iscoroutinefunction(getattr(limiter, "reconcile", None))

    def _acquire_args(self, amount: float, timeout: float | None) -> dict[str, Any]:
        return {"amount": amount} if timeout is None else {"amount": amount, "timeout": timeout}

    def wait(self, key: Any, amount: float, timeout: float | None, hold: bool) -> None:
        if self.async_acquire:
            raise ConfigTypeError(f"{self.limiter!r} is async; decorate an async function")
        self.limiter.acquire(**self._acquire_args(amount, timeout))

    async def wait_async(self, key: Any, amount: float, timeout: float | None, hold: bool) -> None:
        call = functools.partial(self.limiter.acquire, **self._acquire_args(amount, timeout))
        if self.async_acquire:
            await call()
        else:  # a blocking limiter must not block the event loop
            await anyio.to_thread.run_sync(call)

    def police(self, key: Any, amount: float, hold: bool) -> None:
        try_acquire = getattr(self.limiter, "try_acquire", None)
        if try_acquire is None:
            raise ConfigTypeError(f"on_limit='raise' needs try_acquire() on {self.limiter!r}")
        if not try_acquire(amount):
            raise RateLimitExceeded("rate limit exceeded")

    def settle(self, reservation: Reservation | None, estimated: float, actual: float) -> None:
        self.limiter.reconcile(actual=actual, estimated=estimated)

    async def settle_async(
        self, reservation: Reservation | None, estimated: float, actual: float
    ) -> None:
        if self.async_reconcile:
            await self.limiter.reconcile(actual=actual, estimated=estimated)
        else:
            self.settle(reservation, estimated, actual)


def _adapter(limiter: Any) -> _Adapter:
    if isinstance(limiter, LimiterCore):
        return _Ours(limiter)
    if not callable(getattr(limiter, "acquire", None)):
        raise ConfigTypeError(f"limiter must have an acquire() method, got {limiter!r}")
    return _Foreign(limiter)


# -- building wrappers ---------------------------------------------------------------------


def _target(func: Any) -> Callable[..., Any]:
    """The plain function behind a staticmethod/classmethod object."""
    target = func.__func__ if isinstance(func, (classmethod, staticmethod)) else func
    if not callable(target):
        raise ConfigTypeError(f"rate limits decorate callables, got {func!r}")
    return target


def _is_async(func: Any) -> bool:
    target = _target(func)
    if inspect.isasyncgenfunction(target):
        raise ConfigTypeError(
            f"{target!r} is an async generator; rate limit the calls it makes instead"
        )
    if inspect.iscoroutinefunction(target):
        return True
    call = getattr(target, "__call__", None)  # noqa: B004 - a callable object's own method
    return not inspect.isfunction(target) and inspect.iscoroutinefunction(call)


def _call_options(
    on_limit: object, timeout: object, **callbacks: object
) -> tuple[bool, float | None]:
    """Check the options every decorator shares; return ``(police, max_wait)``."""
    if on_limit not in ("wait", "raise"):
        raise ConfigError(f"on_limit must be 'wait' or 'raise', got {on_limit!r}")
    police = on_limit == "raise"
    if police and timeout is not None:
        raise ConfigError("timeout= is for on_limit='wait'; on_limit='raise' never waits")
    for name, callback in callbacks.items():
        if callback is not None and not callable(callback):
            raise ConfigTypeError(f"{name} must be callable, got {callback!r}")
    return police, None if timeout is None else check_timeout(timeout)


def _settle_safely(
    adapter: _Adapter, reservation: Reservation | None, estimated: float, actual: object
) -> None:
    try:
        adapter.settle(reservation, estimated, actual)  # type: ignore[arg-type]
    except (LimitorError, TypeError, ValueError) as error:
        log.warning("could not reconcile %r tokens: %s", actual, error)


async def _settle_safely_async(
    adapter: _Adapter, reservation: Reservation | None, estimated: float, actual: object
) -> None:
    try:
        await adapter.settle_async(reservation, estimated, actual)  # type: ignore[arg-type]
    except (LimitorError, TypeError, ValueError) as error:
        log.warning("could not reconcile %r tokens: %s", actual, error)


def _build_wrapper(
    func: Any,
    limiter: Any,
    *,
    is_async: bool,
    key_of: Callable[[tuple[Any, ...], dict[str, Any]], Any] | None,
    token_estimate: Callable[..., Any] | None,
    token_reconcile: Callable[[Any], Any] | None,
    timeout: float | None,
    police: bool,
    on_outcome: Callable[[Any, Any], None] | None = None,
) -> Callable[..., Any]:
    """The ``(wrapped, instance, args, kwargs)`` wrapper for one configuration.

    ``on_outcome(key, result_or_exception)`` runs after each call (errors are logged).
    """
    adapter = _adapter(limiter)
    needs_args = key_of is not None or token_estimate is not None or on_outcome is not None
    hold = token_reconcile is not None  # keep a reservation to reconcile after the call

    # The common case gets a wrapper with nothing but the wait in it.
    if not needs_args and not hold and isinstance(adapter, _Ours):
        if police:
            police_now = adapter.police
            if is_async:

                async def police_async(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
                    police_now(None, 1, False)
                    return await wrapped(*args, **kwargs)

                return police_async

            def police_sync(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
                police_now(None, 1, False)
                return wrapped(*args, **kwargs)

            return police_sync
        if is_async:
            go_async = adapter.go_async

            async def wait_then_call_async(
                wrapped: Any, instance: Any, args: Any, kwargs: Any
            ) -> Any:
                await go_async(None, 1, timeout)
                return await wrapped(*args, **kwargs)

            return wait_then_call_async
        go = adapter.go
        if isinstance(limiter, SyncBucket):
            acquire = limiter.acquire  # skip a call layer: the hottest path

            def wait_then_call(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
                acquire(1, timeout)
                return wrapped(*args, **kwargs)

            return wait_then_call

        def wait_then_call_any(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            go(None, 1, timeout)
            return wrapped(*args, **kwargs)

        return wait_then_call_any

    if is_async:

        async def general_async(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            call_args = args if instance is None else (instance, *args)
            key = None if key_of is None else key_of(call_args, kwargs)
            amount = 1.0 if token_estimate is None else token_estimate(*call_args, **kwargs)
            if police:
                reservation = adapter.police(key, amount, hold)
            else:
                reservation = await adapter.wait_async(key, amount, timeout, hold)
            if not hold and on_outcome is None:
                return await wrapped(*args, **kwargs)
            try:
                result = await wrapped(*args, **kwargs)
            except BaseException as error:
                if hold:
                    await _settle_safely_async(adapter, reservation, amount, 0.0)  # refund all
                _report(on_outcome, key, error)
                raise
            if hold:
                actual = _actual(token_reconcile, result)
                if actual is not None:
                    await _settle_safely_async(adapter, reservation, amount, actual)
            _report(on_outcome, key, result)
            return result

        return general_async

    def general(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        call_args = args if instance is None else (instance, *args)
        key = None if key_of is None else key_of(call_args, kwargs)
        amount = 1.0 if token_estimate is None else token_estimate(*call_args, **kwargs)
        if police:
            reservation = adapter.police(key, amount, hold)
        else:
            reservation = adapter.wait(key, amount, timeout, hold)
        if not hold and on_outcome is None:
            return wrapped(*args, **kwargs)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as error:
            if hold:
                _settle_safely(adapter, reservation, amount, 0.0)  # refund the estimate
            _report(on_outcome, key, error)
            raise
        if hold:
            actual = _actual(token_reconcile, result)
            if actual is not None:
                _settle_safely(adapter, reservation, amount, actual)
        _report(on_outcome, key, result)
        return result

    return general


def _actual(token_reconcile: Callable[[Any], Any] | None, result: Any) -> Any:
    """``token_reconcile(result)``, or None (logged) if it fails: the estimate then stands."""
    try:
        return token_reconcile(result)  # type: ignore[misc]
    except Exception as error:
        log.warning("token_reconcile failed, keeping the estimate: %r", error)
        return None


def _report(on_outcome: Callable[[Any, Any], None] | None, key: Any, outcome: Any) -> None:
    if on_outcome is None or (
        isinstance(outcome, BaseException) and not isinstance(outcome, Exception)
    ):
        return  # nothing to learn from a cancellation or an interrupt
    try:
        on_outcome(key, outcome)
    except Exception as error:
        log.warning("could not read the call's rate-limit feedback: %r", error)


def _wrap(func: Any, wrapper: Callable[..., Any], limiter: Any) -> Any:
    gate = getattr(limiter, "_gate", None) if isinstance(limiter, AsyncBucket) else None
    if gate is not None and inspect.iscoroutinefunction(wrapper):
        # max_concurrent: hold a place for the whole call, taken before the rate's wait.
        inner = wrapper

        async def gated(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            await gate.acquire()
            try:
                return await inner(wrapped, instance, args, kwargs)
            finally:
                gate.release()

        wrapper = gated
    return RateLimitedFunction(func, wrapper, limiter)


# -- choosing the limiter ------------------------------------------------------------------


def _engine_type(algorithm: object, bucket_cls: object) -> type[Engine[Any]] | None:
    """The engine named by ``algorithm`` or used by ``bucket_cls`` (None: a foreign class)."""
    if algorithm is not None and bucket_cls is not None:
        raise ConfigError("give algorithm= or bucket_cls=, not both")
    if bucket_cls is not None:
        if not isinstance(bucket_cls, type):
            raise ConfigTypeError(f"bucket_cls must be a class, got {bucket_cls!r}")
        return bucket_cls.engine_type if issubclass(bucket_cls, Bucket) else None
    name = "leaky_bucket" if algorithm is None else algorithm
    engine = ENGINES.get(name) if isinstance(name, str) else None
    if engine is None:
        raise ConfigError(f"algorithm must be one of {sorted(ENGINES)}, got {algorithm!r}")
    return engine


def _new_bucket(
    config: BucketConfig,
    *,
    is_async: bool,
    algorithm: str | None,
    bucket_cls: type[Any] | None,
    clock: Clock | None,
    max_concurrent: int | None,
) -> Any:
    engine = _engine_type(algorithm, bucket_cls)
    if engine is None:  # a class of the user's own, following the 0.6 protocols
        if clock is not None:
            raise ConfigError(f"clock= works with limitor's buckets, not {bucket_cls!r}")
        assert bucket_cls is not None
        if is_async and max_concurrent is not None:
            return bucket_cls(config, max_concurrent=max_concurrent)
        return bucket_cls(config)
    if is_async:
        if bucket_cls is not None and issubclass(bucket_cls, AsyncBucket):
            async_cls: type[AsyncBucket] = bucket_cls
        else:  # a sync bucket class for an async function means its async twin
            async_cls = _ASYNC[engine]
        return async_cls(config, max_concurrent=max_concurrent, clock=clock)
    if max_concurrent is not None:
        raise ConfigError("max_concurrent bounds async functions; this function is not async")
    sync_cls = (
        bucket_cls
        if bucket_cls is not None and issubclass(bucket_cls, SyncBucket)
        else _SYNC[engine]
    )
    return sync_cls(config, clock=clock)


class _Default(float):
    """A default limit setting that can tell it was not given (``limiter=`` needs none)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"{float(self):g}"


CAPACITY = _Default(10)
"""The default ``capacity`` of the decorators: 10 per ``seconds``."""
SECONDS = _Default(1)
"""The default ``seconds`` of the decorators: 1."""


def _given(value: object) -> object:
    """``value``, or None when it is a default the user did not write."""
    return None if isinstance(value, _Default) else value


def _no_settings_with_limiter(**settings: object) -> None:
    given = sorted(name for name, value in settings.items() if value is not None)
    if given:
        raise ConfigError(f"limiter= brings its own settings; do not also give {', '.join(given)}")


# -- the public decorators -------------------------------------------------------------------


@overload
def rate_limit(_func: Callable[P, R]) -> Callable[P, R]: ...


@overload
def rate_limit(
    _func: None = None,
    *,
    capacity: float = CAPACITY,
    seconds: float = SECONDS,
    burst: float | None = None,
    algorithm: str | None = None,
    bucket_cls: type[Any] | None = None,
    limiter: Any = None,
    timeout: float | None = None,
    on_limit: OnLimit = "wait",
    clock: Clock | None = None,
    max_concurrent: int | None = None,
    token_estimate: Callable[..., float] | None = None,
    token_reconcile: Callable[[Any], float] | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def rate_limit(
    _func: Callable[P, R] | None = None,
    *,
    capacity: float = CAPACITY,
    seconds: float = SECONDS,
    burst: float | None = None,
    algorithm: str | None = None,
    bucket_cls: type[Any] | None = None,
    limiter: Any = None,
    timeout: float | None = None,
    on_limit: OnLimit = "wait",
    clock: Clock | None = None,
    max_concurrent: int | None = None,
    token_estimate: Callable[..., float] | None = None,
    token_reconcile: Callable[[Any], float] | None = None,
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Limit how often a function runs: ``capacity`` calls (or units) per ``seconds``.

    Works bare (``@rate_limit``) or with arguments, on plain and ``async def`` functions,
    methods, static and class methods. A plain function blocks its thread until allowed;
    an async function awaits without blocking its event loop.

    Args:
        capacity: units per ``seconds`` (the rate is ``capacity / seconds``).
        seconds: the period of ``capacity``.
        burst: the most units at once after a quiet spell (default: ``capacity``).
        algorithm: ``"leaky_bucket"`` (default), ``"token_bucket"``, ``"gcra"`` or
            ``"gcra_leaky_bucket"``; or give ``bucket_cls``.
        bucket_cls: a bucket class (``SyncLeakyBucket``...); a sync class given for an
            async function means its async twin. A class of your own that follows the
            0.6 protocols is used as it is.
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

    Raises:
        ConfigError: a setting is invalid (at decoration time).

    Example:
        >>> @rate_limit(capacity=10, seconds=1)
        ... def fetch(url: str) -> str:
        ...     return url
    """
    police, max_wait = _call_options(
        on_limit, timeout, token_estimate=token_estimate, token_reconcile=token_reconcile
    )
    if limiter is not None:
        _no_settings_with_limiter(
            capacity=_given(capacity),
            seconds=_given(seconds),
            burst=burst,
            algorithm=algorithm,
            bucket_cls=bucket_cls,
            clock=clock,
            max_concurrent=max_concurrent,
        )
        config = None
    else:
        config = BucketConfig(capacity=capacity, seconds=seconds, burst=burst)
        _engine_type(algorithm, bucket_cls)  # validate now, even before a function comes

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        is_async = _is_async(func)
        chosen = limiter
        if config is not None:
            chosen = _new_bucket(
                config,
                is_async=is_async,
                algorithm=algorithm,
                bucket_cls=bucket_cls,
                clock=clock,
                max_concurrent=max_concurrent,
            )
        wrapper = _build_wrapper(
            func,
            chosen,
            is_async=is_async,
            key_of=None,
            token_estimate=token_estimate,
            token_reconcile=token_reconcile,
            timeout=max_wait,
            police=police,
        )
        return _wrap(func, wrapper, chosen)  # type: ignore[no-any-return]

    return decorate if _func is None else decorate(_func)


async_rate_limit = rate_limit
"""The limitor 0.6 name of :func:`rate_limit` (which serves async functions too)."""


def _user_id_key(func: Any) -> Callable[[tuple[Any, ...], dict[str, Any]], Any]:
    """The default key: the ``user_id`` argument, by keyword or by position."""
    binder = ArgumentBinder(_target(func))
    if "user_id" not in binder.parameters:
        return lambda args, kwargs: kwargs.get("user_id")
    value = binder.value
    return lambda args, kwargs: (
        kwargs["user_id"] if "user_id" in kwargs else value("user_id", args, kwargs)
    )


def _custom_key(
    func: Any, key: Callable[..., Hashable]
) -> Callable[[tuple[Any, ...], dict[str, Any]], Any]:
    """``key`` called with the call's arguments bound to the function's signature."""
    normalize = ArgumentBinder(_target(func)).normalize

    def key_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        bound_args, bound_kwargs = normalize(args, kwargs)
        return key(*bound_args, **bound_kwargs)

    return key_of


@overload
def rate_limit_per_user(_func: Callable[P, R]) -> Callable[P, R]: ...


@overload
def rate_limit_per_user(
    _func: None = None,
    *,
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
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def rate_limit_per_user(
    _func: Callable[P, R] | None = None,
    *,
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
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Limit each user (or IP, API key, tenant...) separately: one bucket per key.

    By default the key is the call's ``user_id`` argument (by keyword or position), which
    the function still receives; ``user_id=None`` or no ``user_id`` shares one bucket.
    ``key=`` computes any other key from the call's arguments, bound to the function's
    signature so ``f(request)`` and ``f(request=request)`` give the same key.

    Buckets live in a ``cachetools`` cache (see :class:`~limitor.per_user.PerUserLimiter`):
    a bucket that still holds reservations or debt is never forgotten.

    Args:
        capacity: units per ``seconds``, for each user.
        seconds: the period of ``capacity``.
        burst: the most units at once for each user (default: ``capacity``).
        max_users: how many users' buckets to keep (full ones beyond it are dropped).
        ttl: keep a full bucket at least this long after it was stored (a ``TLRUCache``);
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
    """
    police, max_wait = _call_options(
        on_limit,
        timeout,
        key=key,
        token_estimate=token_estimate,
        token_reconcile=token_reconcile,
    )
    if limiter is not None:
        if not isinstance(limiter, PerUserLimiter):
            raise ConfigTypeError(f"limiter must be a PerUserLimiter, got {limiter!r}")
        _no_settings_with_limiter(
            capacity=_given(capacity),
            seconds=_given(seconds),
            burst=burst,
            algorithm=algorithm,
            bucket_cls=bucket_cls,
            clock=clock,
            ttl=ttl,
        )
        shared = limiter
    else:
        engine = _engine_type(algorithm, bucket_cls)
        if engine is None:
            raise ConfigError("rate_limit_per_user needs one of limitor's bucket classes")
        shared = PerUserLimiter(
            BucketConfig(capacity=capacity, seconds=seconds, burst=burst),
            algorithm=engine.name,
            max_users=max_users,
            ttl=ttl,
            clock=clock,
        )

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        is_async = _is_async(func)
        key_of = _user_id_key(func) if key is None else _custom_key(func, key)
        wrapper = _build_wrapper(
            func,
            shared,
            is_async=is_async,
            key_of=key_of,
            token_estimate=token_estimate,
            token_reconcile=token_reconcile,
            timeout=max_wait,
            police=police,
        )
        return _wrap(func, wrapper, shared)  # type: ignore[no-any-return]

    return decorate if _func is None else decorate(_func)
