"""The schedule line of a limit, with the pieces given back on it (pure arithmetic).

Every part of a limit (``rate`` units per second, bursts of ``burst``) is a line of time
on which each admitted unit occupies ``T = 1 / rate`` seconds; ``tau = burst * T`` is the
burst tolerance. A part's line is kept as

* ``tat``: the end of the schedule (the GCRA theoretical arrival time): the line from
  ``tat`` on is free;
* ``holes``: sorted, disjoint free pieces ``(start, end)`` before ``tat`` (line given
  back by cancelled waiters and refunds), each ending before ``tat``.

The *free line* at time ``now`` is ``(holes + [tat, inf))`` restricted to ``[now, inf)``:
free line before ``now`` is gone (a full bucket holds no more than its burst).

**The rule.** A request of ``n`` units that may go from ``start`` on (``start >= now``:
now, or the end of a hold) is admitted at the earliest time ``a >= start`` at which, for
every part at once, the free line within ``[a, a + tau)`` holds ``n * T``, in as many
pieces as it takes. It occupies the earliest free pieces of that window (:func:`occupy`),
and its grant holds exactly those pieces. Giving back frees exactly the pieces a grant
holds (:func:`release`): a cancel frees all of them, a refund its latest pieces first
(:func:`split_latest`); a freed piece that reaches ``tat`` moves ``tat`` back to its start
(and past every hole it then meets), any other becomes a hole. Standing waiters never
move: nothing here changes a piece another grant holds.

**With nothing given back it is plain GCRA.** There are no holes; the free line in
``[a, a + tau)`` is ``[max(tat, a), a + tau)``, which holds ``n * T`` iff
``max(tat, a) + n*T <= a + tau``: at ``a = start`` when that holds, else at
``a = tat + n*T - tau``; and ``tat`` becomes ``max(tat, a) + n*T``. That is the virtual
scheduling form of ITU-T I.371, to the last digit (:func:`earliest` computes exactly these
two expressions when there are no holes).

**Why it never over-admits.** Every admitted unit occupies its own ``T`` of line, disjoint
from every other unit's, inside ``[a, a + tau)`` of its own admission time ``a``. Take any
window of admission times ``[t, t + w]``: the units admitted in it occupy disjoint line
inside ``[t, t + w + tau)``, whose length is ``w + tau``, so there are at most
``(w + tau) / T = burst + rate * w`` of them. Giving back only ever frees line its own
grant occupied (the units are not used), so the argument holds for actual use; dropping
free line (the past, the cap) only leaves less to admit.

**Debt** (:func:`charge`: a call used more than it reserved) fills the earliest free line
from ``now`` on: holes first, then the end. The extra units were used already; counting
them on the line as near ``now`` as the line allows takes the free line that a new request
could otherwise use right now, so the next callers are held back by exactly what was
over-used, soonest. Charging at the end instead would leave the holes before it free
for new requests at once, on top of the over-use: more actual use in the same window.
With no holes both are ``tat = max(tat, now) + n*T``, the engines' own charge. A debt
learned before its grant's time (a reconcile made at once) goes no earlier than that
time: the units are used when the call runs, and line before its admission filled by
them would let others go around the admission, beside the over-use.

**Memory is bounded** (:func:`tidy`): holes before ``now`` are dropped, neighbours
coalesce, a hole that reaches ``tat`` is absorbed into it, no sliver shorter than the
tolerance is ever kept, and past ``cap`` holes per part the *earliest* are dropped: line
that nobody holds and nobody may use, which admits less, never more.

**Precision.** Times are compared with a tolerance relative to the interval,
``T * REL`` (:func:`tolerance`), never an absolute one: at 1e9 units per second a unit is
1e-9 s, and an absolute slack of 1e-9 s would let two units go at the same instant. The
caller keeps times small (relative to its own epoch), so float resolution stays well
below one interval.

The functions are small and use only floats, lists of ``(start, end)`` tuples and loops,
so that the Redis scripts transliterate them line by line into Lua; keep it that way.
"""

from __future__ import annotations

__all__ = (
    "CAP",
    "REL",
    "charge",
    "earliest",
    "earliest_all",
    "free_in",
    "occupy",
    "release",
    "split_latest",
    "tidy",
    "tolerance",
)

REL = 1e-9
"""The tolerance, as a fraction of the interval, within which two times are the same
(the engines' ``REL`` too)."""

CAP = 256
"""Holes kept per part at most (past it the earliest are dropped: that admits less)."""

Piece = tuple[float, float]
"""A piece of line ``(start, end)``, ``start < end``."""


def tolerance(interval: float) -> float:
    """Seconds within which two times on a line of this interval are the same."""
    return interval * REL


def first_after(holes: list[Piece], t: float) -> int:
    """The index of the first hole that ends after ``t`` (binary search; sorted holes)."""
    low = 0
    high = len(holes)
    while low < high:
        middle = (low + high) // 2
        if holes[middle][1] <= t:
            low = middle + 1
        else:
            high = middle
    return low


