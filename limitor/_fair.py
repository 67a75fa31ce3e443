"""Fair shares of a total: waiting callers admitted across keys in weighted round robin.

A :class:`FairQueue` belongs to one limiter with a total (``fair=True``). While the total
binds, callers wait here instead of booking a future slot: each key's waiters form a FIFO
queue, and across keys the next to go is the head with the smallest *start tag*
(start-time fair queuing): a request of ``n`` units for a key of weight ``w`` starts at
``max(V, F[key])`` and finishes at ``start + n / w``, where ``F[key]`` is the finish tag
of the key's previous waiting request and ``V`` (the virtual time) is the start tag of
the last request served. A key arriving behind another key's long queue starts at ``V``,
so it goes next; two backlogged keys are served in the ratio of their weights; a key
alone takes every turn, so it uses the whole total.

**Dispatching.** Everything happens under one short lock, in whatever thread or task
calls in: a new waiter, a waiter that wakes, a give-back on the limiter. ``_dispatch``
takes the heads in tag order and lets each take its grant through the limiter's ordinary
one-decision path with no wait (``max_wait=0``): admitted now, or refused. A head refused
while the total still has room is held back by its own key's limit: it is skipped, and
the next key may use the total (nothing idles). The first head refused by the total
stops the round: nobody may pass it. The earliest time a refused head could fit is
remembered, and one waiter, the *keeper*, sleeps until then to dispatch again; the
others sleep until they are woken (or their deadline). A woken waiter finds its grant
ready (delay 0): its ticket is an ordinary one, so ``reconcile`` and ``cancel`` work as
usual. With a backend that does I/O (Redis), a task makes these decisions in a worker
thread (``anyio.to_thread``), so the event loop never waits on the server.

**Waking.** A thread waits on a :class:`threading.Event`. A task waits on an
:class:`anyio.Event` set from its own event loop: directly from that loop's thread, or
through the loop's thread-safe call (asyncio's ``call_soon_threadsafe``, trio's
``run_sync_soon``) from another. With a clock other than the real one or the event
loop's (a ``FakeClock`` in tests), a timed wait is a sleep on that clock instead.

A waiter that is cancelled or times out leaves its queue with nothing taken (a grant it
was handed but did not return is given back) and the next is dispatched. Fairness is
within this process: other processes sharing the limits are not queued here.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections import deque
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.lowlevel

from limitor.backends.base import Grant, check_fits_totals, total_parts_of
from limitor.clock import AnyioClock, MonotonicClock
from limitor.errors import AcquireTimeout, BackendError, ConfigError, ConfigTypeError

if TYPE_CHECKING:
    from limitor._limiter_base import LimiterBase

__all__ = ("FairQueue",)

INF = math.inf


_T = TypeVar("_T")


class _Waiter:
    """One caller waiting for its turn."""

    __slots__ = ("amount", "error", "event", "grant", "key", "seq", "tag", "wake")

    def __init__(self, key: Hashable, amount: Any, tag: float, seq: int) -> None:
        self.key = key
        self.amount = amount
        self.tag = tag
        self.seq = seq
        self.grant: Grant | None = None
        self.error: BackendError | None = None
        """The backend's failure at this waiter's turn (it leaves with it)."""
        self.event: Any = None
        self.wake: Callable[[], None] = _nothing

    def __repr__(self) -> str:
        return f"<waiter key={self.key!r} tag={self.tag:g} granted={self.grant is not None}>"


def _nothing() -> None:
    return None


def _result(waiter: _Waiter) -> Grant:
    """A waiter's outcome once its turn came: its grant, or its backend error raised."""
    if waiter.error is not None:
        raise waiter.error
    assert waiter.grant is not None
    return waiter.grant


def _thread_waker(event: threading.Event) -> Callable[[], None]:
    return event.set


def _task_waker(event: anyio.Event) -> Callable[[], None]:
    """Set ``event`` from any thread: directly on its loop's thread, else thread-safely."""
    native = anyio.lowlevel.current_token().native_token
    home = threading.get_ident()
    soon: Callable[[Callable[[], object]], object] | None = getattr(
        native, "call_soon_threadsafe", None
    ) or getattr(native, "run_sync_soon", None)

    def wake() -> None:
        if threading.get_ident() == home or soon is None:
            event.set()
        else:
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits there
                soon(event.set)

    return wake


