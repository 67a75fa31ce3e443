"""4. Per-key limiting: first-hit cost and memory for 100,000 keys.

Each of 100,000 distinct keys (users) makes one request, on a limit of 10/s per key that
never binds. Reported: microseconds per first hit (ratio to the floor's uncontended
acquire, timed before each repeat) and bytes of Python memory per key (``tracemalloc``,
in a separate pass so its slowdown does not touch the timings; ratio to a dict of
minimal floor buckets measured in the same worker). The garbage collector is off while
the hits are timed, as in every timing here.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from typing import Any

from benchmarks.floor import floor_keyed_hit, time_floor
from benchmarks.libraries.base import Keyed, Unavailable
from benchmarks.sections.common import (
    cases_of,
    error_record,
    event_loop,
    record,
    run_in_loop,
    unavailable_record,
)

SECTION = "keys"
RATE = 10.0
BURST = 10.0
KEYS = 100_000

TIME_MEASURE = "first hit per key"
MEMORY_MEASURE = "memory per key"


def _make(case: Keyed) -> Any:
    if case.is_async:
        return run_in_loop(lambda: case.make(RATE, BURST))
    return case.make(RATE, BURST)


def _hit_all(case: Keyed, hit: Any, keys: list[str]) -> float:
    """Seconds for one hit on every key."""
    if case.is_async:

        async def hit_all() -> float:
            began = time.perf_counter()
            for key in keys:
                await hit(key)
            return time.perf_counter() - began

        return float(event_loop().run_until_complete(hit_all()))
    began = time.perf_counter()
    for key in keys:
        hit(key)
    return time.perf_counter() - began


def first_hits(case: Keyed, keys: list[str], repeats: int) -> tuple[list[float], list[float]]:
    """Seconds per first hit, and the ratio to the floor, per repeat (gc off)."""
    samples: list[float] = []
    ratios: list[float] = []
    for _ in range(repeats):
        floor = time_floor()
        hit = _make(case)
        gc.collect()
        gc.disable()
        try:
            per_key = _hit_all(case, hit, keys) / len(keys)
        finally:
            gc.enable()
        del hit
        gc.collect()
        samples.append(per_key)
        ratios.append(per_key / floor)
    return samples, ratios


def memory(case: Keyed, keys: list[str]) -> float:
    """Bytes of Python memory per key, once every key has been hit."""
    gc.collect()
    tracemalloc.start()
    try:
        hit = _make(case)
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        _hit_all(case, hit, keys)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del hit
    gc.collect()
    return (after - before) / len(keys)


def run(library: Any, spec: dict[str, Any]) -> list[dict[str, Any]]:
    repeats = int(spec["keys_repeats"])
    count = int(spec.get("keys", KEYS))
    keys = [f"user-{i}" for i in range(count)]
    name = library.LIBRARY
    cases = cases_of(library, "keyed")
    if not cases:
        return []
    floor_case = Keyed("", "floor", make=floor_keyed_hit)
    floor_bytes = memory(floor_case, keys)
    records: list[dict[str, Any]] = []
    for case in cases:
        if isinstance(case, Unavailable):
            records.append(unavailable_record(SECTION, TIME_MEASURE, name, case))
            records.append(unavailable_record(SECTION, MEMORY_MEASURE, name, case))
            continue
        assert isinstance(case, Keyed)
        try:
            samples, ratios = first_hits(case, keys, repeats)
            used = memory(case, keys)
        except Exception as error:
            records.append(error_record(SECTION, TIME_MEASURE, name, case, error))
            continue
        records.append(
            record(SECTION, TIME_MEASURE, name, case, [s * 1e6 for s in samples], "us", ratios)
        )
        records.append(
            record(SECTION, MEMORY_MEASURE, name, case, [used], "B", [used / floor_bytes])
        )
    return records
