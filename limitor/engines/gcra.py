"""The generic cell rate algorithm (GCRA), in its two classic forms.

Both keep the limit as time: each unit costs the emission interval ``T = 1 / rate``
seconds and the burst is a tolerance ``tau = burst * T``.

* Virtual scheduling keeps the *theoretical arrival time* (TAT): when the limiter would
  be empty again. A request of ``n`` units may go at ``TAT + n*T - tau``.
* The continuous-state leaky bucket keeps the bucket's content ``X`` in seconds as of the
  last conformance time ``LCT``; ``X`` drains one second per second.

Reference: ITU-T I.371; https://en.wikipedia.org/wiki/Generic_cell_rate_algorithm
"""

from __future__ import annotations

from typing import ClassVar

from limitor.engines._base import INF, Engine, EngineState

__all__ = ("GcraLeakyBucket", "GcraState", "GcraVirtualScheduling", "LctState")


class GcraState(EngineState):
    """Virtual scheduling state: the theoretical arrival time."""

    __slots__ = ("tat",)

    fields: ClassVar[tuple[str, ...]] = ("tat", "stamp")

    def __init__(self) -> None:
        super().__init__()
        self.tat = -INF


class GcraVirtualScheduling(Engine[GcraState]):
    """GCRA by virtual scheduling: the TAT is the whole state of the limit."""

    __slots__ = ()

    name = "gcra"
    state_type = GcraState

    def reserve(self, state: GcraState, now: float, amount: float, max_wait: float) -> float:
        ahead = state.tat - now  # how far the TAT is ahead of now
        if ahead < 0.0:
            ahead = 0.0
        ahead += amount * self.interval
        if ahead <= self.tolerance:
            state.tat = now + ahead
            state.stamp = now
            return 0.0
        delay = ahead - self.tolerance
        if delay > max_wait + self.slack:
            return -delay
        state.tat = now + ahead
        state.stamp = now
        return delay

    def wait_time(self, state: GcraState, now: float, amount: float) -> float:
        ahead = state.tat - now
        if ahead < 0.0:
            ahead = 0.0
        return ahead + amount * self.interval - self.tolerance

    def give_back(self, state: GcraState, now: float, amount: float) -> None:
        state.tat = max(state.tat - amount * self.interval, now)

    def charge(self, state: GcraState, now: float, amount: float) -> None:
        state.tat = max(state.tat, now) + amount * self.interval

    def full_at(self, state: GcraState) -> float:
        return state.tat

    def set_full_at(self, state: GcraState, now: float, tat: float) -> None:
        state.tat = tat


class LctState(EngineState):
    """Continuous-state leaky bucket: content ``x`` (seconds) as of ``stamp`` (the LCT)."""

    __slots__ = ("x",)

    fields: ClassVar[tuple[str, ...]] = ("x", "stamp")

    def __init__(self) -> None:
        super().__init__()
        self.x = 0.0


class GcraLeakyBucket(Engine[LctState]):
    """GCRA as a continuous-state leaky bucket: content and last conformance time."""

    __slots__ = ()

    name = "gcra_leaky_bucket"
    state_type = LctState

    def reserve(self, state: LctState, now: float, amount: float, max_wait: float) -> float:
        x = state.x - (now - state.stamp)
        if x < 0.0:
            x = 0.0
        x += amount * self.interval
        if x <= self.tolerance:
            state.x = x
            state.stamp = now
            return 0.0
        delay = x - self.tolerance
        if delay > max_wait + self.slack:
            return -delay
        state.x = x
        state.stamp = now
        return delay

    def _content(self, state: LctState, now: float) -> float:
        return max(state.x - (now - state.stamp), 0.0)

    def wait_time(self, state: LctState, now: float, amount: float) -> float:
        return self._content(state, now) + amount * self.interval - self.tolerance

    def _set_content(self, state: LctState, now: float, x: float) -> None:
        # Keep the LCT (see LeakyBucket._set_level).
        if state.stamp == -INF:
            state.stamp = now
        state.x = x + (now - state.stamp)

    def give_back(self, state: LctState, now: float, amount: float) -> None:
        self._set_content(state, now, max(self._content(state, now) - amount * self.interval, 0.0))

    def charge(self, state: LctState, now: float, amount: float) -> None:
        self._set_content(state, now, self._content(state, now) + amount * self.interval)

    def full_at(self, state: LctState) -> float:
        return state.stamp + state.x

    def set_full_at(self, state: LctState, now: float, tat: float) -> None:
        if state.stamp == -INF:
            state.stamp = now
        state.x = tat - state.stamp
