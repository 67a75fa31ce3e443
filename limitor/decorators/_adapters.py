"""How to wait on each kind of limiter: limitor's own, or a limitor 0.6 style object.

:class:`Ours` drives a limitor limiter through its :class:`~limitor.limiter.Verbs` (with
the fastest callables for the common cases); :class:`Foreign` drives an object following
the limitor 0.6 protocols through them. :func:`adapter_for` picks one.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import anyio.to_thread

from limitor.base import AsyncBucket, Bucket, SyncBucket
from limitor.errors import ConfigTypeError, RateLimitExceeded
from limitor.limiter import Limiter
from limitor.per_user import PerUserLimiter
from limitor.results import Reservation

__all__ = ("Adapter", "Foreign", "Ours", "adapter_for")


class Ours:
    """A limitor limiter, driven through its :class:`~limitor.limiter.Verbs`."""

    def __init__(self, limiter: Limiter) -> None:
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


class Foreign:
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


Adapter = Ours | Foreign


def adapter_for(limiter: Any, is_async: bool) -> Adapter:
    """:class:`Ours` for a limitor limiter, else :class:`Foreign`.

    Raises:
        ConfigTypeError: ``limiter`` has neither ``acquire()`` nor ``with``.
    """
    if isinstance(limiter, Limiter):
        return Ours(limiter)
    if not callable(getattr(limiter, "acquire", None)) and not hasattr(type(limiter), "__enter__"):
        raise ConfigTypeError(f"limiter must have an acquire() method, got {limiter!r}")
    return Foreign(limiter, is_async=is_async)
