"""Tables of fixed instants shared by every implementation of the admission rule.

Each case is a limit and a list of steps ``(time, amount, max_wait, expected)`` where
``expected`` is the delay (``>= 0``) or ``-retry_after`` for a refusal. The same tables
are meant to run against every engine and, later, every backend.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

INF = math.inf


@dataclass(frozen=True)
class Case:
    name: str
    rate: float
    burst: float
    steps: list[tuple[float, float, float, float]]


CASES = [
    Case(
        "burst then rate",
        rate=10,
        burst=3,
        steps=[
            (0.0, 1, INF, 0.0),
            (0.0, 1, INF, 0.0),
            (0.0, 1, INF, 0.0),
            (0.0, 1, INF, 0.1),
            (0.0, 1, INF, 0.2),
        ],
    ),
    Case(
        "refill while idle is capped at the burst",
        rate=1,
        burst=2,
        steps=[
            (0.0, 2, INF, 0.0),
            (100.0, 2, INF, 0.0),
            (100.0, 1, INF, 1.0),
        ],
    ),
    Case(
        "partial refill",
        rate=2,
        burst=4,
        steps=[
            (0.0, 4, INF, 0.0),
            (1.0, 2, INF, 0.0),  # 2 units refilled in 1 s
            (1.0, 1, INF, 0.5),
        ],
    ),
    Case(
        "policing refuses without committing",
        rate=1,
        burst=1,
        steps=[
            (0.0, 1, 0.0, 0.0),
            (0.0, 1, 0.0, -1.0),
            (0.5, 1, 0.0, -0.5),
            (1.0, 1, 0.0, 0.0),
        ],
    ),
    Case(
        "a timeout admits waits up to it and refuses beyond",
        rate=10,
        burst=1,
        steps=[
            (0.0, 1, 0.0, 0.0),
            (0.0, 1, 0.1, 0.1),
            (0.0, 1, 0.15, -0.2),
            (0.0, 1, 0.2, 0.2),
        ],
    ),
    Case(
        "a large request queued first goes first (FIFO)",
        rate=1,
        burst=5,
        steps=[
            (0.0, 5, INF, 0.0),
            (0.0, 5, INF, 5.0),  # the big one waits for the whole burst
            (0.0, 1, INF, 6.0),  # small ones behind it wait for it
            (0.0, 1, INF, 7.0),
        ],
    ),
    Case(
        "fractional amounts (tokens)",
        rate=1000,
        burst=1000,
        steps=[
            (0.0, 600, INF, 0.0),
            (0.0, 600, INF, 0.2),
            (0.5, 300, INF, 0.0),
        ],
    ),
    Case(
        "reservations in the future still refill to the limit",
        rate=4,
        burst=2,
        steps=[
            (0.0, 2, INF, 0.0),
            (0.0, 2, INF, 0.5),
            (10.0, 2, INF, 0.0),
        ],
    ),
]
