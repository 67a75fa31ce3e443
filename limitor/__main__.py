"""The command line: ``limitor demo`` and ``limitor simulate`` (or ``python -m limitor``).

``demo`` shows, live, each algorithm shaping the same calls made back to back, then tasks
waiting in order on an async bucket. ``simulate`` replays a trace or a synthetic pattern
of arrivals through a limit in virtual time (:func:`limitor.simulate`) and reports what
was admitted, delayed and rejected, with a timeline, as JSON or as a plot.

Bad input never shows a traceback: it is refused with one line on stderr and exit
status 2. A closed pipe (``| head``) and Ctrl-C end quietly.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

import anyio
import anyio.lowlevel

from limitor.base import SyncBucket
from limitor.clock import Clock
from limitor.configs import BucketConfig
from limitor.errors import LimitorError
from limitor.generic_cell_rate.core import SyncLeakyBucketGCRA, SyncVirtualSchedulingGCRA
from limitor.leaky_bucket.core import AsyncLeakyBucket, SyncLeakyBucket
from limitor.simulation import (
    ALGORITHMS as SIMULATED,
)
from limitor.simulation import (
    MAX_ARRIVALS,
    Pattern,
    SimulationResult,
    Timeline,
    parse_limit,
    plot,
    require_pyplot,
    simulate,
)
from limitor.testing import FakeClock
from limitor.token_bucket.core import SyncTokenBucket

__all__ = ("demo", "demo_seconds", "main", "sparkline")

ALGORITHMS: tuple[tuple[str, type[SyncBucket]], ...] = (
    ("leaky bucket", SyncLeakyBucket),
    ("token bucket", SyncTokenBucket),
    ("GCRA (virtual scheduling)", SyncVirtualSchedulingGCRA),
    ("GCRA (leaky bucket form)", SyncLeakyBucketGCRA),
)

ASYNC_EXTRA_TASKS = 4
"""The async part of the demo: ``burst + 4`` tasks, so four of them wait."""

DEMO_LONGEST = 120.0
"""The longest live demo accepted, in seconds (``--virtual`` has no limit)."""

PROGRESS_FROM = 500_000
"""Show a progress bar (on a terminal) for simulations of at least this many calls."""

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141


# -- demo --------------------------------------------------------------------------------


def _bar(offset: float, scale: float, width: int = 36) -> str:
    filled = min(width, round(offset / scale * width)) if scale > 0 else 0
    return "#" * filled + "." * (width - filled)


def demo_seconds(calls: int = 10, rate: float = 5.0, burst: int = 4) -> float:
    """How long the live demo takes by its schedule (each algorithm, then the async part)."""
    per_algorithm = max(calls - burst, 0) / rate
    return len(ALGORITHMS) * per_algorithm + ASYNC_EXTRA_TASKS / rate


def demo(
    calls: int = 10,
    rate: float = 5.0,
    burst: int = 4,
    *,
    out: TextIO = sys.stdout,
    clock: Clock | None = None,
) -> float:
    """Shape ``calls`` calls made back to back through each algorithm, printing each one.

    Returns the total (clock) time the demonstration took.
    """
    config = BucketConfig(capacity=rate, seconds=1, burst=burst)
    span = max(calls - burst, 0) / rate
    now = time.monotonic if clock is None else clock.now
    print(
        f"limitor demo: one thread makes {calls} calls back to back against {rate:g} "
        f"calls/s with bursts of {burst}.\nEach algorithm lets the burst through at once, "
        f"then one call every {1 / rate:.3g} s: the same schedule, kept by different "
        f"bookkeeping. About {demo_seconds(calls, rate, burst):.1f} s in all.\n",
        file=out,
        flush=True,
    )
    begun = now()
    for name, bucket_type in ALGORITHMS:
        bucket = bucket_type(config, clock=clock)
        print(f"{name}", file=out, flush=True)
        start = now()
        for call in range(1, calls + 1):
            bucket.acquire()
            offset = now() - start
            print(f"  call {call:2d}  +{offset:6.3f} s  {_bar(offset, span)}", file=out, flush=True)
        stats = bucket.stats
        print(
            f"  admitted {stats.admitted}, {stats.waited} waited "
            f"(mean {stats.mean_wait:.3f} s each, as scheduled)\n",
            file=out,
            flush=True,
        )
    _demo_async(rate, burst, out=out, clock=clock)
    took = now() - begun
    print(f"the demo took {took:.1f} s", file=out, flush=True)
    return took


def _demo_async(rate: float, burst: int, *, out: TextIO, clock: Clock | None) -> None:
    bucket = AsyncLeakyBucket(BucketConfig(capacity=rate, seconds=1, burst=burst), clock=clock)
    now = time.monotonic if clock is None else clock.now
    tasks = burst + ASYNC_EXTRA_TASKS
    print(
        f"async: {tasks} tasks ask at once and go in the order they asked; the event "
        "loop is never blocked",
        file=out,
        flush=True,
    )
    ticks = 0

    async def caller(index: int, start: float) -> None:
        await bucket.acquire()
        print(f"  task {index:2d}  +{now() - start:6.3f} s", file=out, flush=True)

    async def ticker(done: anyio.Event) -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await anyio.sleep(0.01)

    async def main() -> None:
        start = now()
        done = anyio.Event()
        async with anyio.create_task_group() as outer:
            outer.start_soon(ticker, done)
            async with anyio.create_task_group() as tg:
                for index in range(1, tasks + 1):
                    tg.start_soon(caller, index, start)
                    await anyio.lowlevel.checkpoint()
            done.set()

    anyio.run(main)
    if clock is None:
        print(f"  meanwhile a ticker task ran {ticks} times", file=out, flush=True)
    print(file=out, flush=True)


# -- simulate: output ------------------------------------------------------------------

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


# -- simulate: arguments ---------------------------------------------------------------


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


_MODES = {
    "wait": "wait",
    "shape": "wait",
    "raise": "raise",
    "police": "raise",
    "timeout": "timeout",
}


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
        choices=sorted(_MODES),
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
    report = sim.add_argument_group("the report")
    report.add_argument("--window", type=_positive, default=1.0, help="busiest window, seconds")
    report.add_argument("--json", action="store_true", help="print the summary as JSON")
    report.add_argument("--plot", type=Path, metavar="FILE", help="draw to FILE.png or FILE.svg")
    report.add_argument("--columns", type=_whole(8, 500), default=64, help="width of the timeline")
    return parser


def _progress(total: float | None) -> tuple[Callable[[int], None] | None, Callable[[], None]]:
    """A tqdm progress bar on stderr when it is a terminal and tqdm is installed."""
    nothing: tuple[None, Callable[[], None]] = (None, lambda: None)
    if total is not None and total < PROGRESS_FROM:
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


def _simulate_command(args: argparse.Namespace, out: TextIO) -> None:
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
    mode = _MODES[args.mode]
    if args.timeout is not None and mode == "raise":
        raise LimitorError("--timeout applies to waiting calls, not to --mode raise")
    if mode == "timeout" and args.timeout is None:
        raise LimitorError("--mode timeout needs --timeout SECONDS")
    arrivals: Any
    if args.trace is not None:
        arrivals = args.trace
        if args.format is not None:
            from limitor.simulation import read_trace

            arrivals = read_trace(args.trace, format=args.format)
        size = args.trace.stat().st_size if args.trace.is_file() else 0
        expected: float | None = None if size > 8_000_000 else 0.0
        described = f"trace {args.trace}"
    else:
        kind: Any = "bursts" if args.arrivals == "burst" else args.arrivals
        every = args.duration if args.arrivals == "burst" else args.every
        if args.depth > 1:
            raise LimitorError(f"--depth must be between 0 and 1, got {args.depth:g}")
        arrivals = Pattern(
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
        expected = arrivals.expected
        described = f"{args.arrivals} at {args.arrival_rate:g}/s for {args.duration:g} s" + (
            f" over {args.keys} keys" if args.keys else ""
        )
        if args.arrivals == "poisson" or args.arrivals == "daily" or args.keys:
            described += f", seed {args.seed}"
    if args.plot is not None:
        if args.plot.suffix.lower() not in (".png", ".svg"):
            raise LimitorError(f"--plot must name a .png or .svg file, got {str(args.plot)!r}")
        require_pyplot(headless=True)  # a missing matplotlib is said before the work
    update, close = _progress(expected)
    try:
        result = simulate(
            arrivals,
            rate,
            algorithm=args.algorithm,
            mode=mode,  # type: ignore[arg-type]
            timeout=args.timeout,
            per_key=args.per_key,
            total=args.total,
            fair=args.fair,
            window=args.window,
            max_arrivals=args.max_arrivals,
            progress=update,
            **llm,
        )
    finally:
        close()
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
            _simulate_command(args, stream)
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