def free_in(holes: list[Piece], tat: float, low: float, high: float) -> float:
    """Seconds of free line within ``[low, high)`` (``low`` is at least now)."""
    total = 0.0
    i = first_after(holes, low)
    while i < len(holes) and holes[i][0] < high:
        s = max(holes[i][0], low)
        e = min(holes[i][1], high)
        if e > s:
            total += e - s
        i += 1
    s = max(tat, low)
    if high > s:
        total += high - s
    return total


def reach(holes: list[Piece], tat: float, low: float, need: float, tol: float) -> float:
    """The point by which the free line from ``low`` on holds ``need`` seconds.

    A piece short of ``need`` by no more than ``tol`` holds it (float rounding: a
    freed piece ``(s, e)`` may measure a few ulps less than the units it held).
    """
    i = first_after(holes, low)
    while i < len(holes):
        s = max(holes[i][0], low)
        length = holes[i][1] - s
        if length >= need - tol:
            return s + need
        need -= length
        i += 1
    return max(tat, low) + need


def earliest(
    holes: list[Piece], tat: float, tau: float, need: float, start: float, interval: float
) -> float:
    """The earliest ``a >= start`` at which the free line in ``[a, a + tau)`` holds ``need``.

    Only ``start`` and the starts of free pieces after it can be earliest: while the
    window's left edge crosses occupied line the point ``reach(a)`` by which ``need`` is
    free stays put, so the earliest fit in an occupied stretch is ``reach - tau`` (or
    the stretch's start); while it crosses free line ``reach(a) - a`` only grows. The
    first candidate that fits is the earliest; the tail ``[tat, inf)`` always fits
    (``need <= tau``), so the scan ends by the stretch that holds ``tat + need - tau``.
    One pass: ``acc`` is the free line of whole pieces ``k..j-1``, and ``reach`` of
    candidate ``k`` is where piece ``j`` (or the tail) completes ``need``.
    """
    tol = tolerance(interval)
    if reach(holes, tat, start, need, tol) <= start + tau + tol:
        return start
    n = len(holes)
    k = first_after(holes, start)
    if k < n and holes[k][0] <= start:
        k += 1  # the piece that holds start was the first candidate
    j = k
    acc = 0.0  # the free line of holes[k:j], whole pieces
    while k < n:
        s = holes[k][0]
        while j < n and acc + (holes[j][1] - holes[j][0]) < need - tol:
            acc += holes[j][1] - holes[j][0]
            j += 1
        x = tat + (need - acc)  # the tail completes it
        if j < n:
            x = holes[j][0] + (need - acc)
        if x - tau <= s + tol:
            return max(x - tau, start)
        acc -= holes[k][1] - holes[k][0]  # j > k here: hole k alone would have fit
        k += 1
    return max(tat + need - tau, start)


def earliest_all(
    holes: list[list[Piece]],
    tats: list[float],
    taus: list[float],
    needs: list[float],
    start: float,
    intervals: list[float],
) -> float:
    """The earliest ``a >= start`` at which every part with a need fits at once.

    Each round moves ``a`` to the latest of the parts' earliest fits from ``a``; a part
    that fits at ``a`` returns ``a`` itself, so the rounds stop at the first time every
    part fits, and no common fit is ever skipped (a common fit at or after ``a`` is at or
    after each part's earliest fit from ``a``). Each round that moves lands on the start
    of a part's feasible stretch, so there are at most as many rounds as pieces (plus
    one per part); past that bound the tails alone, which always agree, decide.
    """
    rounds = 2
    only = -1  # the one part with a need, if only one has
    for p in range(len(needs)):
        rounds += len(holes[p]) + 1
        if needs[p] > 0.0:
            only = p if only == -1 else -2
    if only >= 0:
        return earliest(holes[only], tats[only], taus[only], needs[only], start, intervals[only])
    a = start
    while rounds > 0:
        best = a
        for p in range(len(needs)):
            if needs[p] > 0.0:
                fit = earliest(holes[p], tats[p], taus[p], needs[p], a, intervals[p])
                if fit > best:
                    best = fit
        if best == a:
            return a
        a = best
        rounds -= 1
    for p in range(len(needs)):
        if needs[p] > 0.0:
            a = max(a, tats[p] + needs[p] - taus[p])
    return a


def add_hole(holes: list[Piece], s: float, e: float, tol: float) -> None:
    """Insert the free piece ``(s, e)`` (before ``tat``), coalescing with neighbours."""
    i = first_after(holes, s - tol)
    while i < len(holes) and holes[i][0] <= e + tol:
        s = min(s, holes[i][0])
        e = max(e, holes[i][1])
        del holes[i]
    holes.insert(i, (s, e))


def cut(holes: list[Piece], i: int, x: float, need: float, tol: float) -> tuple[int, float]:
    """Take up to ``need`` seconds of hole ``i`` from ``x`` (inside it) on; ``holes`` changes.

    What is left of the hole before ``x`` and after the piece taken stays free, unless
    it is a sliver within ``tol``. Returns the index of the next hole and the length taken.
    """
    s, e = holes[i]
    take = min(need, e - x)
    rest: list[Piece] = []
    if x - s > tol:
        rest.append((s, x))
    if e - (x + take) > tol:
        rest.append((x + take, e))
    holes[i : i + 1] = rest
    return i + len(rest), take


