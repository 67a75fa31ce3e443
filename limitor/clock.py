"""Where limitor gets the time from, and how it sleeps.

Every bucket reads the time from a :class:`Clock` given as ``clock=`` (default:
:data:`MONOTONIC`) and sleeps through it, so a test can pass
:class:`limitor.testing.FakeClock` and run in virtual time.
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

import anyio

from limitor.errors import ConfigTypeError

__all__ = ("MONOTONIC", "AnyioClock", "Clock", "MonotonicClock", "check_clock")


@runtime_checkable
class Clock(Protocol):
    """The time source of a limiter: a monotonic ``now()`` and two ways to sleep."""

    def now(self) -> float:
        """Seconds on a monotonic scale (only differences matter)."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block the calling thread for ``seconds``."""
        ...

    async def asleep(self, seconds: float) -> None:
        """Suspend the calling task for ``seconds`` without blocking its event loop."""
        ...


class MonotonicClock:
    """The default clock: :func:`time.monotonic`, :func:`time.sleep` and :func:`anyio.sleep`."""

    __slots__ = ()

    now = staticmethod(time.monotonic)
    sleep = staticmethod(time.sleep)

    async def asleep(self, seconds: float) -> None:
        """Sleep on the running event loop (asyncio or trio)."""
        await anyio.sleep(seconds)

    def __repr__(self) -> str:
        return "MonotonicClock()"


MONOTONIC = MonotonicClock()
"""The shared default clock."""


class AnyioClock:
    """A clock that reads the running event loop's time (:func:`anyio.current_time`).

    Use it with trio's ``MockClock(autojump_threshold=0)`` to run many concurrent tasks in
    virtual time. It works only inside an event loop, and only for async callers.
    """

    __slots__ = ()

    def now(self) -> float:
        """The event loop's time."""
        return anyio.current_time()

    def sleep(self, seconds: float) -> None:
        """Not available: an event loop's time cannot be slept on from a thread."""
        raise RuntimeError("AnyioClock is for async callers; use an async bucket")

    async def asleep(self, seconds: float) -> None:
        """Sleep on the running event loop."""
        await anyio.sleep(seconds)

    def __repr__(self) -> str:
        return "AnyioClock()"


def check_clock(clock: object) -> Clock:
    """``clock`` if it has ``now()``, ``sleep()`` and ``asleep()`` (``None``: the default).

    Raises:
        ConfigTypeError: ``clock`` is not a clock (a clock *class*, such as ``FakeClock``
            instead of ``FakeClock()``, included), at once rather than at the first call.
    """
    if clock is None:
        return MONOTONIC
    if isinstance(clock, type) or not isinstance(clock, Clock):
        hint = " (a class: pass an instance, e.g. FakeClock())" if isinstance(clock, type) else ""
        raise ConfigTypeError(f"clock must have now(), sleep() and asleep(), got {clock!r}{hint}")
    return clock
