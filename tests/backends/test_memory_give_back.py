"""The give-back case table (tests/engines/cases.py) through the memory store, every algorithm."""

from __future__ import annotations

from typing import Any

import pytest

from limitor.backends.base import LimitSpec, Part, Ticket
from limitor.backends.memory import MemoryStore
from limitor.engines import ENGINES
from limitor.testing import FakeClock

from ..engines.cases import GIVE_BACK_CASES, GiveBackCase


@pytest.mark.parametrize("algorithm", sorted(ENGINES))
@pytest.mark.parametrize("case", GIVE_BACK_CASES, ids=lambda case: case.name)
def test_give_back_table_through_the_memory_store(
    case: GiveBackCase, algorithm: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if case.cap is not None:
        monkeypatch.setattr(MemoryStore, "piece_cap", case.cap)
    clock = FakeClock()
    spec = LimitSpec(tuple(Part(rate, burst) for rate, burst in case.parts), algorithm=algorithm)
    store = MemoryStore(spec, clock)
    tickets: dict[int, Ticket | None] = {}
    for index, step in enumerate(case.steps):
        kind, when = step[0], float(step[1])  # type: ignore[arg-type]
        clock.advance(when - clock.now())
        if kind == "reserve":
            amounts: Any = step[2]
            grant = store.reserve(None, tuple(map(float, amounts)), step[3])  # type: ignore[arg-type]
            got = grant.delay if grant.admitted else -grant.retry_after
            assert got == pytest.approx(step[4], abs=1e-9), f"step {index}"
            tickets[index] = grant.ticket
        elif kind == "cancel":
            target: Any = step[2]
            held = tuple(float(burst) for _, burst in case.parts)  # cancel: all it holds
            given, tickets[target] = store.give_back(None, held, tickets[target], cancel=True)
            assert given == pytest.approx(step[3]), f"step {index}"
        elif kind == "refund":
            target = step[2]
            amounts = step[3]
            back = tuple(map(float, amounts))
            given, tickets[target] = store.give_back(None, back, tickets[target], cancel=False)
            assert given == pytest.approx(step[4]), f"step {index}"
        else:
            amounts = step[2]
            ticket = tickets[step[3]] if len(step) > 3 else None  # type: ignore[index]
            store.charge(None, tuple(map(float, amounts)), ticket)
        extra = store._shared.extra
        if extra is not None:
            assert all(len(holes) <= MemoryStore.piece_cap for holes in extra.holes)
