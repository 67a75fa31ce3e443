"""Building the call around a decorated function, for one limiter and one set of options.

:func:`decorate` looks at the function once (sync or async; generators refused), picks
how to wait on the limiter (:class:`_Ours` for limitor's limiters, through the verbs
every ``LimiterCore`` has; :class:`_Foreign` for objects following the limitor 0.6
protocols), and returns a :class:`RateLimitedFunction` with two forms of the same call:
a wrapt wrapper for bound methods and a plain closure for direct calls. The common case
(one unit, no key, nothing to reconcile) gets closures with nothing but the wait in them.
"""

from __future__ import annotations

import functools
import inspect
import logging
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

import anyio.to_thread

from limitor._core import LimiterCore
from limitor.base import AsyncBucket, Bucket, SyncBucket
from limitor.decorators._options import DecoratorOptions, check_one_unit_fits
from limitor.decorators._proxy import RateLimitedFunction, Wrapper
from limitor.errors import ConfigTypeError, LimitorError, RateLimitExceeded
from limitor.per_user import PerUserLimiter
from limitor.results import Reservation

__all__ = ("KeyOf", "StreamOf", "decorate", "is_async_callable", "target_of")

log = logging.getLogger("limitor")

KeyOf = Callable[[tuple[Any, ...], dict[str, Any]], Any]
"""``key_of(call_args, kwargs)``: the key of one call (``self`` first for methods)."""


# -- the function --------------------------------------------------------------------------


def target_of(func: Any) -> Callable[..., Any]:
    """The plain function behind a staticmethod/classmethod object.

    Raises:
        ConfigTypeError: ``func`` is not callable.
    """
    target = func.__func__ if isinstance(func, (classmethod, staticmethod)) else func
    if not callable(target):
        raise ConfigTypeError(f"rate limits decorate callables, got {func!r}")
    return target


def _layers(func: Any) -> list[Any]:
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


def _marked_async(func: Any) -> bool:
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
    return any(_marked_async(layer) for layer in _layers(target))


def _coroutine_shim(func: Any) -> Any:
    """An ``async def`` calling ``func`` (found async behind a plain wrapper).

    The decorated function then passes ``inspect.iscoroutinefunction`` on every Python,
    as frameworks that look before they call expect. Its ``__wrapped__`` is ``func``, so
    its signature is ``func``'s.
    """

    async def call(*args: Any, **kwargs: Any) -> Any:
        result = func(*args, **kwargs)
        if _AWAITABLE_TYPES.get(type(result), True) and _is_awaitable(result):
            return await result
        return result

    functools.update_wrapper(call, func)
    return call


_AWAITABLE_TYPES: dict[type, bool] = {}
"""Result types seen, and whether they are awaitable (a dict read is cheaper than hasattr)."""


def _is_awaitable(result: object) -> bool:
    """Whether ``result`` can be awaited, remembered per type (at most 1024 types)."""
    cls = type(result)
    known = _AWAITABLE_TYPES.get(cls)
    if known is None:
        known = hasattr(cls, "__await__")
        if len(_AWAITABLE_TYPES) < 1024:
            _AWAITABLE_TYPES[cls] = known
    return known


_AWAITABLE_HINT = (
    "{func!r} returned an awaitable but does not look async, so limitor waited for the "
    "limit with time.sleep (blocking an event loop, if one runs in this thread). Mark it: "
    "inspect.markcoroutinefunction(func) (Python 3.12+) or wrap it in an async def."
)


def _warn_awaitable(func: Any, warned: list[bool]) -> None:
    """Warn once per decorated function that it returned an awaitable unannounced."""
    if not warned:
        warned.append(True)
        warnings.warn(_AWAITABLE_HINT.format(func=func), RuntimeWarning, stacklevel=3)


# -- how to wait on each kind of limiter -------------------------------------------------


