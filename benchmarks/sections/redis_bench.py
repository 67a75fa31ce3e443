"""5. Redis: latency per decision against a bare PING, and over-admission from 4 processes.

Only run when the coordinator could start a private ``redis-server``.

* Latency: one policing decision on a limit that never binds, in microseconds; the ratio
  is to a bare ``PING`` through redis-py on the same server, timed before each repeat.
* Over-admission: 4 processes share one key on a limit of 100/s (burst 10) and ask as
  fast as they can for 1.2 s; reported are the admissions against what the limit allows
  (burst + rate x duration) and the most admitted in any 1 s against rate + burst.

limitor's row appears once ``limitor.backends.redis`` exists (see
:func:`benchmarks.libraries.limitor_dev.redis_cases`); until then it says so.
"""

from __future__ import annotations

import importlib
import multiprocessing
import time
import uuid
from typing import Any

from benchmarks.libraries.base import Case, RedisCase, Unavailable
from benchmarks.measure import calibrate, max_in_window, time_sync
from benchmarks.sections.common import error_record, record, unavailable_record

SECTION = "redis"
HUGE = 10**12
RATE = 100.0
BURST = 10.0
PROCESSES = 4
SECONDS = 1.2
LATENCY = "decision latency"
ADMITTED = "admitted vs allowed, 4 processes"
PEAK = "most in any 1 s, 4 processes"


def _ping_time(client: Any, n: int) -> float:
    return time_sync("client.ping()", {"client": client}, n) / n


def _latency(
    case: RedisCase, url: str, repeats: int, target: float
) -> tuple[list[float], list[float]]:
    import redis

    client = redis.Redis.from_url(url)
    client.ping()
    ping_n = calibrate(lambda n: time_sync("client.ping()", {"client": client}, n), target / 2)
    decide = case.make(url, HUGE, HUGE)
    stmt = "decide(key)"
    key = f"latency-{uuid.uuid4().hex}"
    decide(key)
    n = calibrate(lambda n: time_sync(stmt, {"decide": decide, "key": key}, n), target)
    samples: list[float] = []
    ratios: list[float] = []
    for _ in range(repeats):
        ping = _ping_time(client, ping_n)
        key = f"latency-{uuid.uuid4().hex}"
        decide(key)
        per_call = time_sync(stmt, {"decide": decide, "key": key}, n) / n
        samples.append(per_call)
        ratios.append(per_call / ping)
    client.close()
    return samples, ratios


def hammer(module: str, index: int, url: str, key: str, start_at: float) -> list[float]:
    """In a child process: decide on ``key`` as fast as possible; return admission times."""
    library = importlib.import_module(f"benchmarks.libraries.{module}")
    cases = [case for case in library.redis_cases(url) if isinstance(case, RedisCase)]
    decide = cases[index].make(url, RATE, BURST)
    decide(f"warm-{uuid.uuid4().hex}")
    time.sleep(max(start_at - time.time(), 0))
    end = start_at + SECONDS
    admitted: list[float] = []
    while True:
        ok = decide(key)
        now = time.time()
        if now >= end:
            return admitted
        if ok:
            admitted.append(now)


def _over_admission(
    pool: Any, module: str, index: int, url: str, repeats: int
) -> tuple[list[float], list[float]]:
    totals: list[float] = []
    peaks: list[float] = []
    for _ in range(repeats):
        key = f"shared-{uuid.uuid4().hex}"
        start_at = time.time() + 0.5
        runs = pool.starmap(hammer, [(module, index, url, key, start_at)] * PROCESSES)
        times = [t for run in runs for t in run]
        totals.append(float(len(times)))
        peaks.append(max_in_window(times, 1.0))
    return totals, peaks


def _ping_row(url: str, repeats: int, target: float) -> dict[str, Any]:
    import redis

    client = redis.Redis.from_url(url)
    client.ping()
    n = calibrate(lambda n: time_sync("client.ping()", {"client": client}, n), target)
    samples = [_ping_time(client, n) for _ in range(repeats)]
    client.close()
    case = Case(LATENCY, "PING", note="redis-py, the reference")
    return record(SECTION, LATENCY, "redis (bare)", case, [s * 1e6 for s in samples], "us", [1.0])


def run(library: Any, spec: dict[str, Any]) -> list[dict[str, Any]]:
    url = spec["redis_url"]
    repeats = int(spec["repeats"])
    realtime = int(spec["realtime_repeats"])
    target = 2 * float(spec.get("target", 0.05))  # network round trips vary more
    name = library.LIBRARY
    if not hasattr(library, "redis_cases"):
        return [_ping_row(url, repeats, target)] if name == "floor" else []
    module = library.__name__.rsplit(".", 1)[-1]
    records: list[dict[str, Any]] = []
    cases = library.redis_cases(url)
    allowed = BURST + RATE * SECONDS
    context = multiprocessing.get_context("spawn")
    pool = None
    index = -1
    try:
        for case in cases:
            if isinstance(case, Unavailable):
                for measure in (LATENCY, ADMITTED):
                    records.append(unavailable_record(SECTION, measure, name, case))
                continue
            assert isinstance(case, RedisCase)
            index += 1
            try:
                samples, ratios = _latency(case, url, repeats, target)
            except Exception as error:
                records.append(error_record(SECTION, LATENCY, name, case, error))
                continue
            records.append(
                record(SECTION, LATENCY, name, case, [s * 1e6 for s in samples], "us", ratios)
            )
            if pool is None:
                pool = context.Pool(PROCESSES)
            config = f"{case.config(RATE, BURST)}; " if case.config is not None else ""
            try:
                totals, peaks = _over_admission(pool, module, index, url, realtime)
            except Exception as error:
                records.append(error_record(SECTION, ADMITTED, name, case, error))
                continue
            records.append(
                record(
                    SECTION,
                    ADMITTED,
                    name,
                    case,
                    totals,
                    "calls",
                    [t / allowed for t in totals],
                    note=f"{config}allowed {allowed:g}",
                )
            )
            records.append(
                record(
                    SECTION,
                    PEAK,
                    name,
                    case,
                    peaks,
                    "calls",
                    [p / (RATE + BURST) for p in peaks],
                    note=config.rstrip("; "),
                )
            )
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    return records
