"""Sphinx extension: draw the documentation's pictures with ``limitor.simulate`` at build time.

Every picture is a replay of arrivals through the real limiters on a virtual clock, drawn
with matplotlib into ``docs/_generated/`` (git-ignored) before the pages are read. Pages
refer to them as ``_generated/<name>.svg``.

One file must read on furo's light and dark pages alike, and no single colour of text
reaches a contrast of 4.5:1 against both white and furo's near-black: so each picture is a
card with its own pale background (``CARD``), dark text (``INK``) and series colours of at
least 4.5:1 against it (``PALETTE``). Legends sit outside the plotting area, below it,
and text is large enough to read when the picture is shrunk to a 390 px wide phone.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from limitor import simulate
from limitor.simulation import GREY, THEME, SimulationResult

CARD = "#f6f8fa"  # the pictures' background
INK = "#24292f"  # text, axes and ticks: 13.5:1 on CARD
PALETTE = {
    "arrived": "#595959",  # 6.6:1 on CARD
    "admitted": "#0550ae",  # 6.9:1
    "rejected": "#c2261d",  # 5.5:1
    "bound": "#8a5a00",  # 5.6:1
    "third": "#1a7f37",  # 4.8:1
}
COLOURS = PALETTE  # the name the series code uses
DOCS_THEME = {
    **THEME,
    "text.color": INK,
    "axes.labelcolor": INK,
    "axes.titlecolor": INK,
    "axes.edgecolor": INK,
    "xtick.color": INK,
    "ytick.color": INK,
    "legend.labelcolor": INK,
    "figure.facecolor": CARD,
    "axes.facecolor": CARD,
    "savefig.transparent": False,
    "savefig.facecolor": CARD,
    "font.size": 11,
    "axes.titlesize": 11,
    "legend.fontsize": 10,
}
WIDTH = 5.2  # inches: text stays readable when shrunk to 390 px

DRAWN: list[tuple[str, Any]] = []
"""Every figure saved by the last :func:`draw`, with its file name (the tests read them)."""


def style_axes(axes: Any) -> None:
    """A light grid behind the data (decoration: below the contrast rule, by design)."""
    axes.grid(color=GREY, alpha=0.35, linewidth=0.6)
    axes.set_axisbelow(True)


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
    """One legend for the whole figure, below its plots (never over data)."""
    figure = axes.figure
    handles: dict[str, Any] = {}
    for each in figure.axes:
        for handle, label in zip(*each.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    figure.legend(
        list(handles.values()),
        list(handles),
        loc="outside lower center",
        ncol=kwargs.get("ncol", 2),
        frameon=False,
    )


def _figure(plt: Any, rows: int = 1, height: float = 3.4, **kwargs: Any) -> Any:
    return plt.subplots(rows, 1, figsize=(WIDTH, height), layout="constrained", **kwargs)


def _save(figure: Any, name: str) -> None:
    figure.savefig(OUT / name, metadata={"Date": None})
    DRAWN.append((name, figure))


def _bursty() -> list[tuple[float, float]]:
    """Bursts and quiet spells: 10 calls at 0, a trickle, 6 at 2.5 s, 8 at 4 s."""
    rng = random.Random(4)
    times = [0.0] * 10 + [2.5] * 6 + [4.0] * 8
    times += [rng.uniform(0.2, 6.0) for _ in range(8)]
    return [(moment, 1.0) for moment in sorted(times)]


def staircase(plt: Any) -> None:
    """Ten calls at once against b = 4, r = 5/s: the staircase under the line b + r*t."""
    result = simulate([(0.0, 1)] * 10, "5/s", burst=4, record=True)
    figure, axes = _figure(plt, height=3.6)
    _cumulative(axes, result, 1.6)
    axes.set_xlabel("t (s)")
    axes.set_ylabel("calls so far")
    axes.set_ylim(0, 12.5)
    _legend(axes)
    style_axes(axes)
    _save(figure, "staircase.svg")
    plt.close(figure)


def algorithms(plt: Any) -> None:
    """The same bursty arrivals through each algorithm: one schedule, one level."""
    arrivals = _bursty()
    results = [
        simulate(arrivals, "4/s", burst=4, algorithm=algorithm, record=True, levels=0.02)
        for algorithm, _ in ALGORITHMS
    ]
    schedules = {
        tuple(round(c.admitted_at or 0.0, 9) for c in result.calls_log or ()) for result in results
    }
    assert len(schedules) == 1, "the four algorithms no longer give the same schedule"
    result = results[0]
    end = 8.0
    figure, (top, bottom) = _figure(plt, rows=2, height=5.6, sharex=True)
    _cumulative(top, result, end)
    top.set_ylabel("calls")
    top.set_title("all four algorithms: the same admissions", loc="left")
    bottom.plot(
        [sample[0] for sample in result.levels or ()],
        [sample[1][0] for sample in result.levels or ()],
        color=COLOURS["third"],
        linewidth=1.6,
        label="level, waiters included",
    )
    bottom.axhline(4, color=COLOURS["bound"], linestyle=":", linewidth=1.4, label="burst b = 4")
    bottom.set_title("level (tokens, TAT, X: the same, other units)", loc="left")
    bottom.set_ylabel("units")
    bottom.set_xlim(0, end)
    low = min(sample[1][0] for sample in result.levels or ())
    high = max(sample[1][0] for sample in result.levels or ())
    bottom.set_ylim(min(0.0, low) - 0.5, max(4.0, high) + 1.0)
    bottom.set_xlabel("t (s)")
    for axes in (top, bottom):
        style_axes(axes)
    _legend(top)
    _save(figure, "algorithms.svg")
    plt.close(figure)


def shaping_policing(plt: Any) -> None:
    """The same Poisson arrivals shaped, shaped with a timeout, and policed: whole runs."""
    rng = random.Random(7)
    now, arrivals = 0.0, []
    while now < 10:
        now += rng.expovariate(8.0)
        arrivals.append((now, 1.0))
    runs = (
        ("shaping (wait)", {"mode": "wait"}),
        ("timeout 0.5 s", {"timeout": 0.5}),
        ("policing (raise)", {"mode": "raise"}),
    )
    results = [simulate(arrivals, "5/s", burst=5, record=True, **options) for _, options in runs]
    last = max(
        max((c.admitted_at or c.time for c in result.calls_log or ()), default=0.0)
        for result in results
    )
    end = last + 0.5
    figure, grid = _figure(plt, rows=len(runs), height=7.6, sharex=True, sharey=True)
    for axes, (title, _), result in zip(grid, runs, results, strict=True):
        _cumulative(axes, result, end)
        axes.set_title(
            f"{title}: {result.admitted} admitted, {result.rejected} refused, "
            f"wait ≤ {result.wait_max:.1f} s",
            loc="left",
        )
        axes.set_ylabel("calls")
        style_axes(axes)
    grid[0].set_ylim(0, len(arrivals) * 1.05 + 6)
    grid[-1].set_xlabel("t (s)")
    _legend(grid[0])
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
    figure, axes = _figure(plt, height=4.4)
    colours = {"alice": COLOURS["admitted"], "bob": COLOURS["bound"], "carol": COLOURS["third"]}
    last = max((c.admitted_at or c.time) for c in result.calls_log or ())
    end = last + 0.5
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
            label=f"{user}: {len(calls)} calls, wait ≤ {result.keys[user].wait_max:.1f} s",
        )
    from matplotlib.ticker import MaxNLocator

    most = max(sum(1 for c in result.calls_log or () if c.key == user) for user in colours)
    axes.set_xlim(0, end)
    axes.set_ylim(0, most + 1)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("t (s)")
    axes.set_ylabel("calls (dotted: asked)")
    _legend(axes, ncol=1)
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
    figure, (top, bottom) = _figure(plt, rows=2, height=6.2, sharex=True)
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
        axes.set_ylabel(f"{report.unit} so far")
        axes.set_title(
            f"{report.unit}: {report.rate * 60:g}/min; busiest minute "
            f"{_busiest(went, amount_of, 60.0):g} (≤ {report.burst + report.rate * 60:g})",
            loc="left",
        )
        axes.set_xlim(0, end)
        style_axes(axes)
    _legend(top, ncol=3)
    bottom.set_xlabel("t (s)")
    _save(figure, "llm-mix.svg")
    plt.close(figure)


def windows(plt: Any) -> None:
    """Twenty calls around a window's edge: a fixed window lets 2x through, a bucket b + r*t."""
    arrivals = [(0.99, 1.0)] * 10 + [(1.0, 1.0)] * 10
    result = simulate(arrivals, "10/s", burst=10, record=True)
    calls = result.calls_log or ()
    start, end = 0.9, 2.1
    figure, axes = _figure(plt, height=4.0)
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
        label="b + r·t",
    )
    axes.set_xlim(start, end)
    axes.set_ylim(0, 24)
    axes.set_xlabel("t (s)")
    axes.set_ylabel("calls admitted")
    _legend(axes, ncol=1)
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
    DRAWN.clear()
    try:
        target.mkdir(exist_ok=True)
        with plt.rc_context(DOCS_THEME):
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


