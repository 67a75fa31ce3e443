"""Several limits at once, all or nothing: the engine behind LLM request and token limits.

Each part is an engine of its own (requests per minute, tokens per minute, tokens per
day...). An amount is a tuple with one number per part. A request is admitted at the
latest of the times its parts would each admit it, and every part is committed *at that
common time*, so no part ever believes a call went earlier than it did. If that time is
further away than ``max_wait``, no part is charged at all.

A part that could have admitted the call sooner treats the time until the common time as
used (its state is one number: it cannot keep a gap before a future call). That only ever
errs on the safe side, and costs nothing when every call needs every limit, as LLM calls
need both a request and tokens: they all queue behind the binding limit anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from limitor.engines._base import INF, SLACK, Engine, EngineState

__all__ = ("MultiEngine", "MultiState")


class MultiState(EngineState):
    """One state per part, and a time before which nothing is admitted (``hold``)."""

    __slots__ = ("hold", "parts")

    fields: ClassVar[tuple[str, ...]] = ("parts", "hold")

    def __init__(self, parts: tuple[EngineState, ...] = ()) -> None:
        super().__init__()
        self.parts = parts
        self.hold = -INF
        """Nothing is admitted before this time (a provider's ``retry-after``)."""

    @property
    def latest(self) -> float:
        """The latest admission time of any part."""
        return max((part.latest for part in self.parts), default=-INF)


class MultiEngine(Engine[MultiState]):
    """All of ``engines`` at once; amounts are tuples with one number per engine.

    ``rate`` and ``burst`` are those of the first engine (for display only).
    """

    __slots__ = ("engines",)

    name = "multi"
    state_type = MultiState

    def __init__(self, engines: Sequence[Engine[Any]]) -> None:
        if not engines:
            raise ValueError("a MultiEngine needs at least one engine")
        super().__init__(engines[0].rate, engines[0].burst)
        self.engines: tuple[Engine[Any], ...] = tuple(engines)

    def new_state(self) -> MultiState:
        return MultiState(tuple(engine.new_state() for engine in self.engines))

    def wait_time(self, state: MultiState, now: float, amount: Any) -> float:
        wait = state.hold - now
        parts = state.parts
        for index, engine in enumerate(self.engines):
            units = amount[index]
            if units:
                part_wait = engine.wait_time(parts[index], now, units)
                if part_wait > wait:
                    wait = part_wait
        return wait

    def hold_until(self, state: MultiState, until: float) -> None:
        """Admit nothing before ``until``; after it, every limit is as it would have been."""
        if until > state.hold:
            state.hold = until

    def reserve(self, state: MultiState, now: float, amount: Any, max_wait: float) -> float:
        delay = self.wait_time(state, now, amount)
        if delay < 0.0:
            delay = 0.0
        elif delay > max_wait + SLACK:
            return -delay
        at = now + delay
        parts = state.parts
        for index, engine in enumerate(self.engines):
            units = amount[index]
            if units:
                engine.reserve(parts[index], at, units, INF)  # fits at `at`: commit as of then
        return delay

    def give_back(self, state: MultiState, now: float, amount: Any) -> None:
        for engine, part, units in zip(self.engines, state.parts, amount, strict=True):
            if units:
                engine.give_back(part, now, units)

    def charge(self, state: MultiState, now: float, amount: Any) -> None:
        for engine, part, units in zip(self.engines, state.parts, amount, strict=True):
            if units:
                engine.charge(part, now, units)

    def units(self, amount: Any) -> float:
        return float(sum(amount))

    def refund(self, state: MultiState, now: float, amount: Any, admit_time: float) -> float:
        """Refund each part by Go's rule; returns the units given back, summed over parts."""
        return sum(
            engine.refund(part, now, units, admit_time) if units else 0.0
            for engine, part, units in zip(self.engines, state.parts, amount, strict=True)
        )

    def full_at(self, state: MultiState) -> float:
        parts = zip(self.engines, state.parts, strict=True)
        return max(state.hold, *(engine.full_at(part) for engine, part in parts))

    def remaining(self, state: MultiState, now: float) -> float:
        """The first part's remaining units (each part's: ``parts[i]`` with ``engines[i]``)."""
        return self.engines[0].remaining(state.parts[0], now)

    def snapshot(self, state: MultiState) -> tuple[Any, ...]:
        parts = tuple(
            engine.snapshot(part) for engine, part in zip(self.engines, state.parts, strict=True)
        )
        return (*parts, state.hold)

    def restore(self, state: MultiState, snapshot: tuple[Any, ...]) -> None:
        *parts, state.hold = snapshot
        for engine, part, values in zip(self.engines, state.parts, parts, strict=True):
            engine.restore(part, values)

    def __repr__(self) -> str:
        return f"MultiEngine({list(self.engines)!r})"