class FairQueue:
    """The waiting room of one limiter with a total (see the module docstring)."""

    __slots__ = (
        "_finish",
        "_keeper",
        "_limiter",
        "_lock",
        "_next_try",
        "_queues",
        "_seq",
        "_timed_by_events",
        "_total_of",
        "_totals",
        "_vtime",
        "_weight",
    )

    def __init__(self, limiter: LimiterBase, weight: Callable[[Hashable], float] | None) -> None:
        self._limiter = limiter
        self._weight = weight
        self._lock = threading.Lock()
        self._queues: dict[Hashable, deque[_Waiter]] = {}
        self._finish: dict[Hashable, float] = {}
        self._vtime = 0.0
        self._seq = 0
        self._keeper: _Waiter | None = None
        self._next_try = INF
        spec = limiter.backend_spec
        self._totals = spec.totals
        self._total_of = total_parts_of(spec)
        clock = limiter.clock
        self._timed_by_events = isinstance(clock, (MonotonicClock, AnyioClock))

    def after_fork(self) -> None:
        """In a forked child: a new lock, and no waiters (they are the parent's)."""
        self._lock = threading.Lock()
        self._queues.clear()
        self._finish.clear()
        self._keeper = None

    # -- bookkeeping (under the lock) ----------------------------------------------------

    def weight_of(self, key: Hashable) -> float:
        """The key's weight, checked at use.

        Raises:
            ConfigError: the weight is not a positive, finite number.
        """
        if self._weight is None:
            return 1.0
        value = self._weight(key)
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigTypeError(
                f"weight({key!r}) returned {value!r}; a weight must be a positive number"
            ) from None
        if not (0.0 < number < INF) or isinstance(value, bool):
            raise ConfigError(f"weight({key!r}) returned {value!r}; a weight must be positive")
        return number

    def _start_tag(self, key: Hashable) -> float:
        finish = self._finish.get(key)
        return self._vtime if finish is None or finish < self._vtime else finish

    def _size(self, amount: Any) -> float:
        """Seconds of the total's time ``amount`` takes (of its busiest total)."""
        vector = self._limiter.amounts.vector(amount)
        return max(
            vector[index] / total.rate
            for index, total in zip(self._total_of, self._totals, strict=True)
        )

    def _heads(self) -> list[_Waiter]:
        heads = [queue[0] for queue in self._queues.values()]
        heads.sort(key=lambda w: (w.tag, w.seq))
        return heads

    def _remove(self, waiter: _Waiter) -> None:
        queue = self._queues.get(waiter.key)
        if queue is None:
            return
        try:
            queue.remove(waiter)
        except ValueError:
            return
        if not queue:
            del self._queues[waiter.key]
            if waiter.grant is None:  # a waiter that leaves gives its turn back
                self._finish.pop(waiter.key, None)
            self._prune()
        if self._keeper is waiter:
            self._keeper = None

    def _prune(self) -> None:
        """Forget the finish tags of idle keys that the virtual time has passed.

        A key that comes back soon after it was served starts after its own last
        request (its service counts); once the virtual time passes that, it starts at
        the virtual time, the same as a new key, so its tag may go.
        """
        finish = self._finish
        if len(finish) <= 2 * len(self._queues) + 64:
            return
        vtime = self._vtime
        for key in [k for k, f in finish.items() if f <= vtime and k not in self._queues]:
            del finish[key]

    def _total_blocks(self, key: Hashable, amount: Any) -> bool:
        """True when the total has no room now for ``amount`` (peek: changes nothing)."""
        limiter = self._limiter
        statuses = limiter.store.peek(key, limiter.amounts.vector(amount))
        parts = len(limiter.backend_spec.parts)
        slack = min(part.interval for part in limiter.backend_spec.totals) * 1e-6
        return any(status.retry_after > slack for status in statuses[parts:])

    def _key_blocks(self, waiter: _Waiter) -> bool:
        """True when the waiter's own key has no room now (it cannot go; passing is fine)."""
        limiter = self._limiter
        statuses = limiter.store.peek(waiter.key, limiter.amounts.vector(waiter.amount))
        parts = len(limiter.backend_spec.parts)
        slack = min(part.interval for part in limiter.backend_spec.parts) * 1e-6
        return any(status.retry_after > slack for status in statuses[:parts])

    def _dispatch(self) -> None:
        """Hand grants to the heads whose turn it is (see the module docstring)."""
        limiter = self._limiter
        store = limiter.store
        skipped: set[Hashable] = set()
        next_try = INF
        while self._queues:
            head = None
            for candidate in self._heads():
                if candidate.key not in skipped:
                    head = candidate
                    break
            if head is None:
                break
            try:
                grant = store.reserve(head.key, limiter.amounts.vector(head.amount), 0.0)
                blocks = not grant.admitted and self._total_blocks(head.key, head.amount)
            except BackendError as error:  # its turn failed: it leaves with the error
                head.error = error
                self._remove(head)
                head.wake()
                continue
            if grant.admitted:
                if head.tag > self._vtime:
                    self._vtime = head.tag
                head.grant = grant
                self._remove(head)
                head.wake()
                continue
            retry = grant.now + grant.retry_after
            if retry < next_try:
                next_try = retry
            if blocks:
                break  # nobody may pass the head the total holds back
            skipped.add(head.key)  # held back by its own limit: the others may go
        self._next_try = next_try
        heads = self._heads()
        keeper = heads[0] if heads else None
        if keeper is not self._keeper:
            self._keeper = keeper
            if keeper is not None:
                keeper.wake()

    def poke(self) -> None:
        """Dispatch now (line was given back: a waiter may fit sooner)."""
        with self._lock:
            if self._queues:
                self._dispatch()

    def _estimate(self, key: Hashable, amount: Any, tag: float) -> float:
        """Seconds until ``amount`` for ``key`` would go, roughly: the work ahead of it."""
        limiter = self._limiter
        statuses = limiter.store.peek(key, limiter.amounts.vector(amount))
        parts = len(limiter.backend_spec.parts)
        own = max(status.retry_after for status in statuses[:parts])
        estimate = max(status.retry_after for status in statuses)
        # Per total: the units of the waiters ahead, plus its own, less the room now.
        ahead = [0.0] * len(self._totals)
        for queue in self._queues.values():
            for waiter in queue:
                if waiter.tag < tag or (waiter.tag == tag and waiter.key == key):
                    vector = limiter.amounts.vector(waiter.amount)
                    for t, index in enumerate(self._total_of):
                        ahead[t] += vector[index]
        if any(ahead):
            vector = limiter.amounts.vector(amount)
            estimate = own
            for t, (index, total) in enumerate(zip(self._total_of, self._totals, strict=True)):
                room = statuses[parts + t].remaining
                estimate = max(estimate, (ahead[t] + vector[index] - room) / total.rate)
        return max(estimate, 0.0)

    # -- the verbs ------------------------------------------------------------------------

    def police(self, key: Hashable, amount: Any) -> Grant:
        """Admit now if that passes no waiter and fits, else refuse with an estimate."""
        check_fits_totals(
            self._limiter.backend_spec, self._total_of, self._limiter.amounts.vector(amount)
        )
        with self._lock:
            self.weight_of(key)  # checked at use: a bad weight takes nothing
            tag = self._start_tag(key)
            passes = any(
                w.key == key or (w.tag <= tag and not self._key_blocks(w)) for w in self._heads()
            )
            if not passes:
                grant = self._limiter.store.reserve(key, self._limiter.amounts.vector(amount), 0.0)
                if grant.admitted:
                    return grant
            estimate = self._estimate(key, amount, tag)
            now = self._limiter.clock.now()
            return Grant(False, 0.0, max(estimate, 1e-9), None, now)

    def _enter(self, key: Hashable, amount: Any, max_wait: float) -> _Waiter:
        """Queue a waiter (under the lock) and dispatch; raise at once if it cannot make it."""
        check_fits_totals(
            self._limiter.backend_spec, self._total_of, self._limiter.amounts.vector(amount)
        )
        weight = self.weight_of(key)
        tag = self._start_tag(key)
        if max_wait < INF:
            estimate = self._estimate(key, amount, tag)
            if estimate > max_wait:
                raise AcquireTimeout(
                    f"amount {self._limiter.amounts.describe(amount)} would wait about "
                    f"{estimate:.6g}s for its turn, more than the timeout ({max_wait:g}s)",
                    retry_after=estimate,
                )
        self._seq += 1
        waiter = _Waiter(key, amount, tag, self._seq)
        self._finish[key] = tag + self._size(amount) / weight
        self._queues.setdefault(key, deque()).append(waiter)
        return waiter

    def _leave(self, waiter: _Waiter) -> None:
        """A waiter gives up (cancelled, timed out): nothing taken; the next may go."""
        grant = waiter.grant
        if grant is None:
            self._remove(waiter)
            if self._queues:
                self._dispatch()
            return
        waiter.grant = None  # handed but never returned: give it back whole
        limiter = self._limiter
        with contextlib.suppress(BackendError):  # the backend failed: it stays taken
            limiter.store.give_back(
                waiter.key, limiter.amounts.vector(waiter.amount), grant.ticket, cancel=False
            )
        if self._queues:
            self._dispatch()

    def _timeout(self, waiter: _Waiter, deadline: float) -> float | None:
        """Seconds to sleep (``None``: the deadline has passed; INF: until woken)."""
        now = self._limiter.clock.now()
        if now >= deadline:
            return None
        wait = deadline - now
        if self._keeper is waiter and self._next_try - now < wait:
            wait = max(self._next_try - now, 0.0)
        return wait

    def _timed_out(self, waiter: _Waiter, amount: Any, max_wait: float) -> AcquireTimeout:
        self._leave(waiter)
        return AcquireTimeout(
            f"amount {self._limiter.amounts.describe(amount)} did not get its turn within the "
            f"timeout ({max_wait:g}s); nothing was taken",
            retry_after=0.0,
        )

    def acquire(self, key: Hashable, amount: Any, max_wait: float) -> Grant:
        """Wait (blocking the thread) for this caller's turn; return its grant."""
        clock = self._limiter.clock
        deadline = clock.now() + max_wait
        event = threading.Event()
        with self._lock:
            waiter = self._enter(key, amount, max_wait)
            waiter.event = event
            waiter.wake = _thread_waker(event)
            self._dispatch()
        handed = False
        try:
            while True:
                with self._lock:
                    if waiter.grant is not None or waiter.error is not None:
                        handed = True  # out of its queue already
                        return _result(waiter)
                    wait = self._timeout(waiter, deadline)
                    if wait is None:
                        raise self._timed_out(waiter, amount, max_wait)
                    event.clear()
                if self._timed_by_events or wait == INF:
                    event.wait(None if wait == INF else wait)
                else:
                    clock.sleep(wait)
                with self._lock:
                    if waiter.grant is None:
                        self._dispatch()
        except BaseException:
            if not handed:
                with self._lock:
                    self._leave(waiter)
            raise

    async def _locked_async(self, work: Callable[[], _T]) -> _T:
        """``work()`` under the lock, in a worker thread when the store does I/O.

        The queue's decisions are sync store calls: a slow backend must never block the
        event loop. A store without I/O is asked right here.
        """
        if not self._limiter.store.does_io:
            with self._lock:
                return work()

        def locked() -> _T:
            with self._lock:
                return work()

        return await anyio.to_thread.run_sync(locked)

    async def acquire_async(self, key: Hashable, amount: Any, max_wait: float) -> Grant:
        """:meth:`acquire` for tasks: the event loop is never blocked."""
        clock = self._limiter.clock
        deadline = clock.now() + max_wait
        event = anyio.Event()
        wake = _task_waker(event)
        entered: list[_Waiter] = []

        def enter() -> None:
            waiter = self._enter(key, amount, max_wait)
            waiter.event, waiter.wake = event, wake
            entered.append(waiter)
            self._dispatch()

        def dispatch() -> None:
            if entered[0].grant is None:
                self._dispatch()

        handed = False
        try:
            await self._locked_async(enter)
            waiter = entered[0]
            while True:
                with self._lock:  # no store call here
                    if waiter.grant is not None or waiter.error is not None:
                        handed = True  # out of its queue already
                        return _result(waiter)
                    wait = self._timeout(waiter, deadline)
                    if wait is not None and event.is_set():
                        event = anyio.Event()
                        waiter.event = event
                        waiter.wake = _task_waker(event)
                if wait is None:
                    handed = True  # it leaves, giving back a grant handed meanwhile
                    raise await self._locked_async(
                        lambda: self._timed_out(waiter, amount, max_wait)
                    )
                if self._timed_by_events or wait == INF:
                    with anyio.move_on_after(wait):
                        await event.wait()
                else:
                    await clock.asleep(wait)
                await self._locked_async(dispatch)
        except BaseException:
            if entered and not handed:
                with anyio.CancelScope(shield=True):
                    await self._locked_async(lambda: self._leave(entered[0]))
            raise

    @property
    def waiting(self) -> int:
        """How many callers wait for their turn."""
        with self._lock:
            return sum(len(queue) for queue in self._queues.values())

    def __repr__(self) -> str:
        return f"<FairQueue waiting={self.waiting} vtime={self._vtime:g}>"
