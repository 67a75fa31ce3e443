"""The result of a simulation: :class:`SimulationResult` and the records it holds.

All frozen; :meth:`SimulationResult.to_dict` gives the summary as JSON-ready data and
:meth:`SimulationResult.summary` as a few lines of text.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Call:
    """One arrival and what the limiter did with it (``record=True``)."""

    time: float
    """When it arrived (seconds, trace time)."""
    amount: float
    """Units it asked for (tokens for an LLM limit)."""
    key: Hashable
    """Its key (``None`` for unkeyed traffic)."""
    wait: float | None
    """Seconds it waited (0 at once), or ``None`` when it was rejected."""

    @property
    def admitted_at(self) -> float | None:
        """When it went (``time + wait``), or ``None`` when it was rejected."""
        return None if self.wait is None else self.time + self.wait


@dataclass(frozen=True, slots=True)
class KeySummary:
    """What one key's calls met."""

    calls: int
    """Arrivals of this key."""
    admitted: int
    """Calls admitted, at once or after waiting."""
    delayed: int
    """Admitted calls that waited (more than float rounding)."""
    rejected: int
    """Calls refused."""
    units: float
    """Units admitted."""
    wait_mean: float
    """Mean wait of the admitted calls."""
    wait_max: float
    """Longest wait."""


@dataclass(frozen=True, slots=True)
class LimitReport:
    """One limit against what it admitted: its rate and its busiest window's bound."""

    unit: str
    """What the limit counts: ``"units"`` for a bucket, ``"requests"`` or ``"tokens"``."""
    rate: float
    """The limit's rate, per second."""
    burst: float
    """The limit's burst."""
    achieved: float
    """What it admitted per second, from the first arrival to the last admission."""
    window: float
    """The length of the busiest window, in seconds."""
    most: float
    """The most admitted in any closed window of that length."""
    bound: float
    """What the limit allows in such a window: ``burst + rate * window``."""
    start: float
    """When that busiest window starts."""
    key: Hashable
    """The key whose window it is (per-key limits), else ``None``."""
    total: bool = False
    """True for a total over per-key limits (its window counts every key together)."""


@dataclass(frozen=True, slots=True)
class Timeline:
    """Units per interval over the run, for sparklines and plots (at most 128 intervals)."""

    start: float
    """Time of the first interval's start (the first arrival)."""
    width: float
    """Seconds per interval."""
    arrived: tuple[float, ...]
    """Units that arrived in each interval."""
    admitted: tuple[float, ...]
    """Units admitted in each interval (by their admission time)."""
    rejected: tuple[float, ...]
    """Units refused in each interval."""

    def merged(self, columns: int) -> Timeline:
        """The same timeline in at most ``columns`` intervals (whole multiples merged)."""
        factor = max(1, math.ceil(len(self.arrived) / max(1, columns)))

        def merge(series: tuple[float, ...]) -> tuple[float, ...]:
            return tuple(sum(series[i : i + factor]) for i in range(0, len(series), factor))

        return Timeline(
            self.start,
            self.width * factor,
            merge(self.arrived),
            merge(self.admitted),
            merge(self.rejected),
        )


