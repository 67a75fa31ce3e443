"""The leaky bucket as a meter.

The bucket holds a level of units that leaks at ``rate`` units per second. A request of
``n`` units fits when ``level + n <= burst``; if it does not, it is queued: the level
may rise above the burst by what is reserved, and the request goes when enough has leaked.
"""

from __future__ import annotations

from typing import ClassVar

from limitor.engines._base import INF, Engine, EngineState

__all__ = ("LeakyBucket", "LevelState")


class LevelState(EngineState):
    """The bucket's ``level`` (units) as of ``stamp``, the time of the latest admission."""

    __slots__ = ("level",)

    fields: ClassVar[tuple[str, ...]] = ("level", "stamp")

    def __init__(self) -> None:
        super().__init__()
        self.level = 0.0


class LeakyBucket(Engine[LevelState]):
    """Leaky bucket (meter): ``level`` drains at ``rate``; admit while it stays within the burst."""

    __slots__ = ()

    name = "leaky_bucket"
    state_type = LevelState

    def reserve(self, state: LevelState, now: float, amount: float, max_wait: float) -> float:
        level = state.level - (now - state.stamp) * self.rate
        if level < 0.0:
            level = 0.0
        level += amount
        if level <= self.burst:
            state.level = level
            state.stamp = now
            return 0.0
        delay = (level - self.burst) * self.interval
        if delay > max_wait + self.slack:
            return -delay
        state.level = level
        state.stamp = now
        return delay

    def _level(self, state: LevelState, now: float) -> float:
        return max(state.level - (now - state.stamp) * self.rate, 0.0)

    def wait_time(self, state: LevelState, now: float, amount: float) -> float:
        return (self._level(state, now) + amount - self.burst) * self.interval

    def _set_level(self, state: LevelState, now: float, level: float) -> None:
        # Keep ``stamp`` (the latest admission time, which refunds rely on): store the
        # level that drains to ``level`` at ``now``.
        if state.stamp == -INF:
            state.stamp = now
        state.level = level + (now - state.stamp) * self.rate

    def give_back(self, state: LevelState, now: float, amount: float) -> None:
        self._set_level(state, now, max(self._level(state, now) - amount, 0.0))

    def charge(self, state: LevelState, now: float, amount: float) -> None:
        self._set_level(state, now, self._level(state, now) + amount)

    def full_at(self, state: LevelState) -> float:
        return state.stamp + state.level * self.interval

    def set_full_at(self, state: LevelState, now: float, tat: float) -> None:
        if state.stamp == -INF:
            state.stamp = now
        state.level = (tat - state.stamp) * self.rate
