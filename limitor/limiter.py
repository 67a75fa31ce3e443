"""The one limiter: every public verb, over any backend.

A :class:`Limiter` validates what callers ask, lets its backend's store make the decision
(one call per decision: :mod:`limitor.backends.base`), and then sleeps, outside any lock,
until the time the store gave. Buckets, per-user limiters and LLM limiters are thin
classes over it: a key of ``None``, a user's key, or several limits at once.

Each verb is written once as prepare -> one store call -> finish; only the waiting and
that store call exist twice (a thread sleeps and calls the sync verb; a task awaits and
calls the store's async twin, so an event loop is never blocked). The fail-open policy
(``on_backend_error="allow"``) wraps that one call for every verb: reserve, give back,
charge, peek, hold and reset.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Hashable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from limitor._checks import OnBackendError as OnBackendError  # its former home
from limitor._gate import ConcurrencyGate
from limitor._limiter_base import check_backend as check_backend
from limitor._limiter_give import CURRENT, GivingLimiter
from limitor.backends.base import ALL_KEYS
from limitor.results import Reservation, Status

__all__ = ("Limiter", "Verbs", "async_reservation_scope", "reservation_scope")

_CURRENT = CURRENT
"""The reservation of the innermost ``acquire_ctx`` block (its former name, here)."""


class Limiter(GivingLimiter):
    """One limit (or several at once) over a backend, with every verb's machinery.

    What an amount is (one number, or an LLM cost over several parts) is the ``amounts``
    policy's business (:mod:`limitor.amounts`); subclasses say which public signatures
    they offer. Keys are ``None`` (one shared state) or a user's.

    The class is built in layers, one module each: its state, fast path, listeners,
    views and guarded store call (:mod:`limitor._limiter_base`); deciding and waiting
    (:mod:`limitor._limiter_decide`); giving back, debt, holds and resets
    (:mod:`limitor._limiter_give`).

    Args:
        spec: the limit, as the backend sees it.
        clock: the time source (``None``: monotonic); the in-memory backend decides on it.
        backend: where the state lives (``None``: this process's memory).
        on_backend_error: ``"raise"`` a :class:`~limitor.errors.BackendError` when the
            backend fails, or ``"allow"`` the call (fail open: counted and logged).
        amounts: what an amount is (default: one number, at most the smallest burst).
    """

    __slots__ = ()

    @property
    def verbs(self) -> Verbs:
        """Every verb once, with ``key=`` a keyword (see :class:`Verbs`)."""
        return Verbs(self)


class Verbs:
    """Every verb of one limiter once, with ``key=`` a keyword, and its async twin.

    ``limiter.verbs`` is what code that drives any limitor limiter calls (the decorators,
    the ``acquire_ctx`` scopes): the public classes keep the signatures of limitor 0.6
    (``bucket.acquire(amount, timeout)``, ``per_user.acquire(key, amount)``...) and go
    through the same machinery. Each verb validates, makes one store call (the async
    twin's is the store's async verb) under the backend-failure policy, and finishes.

    Example:
        >>> from limitor import SyncLeakyBucket
        >>> from limitor.testing import FakeClock
        >>> verbs = SyncLeakyBucket(rate="10/s", clock=FakeClock()).verbs
        >>> verbs.try_acquire(4)
        True
        >>> round(verbs.status(key=None).remaining, 9)
        6.0
    """

    __slots__ = ("_limiter",)

    def __init__(self, limiter: Limiter) -> None:
        self._limiter = limiter

    @property
    def limiter(self) -> Limiter:
        """The limiter these verbs act on."""
        return self._limiter

    def admit_now(self, amount: Any = 1, *, key: Hashable = None) -> bool:
        """The fast path: True when a plain positive ``amount`` was admitted at once.

        False means "use :meth:`acquire`": it did not fit, it needs validating, or the
        store has no fast path. Never waits, never raises.
        """
        return self._limiter._admit_at_once(key, amount, None)

    def acquire(
        self, amount: object = 1, *, key: Hashable = None, timeout: float | None = None
    ) -> Reservation:
        """Block the thread until ``amount`` may go; the reservation (to reconcile)."""
        return self._limiter._acquire_sync(key, amount, timeout)

    async def acquire_async(
        self, amount: object = 1, *, key: Hashable = None, timeout: float | None = None
    ) -> Reservation:
        """Await, never blocking the event loop, until ``amount`` may go."""
        return await self._limiter._acquire_async(key, amount, timeout)

    def try_acquire(self, amount: object = 1, *, key: Hashable = None) -> bool:
        """Take ``amount`` now if it fits (True), else nothing (False)."""
        return self._limiter._police_or_raise(key, amount)

    async def try_acquire_async(self, amount: object = 1, *, key: Hashable = None) -> bool:
        """:meth:`try_acquire` for tasks."""
        return await self._limiter._police_or_raise_async(key, amount)

    def police(
        self, amount: object = 1, *, key: Hashable = None, hold: bool = False
    ) -> Reservation | None:
        """Admit ``amount`` now or raise ``RateLimitExceeded``; with ``hold``, the reservation."""
        return self._limiter._police_checked(key, amount, hold=hold)

    async def police_async(
        self, amount: object = 1, *, key: Hashable = None, hold: bool = False
    ) -> Reservation | None:
        """:meth:`police` for tasks."""
        return await self._limiter._police_checked_async(key, amount, hold=hold)

    def reserve(
        self, amount: object = 1, *, key: Hashable = None, timeout: float | None = None
    ) -> Reservation:
        """Commit ``amount`` for the earliest time it fits; return at once."""
        return self._limiter._reserve_for(key, amount, timeout)

    async def reserve_async(
        self, amount: object = 1, *, key: Hashable = None, timeout: float | None = None
    ) -> Reservation:
        """:meth:`reserve` for tasks."""
        return await self._limiter._reserve_for_async(key, amount, timeout)

    def reconcile(self, actual: object, estimated: object) -> None:
        """The 0.6 ``reconcile(actual, estimated)``: refund or charge the difference."""
        self._limiter._reconcile_estimate(actual, estimated)

    async def reconcile_async(self, actual: object, estimated: object) -> None:
        """:meth:`reconcile` for tasks."""
        await self._limiter._reconcile_estimate_async(actual, estimated)

    def status(self, amount: object = 1, *, key: Hashable = None) -> Status:
        """The live state of ``key`` (of the first limit, for several); changes nothing."""
        return self._limiter._status(key, amount)

    async def status_async(self, amount: object = 1, *, key: Hashable = None) -> Status:
        """:meth:`status` for tasks."""
        return await self._limiter._status_async(key, amount)

    def hold(self, seconds: object, *, key: Hashable = None) -> None:
        """Admit nothing for ``key`` during the next ``seconds``."""
        self._limiter._hold(key, seconds)

    async def hold_async(self, seconds: object, *, key: Hashable = None) -> None:
        """:meth:`hold` for tasks."""
        await self._limiter._hold_async(key, seconds)

    def charge(self, amount: object, *, key: Hashable = None) -> None:
        """Consume ``amount`` for ``key`` now without any check (debt)."""
        self._limiter._charge(key, amount)

    async def charge_async(self, amount: object, *, key: Hashable = None) -> None:
        """:meth:`charge` for tasks."""
        await self._limiter._charge_async(key, amount)

    def reset(self, *, key: object = ALL_KEYS) -> None:
        """Forget ``key``'s state (default: every key's, and the counters)."""
        self._limiter._reset(key)

    async def reset_async(self, *, key: object = ALL_KEYS) -> None:
        """:meth:`reset` for tasks."""
        await self._limiter._reset_async(key)

    def cancel_reservation(self, reservation: Reservation) -> float:
        """Give ``reservation`` back (what :meth:`Reservation.cancel` calls); the units."""
        return self._limiter._cancel_reservation(reservation)

    async def cancel_reservation_async(self, reservation: Reservation) -> float:
        """:meth:`cancel_reservation` for tasks."""
        return await self._limiter._cancel_reservation_async(reservation)

    def reconcile_reservation(self, reservation: Reservation, actual: object) -> None:
        """Refund or charge the difference (what :meth:`Reservation.reconcile` calls)."""
        self._limiter._reconcile_reservation(reservation, actual)

    async def reconcile_reservation_async(self, reservation: Reservation, actual: object) -> None:
        """:meth:`reconcile_reservation` for tasks."""
        await self._limiter._reconcile_reservation_async(reservation, actual)

    def __repr__(self) -> str:
        return f"<Verbs of {self._limiter!r}>"


@contextmanager
def reservation_scope(limiter: Limiter, amount: object, timeout: object) -> Iterator[None]:
    """Acquire ``amount`` (blocking) for a ``with`` block; ``reconcile`` inside it is exact."""
    reservation = limiter._acquire_sync(None, amount, timeout)
    token = CURRENT.set(reservation)
    try:
        yield
    finally:
        CURRENT.reset(token)


@asynccontextmanager
async def async_reservation_scope(
    limiter: Limiter, gate: ConcurrencyGate | None, amount: object, timeout: object
) -> AsyncIterator[None]:
    """Take a ``max_concurrent`` place, then ``amount``, for an ``async with`` block."""
    if gate is not None:
        await gate.acquire()
    try:
        reservation = await limiter._acquire_async(None, amount, timeout)
        token = CURRENT.set(reservation)
        try:
            yield
        finally:
            CURRENT.reset(token)
    finally:
        if gate is not None:
            gate.release()