class _Ours:
    """A limitor limiter, driven through its :class:`~limitor.limiter.Verbs`."""

    def __init__(self, limiter: LimiterCore) -> None:
        self.limiter = limiter
        self.verbs = limiter.verbs

    def wait(self, key: Any, amount: Any, timeout: float | None, hold: bool) -> Any:
        return self.verbs.acquire(amount, key=key, timeout=timeout)

    async def wait_async(self, key: Any, amount: Any, timeout: float | None, hold: bool) -> Any:
        return await self.verbs.acquire_async(amount, key=key, timeout=timeout)

    def police(self, key: Any, amount: Any, hold: bool) -> Reservation | None:
        return self.verbs.police(amount, key=key, hold=hold)

    async def police_async(self, key: Any, amount: Any, hold: bool) -> Reservation | None:
        return await self.verbs.police_async(amount, key=key, hold=hold)

    def settle(self, reservation: Reservation | None, estimated: Any, actual: Any) -> None:
        if reservation is not None:
            reservation.reconcile(actual)

    async def settle_async(
        self, reservation: Reservation | None, estimated: Any, actual: Any
    ) -> None:
        if reservation is not None:
            await reservation.reconcile_async(actual)

    # The common case: one unit, no key.
    def one_unit(self, timeout: float | None) -> Callable[[], Any]:
        limiter, verbs = self.limiter, self.verbs
        if isinstance(limiter, SyncBucket):
            acquire = limiter.acquire
            return acquire if timeout is None else functools.partial(acquire, 1, timeout)
        acquire_sync = functools.partial(verbs.acquire, 1, timeout=timeout)
        if isinstance(limiter, Bucket) and timeout is None:  # an async bucket, a plain function
            admit = verbs.admit_now

            def wait_bucket() -> None:
                if not admit(1):
                    acquire_sync()

            return wait_bucket
        return acquire_sync

    def one_unit_async(self, timeout: float | None) -> Callable[[], Awaitable[Any]]:
        limiter = self.limiter
        if isinstance(limiter, Bucket):  # its acquire_async takes the fast path first
            acquire = limiter.acquire if isinstance(limiter, AsyncBucket) else limiter.acquire_async
            return acquire if timeout is None else functools.partial(acquire, 1, timeout)
        return functools.partial(self.verbs.acquire_async, 1, timeout=timeout)

    def one_unit_police(self, is_async: bool) -> Callable[[], Any]:
        police = self.verbs.police_async if is_async else self.verbs.police
        return functools.partial(police, 1, hold=False)

    # One unit for a key (per-user).
    def keyed(self) -> Callable[[Any, float, float | None], Any]:
        limiter = self.limiter
        if isinstance(limiter, PerUserLimiter):
            return limiter.acquire
        acquire = self.verbs.acquire

        def wait_keyed(key: Any, amount: float, timeout: float | None) -> Any:
            return acquire(amount, key=key, timeout=timeout)

        return wait_keyed

    def keyed_async(self) -> Callable[[Any, float, float | None], Awaitable[Any]]:
        limiter = self.limiter
        if isinstance(limiter, PerUserLimiter):
            return limiter.acquire_async
        acquire_async = self.verbs.acquire_async

        async def wait_keyed(key: Any, amount: float, timeout: float | None) -> Any:
            return await acquire_async(amount, key=key, timeout=timeout)

        return wait_keyed


