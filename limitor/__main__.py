"""The command line: ``limitor demo`` and ``limitor simulate`` (or ``python -m limitor``).

``demo`` shows, live, each algorithm shaping the same calls made back to back, then tasks
waiting in order on an async bucket. ``simulate`` replays a trace or a synthetic pattern
of arrivals through a limit in virtual time (:func:`limitor.simulate`) and reports what
was admitted, delayed and rejected, with a timeline, as JSON or as a plot.

Bad input never shows a traceback: it is refused with one line on stderr and exit
status 2. A closed pipe (``| head``) and Ctrl-C end quietly.

This module holds the parser (with its validators) and the dispatch; each command is a
module of :mod:`limitor.cli`: ``limitor.cli.demo`` (the demo, sync and async) and
``limitor.cli.simulate`` (the simulate command: progress, JSON, plot, sparklines).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import NoReturn, TextIO

from limitor.cli.demo import ALGORITHMS as ALGORITHMS
from limitor.cli.demo import ASYNC_EXTRA_TASKS as ASYNC_EXTRA_TASKS
from limitor.cli.demo import demo, demo_seconds
from limitor.cli.simulate import MODES, simulate_command, sparkline
from limitor.errors import LimitorError
from limitor.simulation import ALGORITHMS as SIMULATED
from limitor.simulation import MAX_ARRIVALS
from limitor.testing import FakeClock

__all__ = ("demo", "demo_seconds", "main", "sparkline")

DEMO_LONGEST = 120.0
"""The longest live demo accepted, in seconds (``--virtual`` has no limit)."""

PROGRESS_FROM = 500_000
"""Show a progress bar (on a terminal) for simulations of at least this many calls."""

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141


# -- arguments -----------------------------------------------------------------------------


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def _positive(text: str) -> float:
    value = _number(text)
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text!r}")
    return value


def _not_negative(text: str) -> float:
    value = _number(text)
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number of 0 or more, got {text!r}")
    return value


def _amount(text: str) -> float | tuple[float, float]:
    if ":" in text:
        low_text, _, high_text = text.partition(":")
        low, high = _not_negative(low_text), _not_negative(high_text)
        if low > high:
            raise argparse.ArgumentTypeError(f"range {text!r} has its low end above its high")
        if low.is_integer() and high.is_integer():
            return (int(low), int(high))
        return (low, high)
    return _not_negative(text)


def _whole(minimum: int, maximum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(
                f"must be between {minimum:,} and {maximum:,}, got {text!r}"
            )
        return value

    return parse


class _Parser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line (and exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = _Parser(
        prog=prog,
        description="limitor's command line: a live demo, and a virtual-time simulator.",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    demo_parser = commands.add_parser(
        "demo", help="watch each algorithm shape calls made back to back, live"
    )
    demo_parser.add_argument(
        "--calls", type=_whole(1, 1000), default=10, help="calls made back to back (1-1000)"
    )
    demo_parser.add_argument("--rate", type=_positive, default=5.0, help="calls per second")
    demo_parser.add_argument(
        "--burst", type=_whole(1, 1000), default=4, help="calls admitted at once (1-1000)"
    )
    demo_parser.add_argument("--virtual", action="store_true", help="run in virtual time (instant)")
    sim = commands.add_parser(
        "simulate",
        help="replay a trace or a pattern of arrivals through a limit, in virtual time",
        description="Replay arrivals through the real limiter on a virtual clock.",
    )
    _limit_arguments(sim)
    _arrival_arguments(sim)
    report = sim.add_argument_group("the report")
    report.add_argument("--window", type=_positive, default=1.0, help="busiest window, seconds")
    report.add_argument("--json", action="store_true", help="print the summary as JSON")
    report.add_argument("--plot", type=Path, metavar="FILE", help="draw to FILE.png or FILE.svg")
    report.add_argument("--columns", type=_whole(8, 500), default=64, help="width of the timeline")
    return parser


def _limit_arguments(sim: argparse.ArgumentParser) -> None:
    limit = sim.add_argument_group("the limit")
    limit.add_argument("--rate", default=None, help="e.g. 10/s, 600/minute, 1e3/s (default 10/s)")
    limit.add_argument("--burst", type=_positive, default=None, help="default: the rate's amount")
    limit.add_argument("--requests-per-minute", type=_positive, metavar="N", help="LLM limit")
    limit.add_argument("--tokens-per-minute", type=_positive, metavar="N", help="LLM limit")
    limit.add_argument("--requests-per-day", type=_positive, metavar="N", help="LLM limit")
    limit.add_argument("--tokens-per-day", type=_positive, metavar="N", help="LLM limit")
    limit.add_argument("--algorithm", choices=sorted(SIMULATED), default="leaky_bucket")
    limit.add_argument(
        "--mode",
        choices=sorted(MODES),
        default="wait",
        help="wait (shape), raise (police: refuse at once) or timeout",
    )
    limit.add_argument(
        "--timeout", type=_not_negative, default=None, help="the longest wait (mode timeout)"
    )
    limit.add_argument("--per-key", action="store_true", help="a limit of its own per key")
    limit.add_argument(
        "--total", default=None, metavar="RATE", help="with --per-key: one limit every key shares"
    )
    limit.add_argument(
        "--fair", action="store_true", help="with --total: waiting keys take turns (needs trio)"
    )


def _arrival_arguments(sim: argparse.ArgumentParser) -> None:
    traffic = sim.add_argument_group("the arrivals")
    traffic.add_argument(
        "--trace", type=Path, metavar="FILE", help="a CSV or JSON-lines file: time, amount, key"
    )
    traffic.add_argument("--format", choices=["csv", "jsonl"], help="default: from the suffix")
    traffic.add_argument(
        "--arrivals",
        choices=["poisson", "uniform", "bursts", "burst", "daily"],
        default="poisson",
        help="a synthetic pattern (burst: all at time 0; bursts: every --every s)",
    )
    traffic.add_argument("--arrival-rate", type=_positive, default=12.0, help="per second")
    traffic.add_argument("--duration", type=_positive, default=60.0, help="seconds of arrivals")
    traffic.add_argument("--every", type=_positive, default=1.0, help="seconds between bursts")
    traffic.add_argument(
        "--depth", type=_not_negative, default=0.8, help="daily: swing around the rate, 0-1"
    )
    traffic.add_argument(
        "--period", type=_positive, default=86_400.0, help="daily: seconds per cycle"
    )
    traffic.add_argument(
        "--amount", type=_amount, default=1.0, help="units per call, or LOW:HIGH at random"
    )
    traffic.add_argument("--keys", type=_whole(0, 1_000_000), default=0, help="spread over keys")
    traffic.add_argument("--seed", type=_whole(-(2**63), 2**63), default=1)
    traffic.add_argument(
        "--max-arrivals",
        type=_whole(1, 1_000_000_000),
        default=MAX_ARRIVALS,
        help=f"refuse more calls than this (default {MAX_ARRIVALS:,})",
    )


# -- dispatch ----------------------------------------------------------------------------


def _prog() -> str:
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return "python -m limitor" if name in ("__main__.py", "-m", "") else "limitor"


def _fail(prog: str, message: str) -> int:
    print(f"{prog}: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the command line; returns the exit status (2 for bad input)."""
    stream = sys.stdout if out is None else out
    prog = _prog()
    try:
        try:
            args = _parser(prog).parse_args(argv)
        except SystemExit as exit_:  # --help, or a usage error already printed
            return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
        if args.command == "demo":
            if not args.virtual and demo_seconds(args.calls, args.rate, args.burst) > DEMO_LONGEST:
                return _fail(
                    prog,
                    f"that demo would take {demo_seconds(args.calls, args.rate, args.burst):.0f} "
                    f"s (the most is {DEMO_LONGEST:.0f} s); fewer --calls, a higher --rate, "
                    "or --virtual",
                )
            demo(
                args.calls,
                args.rate,
                args.burst,
                out=stream,
                clock=FakeClock() if args.virtual else None,
            )
        else:
            simulate_command(args, stream, progress_from=PROGRESS_FROM)
        stream.flush()
    except LimitorError as error:
        return _fail(prog, str(error))
    except ImportError as error:
        return _fail(prog, str(error))
    except BrokenPipeError:
        if out is None:
            _silence_stdout()
        return EXIT_BROKEN_PIPE
    except OSError as error:
        return _fail(
            prog, f"{error.strerror or error}: {error.filename}" if error.filename else str(error)
        )
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BaseException as error:  # the demo's task group wraps what its tasks raised
        leaves = list(_leaves(error))
        if not leaves or leaves == [error]:
            raise
        if all(isinstance(leaf, BrokenPipeError) for leaf in leaves):
            if out is None:
                _silence_stdout()
            return EXIT_BROKEN_PIPE
        if all(isinstance(leaf, KeyboardInterrupt | BrokenPipeError) for leaf in leaves):
            return EXIT_INTERRUPTED
        raise
    return 0


def _leaves(error: BaseException) -> Iterator[BaseException]:
    """The exceptions inside an exception group, however nested (the error itself if none)."""
    inner = getattr(error, "exceptions", None)
    if not isinstance(inner, tuple):
        yield error
        return
    for each in inner:
        if isinstance(each, BaseException):
            yield from _leaves(each)


def _silence_stdout() -> None:
    """After a closed pipe, point stdout at /dev/null so the interpreter's flush is quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


if __name__ == "__main__":
    sys.exit(main())
