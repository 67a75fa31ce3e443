"""The limiter's second layer: deciding and waiting.

Each verb that takes units (``acquire``, ``try_acquire``, ``police``, ``reserve``, and
their async twins) validates the amount, makes one decision through
:meth:`~limitor._limiter_base.LimiterBase._decide` (or the fair queue), turns the grant
into a :class:`~limitor.results.Reservation` or a refusal, and, for ``acquire``, waits
outside any lock until the admission time.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from limitor._checks import INF, check_timeout
from limitor._limiter_base import LimiterBase
from limitor.backends.base import Grant
from limitor.errors import AcquireTimeout, BackendError, QueueFull, RateLimitExceeded
from limitor.results import Reservation


class DecidingLimiter(LimiterBase):
    """:class:`~limitor._limiter_base.LimiterBase` with the verbs that decide and wait."""

    __slots__ = ()

    def _admit_at_once(self, key: Hashable, amount: Any, timeout: object) -> bool:
        """The fast path: admit a plain positive ``amount`` if it fits now (no timeout).

        False means "take the full path": it did not fit, it needs validating, or the
        backend has no fast path.
        """
        admit = self._admit_now
        if admit is not None and timeout is None:
            try:
                if amount > 0 and amount is not True:
                    admitted: bool = admit(key, amount)
                    return admitted
            except (TypeError, ArithmeticError):  # not a plain number: validate it
                pass
        return False

    def _police(self, key: Hashable, amount: Any) -> float:
        """Admit a validated, positive ``amount`` now, or refuse it.

        Returns:
            0.0 when admitted; else the seconds until it would be (``retry_after``).
        """
        grant = self._decide(key, amount, 0.0)
        return 0.0 if grant.admitted else grant.retry_after

    def _police_or_raise(self, key: Hashable, amount: object) -> bool:
        """``try_acquire``: True if admitted now, False if not (nothing taken).

        Raises:
            AmountError: an amount that is invalid or could never be admitted.
        """
        if self._admit_at_once(key, amount, None):
            return True
        return self._police_slow(key, amount)

    def _police_slow(self, key: Hashable, amount: object) -> bool:
        """``try_acquire`` once the fast path said no: validate, then decide."""
        n = self._amounts.check(amount)
        return self._amounts.is_nothing(n) or self._police(key, n) == 0.0

    async def _police_or_raise_async(self, key: Hashable, amount: object) -> bool:
        """``try_acquire`` for tasks: the store's async verb when it does I/O."""
        if self._admit_at_once(key, amount, None):
            return True
        n = self._amounts.check(amount)
        if self._amounts.is_nothing(n):
            return True
        return (await self._decide_async(key, n, 0.0)).admitted

    def _reservation(
        self,
        key: Hashable,
        amount: Any,
        grant: Grant,
        max_wait: float,
        *,
        waiter: bool,
        refusal: type[RateLimitExceeded],
    ) -> Reservation:
        """The reservation for ``grant``, or the refusal it stands for.

        ``waiter`` marks a caller that will sleep inside the limiter: it is counted in
        ``waiting`` until :meth:`_done_waiting` and bounded by ``_max_waiting``.
        """
        if not grant.admitted:
            shown = self._amounts.describe(amount)
            if self._fair is not None and refusal is not QueueFull:
                raise RateLimitExceeded(
                    f"amount {shown} cannot go now without passing a "
                    f"waiter or exceeding a limit (fair=True books no future slot); retry "
                    f"in about {grant.retry_after:.6g}s",
                    retry_after=grant.retry_after,
                )
            if refusal is QueueFull:
                raise QueueFull(
                    f"{self._waiting} callers are already waiting (max_size)",
                    retry_after=grant.retry_after,
                )
            raise refusal(
                f"amount {shown} would wait {grant.retry_after:.6g}s, more "
                + (f"than the timeout ({max_wait:g}s)" if max_wait else "than allowed (policing)")
                + f": retry in {grant.retry_after:.6g}s",
                retry_after=grant.retry_after,
            )
        reservation = Reservation(self, key, amount, grant.now, grant.delay, grant.ticket)
        if waiter and grant.delay > 0.0:
            with self._wait_lock:
                self._waiting += 1
        return reservation

    def _queue_is_full(self) -> bool:
        with self._wait_lock:
            return self._max_waiting is not None and self._waiting >= self._max_waiting

    def _commit(
        self,
        key: Hashable,
        amount: Any,
        max_wait: float,
        *,
        waiter: bool,
        refusal: type[RateLimitExceeded] = AcquireTimeout,
    ) -> Reservation:
        """Reserve a validated, positive ``amount``; raise if it would wait beyond ``max_wait``."""
        full = waiter and self._queue_is_full()  # then only a caller that needs no wait may go
        grant = self._decide(key, amount, 0.0 if full else max_wait)
        return self._reservation(
            key, amount, grant, max_wait, waiter=waiter, refusal=QueueFull if full else refusal
        )

    async def _commit_async(
        self,
        key: Hashable,
        amount: Any,
        max_wait: float,
        *,
        waiter: bool,
        refusal: type[RateLimitExceeded] = AcquireTimeout,
    ) -> Reservation:
        """:meth:`_commit` with the store's async verb when it does I/O."""
        full = waiter and self._queue_is_full()  # then only a caller that needs no wait may go
        grant = await self._decide_async(key, amount, 0.0 if full else max_wait)
        return self._reservation(
            key, amount, grant, max_wait, waiter=waiter, refusal=QueueFull if full else refusal
        )

    def _done_waiting(self) -> None:
        with self._wait_lock:
            self._waiting -= 1

    def _zero(self, key: Hashable, amount: Any = 0.0) -> Reservation:
        return Reservation(self, key, amount, self._now(), 0.0, None)

    def _acquire_sync(self, key: Hashable, amount: object, timeout: object) -> Reservation:
        """Validate, commit, and block the thread until the admission time."""
        n = self._amounts.check(amount)
        max_wait = INF if timeout is None else check_timeout(timeout)
        if self._amounts.is_nothing(n):
            return self._zero(key, n)
        if self._fair is not None:
            try:
                grant = self._fair.acquire(key, n, max_wait)
            except BackendError as error:
                grant = self._failed(key, n, error)
            return self._fair_turn(key, n, grant)
        reservation = self._commit(key, n, max_wait, waiter=True)
        if reservation.delay > 0:
            try:
                reservation.wait()
            finally:
                self._done_waiting()
        return reservation

    async def _acquire_async(self, key: Hashable, amount: object, timeout: object) -> Reservation:
        """Validate, commit, and await the admission time (cancellation gives back)."""
        n = self._amounts.check(amount)
        max_wait = INF if timeout is None else check_timeout(timeout)
        if self._amounts.is_nothing(n):
            return self._zero(key, n)
        if self._fair is not None:
            try:
                grant = await self._fair.acquire_async(key, n, max_wait)
            except BackendError as error:
                grant = self._failed(key, n, error)
            return self._fair_turn(key, n, grant)
        reservation = await self._commit_async(key, n, max_wait, waiter=True)
        if reservation.delay > 0:
            try:
                await reservation.wait_async()
            finally:
                self._done_waiting()
        return reservation

    def _fair_turn(self, key: Hashable, amount: Any, grant: Grant) -> Reservation:
        """The reservation of a fair waiter's grant, taken at its turn (it goes now)."""
        if self._listeners:
            self._notify(key, amount, grant)
        return Reservation(self, key, amount, grant.now, 0.0, grant.ticket)

    def _reserve_for(self, key: Hashable, amount: object, timeout: object) -> Reservation:
        n = self._amounts.check(amount)
        max_wait = check_timeout(timeout)
        if self._amounts.is_nothing(n):
            return self._zero(key, n)
        return self._commit(key, n, max_wait, waiter=False)

    async def _reserve_for_async(
        self, key: Hashable, amount: object, timeout: object
    ) -> Reservation:
        n = self._amounts.check(amount)
        max_wait = check_timeout(timeout)
        if self._amounts.is_nothing(n):
            return self._zero(key, n)
        return await self._commit_async(key, n, max_wait, waiter=False)

    def _police_checked(self, key: Hashable, amount: object, *, hold: bool) -> Reservation | None:
        """Admit ``amount`` now or raise :class:`RateLimitExceeded` (nothing taken).

        With ``hold``, return the reservation (to reconcile later).
        """
        n = self._amounts.check(amount)
        if self._amounts.is_nothing(n):
            return self._zero(key, n)
        return self._policed(key, n, self._decide(key, n, 0.0), hold=hold)

    async def _police_checked_async(
        self, key: Hashable, amount: object, *, hold: bool
    ) -> Reservation | None:
        """:meth:`_police_checked` for tasks."""
        n = self._amounts.check(amount)
        if self._amounts.is_nothing(n):
            return self._zero(key, n)
        return self._policed(key, n, await self._decide_async(key, n, 0.0), hold=hold)

    def _policed(self, key: Hashable, n: Any, grant: Grant, *, hold: bool) -> Reservation | None:
        if hold:
            return self._reservation(key, n, grant, 0.0, waiter=False, refusal=RateLimitExceeded)
        if not grant.admitted:
            retry_after = grant.retry_after
            raise RateLimitExceeded(
                f"rate limit exceeded; retry in {retry_after:.6g}s", retry_after=retry_after
            )
        return None