class _Foreign:
    """An object following the limitor 0.6 protocols, driven through them.

    One unit is taken with ``with bucket:`` / ``async with bucket:`` around the call
    when the object has them (as limitor 0.6 did), else with ``acquire()``; amounts go
    through ``acquire(amount=...)`` and ``reconcile(actual=..., estimated=...)``.
    """

    def __init__(self, limiter: Any, *, is_async: bool) -> None:
        self.limiter = limiter
        self.async_acquire = inspect.iscoroutinefunction(getattr(limiter, "acquire", None))
        self.async_reconcile = inspect.iscoroutinefunction(getattr(limiter, "reconcile", None))
        if not is_async and self.async_acquire:
            raise ConfigTypeError(f"{limiter!r} is async; it can limit async functions only")

    def _acquire_args(self, amount: float, timeout: float | None) -> dict[str, Any]:
        return {"amount": amount} if timeout is None else {"amount": amount, "timeout": timeout}

    def context(self, is_async: bool, timeout: float | None) -> Any:
        """The object itself when a plain unit is taken by entering it (0.6: ``with bucket``)."""
        names = ("__aenter__", "__aexit__") if is_async else ("__enter__", "__exit__")
        usable = timeout is None and all(hasattr(type(self.limiter), n) for n in names)
        return self.limiter if usable else None

    def wait(self, key: Any, amount: float, timeout: float | None, hold: bool) -> None:
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

    async def police_async(self, key: Any, amount: float, hold: bool) -> None:
        try_acquire = getattr(self.limiter, "try_acquire", None)
        if not inspect.iscoroutinefunction(try_acquire):
            self.police(key, amount, hold)
            return
        if not await try_acquire(amount):
            raise RateLimitExceeded("rate limit exceeded")

    def settle(self, reservation: Reservation | None, estimated: Any, actual: Any) -> None:
        self.limiter.reconcile(actual=actual, estimated=estimated)

    async def settle_async(
        self, reservation: Reservation | None, estimated: Any, actual: Any
    ) -> None:
        if self.async_reconcile:
            await self.limiter.reconcile(actual=actual, estimated=estimated)
        else:
            self.settle(reservation, estimated, actual)


_Adapter = _Ours | _Foreign


def _adapter(limiter: Any, is_async: bool) -> _Adapter:
    if isinstance(limiter, LimiterCore):
        return _Ours(limiter)
    if not callable(getattr(limiter, "acquire", None)) and not hasattr(type(limiter), "__enter__"):
        raise ConfigTypeError(f"limiter must have an acquire() method, got {limiter!r}")
    return _Foreign(limiter, is_async=is_async)


# -- the two forms of one call -------------------------------------------------------------


def _forms(run: Callable[[], Any], func: Any, is_async: bool) -> tuple[Wrapper, Callable[..., Any]]:
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

    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        run()
        result = wrapped(*args, **kwargs)
        if _AWAITABLE_TYPES.get(type(result), True) and _is_awaitable(result):
            _warn_awaitable(func, warned)
        return result

    def call(*args: Any, **kwargs: Any) -> Any:
        run()
        result = func(*args, **kwargs)
        if _AWAITABLE_TYPES.get(type(result), True) and _is_awaitable(result):
            _warn_awaitable(func, warned)
        return result

    return wrapper, call


def _context_forms(bucket: Any, func: Any, is_async: bool) -> tuple[Wrapper, Callable[..., Any]]:
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


