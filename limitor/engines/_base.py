"""The engine contract shared by every algorithm.

An engine is pure arithmetic: it never reads a clock, takes a lock or does I/O. It holds
the limit (``rate`` units per second, ``burst`` units at once) and works on a small state
object that the caller keeps (one per bucket or per key) and passes in with the time.

All engines implement the same admission rule, each with its own bookkeeping: an idle
limiter admits up to ``burst`` units at once, then ``rate`` units per second; in any
window of ``w`` seconds at most ``burst + rate * w`` units are admitted. A request that
does not fit now is given the earliest time it fits (a *reservation*: it is committed at
once and the caller sleeps until then), or refused when that time is further away than
``max_wait``. Reservations are handed out in request order, so waiting is FIFO.

Giving back (cancelled reservations, refunds) is not the engines' business: a store
keeps it in admission times and amounts on the limit's schedule line, whose end every
engine reports as :meth:`Engine.full_at` and accepts back through
:meth:`Engine.set_full_at` (see :mod:`limitor.backends.base`).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Generic, TypeVar

from limitor._decision import Decision

__all__ = ("Decision", "Engine", "EngineState")

INF = math.inf
REL = 1e-9
"""The fraction of the interval (``1 / rate``) within which two times are the same.

A wait may exceed ``max_wait`` by that much and still be admitted (float rounding must
not turn "exactly the timeout" into a refusal). It is relative, never an absolute number
of seconds: at a billion units per second one unit is 1e-9 s, so an absolute slack of
1e-9 s would let two units go at the same instant. (The same constant as
:data:`limitor.engines.schedule.REL`.)"""


class EngineState:
    """Base of the per-algorithm state: every state knows its latest admission time."""

    __slots__ = ("extra", "stamp")

    fields: ClassVar[tuple[str, ...]] = ("stamp",)
    """The slots that hold the limit's state (the others are the holder's bookkeeping)."""

    def __init__(self) -> None:
        self.stamp = -INF
        """Time of the latest commit (the time the state's numbers are expressed at)."""
        self.extra: Any = None
        """The holder's rarely used bookkeeping (holes, holds); ``None`` nearly always."""

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.fields)
        return f"{type(self).__name__}({inner})"


S = TypeVar("S", bound=EngineState)


class Engine(ABC, Generic[S]):
    """One rate-limiting algorithm: ``rate`` units per second with bursts of ``burst``.

    Subclasses implement :meth:`reserve` (the hot path), :meth:`wait_time`,
    :meth:`give_back`, :meth:`charge`, :meth:`full_at` and :meth:`set_full_at`; the rest
    is shared.
    Callers validate amounts: ``0 < amount <= burst`` for :meth:`reserve`.
    """

    __slots__ = ("burst", "interval", "rate", "slack", "tolerance")

    name: ClassVar[str]
    """The algorithm's name, as accepted by ``algorithm=``."""

    state_type: ClassVar[type[EngineState]]

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = float(rate)
        self.burst = float(burst)
        self.interval = 1.0 / self.rate
        """Seconds per unit (the GCRA emission interval T)."""
        self.tolerance = self.burst * self.interval
        """Seconds of burst (the GCRA burst tolerance tau = burst * T)."""
        self.slack = self.interval * REL
        """Seconds within which two times are the same (see :data:`REL`)."""

    def new_state(self) -> S:
        """A state for a full (idle) limiter."""
        return self.state_type()  # type: ignore[return-value]

    @abstractmethod
    def reserve(self, state: S, now: float, amount: float, max_wait: float) -> float:
        """Admit ``amount`` at the earliest time it fits, unless that is beyond ``max_wait``.

        Returns:
            The delay in seconds (``>= 0``) after which the request may go; the admission
            is committed to ``state``. A negative number ``-retry_after`` when the delay
            would exceed ``max_wait`` (by more than ``slack``); ``state`` is then
            unchanged. With ``max_wait=0`` the result is 0, at most ``slack``, or
            negative.
        """

    @abstractmethod
    def wait_time(self, state: S, now: float, amount: float) -> float:
        """Seconds until ``amount`` would fit (zero or negative: it fits now). Read-only."""

    @abstractmethod
    def give_back(self, state: S, now: float, amount: float) -> None:
        """Return ``amount`` units to the limiter at ``now`` (never beyond full)."""

    @abstractmethod
    def charge(self, state: S, now: float, amount: float) -> None:
        """Consume ``amount`` more units at ``now`` without any check.

        This is debt: later requests wait until it has been paid back at the rate.
        """

    @abstractmethod
    def full_at(self, state: S) -> float:
        """The time at which the limiter is full again if nothing else is admitted.

        This is the end of the limit's schedule (the GCRA theoretical arrival time): a
        request of ``n`` units arriving at ``now`` goes at
        ``max(full_at, now) + n * interval - tolerance``, whatever the bookkeeping.
        """

    @abstractmethod
    def set_full_at(self, state: S, now: float, tat: float) -> None:
        """Re-express ``state`` so that :meth:`full_at` is ``tat`` (giving back at the end)."""

    # -- shared ---------------------------------------------------------------------

    def decide(self, state: S, now: float, amount: float, max_wait: float = INF) -> Decision:
        """:meth:`reserve`, returning a :class:`Decision` (for readability, not speed)."""
        delay = self.reserve(state, now, amount, max_wait)
        if delay < 0:
            return Decision(admitted=False, delay=0.0, retry_after=-delay)
        return Decision(admitted=True, delay=delay, retry_after=0.0)

    def remaining(self, state: S, now: float) -> float:
        """Units that could be admitted at once now (negative while in debt or queued)."""
        return -self.wait_time(state, now, 0.0) * self.rate

    def snapshot(self, state: S) -> tuple[Any, ...]:
        """The state's values (to compare states in tests and debugging)."""
        return tuple(getattr(state, name) for name in state.fields)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(rate={self.rate!r}, burst={self.burst!r})"
