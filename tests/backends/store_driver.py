"""Drive any store through the backend contract on a FakeClock (shared by the backend tests)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from limitor.backends.base import Grant, LimitSpec, Part, Store, Ticket
from limitor.backends.memory import MemoryBackend
from limitor.testing import FakeClock

INF = float("inf")


@dataclass
class Cell:
    """One admitted request: when it goes, what it still holds, and its ticket."""

    admit: float
    amounts: tuple[float, ...]
    ticket: Ticket | None = field(default=None, repr=False)


def memory_store(
    limits: list[tuple[float, float]], algorithm: str, clock: FakeClock, *, keyed: bool = False
) -> Store:
    spec = LimitSpec(
        parts=tuple(Part(rate, burst) for rate, burst in limits),
        algorithm=algorithm,
        keyed=keyed,
    )
    return MemoryBackend().bind(spec, clock)


def at(clock: FakeClock, when: float) -> None:
    """Move the fake clock forward to ``when``."""
    if when > clock.now():
        clock.advance(when - clock.now())


def reserve(store: Store, clock: FakeClock, amounts: tuple[float, ...], max_wait: float) -> Grant:
    return store.reserve(None, amounts, max_wait)


def run(
    store: Store, clock: FakeClock, steps: list[tuple[Any, ...]], bursts: list[float]
) -> list[Cell]:
    """Requests, cancels and refunds through the contract; the admissions with final amounts.

    A step is ``(kind, dt, shares, max_wait, pick, kept)``: ``shares`` of each burst for a
    request; ``pick`` chooses the cell to cancel or refund; ``kept`` the refund's share.
    """
    cells: list[Cell] = []
    for kind, dt, shares, max_wait, pick, kept in steps:
        clock.advance(dt)
        now = clock.now()
        if kind == "req":
            amounts = tuple(
                max(round(s * b, 3), 0.001) for s, b in zip(shares, bursts, strict=True)
            )
            grant = store.reserve(None, amounts, max_wait)
            if grant.admitted:
                cells.append(Cell(grant.now + grant.delay, amounts, grant.ticket))
        elif cells:
            cell = cells[pick % len(cells)]
            if not any(cell.amounts):
                continue
            if kind == "cancel" and cell.admit > now:
                store.give_back(None, cell.amounts, cell.ticket, cancel=True)
                cell.amounts = tuple(0.0 for _ in cell.amounts)
            elif kind == "refund":
                actual = tuple(a * kept for a in cell.amounts)
                unused = tuple(a - b for a, b in zip(cell.amounts, actual, strict=True))
                _, cell.ticket = store.give_back(None, unused, cell.ticket, cancel=False)
                cell.amounts = actual
    return cells


def worst_excess(cells: list[tuple[float, float]], rate: float, burst: float) -> float:
    """The largest amount admitted in a window beyond ``burst + rate * window``."""
    live = sorted((admit, amount) for admit, amount in cells if amount > 0)
    worst = -INF
    for i, (start, _) in enumerate(live):
        total = 0.0
        for end, amount in live[i:]:
            total += amount
            worst = max(worst, total - (burst + rate * (end - start)))
    return worst
