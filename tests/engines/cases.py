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


# -- giving back: the schedule line with pieces (limitor/engines/schedule.py) ----------
#
# A give-back case is a limit of one or more parts ``(rate, burst)`` and a list of steps,
# each a tuple whose first item says what it is; times are seconds from the start (the
# store's epoch), amounts are units per part:
#
# ``("reserve", time, amounts, max_wait, expected)``
#     ``expected`` is the delay (``>= 0``) or ``-retry_after`` for a refusal, as above.
# ``("cancel", time, step, given)``
#     cancel the grant made at step number ``step`` (0-based, in this case's steps);
#     ``given`` is the units given back, summed over the parts (0 once its time has come).
# ``("refund", time, step, amounts, given)``
#     give back ``amounts`` of that grant (the unused part after reconciling).
# ``("charge", time, amounts)``
#     debt: consume ``amounts`` more without any check.
# ``("charge", time, amounts, step)``
#     the debt of the grant made at step number ``step`` (its ticket goes with it): no
#     earlier than that grant's time.
#
# ``cap`` is the number of free pieces a part keeps at most (``None``: the default).


@dataclass(frozen=True)
class GiveBackCase:
    name: str
    parts: list[tuple[float, float]]
    steps: list[tuple[object, ...]]
    cap: int | None = None


