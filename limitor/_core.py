"""The machinery shared by every in-memory limiter: one bucket or one bucket per key.

A limiter is an engine (pure arithmetic), its state(s), one short ``threading.Lock`` and
a clock. Every verb works the same way: under the lock, read the clock once and let the
engine decide and commit; then, outside the lock, sleep until the committed time. Nothing
sleeps or awaits while holding the lock, so a limiter serves threads and any number of
event loops at once, waiters are served in order, and a saturated limiter admits at
exactly its rate.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from limitor._checks import INF, check_amount, check_quantity, check_timeout
from limitor.clock import MONOTONIC, Clock
from limitor.engines import Engine, EngineState
from limitor.engines._base import SLACK
from limitor.engines.multi import MultiEngine, MultiState
from limitor.errors import (
    AcquireTimeout,
    ConfigTypeError,
    QueueFull,
    RateLimitExceeded,
    ReservationError,
)
from limitor.listeners import LimitEvent, Listener, check_listener, notify
from limitor.results import Reservation

_CURRENT: ContextVar[Reservation | None] = ContextVar("limitor_reservation", default=None)
"""The reservation of the innermost ``acquire_ctx`` block, for ``reconcile``."""

_UNWIND_LIMIT = 256
"""The most cancelled reservations remembered per key for :meth:`LimiterCore._unwind`."""


def _defer(state: EngineState, now: float, amount: Any, max_wait: float) -> float:
    """The fast paths' ``_reserve`` while listeners are attached: decide nothing (NaN).

    Every fast path admits only on ``delay >= 0.0`` and refuses only on ``delay < 0.0``;
    NaN is neither, so it falls through to the slow path, which decides with the engine
    and notifies the listeners. Without listeners ``_reserve`` is the engine's own
    ``reserve`` and the fast paths cost exactly what they did.
    """
    return math.nan


def check_clock(clock: object) -> Clock:
    """``clock`` if it has ``now()``, ``sleep()`` and ``asleep()`` (``None``: the default)."""
    if clock is None:
        return MONOTONIC
    if not isinstance(clock, Clock):
        raise ConfigTypeError(f"clock must have now(), sleep() and asleep(), got {clock!r}")
    return clock


class LimiterCore:
    """Engine, lock, clock and counters, with the verbs' slow paths for any key.

    Subclasses say where a key's state lives (:meth:`_state_for`, :meth:`_existing_state`)
    and add the public verbs and their fast paths.
    """

    __slots__ = (
        "__weakref__",
        "_admitted",
        "_burst",
        "_cancelled",
        "_clock",
        "_engine",
        "_listeners",
        "_lock",
        "_max_waiting",
        "_name",
        "_now",
        "_rejected",
        "_reserve",
        "_unwindable",
        "_wait_total",
        "_waited",
        "_waiting",
    )

    def __init__(self, engine: Engine[Any], clock: object) -> None:
        self._engine = engine
        self._reserve = engine.reserve
        self._burst = engine.burst
        self._clock = check_clock(clock)
        self._now = self._clock.now
        self._lock = threading.Lock()
        self._max_waiting: int | None = None
        self._unwindable: dict[Any, dict[tuple[Any, ...], Reservation]] = {}
        self._admitted = self._waited = self._rejected = self._cancelled = self._waiting = 0
        self._wait_total = 0.0
        self._listeners: tuple[Listener, ...] = ()
        self._name: str | None = None

    # -- listeners (see limitor.listeners) ---------------------------------------------
    # Events fire outside the lock, once per decision: on_admitted (+ on_waited when the
    # grant must wait) from _commit and _police_observed, on_rejected from the same two
    # and from _commit's refusals. With no listener, _listeners is () and _reserve is
    # the engine's reserve: nothing below costs anything.

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener`` on every decision from now on (see :mod:`limitor.listeners`).

        Raises:
            ConfigTypeError: ``listener`` lacks one of the :class:`~limitor.listeners.Listener`
                methods.
        """
        listener = check_listener(listener)
        with self._lock:
            self._listeners = (*self._listeners, listener)
            self._reserve = _defer

    def remove_listener(self, listener: Listener) -> None:
        """Stop calling ``listener`` (nothing happens if it was not attached)."""
        with self._lock:
            self._listeners = tuple(other for other in self._listeners if other is not listener)
            if not self._listeners:
                self._reserve = self._engine.reserve

    @property
    def listeners(self) -> tuple[Listener, ...]:
        """The attached listeners, in the order they are called."""
        return self._listeners

    @property
    def name(self) -> str | None:
        """The limiter's name in listener events (``None`` until set)."""
        return self._name

    @name.setter
    def name(self, value: str | None) -> None:
        if value is not None and not isinstance(value, str):
            raise ConfigTypeError(f"name must be a string or None, got {value!r}")
        self._name = value

    def _notify_admitted(self, key: Any, amount: Any, wait: float) -> None:
        event = LimitEvent(self._name, key, amount, wait=wait)
        notify(self._listeners, "on_admitted", event)
        if wait > 0.0:
            notify(self._listeners, "on_waited", event)

    def _notify_rejected(self, key: Any, amount: Any, retry_after: float) -> None:
        event = LimitEvent(self._name, key, amount, retry_after=retry_after)
        notify(self._listeners, "on_rejected", event)

    # -- where states live (called under the lock) ---------------------------------

    def _state_for(self, key: Any, now: float) -> EngineState:
        """The state of ``key``, created if there is none."""
        raise NotImplementedError

    def _existing_state(self, key: Any) -> EngineState | None:
        """The state of ``key`` if the limiter holds one."""
        raise NotImplementedError

    def _committed(self, key: Any, state: EngineState, now: float) -> None:
        """Called after every change to a state (per-key caches refresh their expiry)."""

    # -- what an amount is (scalar here; limiters of several limits override) ----------

    def _check(self, amount: object) -> Any:
        """A valid amount for this limiter, normalised; raise ``AmountError`` otherwise."""
        return check_amount(amount, self._burst)

    def _check_actual(self, actual: object, reserved: Any) -> Any:
        """A valid actual amount to reconcile ``reserved`` to."""
        return check_quantity("actual", actual)

    def _is_nothing(self, amount: Any) -> bool:
        """True for an amount that takes nothing from any limit."""
        return bool(amount == 0)

    def _describe(self, amount: Any) -> str:
        """The amount, for error messages."""
        return f"{amount:g}"

    def _split(self, actual: Any, reserved: Any) -> tuple[Any, Any]:
        """``(extra, unused)``: what to charge as debt and what to refund (None: nothing)."""
        if actual > reserved:
            return actual - reserved, None
        if actual < reserved:
            return None, reserved - actual
        return None, None

    # -- read-only views -------------------------------------------------------------

    @property
    def clock(self) -> Clock:
        """The clock this limiter reads and sleeps on."""
        return self._clock

    @property
    def engine(self) -> Engine[Any]:
        """The algorithm's engine."""
        return self._engine

    @property
    def rate(self) -> float:
        """Units per second."""
        return self._engine.rate

    @property
    def burst(self) -> float:
        """The most units admitted at once."""
        return self._burst

    # -- deciding -------------------------------------------------------------------

    def _admit_at_once(self, key: Any, amount: Any, timeout: object) -> bool:
        """The fast path: admit a plain positive ``amount`` if it fits now (no timeout).

        False means "take the full path": it did not fit, or it needs validating.
        """
        try:
            if timeout is None and amount > 0 and amount is not True:
                with self._lock:
                    now = self._now()
                    state = self._state_for(key, now)
                    if self._reserve(state, now, amount, 0.0) >= 0.0:
                        self._admitted += 1
                        self._committed(key, state, now)
                        return True
        except TypeError:
            pass
        return False

    def _police_or_raise(self, key: Any, amount: object) -> bool:
        """``try_acquire``: True if admitted now, False if not (nothing taken).

        Raises:
            AmountError: an amount that is invalid or could never be admitted.
        """
        try:
            if amount is not True and 0 < amount <= self._burst:  # type: ignore[operator]
                return self._police(key, amount) == 0.0
        except TypeError:
            pass
        n = self._check(amount)
        return self._is_nothing(n) or self._police(key, n) == 0.0

    def _police(self, key: Any, amount: Any) -> float:
        """Admit a validated, positive ``amount`` now, or refuse it.

        Returns:
            0.0 when admitted; else the seconds until it would be (``retry_after``).
        """
        with self._lock:
            now = self._now()
            state = self._state_for(key, now)
            delay = self._reserve(state, now, amount, 0.0)
            if delay >= 0:
                self._admitted += 1
                self._committed(key, state, now)
                return 0.0
            if delay < 0:
                self._rejected += 1
                return -delay
        return self._police_observed(key, amount)  # NaN: listeners are attached

    def _police_observed(self, key: Any, amount: Any) -> float:
        """:meth:`_police` deciding with the engine itself, then notifying the listeners."""
        with self._lock:
            now = self._now()
            state = self._state_for(key, now)
            delay = self._engine.reserve(state, now, amount, 0.0)
            if delay >= 0:
                self._admitted += 1
                self._committed(key, state, now)
            else:
                self._rejected += 1
        if delay >= 0:
            self._notify_admitted(key, amount, 0.0)
            return 0.0
        self._notify_rejected(key, amount, -delay)
        return -delay

    def _commit(
        self,
        key: Any,
        amount: float,
        max_wait: float,
        *,
        waiter: bool,
        refusal: type[RateLimitExceeded] = AcquireTimeout,
    ) -> Reservation:
        """Reserve a validated, positive ``amount``; raise if it would wait beyond ``max_wait``.

        ``waiter`` marks a caller that will sleep inside the limiter: it is counted in
        ``waiting`` until :meth:`_done_waiting` and bounded by ``_max_waiting``.
        ``refusal`` is the error raised when it would wait too long.
        """
        try:
            reservation = self._commit_locked(key, amount, max_wait, waiter, refusal)
        except RateLimitExceeded as error:
            if self._listeners:
                self._notify_rejected(key, amount, error.retry_after)
            raise
        if self._listeners:
            self._notify_admitted(key, amount, reservation.delay)
        return reservation

    def _commit_locked(
        self,
        key: Any,
        amount: float,
        max_wait: float,
        waiter: bool,
        refusal: type[RateLimitExceeded],
    ) -> Reservation:
        engine = self._engine
        with self._lock:
            now = self._now()
            state = self._state_for(key, now)
            delay = engine.reserve(state, now, amount, 0.0)
            if delay >= 0.0:  # admitted now (within SLACK): nothing to snapshot or wait for
                self._admitted += 1
                self._committed(key, state, now)
                return Reservation(self, key, amount, now, 0.0)
            if -delay > max_wait + SLACK:
                self._rejected += 1
                raise refusal(
                    f"amount {self._describe(amount)} would wait {-delay:.6g}s, more than "
                    + (f"the timeout ({max_wait:g}s)" if max_wait else "allowed (policing)"),
                    retry_after=-delay,
                )
            if waiter and self._max_waiting is not None and self._waiting >= self._max_waiting:
                self._rejected += 1
                raise QueueFull(
                    f"{self._waiting} callers are already waiting (max_size)",
                    retry_after=-delay,
                )
            before = engine.snapshot(state)
            delay = engine.reserve(state, now, amount, INF)
            if waiter:
                self._waiting += 1
            self._waited += 1
            self._wait_total += delay
            self._admitted += 1
            self._committed(key, state, now)
            after = engine.snapshot(state)
        return Reservation(self, key, amount, now, delay, before, after)

    def _apply(self, key: Any, change: Callable[[EngineState, float], None]) -> None:
        """Run ``change(state, now)`` on ``key``'s state under the lock."""
        with self._lock:
            now = self._now()
            state = self._state_for(key, now)
            change(state, now)
            self._committed(key, state, now)

    def charge(self, amount: float, *, key: Any = None) -> None:
        """Consume ``amount`` units now without any check: debt that delays later callers.

        For a bucket of one limit; ``amount`` may exceed the burst.

        Raises:
            AmountError: ``amount`` is negative, NaN, infinite or not a number.
            ConfigTypeError: the limiter has several limits (an LLM limiter).
        """
        if isinstance(self._engine, MultiEngine):
            raise ConfigTypeError(
                f"charge({amount!r}) takes units of one limit; a limiter of several limits "
                "charges through reserve(...).reconcile(actual)"
            )
        units = check_quantity("amount", amount)
        if units:
            self._apply(key, lambda state, now: self._engine.charge(state, now, units))

    def hold(self, seconds: float, *, key: Any = None) -> None:
        """Admit nothing for ``seconds`` (a server's ``Retry-After``).

        The bucket is empty until then and refills at its rate from then on. A hold
        never shortens a wait already owed. On a limiter of several limits, it holds them all.

        Raises:
            AmountError: ``seconds`` is negative, NaN, infinite or not a number.
        """
        seconds = check_quantity("seconds", seconds)
        engine = self._engine
        if isinstance(engine, MultiEngine):  # every limit at once
            multi = engine

            def hold_all(state: EngineState, now: float) -> None:
                assert isinstance(state, MultiState)
                multi.hold_until(state, now + seconds)

            self._apply(key, hold_all)
            return

        def empty_until(state: EngineState, now: float) -> None:
            extra = (now + seconds + engine.tolerance - max(engine.full_at(state), now)) * (
                engine.rate
            )
            if extra > 0:
                engine.charge(state, now, extra)

        self._apply(key, empty_until)

    def _done_waiting(self) -> None:
        with self._lock:
            self._waiting -= 1

    def _zero(self, key: Any, amount: Any = 0.0) -> Reservation:
        return Reservation(self, key, amount, self._now(), 0.0)

    def _acquire_sync(self, key: Any, amount: object, timeout: object) -> Reservation:
        """Validate, commit, and block the thread until the admission time."""
        n = self._check(amount)
        max_wait = INF if timeout is None else check_timeout(timeout)
        if self._is_nothing(n):
            return self._zero(key, n)
        reservation = self._commit(key, n, max_wait, waiter=True)
        if reservation.delay > 0:
            try:
                reservation.wait()
            finally:
                self._done_waiting()
        return reservation

    async def _acquire_async(self, key: Any, amount: object, timeout: object) -> Reservation:
        """Validate, commit, and await the admission time (cancellation gives back)."""
        n = self._check(amount)
        max_wait = INF if timeout is None else check_timeout(timeout)
        if self._is_nothing(n):
            return self._zero(key, n)
        reservation = self._commit(key, n, max_wait, waiter=True)
        if reservation.delay > 0:
            try:
                await reservation.wait_async()
            finally:
                self._done_waiting()
        return reservation

    def _reserve_for(self, key: Any, amount: object, timeout: object) -> Reservation:
        n = self._check(amount)
        max_wait = check_timeout(timeout)
        if self._is_nothing(n):
            return self._zero(key, n)
        return self._commit(key, n, max_wait, waiter=False)

    def _police_checked(self, key: Any, amount: object, *, hold: bool) -> Reservation | None:
        """Admit ``amount`` now or raise :class:`RateLimitExceeded` (nothing taken).

        With ``hold``, return the reservation (to reconcile later).
        """
        n = self._check(amount)
        if self._is_nothing(n):
            return self._zero(key, n)
        if hold:
            return self._commit(key, n, 0.0, waiter=False, refusal=RateLimitExceeded)
        retry_after = self._police(key, n)
        if retry_after:
            raise RateLimitExceeded(
                f"rate limit exceeded; retry in {retry_after:.6g}s", retry_after=retry_after
            )
        return None

    # -- giving back ----------------------------------------------------------------

    def _cancel_reservation(self, reservation: Reservation) -> float:
        if self._is_nothing(reservation.amount):
            return 0.0
        engine = self._engine
        key = reservation.key
        with self._lock:
            now = self._now()
            state = self._existing_state(key)
            if state is None or reservation.time_to_act <= now:
                return 0.0
            self._admitted -= 1  # a cancelled waiter was not admitted after all
            self._cancelled += 1
            if reservation.delay > 0:
                self._waited -= 1
                self._wait_total -= reservation.delay
            given = engine.cancel(
                state,
                now,
                reservation.amount,
                reservation.time_to_act,
                reservation._before,
                reservation._after,
            )
            if given:  # earlier cancelled commits may be the latest ones now
                given += self._unwind(key, state)
            else:  # later commits depend on it: undo it once they are undone
                self._remember_cancelled(key, reservation)
            self._committed(key, state, now)
            return given

    def _remember_cancelled(self, key: Any, reservation: Reservation) -> None:
        """Keep a cancelled reservation that later ones still depend on (state unchanged).

        Once the commits after it are undone, :meth:`_unwind` undoes it too: a crowd of
        waiters cancelled in any order gives everything back. Keyed by the state right
        after its commit, which is what the state will be again when it is the latest.
        """
        remembered = self._unwindable.setdefault(key, {})
        remembered[reservation._after] = reservation
        if len(remembered) > _UNWIND_LIMIT:
            del remembered[next(iter(remembered))]  # the oldest

    def _unwind(self, key: Any, state: EngineState) -> float:
        """Undo remembered cancelled reservations that have become the latest commits."""
        remembered = self._unwindable.get(key)
        if not remembered:
            return 0.0
        given = 0.0
        while (latest := remembered.pop(self._engine.snapshot(state), None)) is not None:
            self._engine.restore(state, latest._before)
            given += self._engine.units(latest.amount)
        if not remembered:
            del self._unwindable[key]
        return given

    def _reconcile_reservation(self, reservation: Reservation, actual: object) -> None:
        if not reservation.ok:
            raise ReservationError("cannot reconcile a cancelled reservation")
        checked = self._check_actual(actual, reservation.amount)
        extra, unused = self._split(checked, reservation.amount)
        self._adjust(reservation.key, extra, unused, reservation.time_to_act)
        reservation.amount = checked

    def _reconcile_estimate(self, actual: object, estimated: object) -> None:
        """The 0.6 ``reconcile(actual, estimated)``: refund or charge the difference.

        Inside ``acquire_ctx`` it is exact for that block's reservation. Outside, the
        estimate is taken as the latest admission: exact for one caller at a time (use
        ``reserve()`` or ``acquire_ctx`` when calls overlap).
        """
        current = _CURRENT.get()
        if current is not None and current._owner is self and current.ok:
            estimate = self._check_actual(estimated, current.amount)
            admit_time: float | None = current.time_to_act
        else:
            estimate, admit_time = self._check(estimated), None
        target = self._check_actual(actual, estimate)
        self._adjust(None, *self._split(target, estimate), admit_time)

    def _adjust(self, key: Any, extra: Any, unused: Any, admit_time: float | None) -> None:
        """Charge ``extra`` as debt and refund ``unused`` (either may be None)."""
        if extra is None and unused is None:
            return
        engine = self._engine
        with self._lock:
            now = self._now()
            if extra is not None:
                state = self._state_for(key, now)
                engine.charge(state, now, extra)
            else:
                existing = self._existing_state(key)
                if existing is None:  # forgotten because it was full: nothing to refund
                    return
                state = existing
            if unused is not None:
                when = state.latest if admit_time is None else admit_time
                engine.refund(state, now, unused, when)
            self._committed(key, state, now)
