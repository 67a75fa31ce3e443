"""A FIFO concurrency limit that works across threads and event loops (asyncio and trio).

An anyio ``Semaphore`` belongs to one event loop; a limiter may be shared by several
(threads each running their own loop). The gate keeps its count under a
``threading.Lock`` and wakes each waiter on its own loop through that loop's
thread-safe scheduling call.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque

import anyio
import anyio.lowlevel

from limitor import _fork


class _Waiter:
    __slots__ = ("event", "granted", "token")

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.token = anyio.lowlevel.current_token().native_token
        self.granted = False

    def wake(self) -> bool:
        """Schedule ``event.set`` on the waiter's loop; False if that loop is gone."""
        try:
            if isinstance(self.token, asyncio.AbstractEventLoop):
                self.token.call_soon_threadsafe(self.event.set)
            else:  # trio's TrioToken
                self.token.run_sync_soon(self.event.set)  # type: ignore[attr-defined]
        except RuntimeError:  # the loop was closed (trio raises RunFinishedError)
            return False
        return True


class ConcurrencyGate:
    """At most ``limit`` holders at once; waiters are let in first come, first served."""

    __slots__ = ("__weakref__", "_active", "_limit", "_lock", "_waiters")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._active = 0
        self._waiters: deque[_Waiter] = deque()
        self._lock = threading.Lock()
        _fork.register(self, type(self)._after_fork)

    def _after_fork(self) -> None:
        # A child forked while another thread held the lock must not wait for it forever.
        self._lock = threading.Lock()

    @property
    def limit(self) -> int:
        """The most holders at once."""
        return self._limit

    @property
    def active(self) -> int:
        """Holders right now."""
        return self._active

    @property
    def waiting(self) -> int:
        """Tasks waiting to get in."""
        return len(self._waiters)

    async def acquire(self) -> None:
        """Wait for a place. A task cancelled while waiting leaves no trace."""
        with self._lock:
            if self._active < self._limit and not self._waiters:
                self._active += 1
                return
            waiter = _Waiter()
            self._waiters.append(waiter)
        try:
            await waiter.event.wait()
        except BaseException:
            with self._lock:
                if waiter.granted:  # the place was handed over: pass it on
                    self._release_locked()
                else:
                    self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        """Give a place back, handing it to the longest waiter if there is one."""
        with self._lock:
            self._release_locked()

    def _release_locked(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            waiter.granted = True
            if waiter.wake():
                return
        self._active -= 1