GIVE_BACK_CASES = [
    GiveBackCase(
        "a cancelled waiter's piece is lent to the next request",
        parts=[(1, 2)],
        steps=[
            ("reserve", 0.0, (2,), INF, 0.0),
            ("reserve", 0.0, (1,), INF, 1.0),  # occupies [2, 3)
            ("reserve", 0.0, (1,), INF, 2.0),  # occupies [3, 4)
            ("cancel", 0.0, 1, 1.0),
            ("reserve", 0.0, (1,), INF, 1.0),  # [2, 3) again
            ("reserve", 0.0, (1,), INF, 3.0),
        ],
    ),
    GiveBackCase(
        "reserve(4) behind two cancelled 2-unit waiters goes at 6 s, not 14 s",
        parts=[(1, 8)],
        steps=[
            ("reserve", 0.0, (8,), INF, 0.0),  # [0, 8)
            ("reserve", 0.0, (2,), INF, 2.0),  # waiter: [8, 10)
            ("reserve", 0.0, (2,), INF, 4.0),  # [10, 12)
            ("reserve", 0.0, (2,), INF, 6.0),  # waiter: [12, 14)
            ("reserve", 0.0, (4,), INF, 10.0),  # [14, 18)
            ("cancel", 0.0, 1, 2.0),
            ("cancel", 0.0, 3, 2.0),
            # [6, 14) holds the two freed pieces: 4 units in one burst window.
            ("reserve", 0.0, (4,), INF, 6.0),
            ("reserve", 0.0, (1,), INF, 11.0),
        ],
    ),
    GiveBackCase(
        "a crowd of waiters cancelled in any order rolls the schedule back",
        parts=[(1, 1)],
        steps=[
            ("reserve", 0.0, (1,), INF, 0.0),
            ("reserve", 0.0, (1,), INF, 1.0),
            ("reserve", 0.0, (1,), INF, 2.0),
            ("reserve", 0.0, (1,), INF, 3.0),
            ("reserve", 0.0, (1,), INF, 4.0),
            ("cancel", 0.0, 2, 1.0),
            ("cancel", 0.0, 4, 1.0),
            ("cancel", 0.0, 1, 1.0),
            ("cancel", 0.0, 3, 1.0),
            ("reserve", 0.0, (1,), INF, 1.0),
            ("reserve", 0.5, (1,), 0.0, -1.5),
        ],
    ),
    GiveBackCase(
        "overlapping calls refunded out of order lend every unit back (the issue's snippet)",
        parts=[(10, 600)],
        steps=[
            ("reserve", 0.0, (120,), INF, 0.0),
            ("reserve", 0.0, (120,), INF, 0.0),
            ("reserve", 0.0, (120,), INF, 0.0),
            ("reserve", 0.0, (120,), INF, 0.0),
            ("reserve", 0.0, (120,), INF, 0.0),
            ("refund", 1.0, 2, (100,), 100.0),
            ("refund", 1.0, 0, (100,), 100.0),
            ("refund", 1.0, 4, (100,), 100.0),
            ("refund", 1.0, 1, (100,), 100.0),
            ("refund", 1.0, 3, (100,), 100.0),
            ("reserve", 1.0, (400,), INF, 0.0),  # in the four freed pieces
            ("reserve", 1.0, (110,), INF, 0.0),  # 500 used + 10 refilled in 1 s
            ("reserve", 1.0, (1,), 0.0, -0.1),
        ],
    ),
    GiveBackCase(
        "a refund frees the grant's latest pieces first",
        parts=[(1, 4)],
        steps=[
            ("reserve", 0.0, (4,), INF, 0.0),  # [0, 4)
            ("reserve", 0.0, (2,), INF, 2.0),  # [4, 6)
            ("reserve", 0.0, (1,), INF, 3.0),  # [6, 7)
            ("cancel", 0.0, 1, 2.0),
            ("reserve", 0.0, (3,), INF, 4.0),  # [4, 6) + [7, 8)
            ("refund", 0.0, 4, (1,), 1.0),  # frees [7, 8): the end rolls back
            ("reserve", 0.0, (1,), INF, 4.0),  # [7, 8) again
            ("refund", 0.0, 4, (5,), 2.0),  # more than it holds: the rest, [4, 6)
            ("reserve", 0.0, (2,), INF, 2.0),  # [4, 6) again
        ],
    ),
    GiveBackCase(
        "free line before now is gone",
        parts=[(1, 2)],
        steps=[
            ("reserve", 0.0, (2,), INF, 0.0),  # [0, 2)
            ("reserve", 0.0, (2,), INF, 2.0),  # [2, 4)
            ("reserve", 0.0, (1,), INF, 3.0),  # [4, 5)
            ("cancel", 1.0, 1, 2.0),
            ("reserve", 3.0, (2,), INF, 2.0),  # only [3, 4) is left of [2, 4): goes at 5
        ],
    ),
    GiveBackCase(
        "a refund of a grant whose time has come frees only what lies ahead",
        parts=[(10, 10)],
        steps=[
            ("reserve", 0.0, (10,), INF, 0.0),  # [0, 1)
            ("refund", 0.5, 0, (8,), 8.0),  # frees [0.2, 1): [0.5, 1) is left of it
            ("reserve", 0.5, (10,), 0.0, 0.0),
            ("reserve", 0.5, (1,), 0.0, -0.1),
        ],
    ),
    GiveBackCase(
        "a cancel once the grant's time has come gives nothing back",
        parts=[(1, 1)],
        steps=[
            ("reserve", 0.0, (1,), INF, 0.0),
            ("reserve", 0.0, (1,), INF, 1.0),
            ("cancel", 1.0, 1, 0.0),
            ("reserve", 1.0, (1,), INF, 1.0),
        ],
    ),
    GiveBackCase(
        "debt fills the earliest free line first",
        parts=[(1, 4)],
        steps=[
            ("reserve", 0.0, (4,), INF, 0.0),  # [0, 4)
            ("reserve", 0.0, (2,), INF, 2.0),  # [4, 6)
            ("reserve", 0.0, (2,), INF, 4.0),  # [6, 8)
            ("cancel", 0.0, 1, 2.0),
            ("charge", 0.0, (1,)),  # takes [4, 5)
            ("reserve", 0.0, (1,), INF, 2.0),  # [5, 6)
            ("reserve", 0.0, (1,), INF, 5.0),  # the end: [8, 9)
        ],
    ),
    GiveBackCase(
        "a debt learned before its grant's time goes no earlier than the grant",
        parts=[(1, 4)],
        steps=[
            ("reserve", 0.0, (4,), INF, 0.0),  # [0, 4)
            ("reserve", 0.0, (2,), INF, 2.0),  # [4, 6), admitted at 2
            ("refund", 0.0, 0, (4,), 4.0),  # [0, 4) free again
            ("charge", 0.0, (1,), 1),  # step 1's overrun: [2, 3), not [0, 1)
            # free [1.5, 2) and [3, 4) hold 1.5 of 2: at 3, [3, 4) and [6, 7) (from now,
            # the debt would have left [1.5, 4) free, and 2 more would go at 1.5, beside
            # the debtor's 3 units at 2: 5 in half a second, over 4 + 0.5)
            ("reserve", 1.5, (2,), INF, 1.5),
        ],
    ),
    GiveBackCase(
        "several parts: the earliest time every part fits, pieces per part",
        parts=[(1, 3), (10, 100)],
        steps=[
            ("reserve", 0.0, (1, 100), INF, 0.0),  # requests [0, 1), tokens [0, 10)
            ("reserve", 0.0, (1, 50), INF, 5.0),  # [5, 6) (free [1, 5) stays), [10, 15)
            ("reserve", 0.0, (1, 50), INF, 10.0),  # [10, 11) (free [6, 10)), [15, 20)
            ("cancel", 0.0, 1, 51.0),  # requests [1, 10) free, tokens [10, 15) free
            ("reserve", 0.0, (1, 30), INF, 3.0),  # [3, 4), [10, 13)
            ("refund", 0.0, 2, (0, 40), 40.0),  # frees tokens [16, 20): the end rolls back
            ("reserve", 0.0, (1, 30), INF, 7.0),  # [7, 8); tokens [13, 15) + [16, 17)
            ("reserve", 0.0, (2, 0), INF, 0.0),  # requests only: [1, 3)
            ("reserve", 0.0, (1, 0), INF, 2.0),  # [4, 5)
        ],
    ),
    GiveBackCase(
        "past the cap the earliest free pieces are dropped (that admits less)",
        parts=[(1, 10)],
        cap=2,
        steps=[
            ("reserve", 0.0, (10,), INF, 0.0),  # [0, 10)
            ("reserve", 0.0, (1,), INF, 1.0),  # waiter [10, 11)
            ("reserve", 0.0, (1,), INF, 2.0),  # [11, 12)
            ("reserve", 0.0, (1,), INF, 3.0),  # waiter [12, 13)
            ("reserve", 0.0, (1,), INF, 4.0),  # [13, 14)
            ("reserve", 0.0, (1,), INF, 5.0),  # waiter [14, 15)
            ("reserve", 0.0, (1,), INF, 6.0),  # [15, 16)
            ("cancel", 0.0, 1, 1.0),
            ("cancel", 0.0, 3, 1.0),
            ("cancel", 0.0, 5, 1.0),  # three pieces: [10, 11) is dropped
            ("reserve", 0.0, (1,), INF, 3.0),  # [12, 13), not [10, 11) at 1
            ("reserve", 0.0, (1,), INF, 5.0),  # [14, 15)
            ("reserve", 0.0, (1,), INF, 7.0),  # the end
        ],
    ),
]
