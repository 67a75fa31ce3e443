"""``python -m benchmarks.pieces``: what free pieces on the schedule cost (issue 15).

Two questions, as ratios to the floor (``benchmarks/floor.py``) timed right before every
repeat, medians over the repeats:

* **The uncontended acquire keeps its cost**: ``SyncLeakyBucket.acquire()`` on a limit that
  never binds sees no pieces at all. With ``--compare PATH`` the same is timed with the
  limitor found at ``PATH`` (another checkout, for example ``main``), in child processes
  that alternate with this tree's, so both columns come from the same minutes.
* **A reserve among standing pieces is bounded**: a store (rate 1/s, burst 3) holds ``N``
  free pieces of one unit between standing waiters (``N`` given back: past the cap of
  :data:`limitor.engines.schedule.CAP` per part the earliest are dropped). Timed: a reserve
  that fits in the earliest free piece (binary search: O(log N)), and one of the whole
  burst that fits only at the end (it looks at every piece: O(N), N at most the cap), each
  followed by the cancel that restores the state.

Runs in well under a minute::

    python -m benchmarks.pieces --repeats 7 --compare /work/main
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from typing import Any

from benchmarks.floor import time_floor
from benchmarks.measure import calibrate, time_sync

STANDING = (0, 10, 100, 1000)
"""Free pieces given back before the timed reserves."""


def _acquire_namespace() -> dict[str, Any]:
    from limitor.configs import BucketConfig
    from limitor.leaky_bucket.core import SyncLeakyBucket

    return {"bucket": SyncLeakyBucket(BucketConfig(capacity=1e12, seconds=1, burst=1e12))}


def _pieces_namespace(standing: int, amount: float) -> dict[str, Any]:
    from limitor.backends.base import LimitSpec, Part
    from limitor.backends.memory import MemoryStore
    from limitor.testing import FakeClock

    store = MemoryStore(LimitSpec((Part(1.0, 3.0),)), FakeClock())  # time stands still
    store.reserve(None, (3.0,), 0.0)
    grants = [store.reserve(None, (1.0,), float("inf")) for _ in range(2 * standing)]
    for grant in grants[::2]:  # every other waiter cancelled: pieces between waiters
        store.give_back(None, (1.0,), grant.ticket, cancel=True)
    return {"store": store, "amount": (amount,), "inf": float("inf")}


ROUND_TRIP = "store.give_back(None, amount, store.reserve(None, amount, inf).ticket, cancel=True)"


def _ratio(stmt: str, make: Any, target: float) -> tuple[float, float]:
    namespace = make()
    n = calibrate(lambda n: time_sync(stmt, namespace, n), target)
    floor = time_floor()
    per_call = time_sync(stmt, make(), n) / n
    return per_call * 1e6, per_call / floor


def measure(target: float, pieces: bool) -> dict[str, tuple[float, float]]:
    """One repeat of every row: ``{row: (microseconds, ratio to the floor)}``."""
    rows = {"acquire, uncontended": _ratio("bucket.acquire()", _acquire_namespace, target)}
    if pieces:
        for standing in STANDING:
            for label, amount in (("in the earliest piece", 1.0), ("at the end", 3.0)):
                row = f"reserve + cancel, {standing} given back, {label}"
                rows[row] = _ratio(
                    ROUND_TRIP, lambda s=standing, a=amount: _pieces_namespace(s, a), target
                )
    return rows


def _child(tree: str | None, target: float, pieces: bool) -> dict[str, Any]:
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (tree, os.getcwd()) if p)
    command = [sys.executable, "-m", "benchmarks.pieces", "--child", "--target", str(target)]
    if not pieces:
        command.append("--acquire-only")
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pieces", description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--target", type=float, default=0.05, help="seconds per timing")
    parser.add_argument("--compare", help="another limitor checkout to time acquire against")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--acquire-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.target, not args.acquire_only)))
        return
    samples: dict[str, list[tuple[float, float]]] = {}
    for _ in range(args.repeats):
        for row, value in _child(None, args.target, True).items():
            samples.setdefault(row, []).append(tuple(value))  # type: ignore[arg-type]
        if args.compare:
            other = _child(args.compare, args.target, False)["acquire, uncontended"]
            samples.setdefault(f"acquire, uncontended ({args.compare})", []).append(other)
    print(f"{'row':<58} {'median us':>10} {'x floor':>8}")
    for row, values in samples.items():
        micro = statistics.median(v[0] for v in values)
        ratio = statistics.median(v[1] for v in values)
        print(f"{row:<58} {micro:>10.3f} {ratio:>8.2f}")


if __name__ == "__main__":
    main()
