"""Small result objects: reservations, live status and counters."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import anyio

from limitor._decision import Decision

if TYPE_CHECKING:
    from limitor.backends.base import Ticket
    from limitor.clock import Clock

__all__ = ("Decision", "Reservation", "Stats", "Status")

log = logging.getLogger("limitor")


class ReservationVerbs(Protocol):
    """The verbs a reservation's own methods call on the limiter that made it."""

    def cancel_reservation(self, reservation: Reservation) -> float:
        """Give ``reservation`` back; the units given back."""
        ...

    async def cancel_reservation_async(self, reservation: Reservation) -> float:
        """:meth:`cancel_reservation` for tasks."""
        ...

    def reconcile_reservation(self, reservation: Reservation, actual: float) -> None:
        """Refund or charge the difference between ``actual`` and the reservation."""
        ...

    async def reconcile_reservation_async(self, reservation: Reservation, actual: float) -> None:
        """:meth:`reconcile_reservation` for tasks."""
        ...


class ReservationOwner(Protocol):
    """What a reservation needs from the limiter that made it."""

    @property
    def clock(self) -> Clock:
        """The limiter's clock."""
        ...

    @property
    def verbs(self) -> ReservationVerbs:
        """The limiter's verbs (:class:`limitor.limiter.Verbs`)."""
        ...


class Reservation:
    """A committed admission: the caller may go ``delay`` seconds after it was made.

    Made by ``reserve()``; the limiter has already counted it, so the caller should either
    wait ``delay`` seconds and go, or :meth:`cancel` it. :meth:`reconcile` corrects the
    amount once the real cost is known (an LLM call's tokens): unused units are given back,
    extra units become debt that later callers wait for.
    """

    __slots__ = (
        "_cancelled",
        "_owner",
        "_ticket",
        "amount",
        "delay",
        "key",
        "reserved_at",
        "time_to_act",
    )

    def __init__(
        self,
        owner: ReservationOwner,
        key: Any,
        amount: float,
        reserved_at: float,
        delay: float,
        ticket: Ticket | None = None,
    ) -> None:
        self._owner = owner
        self.key = key
        """The key of a per-user limiter (``None`` for a single bucket)."""
        self.amount = amount
        """Units held by this reservation (updated by :meth:`reconcile`)."""
        self.reserved_at = reserved_at
        """Clock time when it was made."""
        self.delay = delay
        """Seconds from ``reserved_at`` until the caller may go (0 = at once)."""
        self.time_to_act = reserved_at + delay
        """Clock time when the caller may go."""
        self._ticket = ticket
        """What the backend needs to give this reservation back (``None``: nothing held)."""
        self._cancelled = False

    @property
    def limiter(self) -> ReservationOwner:
        """The limiter that made this reservation."""
        return self._owner

    @property
    def ticket(self) -> Ticket | None:
        """What the backend needs to give this reservation back (``None``: nothing held).

        The limiter's business: it replaces the ticket when a refund gives part back.
        """
        return self._ticket

    @ticket.setter
    def ticket(self, ticket: Ticket | None) -> None:
        self._ticket = ticket

    @property
    def ok(self) -> bool:
        """True unless the reservation was cancelled."""
        return not self._cancelled

    def delay_from(self, now: float) -> float:
        """Seconds from ``now`` until the caller may go (0 when its time has come)."""
        return max(self.time_to_act - now, 0.0)

    def wait(self) -> None:
        """Block the thread until the reservation's time; cancel it if interrupted.

        The interruption always wins: a give-back that fails is logged, never raised
        in its place.
        """
        clock = self._owner.clock
        try:
            remaining = self.time_to_act - clock.now()
            if remaining > 0:
                clock.sleep(remaining)
        except BaseException:
            try:
                self.cancel()
            except Exception as error:  # the interruption wins
                log.warning("could not give back a cancelled reservation: %s", error)
            raise

    async def wait_async(self) -> None:
        """Await the reservation's time; cancel it if the task is cancelled meanwhile.

        The give-back uses the backend's async verb, shielded from the cancellation so it
        completes; the cancellation always wins: a give-back that fails is logged, never
        raised in its place.
        """
        clock = self._owner.clock
        try:
            remaining = self.time_to_act - clock.now()
            if remaining > 0:
                await clock.asleep(remaining)
        except BaseException:
            with anyio.CancelScope(shield=True):
                try:
                    await self.cancel_async()
                except Exception as error:  # the cancellation wins
                    log.warning("could not give back a cancelled reservation: %s", error)
            raise

    def cancel(self) -> float:
        """Give the reservation back, as far as no later admission depends on it.

        A reservation whose time has come is not given back (its caller may have gone).
        Cancelling twice does nothing.

        Returns:
            The units given back.
        """
        if self._cancelled:
            return 0.0
        self._cancelled = True
        return self._owner.verbs.cancel_reservation(self)

    async def cancel_async(self) -> float:
        """:meth:`cancel` for tasks: never blocks the event loop, on any backend."""
        if self._cancelled:
            return 0.0
        self._cancelled = True
        return await self._owner.verbs.cancel_reservation_async(self)

    async def reconcile_async(self, actual: float) -> None:
        """:meth:`reconcile` for tasks: never blocks the event loop, on any backend."""
        await self._owner.verbs.reconcile_reservation_async(self, actual)

    def reconcile(self, actual: float) -> None:
        """Set the real amount: refund what was unused, charge the excess as debt.

        Never waits and never raises for an amount above the burst: the excess delays
        later callers instead.

        Raises:
            ReservationError: the reservation was cancelled.
            AmountError: ``actual`` is negative, NaN or not a number.
        """
        self._owner.verbs.reconcile_reservation(self, actual)

    def __repr__(self) -> str:
        state = "cancelled" if self._cancelled else f"delay={self.delay:.6g}s"
        key = "" if self.key is None else f" key={self.key!r}"
        amount: Any = self.amount
        units = (
            "(" + ", ".join(f"{part:g}" for part in amount) + ")"
            if isinstance(amount, tuple)  # one number per limit (an LLM call)
            else f"{amount:g}"
        )
        return f"<Reservation amount={units}{key} {state}>"