def llm_overlap(plt: Any) -> None:
    """Overlapping LLM calls that reserve 5x what they use, reconciled when they end.

    ``limitor.simulate`` replays arrivals, not calls that run and then reconcile, so this
    one drives an ``LLMLimiter`` on a ``FakeClock`` itself: 64 workers, one call after the
    other, 2 s per call, each reserving five times the tokens it really uses.
    """
    import heapq

    from limitor.llm import LLMLimiter
    from limitor.testing import FakeClock

    clock = FakeClock()
    per_minute = 60_000.0
    limiter = LLMLimiter(tokens_per_minute=per_minute, clock=clock)
    rng = random.Random(15)
    events: list[tuple[float, int, Any, float]] = [(0.0, worker, None, 0.0) for worker in range(64)]
    heapq.heapify(events)
    reserved: list[tuple[float, float]] = []
    used: list[tuple[float, float]] = []
    end = 240.0
    while events and events[0][0] < end:
        when, worker, call, use = heapq.heappop(events)
        clock.advance(when - clock.now())
        if call is not None:
            call.reconcile(use)
        use = float(rng.randint(50, 150))
        call = limiter.reserve(use * 5)
        at = clock.now() + call.delay
        reserved.append((at, use * 5))
        used.append((at, use))
        heapq.heappush(events, (at + 2.0, worker, call, use))
    reserved = [(t, a) for t, a in reserved if t <= end]
    used = [(t, a) for t, a in used if t <= end]
    figure, axes = _figure(plt, height=4.2)
    for points, colour, label, width in (
        (reserved, COLOURS["arrived"], "reserved (estimates, 5x the use)", 1.4),
        (used, COLOURS["admitted"], "really used, at each call's admission", 2.0),
    ):
        axes.plot(
            *_steps([t for t, _ in points], [a for _, a in points], 0.0, end),
            color=colour,
            linewidth=width,
            label=label,
        )
    axes.plot(
        [0, end],
        [per_minute, per_minute + per_minute / 60 * end],
        color=COLOURS["bound"],
        linestyle="--",
        linewidth=1.1,
        label="b + r·t (60,000 tokens/min)",
    )
    axes.set_xlim(0, end)
    axes.set_ylim(0, max(per_minute * 5, sum(a for _, a in reserved)) * 1.05)
    axes.set_xlabel("t (s)")
    axes.set_ylabel("tokens (cumulative)")
    axes.set_title("64 calls in flight: refunded tokens are lent again", loc="left")
    _legend(axes, ncol=1)
    style_axes(axes)
    _save(figure, "llm-overlap.svg")
    plt.close(figure)


