"""The command line: ``python -m limitor demo`` and ``python -m limitor simulate``.

``demo`` shows, live, each algorithm shaping the same burst of calls, then tasks waiting
in order on an async bucket. ``simulate`` replays an arrival pattern through a limit in
virtual time and reports what was admitted, delayed and rejected.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from collections.abc import Sequence
from typing import TextIO

import anyio
import anyio.lowlevel

from limitor._checks import INF
from limitor.base import SyncBucket
from limitor.clock import Clock
from limitor.configs import BucketConfig, parse_rate
from limitor.engines import ENGINES
from limitor.errors import ConfigError, LimitorError
from limitor.generic_cell_rate.core import SyncLeakyBucketGCRA, SyncVirtualSchedulingGCRA
from limitor.leaky_bucket.core import AsyncLeakyBucket, SyncLeakyBucket
from limitor.testing import FakeClock
from limitor.token_bucket.core import SyncTokenBucket

__all__ = ("main",)

ALGORITHMS: tuple[tuple[str, type[SyncBucket]], ...] = (
    ("leaky bucket", SyncLeakyBucket),
    ("token bucket", SyncTokenBucket),
    ("GCRA (virtual scheduling)", SyncVirtualSchedulingGCRA),
    ("GCRA (leaky bucket form)", SyncLeakyBucketGCRA),
)


def _bar(offset: float, scale: float, width: int = 36) -> str:
    filled = min(width, round(offset / scale * width)) if scale > 0 else 0
    return "#" * filled + "." * (width - filled)


def demo(
    calls: int = 10,
    rate: float = 5.0,
    burst: int = 4,
    *,
    out: TextIO = sys.stdout,
    clock: Clock | None = None,
) -> float:
    """Shape ``calls`` back-to-back calls through each algorithm, printing each admission.

    Returns the total (clock) time the demonstration took.
    """
    config = BucketConfig(capacity=rate, seconds=1, burst=burst)
    span = max(calls - burst, 0) / rate
    now = time.monotonic if clock is None else clock.now
    print(
        f"limitor demo: {calls} calls at once against {rate:g} calls/s with bursts of "
        f"{burst}.\nEach algorithm lets the burst through at once, then one call every "
        f"{1 / rate:.3g} s: the same schedule, kept by different bookkeeping.\n",
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
    return now() - begun


def _demo_async(rate: float, burst: int, *, out: TextIO, clock: Clock | None) -> None:
    bucket = AsyncLeakyBucket(BucketConfig(capacity=rate, seconds=1, burst=burst), clock=clock)
    now = time.monotonic if clock is None else clock.now
    tasks = burst + 4
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


def arrivals_for(pattern: str, arrival_rate: float, duration: float, seed: int) -> list[float]:
    """Arrival times for ``pattern``: poisson, uniform or burst (all at time 0)."""
    if pattern == "burst":
        return [0.0] * max(1, round(arrival_rate * duration))
    if pattern == "uniform":
        count = math.floor(arrival_rate * duration)
        return [k / arrival_rate for k in range(count)]
    if pattern == "poisson":
        rng = random.Random(seed)
        times: list[float] = []
        now = 0.0
        while True:
            now += rng.expovariate(arrival_rate)
            if now >= duration:
                return times
            times.append(now)
    raise ConfigError(f"arrivals must be poisson, uniform or burst, got {pattern!r}")


def percentile(sorted_values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile of already sorted values (0 for none)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(share * len(sorted_values)))
    return sorted_values[rank - 1]


def simulate(
    config: BucketConfig,
    arrivals: Sequence[float],
    *,
    algorithm: str = "leaky_bucket",
    amount: float = 1.0,
    timeout: float | None = None,
    police: bool = False,
) -> dict[str, float]:
    """Replay ``arrivals`` through the limit on a virtual clock; summarise the outcome."""
    engine = ENGINES[algorithm](config.rate, config.max_burst)
    state = engine.new_state()
    max_wait = 0.0 if police else (INF if timeout is None else timeout)
    waits: list[float] = []
    admissions: list[float] = []
    rejected = 0
    for arrival in sorted(arrivals):
        delay = engine.reserve(state, arrival, amount, max_wait)
        if delay < 0:
            rejected += 1
            continue
        waits.append(delay)
        admissions.append(arrival + delay)
    waits.sort()
    admissions.sort()
    admitted = len(waits)
    first = min(arrivals, default=0.0)
    end = max([*arrivals, *admissions], default=first)
    span = end - first
    return {
        "calls": len(arrivals),
        "admitted": admitted,
        "delayed": sum(1 for wait in waits if wait > 0),
        "rejected": rejected,
        "wait_p50": percentile(waits, 0.50),
        "wait_p90": percentile(waits, 0.90),
        "wait_p99": percentile(waits, 0.99),
        "wait_max": waits[-1] if waits else 0.0,
        "admitted_per_second": admitted * amount / span if span > 0 else 0.0,
        "most_in_one_second": most_in_window(admissions, 1.0) * amount,
    }


def most_in_window(times: Sequence[float], window: float) -> int:
    """The most of the sorted ``times`` that fall in any closed window of that length."""
    most = start = 0
    for end, moment in enumerate(times):
        while moment - times[start] > window:
            start += 1
        most = max(most, end - start + 1)
    return most


def _simulate_command(args: argparse.Namespace, out: TextIO) -> None:
    config = parse_rate(args.rate, burst=args.burst)
    arrivals = arrivals_for(args.arrivals, args.arrival_rate, args.duration, args.seed)
    result = simulate(
        config,
        arrivals,
        algorithm=args.algorithm,
        amount=args.amount,
        timeout=args.timeout,
        police=args.mode == "police",
    )
    mode = "police (refuse at once)" if args.mode == "police" else "shape (wait)"
    if args.mode == "shape" and args.timeout is not None:
        mode += f", timeout {args.timeout:g} s"
    print(
        f"limit {config.rate:g}/s, burst {config.max_burst:g}, {args.algorithm}, {mode}\n"
        f"arrivals: {args.arrivals} at {args.arrival_rate:g}/s for {args.duration:g} s "
        f"(virtual time, seed {args.seed})\n",
        file=out,
    )
    calls = int(result["calls"])
    for key in ("admitted", "delayed", "rejected"):
        share = result[key] / calls if calls else 0.0
        print(f"  {key:<9} {int(result[key]):>8}  ({share:6.1%})", file=out)
    print(
        f"  wait      p50 {result['wait_p50']:.3f} s  p90 {result['wait_p90']:.3f} s  "
        f"p99 {result['wait_p99']:.3f} s  max {result['wait_max']:.3f} s\n"
        f"  admitted  {result['admitted_per_second']:.3f} units/s over the run "
        f"(the limit: {config.rate:g}/s)\n"
        f"  busiest second: {result['most_in_one_second']:g} units "
        f"(the limit allows rate + burst = {config.rate + config.max_burst:g})",
        file=out,
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m limitor",
        description="limitor's command line: a live demo, and a virtual-time simulator.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo_parser = commands.add_parser("demo", help="watch each algorithm shape a burst, live")
    demo_parser.add_argument(
        "--calls", type=int, default=10, help="calls made at once per algorithm"
    )
    demo_parser.add_argument("--rate", type=float, default=5.0, help="calls per second")
    demo_parser.add_argument(
        "--burst", type=int, default=4, help="calls admitted at once by an idle limit"
    )
    demo_parser.add_argument("--virtual", action="store_true", help="run in virtual time (instant)")
    sim = commands.add_parser("simulate", help="replay arrivals through a limit, virtually")
    sim.add_argument("--rate", default="10/s", help="the limit, e.g. 10/s or 600/minute")
    sim.add_argument("--burst", type=float, default=None, help="default: the rate's amount")
    sim.add_argument("--algorithm", choices=sorted(ENGINES), default="leaky_bucket")
    sim.add_argument("--arrivals", choices=["poisson", "uniform", "burst"], default="poisson")
    sim.add_argument("--arrival-rate", type=float, default=12.0, help="arrivals per second")
    sim.add_argument("--duration", type=float, default=60.0, help="seconds of arrivals")
    sim.add_argument("--amount", type=float, default=1.0, help="units per call")
    sim.add_argument("--mode", choices=["shape", "police"], default="shape")
    sim.add_argument("--timeout", type=float, default=None, help="shape: longest wait")
    sim.add_argument("--seed", type=int, default=1)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the command line; returns the exit status."""
    stream = sys.stdout if out is None else out
    args = _parser().parse_args(argv)
    try:
        if args.command == "demo":
            clock = FakeClock() if args.virtual else None
            demo(args.calls, args.rate, args.burst, out=stream, clock=clock)
        else:
            _simulate_command(args, stream)
    except LimitorError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
