"""``limitor simulate``: run :func:`limitor.simulate` from parsed arguments and report.

The arrivals come from ``--trace`` or a synthetic pattern; the report is a few lines of
text with a timeline drawn as sparklines, or JSON (``--json``), and optionally a plot
(``--plot``). Long simulations show a progress bar on a terminal (with tqdm).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from limitor.errors import LimitorError
from limitor.simulation import (
    Mode,
    Pattern,
    SimulationResult,
    Timeline,
    parse_limit,
    plot,
    read_trace,
    require_pyplot,
    simulate,
)

__all__ = ("MODES", "simulate_command", "sparkline")

MODES: dict[str, Mode] = {
    "wait": "wait",
    "shape": "wait",
    "raise": "raise",
    "police": "raise",
    "timeout": "timeout",
}
"""The ``--mode`` choices and the :func:`~limitor.simulate` mode each means."""

_BLOCKS = " ▁▂▃▄▅▆▇█"
_ASCII = " .:-=+*#@"


def sparkline(values: Sequence[float], top: float, *, ascii_only: bool = False) -> str:
    """One character per value, scaled to ``top``: blank for 0, the lowest block for a little."""
    blocks = _ASCII if ascii_only else _BLOCKS
    steps = len(blocks) - 1
    chars = []
    for value in values:
        if value <= 0 or top <= 0:
            chars.append(blocks[0])
        else:
            chars.append(blocks[max(1, min(steps, math.ceil(value / top * steps - 1e-9)))])
    return "".join(chars)


def _can_print(out: TextIO, text: str) -> bool:
    encoding = getattr(out, "encoding", None) or "utf-8"
    try:
        text.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def _timeline_lines(line: Timeline, columns: int, out: TextIO) -> list[str]:
    merged = line.merged(columns)
    if not merged.arrived:
        return []
    top = max(max(merged.arrived), max(merged.admitted), max(merged.rejected))
    ascii_only = not _can_print(out, _BLOCKS)
    end = merged.start + merged.width * len(merged.arrived)
    lines = [
        f"timeline: units per {merged.width:g} s, from {merged.start:.4g} s to {end:.4g} s "
        f"(full height {top:g})",
        f"  arrived  |{sparkline(merged.arrived, top, ascii_only=ascii_only)}|",
        f"  admitted |{sparkline(merged.admitted, top, ascii_only=ascii_only)}|",
    ]
    if any(merged.rejected):
        lines.append(f"  rejected |{sparkline(merged.rejected, top, ascii_only=ascii_only)}|")
    return lines


def _mode_words(result: SimulationResult) -> str:
    if result.mode == "raise":
        return "raise (refuse at once)"
    if result.mode == "timeout":
        return f"wait up to {result.timeout:g} s, refuse beyond"
    return "wait"


def _progress(
    total: float | None, smallest: int
) -> tuple[Callable[[int], None] | None, Callable[[], None]]:
    """A tqdm progress bar on stderr when it is a terminal and tqdm is installed.

    Only for at least ``smallest`` calls (or an unknown number).
    """
    nothing: tuple[None, Callable[[], None]] = (None, lambda: None)
    if total is not None and total < smallest:
        return nothing
    if not (hasattr(sys.stderr, "isatty") and sys.stderr.isatty()):
        return nothing
    try:
        from tqdm import tqdm
    except ImportError:
        return nothing
    bar = tqdm(total=total, unit=" calls", unit_scale=True, leave=False, file=sys.stderr)
    seen = 0

    def update(calls: int) -> None:
        nonlocal seen
        bar.update(calls - seen)
        seen = calls

    return update, bar.close


def simulate_command(args: argparse.Namespace, out: TextIO, *, progress_from: int) -> None:
    """Run ``limitor simulate`` with parsed ``args``, printing the report to ``out``.

    A progress bar shows on a terminal for ``progress_from`` calls or more.

    Raises:
        LimitorError: arguments that do not go together, or a bad trace or limit.
        ImportError: ``--plot`` without matplotlib.
    """
    llm = {
        name: getattr(args, name)
        for name in (
            "requests_per_minute",
            "tokens_per_minute",
            "requests_per_day",
            "tokens_per_day",
        )
        if getattr(args, name) is not None
    }
    if llm and (args.rate is not None or args.burst is not None):
        raise LimitorError("give --rate/--burst or the LLM limits (--tokens-per-minute...)")
    rate = None if llm else parse_limit(args.rate or "10/s", burst=args.burst)
    mode = MODES[args.mode]
    if args.timeout is not None and mode == "raise":
        raise LimitorError("--timeout applies to waiting calls, not to --mode raise")
    if mode == "timeout" and args.timeout is None:
        raise LimitorError("--mode timeout needs --timeout SECONDS")
    arrivals, expected, described = _arrivals(args)
    if args.plot is not None:
        if args.plot.suffix.lower() not in (".png", ".svg"):
            raise LimitorError(f"--plot must name a .png or .svg file, got {str(args.plot)!r}")
        require_pyplot(headless=True)  # a missing matplotlib is said before the work
    update, close = _progress(expected, progress_from)
    try:
        result = simulate(arrivals, rate, mode=mode, progress=update, **_given(args), **llm)
    finally:
        close()
    _report(result, args, described, out)


_PASSED = ("algorithm", "timeout", "per_key", "total", "fair", "window", "max_arrivals")
"""The arguments passed to :func:`~limitor.simulate` as they are."""


def _given(args: argparse.Namespace) -> dict[str, Any]:
    return {name: getattr(args, name) for name in _PASSED}


def _arrivals(args: argparse.Namespace) -> tuple[Any, float | None, str]:
    """The arrivals the arguments name, how many are expected (None: unknown), in words."""
    if args.trace is not None:
        arrivals: Any = args.trace
        if args.format is not None:
            arrivals = read_trace(args.trace, format=args.format)
        size = args.trace.stat().st_size if args.trace.is_file() else 0
        return arrivals, None if size > 8_000_000 else 0.0, f"trace {args.trace}"
    kind: Any = "bursts" if args.arrivals == "burst" else args.arrivals
    every = args.duration if args.arrivals == "burst" else args.every
    if args.depth > 1:
        raise LimitorError(f"--depth must be between 0 and 1, got {args.depth:g}")
    pattern = Pattern(
        kind,
        args.arrival_rate,
        args.duration,
        amount=args.amount,
        every=every,
        depth=args.depth,
        period=args.period,
        keys=args.keys,
        seed=args.seed,
    )
    described = f"{args.arrivals} at {args.arrival_rate:g}/s for {args.duration:g} s" + (
        f" over {args.keys} keys" if args.keys else ""
    )
    if args.arrivals == "poisson" or args.arrivals == "daily" or args.keys:
        described += f", seed {args.seed}"
    return pattern, pattern.expected, described


def _report(
    result: SimulationResult, args: argparse.Namespace, described: str, out: TextIO
) -> None:
    """Print the result as text with a timeline, or as JSON; draw the plot if asked."""
    if args.json:
        print(json.dumps({"arrivals": described, **result.to_dict()}, indent=2), file=out)
    else:
        print(
            f"limit {result.limit}, {result.algorithm}, {_mode_words(result)}"
            + (", per key" if result.per_key else "")
            + (f", total {result.total}" if result.total else "")
            + (", fair" if result.fair else "")
            + f"\narrivals: {described}; {result.calls} calls (virtual time)\n",
            file=out,
        )
        print(result.summary(), file=out)
        lines = _timeline_lines(result.timeline, args.columns, out)
        if lines:
            print("\n" + "\n".join(lines), file=out)
    if args.plot is not None:
        plot(result, args.plot)
        if not args.json:
            print(f"\nplot written to {args.plot}", file=out)