@dataclass(frozen=True, slots=True)
class Status:
    """A limiter's live state, in the terms of HTTP rate-limit headers."""

    limit: float
    """The burst, the most units admitted at once."""

    remaining: float
    """Units that could be admitted right now (never negative)."""

    retry_after: float
    """Seconds until the asked amount would be admitted (0 means now)."""

    reset_after: float
    """Seconds until the limiter is full again if nothing else is admitted."""

    def headers(self, *, refused: bool = False) -> dict[str, str]:
        """HTTP headers describing this status.

        ``RateLimit-Limit``, ``RateLimit-Remaining`` and ``RateLimit-Reset``, in whole
        seconds rounded so as never to invite a call too early; with ``refused=True`` (for
        a 429 response) also ``Retry-After``.
        """
        headers = {
            "RateLimit-Limit": str(math.floor(self.limit)),
            "RateLimit-Remaining": str(math.floor(self.remaining)),
            "RateLimit-Reset": str(math.ceil(self.reset_after)),
        }
        if refused:
            headers["Retry-After"] = str(math.ceil(self.retry_after))
        return headers


@dataclass(frozen=True, slots=True)
class Stats:
    """Counters of a limiter since it was made or reset."""

    admitted: int
    """Calls admitted (at once or after waiting); cancelled waiters are not counted."""

    waited: int
    """Admitted calls that had to wait."""

    total_wait: float
    """Seconds of waiting handed out, summed over the admitted calls that waited."""

    rejected: int
    """Calls refused (policing, timeout or full queue); they consumed nothing."""

    cancelled: int = 0
    """Reservations cancelled before their time."""

    waiting: int = 0
    """Callers sleeping in the limiter right now."""

    users: int = 0
    """Buckets held in memory now (per-user limiters)."""

    evictions: int = 0
    """Full buckets dropped to bound memory, which changes nothing (per-user limiters)."""

    overflows: int = 0
    """New keys that found a per-user cache at ``max_users`` with every bucket still
    refilling (such buckets are never forgotten), and were decided by the limit's shared
    overflow bucket instead (the cache never grows past ``max_users``)."""

    backend_errors: int = 0
    """Decisions the backend failed to make: raised as ``BackendError``, or admitted
    without a decision with ``on_backend_error="allow"``."""

    @property
    def mean_wait(self) -> float:
        """Average wait of the calls that waited (0 when none did)."""
        return self.total_wait / self.waited if self.waited else 0.0
