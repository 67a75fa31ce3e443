"""Sphinx extension: draw the documentation's pictures with ``limitor.simulate`` at build time.

Every picture is a replay of arrivals through the real limiters on a virtual clock, drawn
with matplotlib into ``docs/_generated/`` (git-ignored) before the pages are read. The
SVGs have a transparent background and mid-grey text, axes and grid, so one file reads
on furo's light and dark pages alike. Pages refer to them as ``_generated/<name>.svg``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from limitor import simulate
from limitor.simulation import COLOURS, THEME, SimulationResult, style_axes

OUT = Path(__file__).resolve().parent.parent / "_generated"

ALGORITHMS = (
    ("leaky_bucket", "leaky bucket"),
    ("token_bucket", "token bucket"),
    ("gcra", "GCRA (virtual scheduling)"),
    ("gcra_leaky_bucket", "GCRA (leaky bucket form)"),
)


def _steps(times: list[float], amounts: list[float], start: float, end: float):
    """Cumulative sums as step coordinates from ``start`` to ``end``."""
    xs, ys, total = [start], [0.0], 0.0
    for moment, amount in sorted(zip(times, amounts, strict=True)):
        xs.append(moment)
        ys.append(total)
        total += amount
        xs.append(moment)
        ys.append(total)
    xs.append(end)
    ys.append(total)
    return xs, ys


def _cumulative(axes: Any, result: SimulationResult, end: float, *, bound: bool = True) -> None:
    calls = result.calls_log or ()
    start = result.first_arrival
    axes.plot(
        *_steps([c.time for c in calls], [c.amount for c in calls], start, end),
        color=COLOURS["arrived"],
        linewidth=1.4,
        label="arrived",
    )
    went = [c for c in calls if c.admitted_at is not None]
    axes.plot(
        *_steps([c.admitted_at for c in went], [c.amount for c in went], start, end),
        color=COLOURS["admitted"],
        linewidth=2.0,
        label="admitted",
    )
    refused = [c for c in calls if c.wait is None]
    if refused:
        axes.plot(
            *_steps([c.time for c in refused], [c.amount for c in refused], start, end),
            color=COLOURS["rejected"],
            linewidth=1.4,
            label="rejected",
        )
    if bound:
        report = result.limits[0]
        axes.plot(
            [start, end],
            [report.burst, report.burst + report.rate * (end - start)],
            color=COLOURS["bound"],
            linestyle="--",
            linewidth=1.1,
            label="b + r·t",
        )
    axes.set_xlim(start, end)


def _legend(axes: Any, **kwargs: Any) -> None:
    axes.legend(fontsize=8, **kwargs)


def _save(figure: Any, name: str) -> None:
    figure.tight_layout()
    figure.savefig(OUT / name, transparent=True, metadata={"Date": None})


def _bursty() -> list[tuple[float, float]]:
    """Bursts and quiet spells: 10 calls at 0, a trickle, 6 at 2.5 s, 8 at 4 s."""
    rng = random.Random(4)
    times = [0.0] * 10 + [2.5] * 6 + [4.0] * 8
    times += [rng.uniform(0.2, 6.0) for _ in range(8)]
    return [(moment, 1.0) for moment in sorted(times)]


def staircase(plt: Any) -> None:
    """Ten calls at once against b = 4, r = 5/s: the staircase under the line b + r*t."""
    result = simulate([(0.0, 1)] * 10, "5/s", burst=4, record=True)
    figure, axes = plt.subplots(figsize=(6.4, 3.0))
    _cumulative(axes, result, 1.6)
    axes.set_xlabel("t (s)")
    axes.set_ylabel("calls admitted so far")
    axes.set_ylim(0, 11.5)
    _legend(axes, loc="upper left")
    style_axes(axes)
    _save(figure, "staircase.svg")
    plt.close(figure)


def algorithms(plt: Any) -> None:
    """The same bursty arrivals through each algorithm: admissions, then the level."""
    arrivals = _bursty()
    figure, grid = plt.subplots(len(ALGORITHMS), 2, figsize=(8.0, 8.2), sharex=True)
    for row, (algorithm, title) in enumerate(ALGORITHMS):
        result = simulate(arrivals, "4/s", burst=4, algorithm=algorithm, record=True, levels=0.02)
        end = 8.0
        left, right = grid[row][0], grid[row][1]
        _cumulative(left, result, end)
        left.set_ylabel("calls", fontsize=8)
        left.set_title(f"{title}: admitted", fontsize=9, loc="left")
        times = [sample[0] for sample in result.levels or ()]
        right.plot(
            times,
            [sample[1][0] for sample in result.levels or ()],
            color=COLOURS["admitted"],
            linewidth=1.6,
            label="level (waiters included)",
        )
        right.axhline(4, color=COLOURS["bound"], linestyle="--", linewidth=1.1, label="burst")
        right.set_title(f"{title}: bucket level", fontsize=9, loc="left")
        right.set_xlim(0, end)
        for axes in (left, right):
            style_axes(axes)
        if row == 0:
            _legend(left, loc="upper left")
            _legend(right, loc="upper right")
    grid[-1][0].set_xlabel("t (s)")
    grid[-1][1].set_xlabel("t (s)")
    _save(figure, "algorithms.svg")
    plt.close(figure)


def shaping_policing(plt: Any) -> None:
    """The same Poisson arrivals shaped, shaped with a timeout, and policed."""
    rng = random.Random(7)
    now, arrivals = 0.0, []
    while now < 10:
        now += rng.expovariate(8.0)
        arrivals.append((now, 1.0))
    runs = (
        ("wait (shaping): every call waits its turn", {"mode": "wait"}),
        ("timeout 0.5 s: waits up to 0.5 s, refused beyond", {"timeout": 0.5}),
        ("raise (policing): admitted now or refused now", {"mode": "raise"}),
    )
    figure, grid = plt.subplots(len(runs), 1, figsize=(7.2, 7.0), sharex=True)
    for axes, (title, options) in zip(grid, runs, strict=True):
        result = simulate(arrivals, "5/s", burst=5, record=True, **options)
        _cumulative(axes, result, 13.0)
        axes.set_title(
            f"{title}: {result.admitted} admitted, {result.rejected} refused, "
            f"longest wait {result.wait_max:.1f} s",
            fontsize=9,
            loc="left",
        )
        axes.set_ylabel("calls")
        style_axes(axes)
    _legend(grid[0], loc="upper left")
    grid[-1].set_xlabel("t (s)")
    _save(figure, "shaping-policing.svg")
    plt.close(figure)


def per_user(plt: Any) -> None:
    """Three users, each with 2/s and bursts of 3: a busy one never slows the others."""
    rng = random.Random(3)
    arrivals = [(0.0, 1.0, "alice")] * 12 + [(4.0, 1.0, "alice")] * 8
    arrivals += [(t * 0.7, 1.0, "bob") for t in range(12)]
    arrivals += [(rng.uniform(0, 8), 1.0, "carol") for _ in range(6)]
    arrivals.sort(key=lambda arrival: arrival[0])
    result = simulate(arrivals, "2/s", burst=3, per_key=True, record=True)
    figure, axes = plt.subplots(figsize=(7.2, 3.6))
    colours = {"alice": COLOURS["admitted"], "bob": COLOURS["bound"], "carol": "#3fb950"}
    end = 14.0
    for user, colour in colours.items():
        calls = [c for c in result.calls_log or () if c.key == user]
        axes.plot(
            *_steps([c.time for c in calls], [1.0] * len(calls), 0.0, end),
            color=colour,
            linewidth=1.0,
            linestyle=":",
            alpha=0.9,
        )
        axes.plot(
            *_steps([c.admitted_at for c in calls], [1.0] * len(calls), 0.0, end),
            color=colour,
            linewidth=2.0,
            label=f"{user}: {len(calls)} calls, waits up to {result.keys[user].wait_max:.1f} s",
        )
    axes.set_xlim(0, end)
    axes.set_xlabel("t (s)")
    axes.set_ylabel("calls (dotted: asked, solid: admitted)")
    _legend(axes, loc="upper left")
    style_axes(axes)
    _save(figure, "per-user.svg")
    plt.close(figure)


def llm_mix(plt: Any) -> None:
    """A mix of small and large LLM calls under 30 requests and 20,000 tokens per minute."""
    rng = random.Random(11)
    now, arrivals = 0.0, []
    while now < 120:
        now += rng.expovariate(0.8)
        arrivals.append((now, float(rng.choice([300, 500, 800, 1500, 4000]))))
    result = simulate(arrivals, requests_per_minute=30, tokens_per_minute=20_000, record=True)
    calls = result.calls_log or ()
    end = max(c.admitted_at or 0.0 for c in calls) + 10
    requests, tokens = result.limits
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(7.2, 5.6), sharex=True)
    for axes, report, amount_of in (
        (top, requests, lambda c: 1.0),
        (bottom, tokens, lambda c: c.amount),
    ):
        went = [c for c in calls if c.admitted_at is not None]
        axes.plot(
            *_steps([c.time for c in calls], [amount_of(c) for c in calls], 0.0, end),
            color=COLOURS["arrived"],
            linewidth=1.4,
            label="asked",
        )
        axes.plot(
            *_steps([c.admitted_at for c in went], [amount_of(c) for c in went], 0.0, end),
            color=COLOURS["admitted"],
            linewidth=2.0,
            label="admitted",
        )
        axes.plot(
            [0, end],
            [report.burst, report.burst + report.rate * end],
            color=COLOURS["bound"],
            linestyle="--",
            linewidth=1.1,
            label="b + r·t",
        )
        axes.set_ylabel(f"{report.unit} (cumulative)")
        axes.set_title(
            f"{report.unit}: {report.rate * 60:g} per minute, busiest minute "
            f"{_busiest(went, amount_of, 60.0):g} of {report.burst + report.rate * 60:g} allowed",
            fontsize=9,
            loc="left",
        )
        axes.set_xlim(0, end)
        style_axes(axes)
        _legend(axes, loc="upper left")
    bottom.set_xlabel("t (s)")
    _save(figure, "llm-mix.svg")
    plt.close(figure)


def windows(plt: Any) -> None:
    """Twenty calls around a window's edge: a fixed window lets 2x through, a bucket b + r*t."""
    arrivals = [(0.99, 1.0)] * 10 + [(1.0, 1.0)] * 10
    result = simulate(arrivals, "10/s", burst=10, record=True)
    calls = result.calls_log or ()
    start, end = 0.9, 2.1
    figure, axes = plt.subplots(figsize=(6.0, 3.6))
    # The fixed window (10 per calendar second) admits each call when it arrives.
    axes.plot(
        *_steps([c.time for c in calls], [1.0] * len(calls), start, end),
        color=COLOURS["rejected"],
        linewidth=2.0,
        label="fixed window: 20 in 0.01 s",
    )
    axes.plot(
        *_steps([c.admitted_at or 0.0 for c in calls], [1.0] * len(calls), start, end),
        color=COLOURS["admitted"],
        linewidth=2.0,
        label="bucket: 10, then 1 per 0.1 s",
    )
    axes.plot(
        [0.99, end],
        [10.0, 10.0 + 10.0 * (end - 0.99)],
        color=COLOURS["bound"],
        linestyle="--",
        linewidth=1.4,
        label="b + r·t from the first call",
    )
    axes.set_xlim(start, end)
    axes.set_ylim(0, 24)
    axes.set_xlabel("t (s)")
    axes.set_ylabel("calls admitted")
    _legend(axes)
    style_axes(axes)
    _save(figure, "windows.svg")
    plt.close(figure)


def _busiest(calls: Any, amount_of: Callable[[Any], float], width: float) -> float:
    moments = sorted((c.admitted_at, amount_of(c)) for c in calls)
    best = 0.0
    for index, (start, _) in enumerate(moments):
        total = sum(a for t, a in moments[index:] if t <= start + width)
        best = max(best, total)
    return best


PICTURES = (staircase, algorithms, shaping_policing, per_user, llm_mix, windows)


def draw(app: Any = None, out: Path | None = None) -> list[Path]:
    """Draw every picture into ``out`` (default ``docs/_generated``); returns the files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    global OUT
    target = OUT if out is None else out
    saved, OUT = OUT, target
    try:
        target.mkdir(exist_ok=True)
        with plt.rc_context({**THEME, "font.size": 9}):
            for picture in PICTURES:
                picture(plt)
    finally:
        OUT = saved
    written = sorted(target.glob("*.svg"))
    if app is not None:
        from sphinx.util import logging

        logging.getLogger(__name__).info("limitor_pictures: drew %d pictures", len(written))
    return written


def setup(app: Any) -> dict[str, Any]:
    """Draw the pictures once the builder is ready, before any page is read."""
    app.connect("builder-inited", draw)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
