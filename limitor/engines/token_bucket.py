"""The token bucket.

The bucket holds up to ``burst`` tokens and gains ``rate`` tokens per second. A request of
``n`` units takes ``n`` tokens; when there are too few, it takes them anyway (the count
goes negative, as in Go's ``x/time/rate``) and waits until the bucket has refilled to zero.
"""

from __future__ import annotations

from typing import ClassVar

from limitor.engines._base import INF, Engine, EngineState

__all__ = ("TokenBucket", "TokenState")


class TokenState(EngineState):
    """The bucket's ``tokens`` as of ``stamp`` (negative while requests wait)."""

    __slots__ = ("tokens",)

    fields: ClassVar[tuple[str, ...]] = ("tokens", "stamp")

    def __init__(self) -> None:
        super().__init__()
        self.tokens = INF


class TokenBucket(Engine[TokenState]):
    """Token bucket: ``tokens`` refill at ``rate`` up to ``burst``; each unit takes one."""

    __slots__ = ()

    name = "token_bucket"
    state_type = TokenState

    def reserve(self, state: TokenState, now: float, amount: float, max_wait: float) -> float:
        tokens = state.tokens + (now - state.stamp) * self.rate
        if tokens > self.burst:
            tokens = self.burst
        tokens -= amount
        if tokens >= 0.0:
            state.tokens = tokens
            state.stamp = now
            return 0.0
        delay = -tokens * self.interval
        if delay > max_wait + self.slack:
            return -delay
        state.tokens = tokens
        state.stamp = now
        return delay

    def _tokens(self, state: TokenState, now: float) -> float:
        return min(state.tokens + (now - state.stamp) * self.rate, self.burst)

    def wait_time(self, state: TokenState, now: float, amount: float) -> float:
        return (amount - self._tokens(state, now)) * self.interval

    def _set_tokens(self, state: TokenState, now: float, tokens: float) -> None:
        # Keep ``stamp`` (see LeakyBucket._set_level).
        if state.stamp == -INF:
            state.stamp = now
        state.tokens = tokens - (now - state.stamp) * self.rate

    def give_back(self, state: TokenState, now: float, amount: float) -> None:
        self._set_tokens(state, now, min(self._tokens(state, now) + amount, self.burst))

    def charge(self, state: TokenState, now: float, amount: float) -> None:
        self._set_tokens(state, now, self._tokens(state, now) - amount)

    def full_at(self, state: TokenState) -> float:
        return state.stamp + (self.burst - state.tokens) * self.interval

    def set_full_at(self, state: TokenState, now: float, tat: float) -> None:
        if state.stamp == -INF:
            state.stamp = now
        state.tokens = self.burst - (tat - state.stamp) * self.rate
