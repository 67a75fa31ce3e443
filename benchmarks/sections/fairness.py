"""3. Fairness: many callers on one limit, and one large request behind small ones.

* Share per worker: 8 threads (or 50 asyncio tasks) call ``acquire()`` in a loop on one
  limit of 500/s (burst 10) for 1 s; Jain's index of the admissions per worker is 1.0
  when every worker got the same share and 1/n when one got everything.
* Large request: on a limit of 100/s (burst 20), 4 threads (or tasks) keep asking for 1
  unit each; after 0.3 s one caller asks for 20 units. Served in order, it waits for the
  4 small requests already queued and then for its own 20 units: (4 + 20) / 100 = 0.24 s,
  the reference of the ratio. A limiter that lets the small ones overtake it starves it:
  the small callers stop after 1.5 s so that the run ends, and the note says so.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from benchmarks.libraries.base import Shaper, Unavailable
from benchmarks.measure import jain
from benchmarks.sections.common import (
    cases_of,
    error_record,
    event_loop,
    record,
    run_in_loop,
    unavailable_record,
)

SECTION = "fairness"
SHARE_RATE = 500.0
SHARE_BURST = 10.0
SHARE_SECONDS = 1.0
THREADS = 8
TASKS = 50
LARGE_RATE = 100.0
LARGE_BURST = 20.0
LARGE = 20
SMALL_CALLERS = 4
SATURATE = 0.3
STARVE_AFTER = 1.5
JOIN = 30.0


def shares_threads(acquire: Any) -> list[int]:
    """Admissions per thread within the measured second."""
    counts = [0] * THREADS
    start = time.perf_counter() + 0.05
    end = start + SHARE_SECONDS

    def worker(index: int) -> None:
        time.sleep(max(start - time.perf_counter(), 0))
        while True:
            acquire(1)
            if time.perf_counter() > end:
                return
            counts[index] += 1

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(SHARE_SECONDS + JOIN)
    return counts


async def shares_tasks(acquire: Any) -> list[int]:
    """Admissions per task within the measured second."""
    counts = [0] * TASKS
    start = time.perf_counter() + 0.05
    end = start + SHARE_SECONDS

    async def worker(index: int) -> None:
        await asyncio.sleep(max(start - time.perf_counter(), 0))
        while True:
            await acquire(1)
            if time.perf_counter() > end:
                return
            counts[index] += 1

    await asyncio.wait_for(asyncio.gather(*(worker(i) for i in range(TASKS))), SHARE_SECONDS + JOIN)
    return counts


def large_threads(acquire: Any) -> float:
    """Seconds the large request waited behind small callers (threads)."""
    stop = threading.Event()
    stop_at = [float("inf")]

    def small() -> None:
        while not stop.is_set() and time.perf_counter() < stop_at[0]:
            acquire(1)

    threads = [threading.Thread(target=small, daemon=True) for _ in range(SMALL_CALLERS)]
    for thread in threads:
        thread.start()
    time.sleep(SATURATE)
    began = time.perf_counter()
    stop_at[0] = began + STARVE_AFTER
    acquire(LARGE)
    waited = time.perf_counter() - began
    stop.set()
    for thread in threads:
        thread.join(JOIN)
    return waited


async def large_tasks(acquire: Any) -> float:
    """Seconds the large request waited behind small callers (asyncio tasks)."""
    stop_at = [float("inf")]
    done = [False]

    async def small() -> None:
        while not done[0] and time.perf_counter() < stop_at[0]:
            await acquire(1)

    tasks = [asyncio.ensure_future(small()) for _ in range(SMALL_CALLERS)]
    await asyncio.sleep(SATURATE)
    began = time.perf_counter()
    stop_at[0] = began + STARVE_AFTER
    await acquire(LARGE)
    waited = time.perf_counter() - began
    done[0] = True
    await asyncio.wait_for(asyncio.gather(*tasks), JOIN)
    return waited


def _share_run(case: Shaper) -> list[int]:
    if case.is_async:
        acquire = run_in_loop(lambda: case.make(SHARE_RATE, SHARE_BURST))
        return event_loop().run_until_complete(shares_tasks(acquire))
    return shares_threads(case.make(SHARE_RATE, SHARE_BURST))


def _large_run(case: Shaper) -> float:
    if case.is_async:
        acquire = run_in_loop(lambda: case.make(LARGE_RATE, LARGE_BURST))
        return event_loop().run_until_complete(large_tasks(acquire))
    return large_threads(case.make(LARGE_RATE, LARGE_BURST))


def run(library: Any, spec: dict[str, Any]) -> list[dict[str, Any]]:
    repeats = int(spec["realtime_repeats"])
    name = library.LIBRARY
    records: list[dict[str, Any]] = []
    for case in cases_of(library, "shapers"):
        if isinstance(case, Unavailable):
            records.append(unavailable_record(SECTION, "Jain's index", name, case))
            continue
        assert isinstance(case, Shaper)
        who = f"{TASKS} tasks" if case.is_async else f"{THREADS} threads"
        share_measure = f"Jain's index, {who}"
        try:
            runs = [_share_run(case) for _ in range(repeats)]
        except Exception as error:
            records.append(error_record(SECTION, share_measure, name, case, error))
        else:
            indexes = [jain(counts) for counts in runs]
            allowed = SHARE_BURST + SHARE_RATE * SHARE_SECONDS
            admitted = sorted(sum(counts) for counts in runs)[len(runs) // 2]
            notes = [f"admitted {admitted} of {allowed:g} allowed"]
            if case.config is not None:
                notes.insert(0, case.config(SHARE_RATE, SHARE_BURST))
            records.append(
                record(SECTION, share_measure, name, case, indexes, "", indexes, "; ".join(notes))
            )
        who = "tasks" if case.is_async else "threads"
        large_measure = f"large request wait, {who}"
        try:
            waits = [_large_run(case) for _ in range(repeats)]
        except Exception as error:
            records.append(error_record(SECTION, large_measure, name, case, error))
            continue
        ideal = (LARGE + SMALL_CALLERS) / LARGE_RATE
        notes = []
        if case.config is not None:
            notes.append(case.config(LARGE_RATE, LARGE_BURST))
        starved = sum(wait >= STARVE_AFTER for wait in waits)
        if starved:
            notes.append(
                f"starved in {starved} of {len(waits)} runs: admitted only once the small "
                "callers stopped"
            )
        records.append(
            record(
                SECTION,
                large_measure,
                name,
                case,
                waits,
                "s",
                [wait / ideal for wait in waits],
                "; ".join(notes),
                starved=starved,
            )
        )
    return records
