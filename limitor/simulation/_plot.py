"""Pictures: the matplotlib theme limitor's pictures share, and :func:`plot` of a result.

matplotlib is optional (the ``limitor[plot]`` extra); :func:`require_pyplot` imports it
or says what to install.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from limitor.errors import ConfigError
from limitor.simulation._result import SimulationResult

GREY = "#888888"
"""Text, axes and grid: mid-grey reads on light and dark pages alike."""

COLOURS = {"arrived": "#8c8c8c", "admitted": "#2f81f7", "rejected": "#e5534b", "bound": "#d29922"}
"""Series colours chosen to read on light and dark backgrounds."""


def require_pyplot(*, headless: bool = False) -> Any:
    """``matplotlib.pyplot``, or an ImportError that names the ``limitor[plot]`` extra.

    With ``headless``, choose matplotlib's file-only Agg backend first (the command line).
    """
    try:
        import matplotlib

        if headless:
            matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("plots need matplotlib: pip install 'limitor[plot]'") from None
    return plt


THEME = {
    "text.color": GREY,
    "axes.labelcolor": GREY,
    "axes.titlecolor": GREY,
    "axes.edgecolor": GREY,
    "xtick.color": GREY,
    "ytick.color": GREY,
    "legend.labelcolor": GREY,
    "legend.frameon": False,
    "figure.facecolor": "none",
    "axes.facecolor": "none",
    "savefig.transparent": True,
    "svg.hashsalt": "limitor",
}
"""matplotlib settings for pictures that read on light and dark pages: transparent
background, mid-grey text, axes and ticks (use with ``matplotlib.rc_context(THEME)``)."""


def style_axes(axes: Any) -> None:
    """A light grey grid behind the data, on a transparent background."""
    axes.set_facecolor("none")
    axes.grid(color=GREY, alpha=0.25, linewidth=0.6)
    axes.set_axisbelow(True)


def plot(
    result: SimulationResult, path: str | os.PathLike[str], *, title: str | None = None
) -> None:
    """Draw arrivals against admissions over time, with the bound, to a PNG or SVG file.

    Cumulative units arrived, admitted and rejected at the edges of the timeline's intervals
    (:attr:`SimulationResult.timeline`, so summary mode is enough), and the most the limit
    allows, ``burst + rate * t``. With
    levels sampled, a second panel shows the bucket's level. Transparent background and
    grey text, readable on light and dark pages.

    Raises:
        ImportError: matplotlib is missing (install ``limitor[plot]``).
        ConfigError: the file name does not end in ``.png`` or ``.svg``.
    """
    target = Path(path)
    if target.suffix.lower() not in (".png", ".svg"):
        raise ConfigError(f"plot file must end in .png or .svg, got {str(target)!r}")
    plt = require_pyplot()
    with plt.rc_context(THEME):
        _draw(plt, result, target, title)


def _draw(plt: Any, result: SimulationResult, target: Path, title: str | None) -> None:
    panels = 2 if result.levels else 1
    figure, axes_list = plt.subplots(
        panels, 1, figsize=(7.5, 3.2 * panels), sharex=True, squeeze=False
    )
    axes = axes_list[0][0]
    _draw_counts(axes, result)
    mode = result.mode if result.timeout is None else f"timeout {result.timeout:g} s"
    axes.set_title(title or f"{result.limit}, {result.algorithm}, {mode}")
    axes.legend(loc="upper left")
    style_axes(axes)
    if result.levels:
        _draw_levels(axes_list[1][0], result)
    axes_list[-1][0].set_xlabel("time (s)")
    figure.tight_layout()
    figure.savefig(target, transparent=True, dpi=110)
    plt.close(figure)


def _cumulative(series: tuple[float, ...]) -> list[float]:
    total, out = 0.0, [0.0]
    for value in series:
        total += value
        out.append(total)
    return out


def _draw_counts(axes: Any, result: SimulationResult) -> None:
    """Cumulative units arrived, admitted (and rejected), with the bound of the first limit."""
    line = result.timeline
    edges = [line.start + line.width * (index + 1) for index in range(len(line.arrived))]
    starts = [line.start, *edges]
    series = [("arrived", line.arrived, 1.5), ("admitted", line.admitted, 2)]
    if result.rejected:
        series.append(("rejected", line.rejected, 1.5))
    for name, values, width in series:
        axes.plot(starts, _cumulative(values), color=COLOURS[name], label=name, linewidth=width)
    first = result.limits[0]
    if first.unit != "requests" or len(result.limits) == 1:
        end = starts[-1]
        axes.plot(
            [line.start, end],
            [first.burst, first.burst + first.rate * (end - line.start)],
            color=COLOURS["bound"],
            linestyle="--",
            linewidth=1.2,
            label="bound: burst + rate·t",
        )
    axes.set_ylabel("units (cumulative)")


def _draw_levels(axes: Any, result: SimulationResult) -> None:
    """The bucket's level over time, against its burst."""
    levels = result.levels or ()
    axes.plot(
        [sample[0] for sample in levels],
        [sample[1][0] for sample in levels],
        color=COLOURS["admitted"],
        linewidth=1.5,
        label="level",
    )
    axes.axhline(
        result.limits[0].burst,
        color=COLOURS["bound"],
        linestyle="--",
        linewidth=1.2,
        label="burst",
    )
    axes.set_ylabel("bucket level")
    style_axes(axes)
