"""1. Uncontended overhead per call: sync acquire, async acquire, decorated minus bare call.

Every limit is so high that it never binds (1e12 per second), so what is timed is the
decision itself. Each repeat builds fresh objects, times the floor, then the statement
(and, for decorators, the bare call right after); the figure is the median over repeats
of microseconds per call, and of the ratio to the floor (or, for a case with a
reference, to the reference minus the bare call, timed in the same repeat: a decorator
against a hand-written closure decorator).
"""

from __future__ import annotations

from typing import Any

from benchmarks.floor import time_floor
from benchmarks.libraries.base import Timed, Unavailable
from benchmarks.measure import calibrate, time_async, time_sync
from benchmarks.sections.common import (
    cases_of,
    error_record,
    event_loop,
    record,
    run_in_loop,
    unavailable_record,
)

SECTION = "overhead"


def _timer(case: Timed):  # type: ignore[no-untyped-def]
    """``run(stmt, namespace, n) -> seconds`` for the case's kind (sync or async)."""
    if case.is_async:
        loop = event_loop()
        return lambda stmt, namespace, n: time_async(stmt, namespace, n, loop)
    return time_sync


def _setup(case: Timed, setup: Any) -> dict[str, Any]:
    return run_in_loop(setup) if case.is_async else setup()


def measure_case(case: Timed, repeats: int, target: float) -> tuple[list[float], list[float]]:
    """Seconds per call (minus the bare call, if any) and the ratio to the floor, per repeat."""
    timer = _timer(case)
    namespace = _setup(case, case.setup)
    n = calibrate(lambda n: timer(case.stmt, namespace, n), target)
    samples: list[float] = []
    ratios: list[float] = []
    for _ in range(repeats):
        floor = time_floor()
        namespace = _setup(case, case.setup)
        per_call = timer(case.stmt, namespace, n) / n
        reference = floor
        if case.bare is not None and case.bare_setup is not None:
            bare = _setup(case, case.bare_setup)
            bare_call = timer(case.bare, bare, n) / n
            per_call -= bare_call
            if case.reference_setup is not None:
                by_hand = _setup(case, case.reference_setup)
                reference = timer(case.bare, by_hand, n) / n - bare_call
        samples.append(per_call)
        ratios.append(per_call / reference)
    return samples, ratios


def run(library: Any, spec: dict[str, Any]) -> list[dict[str, Any]]:
    repeats = int(spec["repeats"])
    target = float(spec.get("target", 0.05))
    records = []
    name = library.LIBRARY
    for case in cases_of(library, "timed_cases"):
        if isinstance(case, Unavailable):
            records.append(unavailable_record(SECTION, case.measure, name, case))
            continue
        assert isinstance(case, Timed)
        try:
            samples, ratios = measure_case(case, repeats, target)
        except Exception as error:  # a peer's failure is a row, not a crash
            records.append(error_record(SECTION, case.measure, name, case, error))
            continue
        records.append(
            record(SECTION, case.measure, name, case, [s * 1e6 for s in samples], "us", ratios)
        )
    return records
