"""2. Shaping accuracy: a limit of 50/s with bursts of 5, and 200 requests back to back.

One caller makes 200 requests in a row through each limiter, blocking (or awaiting) as
the library lets it. Reported: the steady rate after the initial burst (ideal: the
configured 50/s; the least-squares slope of admissions over time after the first 5, so
that the clumps of window limiters average out) and the most requests admitted in any
closed 1-second window (at most rate + burst = 55). Libraries that cannot express
"50/s, burst 5" are configured as closely as they allow (the note says how).

All limiters of one library run at once, sync ones in threads and async ones as tasks of
one event loop (the coordinator also runs the libraries' workers at once): they sleep
almost all the time, and this keeps the section short. A run that has not finished after
8 s stops there.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from benchmarks.libraries.base import Shaper, Unavailable
from benchmarks.measure import max_in_window
from benchmarks.sections.common import (
    cases_of,
    error_record,
    event_loop,
    record,
    run_in_loop,
    unavailable_record,
)

SECTION = "shaping"
RATE = 50.0
BURST = 5.0
REQUESTS = 200
CAP = 8.0


def _sync_run(acquire: Any, out: list[Any]) -> None:
    deadline = time.perf_counter() + CAP
    times: list[float] = []
    try:
        for _ in range(REQUESTS):
            if time.perf_counter() > deadline:
                break
            acquire(1)
            times.append(time.perf_counter())
    except Exception as error:  # reported as the case's error row
        out.append(error)
        return
    out.append(times)


async def _async_run(acquire: Any, out: list[Any]) -> None:
    deadline = time.perf_counter() + CAP
    times: list[float] = []
    try:
        for _ in range(REQUESTS):
            if time.perf_counter() > deadline:
                break
            await acquire(1)
            times.append(time.perf_counter())
    except Exception as error:
        out.append(error)
        return
    out.append(times)


def steady_rate(times: list[float]) -> float:
    """Admissions per second after the first ``BURST``: the least-squares slope of the
    admission count over time, so the clumps of window limiters average out."""
    points = times[int(BURST) :]
    if len(points) < 3:
        return float("nan")
    mean_t = sum(points) / len(points)
    mean_i = (len(points) - 1) / 2
    var = sum((t - mean_t) ** 2 for t in points)
    if var == 0:
        return float("nan")
    cov = sum((t - mean_t) * (i - mean_i) for i, t in enumerate(points))
    return cov / var


def _one_repeat(cases: list[Shaper], results: dict[int, list[Any]]) -> None:
    import asyncio

    threads = []
    for index, case in enumerate(cases):
        if case.is_async:
            continue
        try:
            acquire = case.make(RATE, BURST)
        except Exception as error:
            results[index].append(error)
            continue
        thread = threading.Thread(target=_sync_run, args=(acquire, results[index]), daemon=True)
        threads.append(thread)
    coroutines = []
    for index, case in enumerate(cases):
        if not case.is_async:
            continue
        try:
            acquire = run_in_loop(lambda case=case: case.make(RATE, BURST))
        except Exception as error:
            results[index].append(error)
            continue
        coroutines.append(_async_run(acquire, results[index]))
    for thread in threads:
        thread.start()

    async def gather() -> None:
        await asyncio.gather(*coroutines)

    event_loop().run_until_complete(gather())
    for thread in threads:
        thread.join(CAP + 30)


def run(library: Any, spec: dict[str, Any]) -> list[dict[str, Any]]:
    repeats = int(spec["realtime_repeats"])
    name = library.LIBRARY
    records: list[dict[str, Any]] = []
    cases: list[Shaper] = []
    for case in cases_of(library, "shapers"):
        if isinstance(case, Unavailable):
            records.append(unavailable_record(SECTION, "steady rate", name, case))
        else:
            assert isinstance(case, Shaper)
            cases.append(case)
    results: dict[int, list[Any]] = {index: [] for index in range(len(cases))}
    for _ in range(repeats):
        _one_repeat(cases, results)
    for index, case in enumerate(cases):
        caller = "async" if case.is_async else "sync"
        rate_measure = f"steady rate, {caller} caller"
        window_measure = f"most in any 1 s, {caller} caller"
        errors = [r for r in results[index] if isinstance(r, BaseException)]
        if errors:
            records.append(error_record(SECTION, rate_measure, name, case, errors[0]))
            continue
        runs: list[list[float]] = results[index]
        rates = [steady_rate(times) for times in runs]
        peaks = [max_in_window(times, 1.0) for times in runs]
        notes = []
        if case.config is not None:
            notes.append(case.config(RATE, BURST))
        short = [len(times) for times in runs if len(times) < REQUESTS]
        if short:
            notes.append(f"stopped after {CAP:g} s at {min(short)} of {REQUESTS} requests")
        note = "; ".join(notes)
        records.append(
            record(
                SECTION,
                rate_measure,
                name,
                case,
                rates,
                "/s",
                [r / RATE for r in rates],
                note=note,
            )
        )
        records.append(
            record(
                SECTION,
                window_measure,
                name,
                case,
                peaks,
                "calls",
                [p / (RATE + BURST) for p in peaks],
                note=note,
            )
        )
    return records