PICTURES = (*PICTURES, llm_overlap)


def fair_total(plt: Any) -> None:
    """A heavy key and a light key under one total of 10/s: FIFO against fair turns.

    The heavy key queues 80 calls at t = 0; the light key asks once a second from 0.5 s.
    Each key's own limit (100/s) never binds; the total does.
    """
    arrivals = [(0.0, 1.0, "heavy")] * 80 + [(0.5 + i, 1.0, "light") for i in range(7)]
    arrivals.sort(key=lambda arrival: arrival[0])
    runs = {
        fair: simulate(arrivals, "100/s", per_key=True, total="10/s", fair=fair, record=True)
        for fair in (False, True)
    }
    figure, (waits, admitted) = _figure(plt, rows=2, height=5.6)
    styles = {False: (COLOURS["rejected"], "FIFO"), True: (COLOURS["admitted"], "fair")}
    end = max(run.last_admission for run in runs.values()) + 0.3
    most_wait = 0.0
    for fair, run in runs.items():
        colour, name = styles[fair]
        light = [c for c in run.calls_log or () if c.key == "light"]
        most_wait = max(most_wait, *(c.wait or 0.0 for c in light))
        waits.plot(
            [c.time for c in light],
            [c.wait for c in light],
            color=colour,
            marker="o",
            linewidth=1.6,
            label=f"{name}: light key's wait (max {run.keys['light'].wait_max:.1f} s)",
        )
        went = [c for c in run.calls_log or () if c.admitted_at is not None]
        admitted.plot(
            *_steps([c.admitted_at for c in went], [c.amount for c in went], 0.0, end),
            color=colour,
            linewidth=2.0 if fair else 1.4,
            linestyle="-" if fair else "--",
            label=f"{name}: admitted, all keys",
        )
    report = next(each for each in runs[True].limits if each.total)
    admitted.plot(
        [0.0, end],
        [report.burst, report.burst + report.rate * end],
        color=COLOURS["bound"],
        linestyle=":",
        linewidth=1.2,
        label="the total's b + r·t",
    )
    waits.set_xlim(0.0, end)
    waits.set_ylim(-0.2, most_wait + 0.8)
    waits.set_ylabel("wait (s)")
    waits.set_title("light key (asks once a second) behind a heavy key's 80 calls", loc="left")
    waits.set_xlabel("asked at t (s)")
    admitted.set_title("every key together: the total is used fully either way", loc="left")
    admitted.set_xlim(0.0, end)
    admitted.set_ylim(0.0, report.burst + report.rate * end + 2)
    admitted.set_xlabel("t (s)")
    admitted.set_ylabel("calls")
    for axes in (waits, admitted):
        style_axes(axes)
    _legend(admitted, ncol=1)
    _save(figure, "fair-total.svg")
    plt.close(figure)


PICTURES = (*PICTURES, fair_total)
