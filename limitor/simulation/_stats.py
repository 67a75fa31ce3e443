"""What a replay measures, streaming: wait percentiles, the busiest window, the timeline.

Each tracker keeps flat memory however long the trace: :class:`Quantiles` is exact for
the first waits and a logarithmic histogram after, :class:`BusiestWindow` holds only the
admissions of the last window, :class:`TimelineBuilder` a fixed number of intervals whose
width doubles as needed. :class:`KeyStats` tallies one key's calls.
"""

from __future__ import annotations

import bisect
import math
from array import array
from collections import deque
from collections.abc import Iterable

from limitor.simulation._result import KeySummary, Timeline

TOLERANCE = 1e-9
"""Waits up to this many seconds are float rounding, not a delay (a GCRA schedule can
leave 4.4e-16 s where the exact answer is 0)."""


class Quantiles:
    """Nearest-rank percentiles: exact for the first ``exact`` values, a log histogram after.

    Beyond ``exact`` values the histogram's relative error is below 0.1%, and its memory
    stays flat.
    """

    __slots__ = ("_bins", "_count", "_exact", "_limit", "_max", "_zeros")

    _BASE = 1e-9
    _LOG_STEP = math.log1p(1e-3)

    def __init__(self, exact: int) -> None:
        self._limit = exact
        self._exact: array[float] | None = array("d")
        self._bins: dict[int, int] = {}
        self._zeros = 0
        self._count = 0
        self._max = 0.0

    @property
    def exact(self) -> bool:
        """True while every value is kept (the percentiles are exact)."""
        return self._exact is not None

    @property
    def max(self) -> float:
        """The largest value added (0 before any)."""
        return self._max

    def add(self, value: float) -> None:
        self._count += 1
        if value > self._max:
            self._max = value
        exact = self._exact
        if exact is not None:
            exact.append(value)
            if len(exact) > self._limit:
                self._exact = None
                for each in exact:
                    self._bin(each)
            return
        self._bin(value)

    def _bin(self, value: float) -> None:
        if value <= TOLERANCE:
            self._zeros += 1
            return
        index = math.ceil(math.log(value / self._BASE) / self._LOG_STEP)
        self._bins[index] = self._bins.get(index, 0) + 1

    def percentiles(self, shares: Iterable[float]) -> list[float]:
        count = self._count
        ranks = [max(1, math.ceil(share * count)) for share in shares]
        if not count:
            return [0.0 for _ in ranks]
        if self._exact is not None:
            ordered = sorted(self._exact)
            return [ordered[rank - 1] for rank in ranks]
        results = []
        for rank in ranks:
            seen = self._zeros
            value = 0.0
            if rank > seen:
                for index in sorted(self._bins):
                    seen += self._bins[index]
                    if seen >= rank:
                        value = min(self._max, self._BASE * math.exp(index * self._LOG_STEP))
                        break
            results.append(value)
        return results


class BusiestWindow:
    """The most units admitted in any closed window of ``width`` seconds (streaming)."""

    __slots__ = ("_amounts", "_reach", "_sum", "_times", "best", "best_start", "width")

    def __init__(self, width: float) -> None:
        self.width = width
        self._reach = width + TOLERANCE
        self._times: deque[float] = deque()
        self._amounts: deque[float] = deque()
        self._sum = 0.0
        self.best = 0.0
        self.best_start = 0.0

    def add(self, moment: float, amount: float) -> None:
        times = self._times
        if times and moment < times[-1]:  # not expected (FIFO), but kept exact if it happens
            index = bisect.bisect_right(times, moment)
            times.insert(index, moment)
            self._amounts.insert(index, amount)
            self._sum += amount
            self._rescan()
            return
        times.append(moment)
        self._amounts.append(amount)
        total = self._sum + amount
        edge = moment - self._reach
        if times[0] < edge:
            amounts = self._amounts
            while times[0] < edge:
                times.popleft()
                total -= amounts.popleft()
        self._sum = total
        if total > self.best + TOLERANCE:
            self.best = total
            self.best_start = times[0]

    def _rescan(self) -> None:
        times, amounts = list(self._times), list(self._amounts)
        start = 0
        total = 0.0
        for end, moment in enumerate(times):
            total += amounts[end]
            while times[start] < moment - self.width - TOLERANCE:
                total -= amounts[start]
                start += 1
            if total > self.best + TOLERANCE:
                self.best, self.best_start = total, times[start]


class TimelineBuilder:
    """Units arrived, admitted and rejected per interval; the interval doubles as needed."""

    __slots__ = ("_inverse", "admitted", "arrived", "rejected", "start", "used", "width")

    BINS = 128
    FIRST_WIDTH = 2.0**-10

    def __init__(self, start: float = 0.0) -> None:
        self.start = start
        self.width = self.FIRST_WIDTH
        self._inverse = 1.0 / self.width
        self.arrived = [0.0] * self.BINS
        self.admitted = [0.0] * self.BINS
        self.rejected = [0.0] * self.BINS
        self.used = 0

    def _double(self) -> None:
        self.width *= 2
        self._inverse = 1.0 / self.width
        half = self.BINS // 2
        for series in (self.arrived, self.admitted, self.rejected):
            series[:] = [series[i] + series[i + 1] for i in range(0, self.BINS, 2)]
            series.extend([0.0] * half)
        self.used = (self.used + 1) // 2

    def add(self, series: list[float], moment: float, amount: float) -> None:
        """Add ``amount`` at ``moment`` to one of the three series (the list itself)."""
        index = int((moment - self.start) * self._inverse)
        while index >= self.BINS:
            self._double()
            index = int((moment - self.start) * self._inverse)
        series[index] += amount
        if index >= self.used:
            self.used = index + 1

    def build(self) -> Timeline:
        used = self.used
        return Timeline(
            start=self.start,
            width=self.width,
            arrived=tuple(self.arrived[:used]),
            admitted=tuple(self.admitted[:used]),
            rejected=tuple(self.rejected[:used]),
        )


class KeyStats:
    """One key's calls so far (frozen into a :class:`KeySummary` at the end)."""

    __slots__ = ("admitted", "calls", "delayed", "rejected", "units", "wait_max", "wait_total")

    def __init__(self) -> None:
        self.calls = self.admitted = self.delayed = self.rejected = 0
        self.units = self.wait_total = self.wait_max = 0.0

    def count(self, amount: float, wait: float | None) -> None:
        """Count a call of ``amount`` that waited ``wait`` (0 at once), or was refused (None)."""
        self.calls += 1
        if wait is None:
            self.rejected += 1
            return
        if wait:
            self.delayed += 1
        self.admitted += 1
        self.units += amount
        self.wait_total += wait
        if wait > self.wait_max:
            self.wait_max = wait

    def freeze(self) -> KeySummary:
        """The summary of this key."""
        return KeySummary(
            self.calls,
            self.admitted,
            self.delayed,
            self.rejected,
            self.units,
            self.wait_total / self.admitted if self.admitted else 0.0,
            self.wait_max,
        )
