"""``python -m benchmarks.simulate``: how fast ``limitor.simulate`` replays, and its memory.

The goal (issue 11): 1,000,000 synthetic requests in under 10 s on the development machine,
with memory that stays flat in summary mode. Each case runs in a fresh subprocess of this
interpreter (so one case's garbage and caches do not touch the next) and reports the wall
time of ``simulate`` alone and the process's peak resident memory (``ru_maxrss``). The
memory rows compare 100,000 with 1,000,000 calls: flat means the two peaks are close,
while ``record=True`` (every call kept) grows with the trace.

``--profile CASE`` prints the functions where the time goes (cProfile), to see which
limiter verb is hot. ``--calls N`` changes the size of the timed cases.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap

CASES: dict[str, tuple[str, str]] = {
    # name: (the limit and options, what it is)
    "wait": ('"900/s"', "shaping: reserve(), every call waits its turn"),
    "timeout": ('"900/s", timeout=1.0', "shaping with a timeout: reserve(timeout=1)"),
    "raise": ('"900/s", mode="raise"', "policing: try_acquire()"),
    "per-key": ('"1/s", per_key=True, keys=1000', "1,000 keys, PerUserLimiter.reserve()"),
    "llm": (
        "requests_per_minute=54_000, tokens_per_minute=5_000_000, amount=(50, 150)",
        "LLMLimiter.reserve(), RPM + TPM",
    ),
}

CHILD = textwrap.dedent(
    """
    import json, resource, sys, time
    from limitor import simulate
    from limitor.simulation import Pattern
    calls, record = int(sys.argv[1]), sys.argv[2] == "1"
    options = dict({options})
    keys = options.pop("keys", 0)
    amount = options.pop("amount", 1.0)
    pattern = Pattern("poisson", rate=1000, duration=calls / 1000, keys=keys, amount=amount,
                      seed=1)
    start = time.perf_counter()
    result = simulate(pattern, {limit}record=record, **options)
    took = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({{"calls": result.calls, "seconds": took, "peak_kib": peak_kib,
                       "admitted": result.admitted, "rejected": result.rejected}}))
    """
)


def _split(spec: str) -> tuple[str, str]:
    """The positional limit (a rate string) and the keyword options of a case."""
    if spec.startswith('"'):
        limit, _, rest = spec.partition(",")
        return f"{limit}, ", f"dict({rest})" if rest.strip() else "{}"
    return "", f"dict({spec})"


def run_case(name: str, calls: int, *, record: bool = False) -> dict[str, float]:
    limit, options = _split(CASES[name][0])
    code = CHILD.format(limit=limit, options=options)
    result = subprocess.run(
        [sys.executable, "-c", code, str(calls), "1" if record else "0"],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if result.returncode != 0:
        raise SystemExit(f"case {name} failed:\n{result.stderr}")
    data: dict[str, float] = json.loads(result.stdout)
    return data


def profile(name: str, calls: int) -> None:
    import cProfile
    import pstats

    from limitor import simulate
    from limitor.simulation import Pattern

    limit, options = _split(CASES[name][0])
    namespace: dict[str, object] = {}
    exec(f"kwargs = {options}", namespace)  # the case's options, as written above
    kwargs = dict(namespace["kwargs"])  # type: ignore[call-overload]
    keys = kwargs.pop("keys", 0)
    amount = kwargs.pop("amount", 1.0)
    pattern = Pattern("poisson", rate=1000, duration=calls / 1000, keys=keys, amount=amount)
    args = (eval(limit.rstrip(", ")),) if limit else ()
    profiler = cProfile.Profile()
    profiler.enable()
    simulate(pattern, *args, **kwargs)
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(14)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.simulate", description=__doc__)
    parser.add_argument("--calls", type=int, default=1_000_000, help="calls per timed case")
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES))
    parser.add_argument("--profile", choices=sorted(CASES), help="cProfile one case instead")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory rows")
    args = parser.parse_args(argv)
    if args.profile:
        profile(args.profile, args.calls)
        return 0
    print(f"limitor.simulate, {args.calls:,} Poisson arrivals at 1000/s (goal: under 10 s)")
    print(f"{'case':<9} {'calls':>10} {'seconds':>8} {'us/call':>8} {'peak MiB':>9}  what")
    for name in args.cases:
        row = run_case(name, args.calls)
        print(
            f"{name:<9} {int(row['calls']):>10,} {row['seconds']:>8.2f} "
            f"{row['seconds'] / row['calls'] * 1e6:>8.2f} {row['peak_kib'] / 1024:>9.1f}  "
            f"{CASES[name][1]}"
        )
    if not args.no_memory:
        print("\nmemory (peak resident, whole process): summary mode against record=True")
        for record in (False, True):
            small = run_case("timeout", args.calls // 10, record=record)
            large = run_case("timeout", args.calls, record=record)
            print(
                f"  {'record=True ' if record else 'summary    '} "
                f"{int(small['calls']):>9,} calls {small['peak_kib'] / 1024:7.1f} MiB   "
                f"{int(large['calls']):>9,} calls {large['peak_kib'] / 1024:7.1f} MiB   "
                f"growth {(large['peak_kib'] - small['peak_kib']) / 1024:+.1f} MiB"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