@dataclass(frozen=True)
class SimulationResult:
    """What a limit did to a stream of arrivals (see :func:`simulate`)."""

    limit: str
    """The limit, in words (``"10/s, burst 5"``)."""
    rate: float
    """The limit's rate in units per second (the first limit's, for LLM limits)."""
    burst: float
    """The limit's burst (the first limit's, for LLM limits)."""
    algorithm: str
    """The algorithm (``"gcra"`` for LLM limits, which always use it)."""
    mode: str
    """``"wait"``, ``"raise"`` or ``"timeout"``."""
    timeout: float | None
    """The longest wait in ``"timeout"`` mode."""
    per_key: bool
    """True when each key had a limit of its own."""
    calls: int
    """Arrivals."""
    admitted: int
    """Calls admitted, at once or after waiting."""
    delayed: int
    """Admitted calls that waited longer than float rounding (1e-9 s)."""
    rejected: int
    """Calls refused (policed, beyond the timeout, or larger than the burst)."""
    too_large: int
    """Of the rejected: calls larger than the burst, which no wait could admit."""
    units_arrived: float
    """Units asked for."""
    units_admitted: float
    """Units admitted."""
    wait_p50: float
    """Median wait of the admitted calls, in seconds."""
    wait_p90: float
    """90th percentile wait."""
    wait_p99: float
    """99th percentile wait."""
    wait_max: float
    """Longest wait."""
    wait_mean: float
    """Mean wait of the admitted calls."""
    exact_percentiles: bool
    """False when there were so many calls that the percentiles come from a histogram
    (within 0.1%)."""
    first_arrival: float
    """Time of the first arrival."""
    last_arrival: float
    """Time of the last arrival."""
    last_admission: float
    """Time the last admitted call went."""
    achieved_rate: float
    """Units (tokens for LLM limits) admitted per second from the first arrival to the last
    admission."""
    limits: tuple[LimitReport, ...]
    """Each limit's achieved rate and busiest window (over every key for per-key limits)."""
    keys: Mapping[Hashable, KeySummary] = field(repr=False, compare=False)
    """A summary per key (empty for unkeyed traffic)."""
    timeline: Timeline = field(repr=False, compare=False)
    """Units per interval, for a sparkline or a plot."""
    calls_log: tuple[Call, ...] | None = field(default=None, repr=False, compare=False)
    """Every call, with its wait, when ``record=True`` (else ``None``)."""
    levels: tuple[tuple[float, tuple[float, ...]], ...] | None = field(
        default=None, repr=False, compare=False
    )
    """``(time, level of each limit)`` every ``levels`` seconds when asked: the units the
    bucket holds (its admissions, reservations included, still to drain)."""
    total: str | None = None
    """The total over the per-key limits, in words, or ``None``."""
    fair: bool = False
    """True when waiting keys took turns at the total (``fair=True``)."""

    def to_dict(self) -> dict[str, Any]:
        """The summary as plain JSON-ready data (no per-call records).

        With a total, ``total`` and ``fair`` are given, and the total's limit says
        ``"total": true``; without one, neither appears (the data stays as before).
        """
        return {
            "limit": self.limit,
            "rate": self.rate,
            "burst": self.burst,
            "algorithm": self.algorithm,
            "mode": self.mode,
            "timeout": self.timeout,
            "per_key": self.per_key,
            **({"total": self.total, "fair": self.fair} if self.total is not None else {}),
            "calls": self.calls,
            "admitted": self.admitted,
            "delayed": self.delayed,
            "rejected": self.rejected,
            "too_large": self.too_large,
            "units_arrived": self.units_arrived,
            "units_admitted": self.units_admitted,
            "wait": {
                "p50": self.wait_p50,
                "p90": self.wait_p90,
                "p99": self.wait_p99,
                "max": self.wait_max,
                "mean": self.wait_mean,
                "exact": self.exact_percentiles,
            },
            "first_arrival": self.first_arrival,
            "last_arrival": self.last_arrival,
            "last_admission": self.last_admission,
            "achieved_rate": self.achieved_rate,
            "limits": [
                {
                    "unit": each.unit,
                    "rate": each.rate,
                    "burst": each.burst,
                    "achieved": each.achieved,
                    "window": each.window,
                    "most": each.most,
                    "bound": each.bound,
                    "start": each.start,
                    "key": _json_key(each.key),
                    **({"total": True} if each.total else {}),
                }
                for each in self.limits
            ],
            "keys": {
                str(_json_key(key)): {
                    "calls": summary.calls,
                    "admitted": summary.admitted,
                    "delayed": summary.delayed,
                    "rejected": summary.rejected,
                    "units": summary.units,
                    "wait_mean": summary.wait_mean,
                    "wait_max": summary.wait_max,
                }
                for key, summary in self.keys.items()
            },
        }

    def summary(self, *, keys: int = 5) -> str:
        """The result as a few lines of text (with the ``keys`` busiest keys, if any)."""
        calls = self.calls

        def share(count: int) -> str:
            return f"({count / calls:6.1%})" if calls else "(  0.0%)"

        lines = [
            f"  admitted  {self.admitted:>8}  {share(self.admitted)}",
            f"  delayed   {self.delayed:>8}  {share(self.delayed)}",
            f"  rejected  {self.rejected:>8}  {share(self.rejected)}"
            + (f", {self.too_large} larger than the burst" if self.too_large else ""),
            f"  wait      p50 {self.wait_p50:.3f} s  p90 {self.wait_p90:.3f} s  "
            f"p99 {self.wait_p99:.3f} s  max {self.wait_max:.3f} s"
            + ("" if self.exact_percentiles else " (within 0.1%)"),
        ]
        for each in self.limits:
            whose = "" if each.key is None else f" (key {each.key!r})"
            lines.append(
                f"  achieved  {each.achieved:.3f} {each.unit}/s, all keys together "
                f"(the total: {each.rate:g}/s{', fair turns' if self.fair else ''})"
                if each.total
                else f"  achieved  {each.achieved:.3f} {each.unit}/s, all keys together "
                f"(each key's limit: {each.rate:g}/s)"
                if self.per_key
                else f"  achieved  {each.achieved:.3f} {each.unit}/s from the first arrival "
                f"to the last admission (the limit: {each.rate:g}/s)"
            )
            lines.append(
                f"  busiest {each.window:g} s: {each.most:g} {each.unit}{whose} "
                f"(the bound burst + rate*w: {each.bound:g})"
            )
        if self.keys and keys > 0:
            top = sorted(self.keys.items(), key=lambda item: (-item[1].calls, str(item[0])))
            lines.append(f"  keys      {len(self.keys)}" + (", the busiest:" if top else ""))
            for key, summary in top[:keys]:
                lines.append(
                    f"    {key!s:<12} {summary.calls:>7} calls  {summary.admitted:>7} "
                    f"admitted  {summary.rejected:>7} rejected  wait max "
                    f"{summary.wait_max:.3f} s"
                )
        return "\n".join(lines)


def _json_key(key: Hashable) -> Any:
    return key if key is None or isinstance(key, (str, int, float)) else str(key)