def _keyed_forms(
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

    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        go(key_of(args if instance is None else (instance, *args), kwargs), 1, timeout)
        result = wrapped(*args, **kwargs)
        if _AWAITABLE_TYPES.get(type(result), True) and _is_awaitable(result):
            _warn_awaitable(func, warned)
        return result

    def call(*args: Any, **kwargs: Any) -> Any:
        go(key_of(args, kwargs), 1, timeout)
        result = func(*args, **kwargs)
        if _AWAITABLE_TYPES.get(type(result), True) and _is_awaitable(result):
            _warn_awaitable(func, warned)
        return result

    return wrapper, call


StreamOf = Callable[..., Any]
"""``stream_of(result, amount, settle, settle_async, blocking=...)``: a proxy reconciling
a streamed result at its end, or None when ``result`` is not a stream (see
:mod:`limitor.llm.streams`); ``blocking`` says the call waited with ``time.sleep``."""


def _general(
    adapter: _Adapter,
    options: DecoratorOptions,
    *,
    func: Any,
    is_async: bool,
    key_of: KeyOf | None,
    token_estimate: Callable[..., Any] | None,
    on_outcome: Callable[[Any, Any], Any] | None,
    on_outcome_async: Callable[[Any, Any], Awaitable[None]] | None = None,
    stream_of: StreamOf | None = None,
) -> Wrapper:
    """The wrapt wrapper that does everything: key, estimate, wait or police, reconcile.

    A result that is a stream (``stream_of`` recognises it) is returned as a proxy that
    reconciles when the stream ends; ``token_reconcile`` and ``on_outcome`` may return
    awaitables in async code (awaited).
    """
    token_reconcile = options.token_reconcile
    hold = token_reconcile is not None  # keep a reservation to reconcile after the call
    streams = stream_of is not None
    if is_async and hold:  # usage_tokens reads async raw responses with its async twin
        token_reconcile = getattr(token_reconcile, "_limitor_async", token_reconcile)
    police = options.police
    timeout = options.max_wait
    warned: list[bool] = []

    if is_async:

        async def general_async(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            call_args = args if instance is None else (instance, *args)
            key = None if key_of is None else key_of(call_args, kwargs)
            amount = 1.0 if token_estimate is None else token_estimate(*call_args, **kwargs)
            if police:
                reservation = await adapter.police_async(key, amount, hold or streams)
            else:
                reservation = await adapter.wait_async(key, amount, timeout, hold or streams)
            if not hold and not streams and on_outcome is None:
                return await wrapped(*args, **kwargs)
            try:
                result = await wrapped(*args, **kwargs)
            except BaseException as error:
                if hold or streams:
                    await _settle_safely_async(adapter, reservation, amount, 0.0)  # refund all
                await _report_async(on_outcome, key, error, on_outcome_async)
                raise
            if streams:
                proxy = _stream_proxy(stream_of, adapter, reservation, amount, result)
                if proxy is not None:
                    await _report_async(on_outcome, key, result, on_outcome_async)
                    return proxy
            if hold:
                actual = await _actual_async(token_reconcile, result)
                if actual is not None:
                    await _settle_safely_async(adapter, reservation, amount, actual)
            await _report_async(on_outcome, key, result, on_outcome_async)
            return result

        return general_async

    def general(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        call_args = args if instance is None else (instance, *args)
        key = None if key_of is None else key_of(call_args, kwargs)
        amount = 1.0 if token_estimate is None else token_estimate(*call_args, **kwargs)
        if police:
            reservation = adapter.police(key, amount, hold or streams)
        else:
            reservation = adapter.wait(key, amount, timeout, hold or streams)
        if not hold and not streams and on_outcome is None:
            result = wrapped(*args, **kwargs)
            if _AWAITABLE_TYPES.get(type(result), True) and _is_awaitable(result):
                _warn_awaitable(func, warned)
            return result
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as error:
            if hold or streams:
                _settle_safely(adapter, reservation, amount, 0.0)  # refund the estimate
            _report(on_outcome, key, error)
            raise
        if _AWAITABLE_TYPES.get(type(result), True) and _is_awaitable(
            result
        ):  # a plain function returning a coroutine
            _warn_awaitable(func, warned)
            return _finish_later(
                result,
                adapter,
                reservation,
                amount,
                key,
                token_reconcile,
                on_outcome,
                stream_of,
                on_outcome_async,
            )
        if streams:
            proxy = _stream_proxy(stream_of, adapter, reservation, amount, result, blocking=True)
            if proxy is not None:
                _report(on_outcome, key, result)
                return proxy
        if hold:
            actual = _actual(token_reconcile, result)
            if actual is not None:
                _settle_safely(adapter, reservation, amount, actual)
        _report(on_outcome, key, result)  # the headers count the call's usage: after it
        return result

    return general


async def _finish_later(
    awaitable: Any,
    adapter: _Adapter,
    reservation: Reservation | None,
    amount: Any,
    key: Any,
    token_reconcile: Callable[[Any], Any] | None,
    on_outcome: Callable[[Any, Any], Any] | None,
    stream_of: StreamOf | None,
    on_outcome_async: Callable[[Any, Any], Awaitable[None]] | None = None,
) -> Any:
    """Await what a plain function returned, then reconcile and report as for async code."""
    keep = token_reconcile is not None or stream_of is not None
    try:
        result = await awaitable
    except BaseException as error:
        if keep:
            await _settle_safely_async(adapter, reservation, amount, 0.0)
        await _report_async(on_outcome, key, error, on_outcome_async)
        raise
    if stream_of is not None:
        proxy = _stream_proxy(stream_of, adapter, reservation, amount, result)
        if proxy is not None:
            await _report_async(on_outcome, key, result, on_outcome_async)
            return proxy
    if token_reconcile is not None:
        actual = await _actual_async(token_reconcile, result)
        if actual is not None:
            await _settle_safely_async(adapter, reservation, amount, actual)
    await _report_async(on_outcome, key, result, on_outcome_async)
    return result


def _stream_proxy(
    stream_of: Any,
    adapter: _Adapter,
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
        _settle_safely(adapter, reservation, amount, actual)

    async def settle_async(actual: Any) -> None:
        await _settle_safely_async(adapter, reservation, amount, actual)

    return stream_of(result, amount, settle, settle_async, blocking=blocking)


def _settle_safely(
    adapter: _Adapter, reservation: Reservation | None, estimated: Any, actual: object
) -> None:
    try:
        adapter.settle(reservation, estimated, actual)
    except (LimitorError, TypeError, ValueError, OverflowError) as error:
        log.warning("could not reconcile %r tokens: %s", actual, error)


async def _settle_safely_async(
    adapter: _Adapter, reservation: Reservation | None, estimated: Any, actual: object
) -> None:
    try:
        await adapter.settle_async(reservation, estimated, actual)
    except (LimitorError, TypeError, ValueError, OverflowError) as error:
        log.warning("could not reconcile %r tokens: %s", actual, error)


def _actual(token_reconcile: Callable[[Any], Any] | None, result: Any) -> Any:
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
        _discard(actual, "token_reconcile")
        return None
    return actual


async def _actual_async(token_reconcile: Callable[[Any], Any] | None, result: Any) -> Any:
    """As :func:`_actual`, awaiting an async ``token_reconcile``."""
    try:
        actual = token_reconcile(result)  # type: ignore[misc]
        if hasattr(type(actual), "__await__"):
            actual = await actual
    except Exception as error:
        log.warning("token_reconcile failed, keeping the estimate: %r", error)
        return None
    return actual


def _discard(awaitable: Any, what: str) -> None:
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


def _report(on_outcome: Callable[[Any, Any], Any] | None, key: Any, outcome: Any) -> None:
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
        _discard(pending, "rate_limit_headers")


async def _report_async(
    on_outcome: Callable[[Any, Any], Any] | None,
    key: Any,
    outcome: Any,
    on_outcome_async: Callable[[Any, Any], Awaitable[None]] | None = None,
) -> None:
    """As :func:`_report`, for async code.

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


def _gated(
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


def _unit_amount_fits(limiter: Any, token_estimate: object) -> None:
    """Calls of one unit must fit the burst of a limiter given with ``limiter=``."""
    if isinstance(limiter, Bucket | PerUserLimiter):
        check_one_unit_fits(limiter.burst, token_estimate)


def _call_forms(
    adapter: _Adapter,
    options: DecoratorOptions,
    *,
    func: Any,
    is_async: bool,
    key_of: KeyOf | None,
    token_estimate: Callable[..., Any] | None,
    on_outcome: Callable[[Any, Any], Any] | None,
    on_outcome_async: Callable[[Any, Any], Awaitable[None]] | None = None,
    stream_of: StreamOf | None = None,
) -> tuple[Wrapper, Callable[..., Any] | None]:
    """The wrapt wrapper and the direct closure (None: the wrapper's) for one configuration.

    One unit with nothing to reconcile or report gets closures with only the wait in them.
    """
    timeout = options.max_wait
    simple = (
        token_estimate is None
        and options.token_reconcile is None
        and on_outcome is None
        and stream_of is None
    )
    if simple and options.police and key_of is None and isinstance(adapter, _Ours):
        return _forms(adapter.one_unit_police(is_async), func, is_async)
    if simple and not options.police:
        if key_of is None and isinstance(adapter, _Ours):
            run = adapter.one_unit_async(timeout) if is_async else adapter.one_unit(timeout)
            return _forms(run, func, is_async)
        if key_of is None and isinstance(adapter, _Foreign):
            bucket = adapter.context(is_async, timeout)
            if bucket is not None:  # 0.6 style: with bucket:
                return _context_forms(bucket, func, is_async)
        elif key_of is not None and isinstance(adapter, _Ours):
            go = adapter.keyed_async() if is_async else adapter.keyed()
            return _keyed_forms(go, key_of, timeout, func, is_async)
    wrapper = _general(
        adapter,
        options,
        func=func,
        is_async=is_async,
        key_of=key_of,
        token_estimate=token_estimate,
        on_outcome=on_outcome,
        on_outcome_async=on_outcome_async,
        stream_of=stream_of,
    )
    return wrapper, None


def decorate(
    func: Any,
    limiter: Any,
    options: DecoratorOptions,
    *,
    is_async: bool,
    key_of: KeyOf | None = None,
    token_estimate: Callable[..., Any] | None = None,
    on_outcome: Callable[[Any, Any], Any] | None = None,
    on_outcome_async: Callable[[Any, Any], Awaitable[None]] | None = None,
    stream_of: StreamOf | None = None,
) -> RateLimitedFunction:
    """``func`` limited by ``limiter`` as ``options`` say: the decorated function.

    Args:
        func: the function, method, or static/class method object.
        limiter: a limitor limiter (any ``LimiterCore``, sync or async alike) or an
            object following the limitor 0.6 protocols.
        options: the decorator's checked options.
        is_async: from :func:`is_async_callable`.
        key_of: the key of a call, from its arguments (``None``: no key).
        token_estimate: the amount of a call (default ``options.token_estimate``;
            ``None``: one unit).
        on_outcome: ``on_outcome(key, result_or_exception)`` after each call (errors
            in it are logged, never raised); in async code it may return an awaitable.
        on_outcome_async: the same for async code, awaited (default: ``on_outcome``).
        stream_of: recognises streamed results and wraps them to reconcile at their end
            (:data:`StreamOf`); None: results are reconciled as they are returned.

    Raises:
        ConfigError: the combination cannot work (an async-only limiter for a plain
            function, a burst below one unit with no estimate).
    """
    if token_estimate is None:
        token_estimate = options.token_estimate
    _unit_amount_fits(limiter, token_estimate)
    adapter = _adapter(limiter, is_async)
    if (
        is_async
        and not _marked_async(func)
        and (
            inspect.isfunction(func)
            or inspect.ismethod(func)
            or isinstance(func, functools.partial)
        )
    ):
        func = _coroutine_shim(func)  # async behind a plain wrapper (the SDKs' methods)
    wrapper, call = _call_forms(
        adapter,
        options,
        func=func,
        is_async=is_async,
        key_of=key_of,
        token_estimate=token_estimate,
        on_outcome=on_outcome,
        on_outcome_async=on_outcome_async,
        stream_of=stream_of,
    )
    gate = limiter.gate if isinstance(limiter, AsyncBucket) else None
    if gate is not None and is_async:
        if call is None:
            general_wrapper = wrapper

            async def call(*args: Any, **kwargs: Any) -> Any:
                return await general_wrapper(func, None, args, kwargs)

        wrapper, call = _gated(gate, wrapper, call)
    return RateLimitedFunction(func, wrapper, limiter, call)