def occupy(
    holes: list[Piece],
    tat: float,
    a: float,
    tau: float,
    need: float,
    start: float,
    interval: float,
) -> tuple[float, list[Piece]]:
    """Take the earliest free ``need`` seconds of ``[a, a + tau)``; ``holes`` changes.

    The amount fits there (see :func:`earliest`).

    Free line between ``max(tat, start)`` and ``a`` (a part that could have gone sooner
    than the others) stays free as a hole. Returns the new ``tat`` and the pieces taken,
    in order.
    """
    tol = tolerance(interval)
    taken: list[Piece] = []
    i = first_after(holes, a)
    while need > tol and i < len(holes) and holes[i][0] < a + tau:
        s, e = holes[i]
        x = max(s, a)
        i, take = cut(holes, i, x, need, tol)
        if x > s and x - s <= tol:  # a sliver before it: taken with it
            x = s
        if x + take > e - tol:
            take = e - x
        taken.append((x, x + take))
        need -= take
    if need > tol:
        x = max(tat, a)
        gap = max(tat, start)
        if a - gap > tol:
            add_hole(holes, gap, a, tol)
        taken.append((x, x + need))
        tat = x + need
    return tat, merge(taken, tol)


def merge(pieces: list[Piece], tol: float) -> list[Piece]:
    """Sorted pieces with touching neighbours joined."""
    out: list[Piece] = []
    for s, e in pieces:
        if out and s <= out[-1][1] + tol:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def split_latest(pieces: list[Piece], length: float, tol: float) -> tuple[list[Piece], list[Piece]]:
    """Split ``length`` seconds off the latest of ``pieces`` (a refund).

    Returns ``(kept, freed)``, each sorted; ``freed`` is at most all of ``pieces``.
    """
    kept = list(pieces)
    freed: list[Piece] = []
    while length > tol and kept:
        s, e = kept[-1]
        if e - s <= length + tol:
            freed.insert(0, (s, e))
            kept.pop()
            length -= e - s
        else:
            freed.insert(0, (e - length, e))
            kept[-1] = (s, e - length)
            length = 0.0
    return kept, freed


def release(
    holes: list[Piece], tat: float, pieces: list[Piece], now: float, interval: float
) -> float:
    """Free ``pieces`` (line a grant held); ``holes`` is changed in place.

    Line before ``now`` is gone. A piece that reaches ``tat`` moves it back to the
    piece's start and past every hole that then reaches it; any other becomes a hole.
    Returns the new ``tat``.
    """
    tol = tolerance(interval)
    i = len(pieces) - 1
    while i >= 0:  # latest first, so each roll-back meets the next piece
        s, e = pieces[i]
        if s < now:
            s = now
        if e - s > tol:
            if e >= tat - tol:
                tat = s
                while holes and holes[-1][1] >= tat - tol:
                    tat = min(tat, holes[-1][0])
                    holes.pop()
            else:
                add_hole(holes, s, e, tol)
        i -= 1
    return tat


def charge(
    holes: list[Piece],
    tat: float,
    now: float,
    need: float,
    interval: float,
    start: float | None = None,
) -> float:
    """Occupy ``need`` seconds without any check (debt); returns the new ``tat``.

    The earliest free line from ``now`` on is taken: holes first, then the end.
    ``holes`` is changed in place.

    ``start`` (a grant's admission time) puts the debt no earlier than that: a call
    that learns its overrun before its own time has come uses those units when it
    runs, so its debt must not fill free line before its admission (which would let
    others use the line around the admission and over-admit there). Free line between
    ``max(tat, now)`` and ``start`` stays free, as a hole.
    """
    tol = tolerance(interval)
    if start is not None and start > now:
        if need > tol and start - max(tat, now) > tol:
            add_hole(holes, max(tat, now), start, tol)
            tat = start
        now = start
    i = first_after(holes, now)
    while need > tol and i < len(holes):
        i, take = cut(holes, i, max(holes[i][0], now), need, tol)
        need -= take
    if need > tol:
        tat = max(tat, now) + need
    return tat


def tidy(holes: list[Piece], tat: float, now: float, cap: int, interval: float) -> float:
    """Bound the holes; returns the new ``tat``; ``holes`` is changed in place.

    Drops the holes before ``now`` and, past ``cap``, the earliest; a hole that reaches
    ``tat`` is absorbed into it. O(log holes): slivers within the tolerance are never
    made (:func:`occupy`, :func:`charge`, :func:`add_hole` and :func:`release` skip them).
    """
    tol = tolerance(interval)
    i = first_after(holes, now + tol)
    if i > 0:
        del holes[:i]
    while holes and holes[-1][1] >= tat - tol:
        tat = min(tat, holes[-1][0])
        holes.pop()
    if len(holes) > cap:
        del holes[: len(holes) - cap]
    return tat
