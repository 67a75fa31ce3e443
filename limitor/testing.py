"""Helpers for testing code that uses limitor.

:class:`FakeClock` replaces the real clock: pass it as ``clock=`` to any bucket or
decorator and every wait happens in virtual time, instantly and deterministically::

    clock = FakeClock()
    bucket = SyncLeakyBucket(BucketConfig(capacity=2, seconds=1), clock=clock)
    for _ in range(4):
        bucket.acquire()
    assert clock.now() == 1.0          # the 3rd and 4th calls waited 0.5 s each
"""

from __future__ import annotations

import math
import threading

import anyio.lowlevel

from limitor.errors import ConfigError

__all__ = ("FakeClock",)


class FakeClock:
    """A virtual clock whose time moves only when told to or when someone sleeps on it.

    ``sleep(s)`` and ``await asleep(s)`` move the time forward by ``s`` and return at once;
    the async form yields to the event loop once. Buckets sleep until their computed
    admission time (they re-read the clock first), so several concurrent sleepers end at the
    latest of their admission times, not at the sum of their sleeps. Every sleep is recorded
    in ``sleeps``.

    Args:
        start: the initial time.
    """

    __slots__ = ("_lock", "_now", "sleeps")

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)
        self._lock = threading.Lock()
        self.sleeps: list[float] = []
        """Every duration passed to ``sleep``/``asleep``, in call order."""

    def now(self) -> float:
        """The current virtual time."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the time forward by ``seconds`` (zero or more)."""
        if not math.isfinite(seconds) or seconds < 0:
            raise ConfigError(f"seconds must be finite and not negative, got {seconds!r}")
        with self._lock:
            self._now += seconds

    def sleep(self, seconds: float) -> None:
        """Record the sleep and move the time forward by ``seconds``."""
        if not seconds >= 0:  # also rejects NaN
            raise ConfigError(f"cannot sleep for {seconds!r} seconds")
        with self._lock:
            self.sleeps.append(seconds)
            self._now += seconds

    async def asleep(self, seconds: float) -> None:
        """Like :meth:`sleep`, then yield to the event loop once (a checkpoint)."""
        self.sleep(seconds)
        await anyio.lowlevel.checkpoint()

    def __repr__(self) -> str:
        return f"FakeClock(now={self._now!r}, sleeps={len(self.sleeps)})"
