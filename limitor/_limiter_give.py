"""The limiter's third layer: giving back, debt, holds and resets.

Cancelling or reconciling a reservation gives its unused units back (exactly, from its
own spans) and charges any overrun as debt; ``charge``, ``hold`` and ``reset`` act on a
key's state directly. Each is one guarded store call
(:meth:`~limitor._limiter_base.LimiterBase._call`) and a poke of the fair queue.
"""

from __future__ import annotations

from collections.abc import Hashable
from contextvars import ContextVar
from typing import Any

from limitor._checks import check_quantity
from limitor._limiter_base import FAILED
from limitor._limiter_decide import DecidingLimiter
from limitor.backends.base import ALL_KEYS
from limitor.errors import ReservationError
from limitor.results import Reservation

CURRENT: ContextVar[Reservation | None] = ContextVar("limitor_reservation", default=None)
"""The reservation of the innermost ``acquire_ctx`` block, for ``reconcile``."""


class GivingLimiter(DecidingLimiter):
    """:class:`~limitor._limiter_decide.DecidingLimiter` with give-back, debt, holds, resets."""

    __slots__ = ()

    def _cancel_reservation(self, reservation: Reservation) -> float:
        ticket = reservation.ticket
        if ticket is None or self._amounts.is_nothing(reservation.amount):
            return 0.0
        amount = reservation.amount
        given, _ = self._call(
            reservation.key, amount, (0.0, ticket), "give_back",
            reservation.key, self._amounts.vector(amount), ticket, cancel=True,
        )  # fmt: skip
        self._poke()
        return float(given)

    async def _cancel_reservation_async(self, reservation: Reservation) -> float:
        ticket = reservation.ticket
        if ticket is None or self._amounts.is_nothing(reservation.amount):
            return 0.0
        amount = reservation.amount
        given, _ = await self._acall(
            reservation.key, amount, (0.0, ticket), "give_back",
            reservation.key, self._amounts.vector(amount), ticket, cancel=True,
        )  # fmt: skip
        await self._poke_async()
        return float(given)

    def _reconcile_plan(self, reservation: Reservation, actual: object) -> tuple[Any, Any, Any]:
        """``(extra, unused, checked)`` for reconciling ``reservation`` to ``actual``."""
        if not reservation.ok:
            raise ReservationError("cannot reconcile a cancelled reservation")
        checked = self._amounts.check_actual(actual, reservation.amount)
        return (*self._amounts.split(checked, reservation.amount), checked)

    def _reconcile_reservation(self, reservation: Reservation, actual: object) -> None:
        extra, unused, checked = self._reconcile_plan(reservation, actual)
        self._adjust(reservation, reservation.key, extra, unused)
        reservation.amount = checked

    async def _reconcile_reservation_async(self, reservation: Reservation, actual: object) -> None:
        extra, unused, checked = self._reconcile_plan(reservation, actual)
        await self._adjust_async(reservation, reservation.key, extra, unused)
        reservation.amount = checked

    def _estimate_plan(
        self, actual: object, estimated: object
    ) -> tuple[Reservation | None, Hashable, Any, Any]:
        """The 0.6 ``reconcile(actual, estimated)``: what to refund or charge, and where.

        Inside ``acquire_ctx`` it is exact for that block's reservation. Outside, the
        refund is taken from the end of the schedule (as if the estimate were the latest
        admission): exact for one caller at a time (use ``reserve()`` or ``acquire_ctx``
        when calls overlap).
        """
        current = CURRENT.get()
        if current is not None and current.limiter is self and current.ok:
            estimate = self._amounts.check_actual(estimated, current.amount)
            target = self._amounts.check_actual(actual, estimate)
            return (current, current.key, *self._amounts.split(target, estimate))
        estimate = self._amounts.check_estimate(estimated)
        target = self._amounts.check_actual(actual, estimate)
        return (None, None, *self._amounts.split(target, estimate))

    def _reconcile_estimate(self, actual: object, estimated: object) -> None:
        """The 0.6 ``reconcile(actual, estimated)`` (see :meth:`_estimate_plan`)."""
        self._adjust(*self._estimate_plan(actual, estimated))

    async def _reconcile_estimate_async(self, actual: object, estimated: object) -> None:
        """:meth:`_reconcile_estimate` for tasks."""
        await self._adjust_async(*self._estimate_plan(actual, estimated))

    def _adjust(
        self, reservation: Reservation | None, key: Hashable, extra: Any, unused: Any
    ) -> None:
        """Charge ``extra`` as debt and refund ``unused`` (either may be None).

        A refund comes out of ``reservation``'s spans; a reservation that holds nothing
        (made while the backend failed open) refunds nothing. Without a reservation (the
        0.6 ``reconcile(actual, estimated)``) it comes off the end of the schedule.
        """
        if unused is not None and (reservation is None or reservation.ticket is not None):
            ticket = None if reservation is None else reservation.ticket
            _, after = self._call(
                key, unused, (0.0, ticket), "give_back",
                key, self._amounts.vector(unused), ticket, cancel=False,
            )  # fmt: skip
            if reservation is not None:
                reservation.ticket = after
            self._poke()
        if extra is not None:
            self._call(key, extra, None, "charge", *self._debt_args(reservation, key, extra))

    async def _adjust_async(
        self, reservation: Reservation | None, key: Hashable, extra: Any, unused: Any
    ) -> None:
        """:meth:`_adjust` for tasks."""
        if unused is not None and (reservation is None or reservation.ticket is not None):
            ticket = None if reservation is None else reservation.ticket
            _, after = await self._acall(
                key, unused, (0.0, ticket), "give_back",
                key, self._amounts.vector(unused), ticket, cancel=False,
            )  # fmt: skip
            if reservation is not None:
                reservation.ticket = after
            await self._poke_async()
        if extra is not None:
            await self._acall(key, extra, None, "charge", *self._debt_args(reservation, key, extra))

    def _debt_args(
        self, reservation: Reservation | None, key: Hashable, extra: Any
    ) -> tuple[Any, ...]:
        """The store's charge arguments for a reconcile's overrun.

        With the grant's ticket while its time has not come: the debt then goes no
        earlier than the grant's own time (charged from now, it could fill free line
        before the admission and let others over-admit around it). Else the plain debt.
        """
        args: tuple[Any, ...] = (key, self._amounts.vector(extra))
        if (
            reservation is not None
            and reservation.ticket is not None
            and reservation.time_to_act > self._now()
        ):
            args += (reservation.ticket,)
        return args

    def _debt(self, amount: object) -> Any:
        """A valid amount to charge, or None for nothing."""
        n = self._amounts.check_actual(amount, self._amounts.check_estimate(0))
        return None if self._amounts.is_nothing(n) else n

    def _charge(self, key: Hashable, amount: object) -> None:
        """Consume ``amount`` now without any check (debt)."""
        n = self._debt(amount)
        if n is not None:
            self._call(key, n, None, "charge", key, self._amounts.vector(n))

    async def _charge_async(self, key: Hashable, amount: object) -> None:
        """:meth:`_charge` for tasks."""
        n = self._debt(amount)
        if n is not None:
            await self._acall(key, n, None, "charge", key, self._amounts.vector(n))

    def _hold(self, key: Hashable, seconds: object) -> None:
        """Admit nothing for ``key`` during the next ``seconds``."""
        duration = check_quantity("seconds", seconds)
        if duration > 0:
            self._call(key, None, None, "hold", key, duration)

    async def _hold_async(self, key: Hashable, seconds: object) -> None:
        """:meth:`_hold` for tasks."""
        duration = check_quantity("seconds", seconds)
        if duration > 0:
            await self._acall(key, None, None, "hold", key, duration)

    def _reset(self, key: object = ALL_KEYS) -> None:
        self._after_reset(key, self._call(key, None, FAILED, "reset", key))

    async def _reset_async(self, key: object = ALL_KEYS) -> None:
        outcome = await self._acall(key, None, FAILED, "reset", key)
        await self._poke_async()
        self._after_reset(key, outcome, poke=False)

    def _after_reset(self, key: object, outcome: object, *, poke: bool = True) -> None:
        if poke:
            self._poke()
        if key is ALL_KEYS and outcome is not FAILED:  # a failed reset forgot nothing
            with self._wait_lock:
                self._backend_errors = 0
