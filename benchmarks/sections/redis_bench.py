"""5. Redis: latency per decision against a bare PING, throughput, and over-admission.

Only run when the coordinator could start a private ``redis-server``.

* Latency: one policing decision on a limit that never binds, in microseconds; the ratio
  is to a bare ``PING`` through redis-py on the same server, timed before each repeat.
  Also for asyncio callers (``redis.asyncio``'s PING), when a case has ``make_async``.
* Throughput: decisions per second with 1 and 8 clients (threads, each with its own
  client) on one key of a limit that never binds, for 0.5 s; the ratio is to PINGs per
  second with as many clients, measured right before; higher is better.
* Over-admission: 4 processes share one key on a limit of 100/s (burst 10) and ask as
  fast as they can for 1.2 s; reported are the admissions against what the limit allows
  (burst + rate x duration) and the most admitted in any 1 s against rate + burst.

limitor's row appears once ``limitor.backends.redis`` exists (see
:func:`benchmarks.libraries.limitor_dev.redis_cases`); until then it says so.
"""

from __future__ import annotations

import importlib
import multiprocessing
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from benchmarks.libraries.base import Case, RedisCase, Unavailable
from benchmarks.measure import calibrate, max_in_window, time_async, time_sync
from benchmarks.sections.common import error_record, event_loop, record, unavailable_record

SECTION = "redis"
HUGE = 10**12
RATE = 100.0
BURST = 10.0
PROCESSES = 4
SECONDS = 1.2
LATENCY = "decision latency"
ASYNC_LATENCY = "decision latency, asyncio"
THROUGHPUT = "decisions per second, {} client{}"
CLIENTS = (1, 8)
THROUGHPUT_SECONDS = 0.5
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


def _async_latency(
    case: RedisCase, url: str, repeats: int, target: float
) -> tuple[list[float], list[float]]:
    import redis.asyncio

    assert case.make_async is not None
    loop = event_loop()
    client = redis.asyncio.Redis.from_url(url)
    loop.run_until_complete(client.ping())
    ping_stmt = "await client.ping()"

    def ping_time(n: int) -> float:
        return time_async(ping_stmt, {"client": client}, n, loop)

    ping_n = calibrate(ping_time, target / 2)
    decide = case.make_async(url, HUGE, HUGE)
    stmt = "await decide(key)"
    key = f"latency-{uuid.uuid4().hex}"
    loop.run_until_complete(decide(key))
    n = calibrate(lambda n: time_async(stmt, {"decide": decide, "key": key}, n, loop), target)
    samples: list[float] = []
    ratios: list[float] = []
    for _ in range(repeats):
        ping = ping_time(ping_n) / ping_n
        key = f"latency-{uuid.uuid4().hex}"
        loop.run_until_complete(decide(key))
        per_call = time_async(stmt, {"decide": decide, "key": key}, n, loop) / n
        samples.append(per_call)
        ratios.append(per_call / ping)
    loop.run_until_complete(client.aclose())
    return samples, ratios


def _per_second(make_call: Callable[[], Callable[[str], Any]], clients: int) -> float:
    """Calls per second of ``clients`` threads, each with its own ``make_call()``."""
    calls = [make_call() for _ in range(clients)]
    key = f"throughput-{uuid.uuid4().hex}"
    for call in calls:
        call(key)  # connected before the clock starts
    counts = [0] * clients
    stop = threading.Event()
    start = threading.Barrier(clients + 1)

    def run(index: int) -> None:
        call = calls[index]
        start.wait()
        done = 0
        while not stop.is_set():
            call(key)
            done += 1
        counts[index] = done

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    time.sleep(THROUGHPUT_SECONDS)
    stop.set()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.perf_counter() - began)


def _throughput(
    case: RedisCase, url: str, clients: int, repeats: int
) -> tuple[list[float], list[float]]:
    import redis

    def make_ping() -> Callable[[str], Any]:
        client = redis.Redis.from_url(url)
        return lambda key: client.ping()

    samples: list[float] = []
    ratios: list[float] = []
    for _ in range(repeats):
        pings = _per_second(make_ping, clients)
        decisions = _per_second(lambda: case.make(url, HUGE, HUGE), clients)
        samples.append(decisions)
        ratios.append(decisions / pings)
    return samples, ratios


def _ping_throughput_rows(url: str, repeats: int) -> list[dict[str, Any]]:
    import redis

    def make_ping() -> Callable[[str], Any]:
        client = redis.Redis.from_url(url)
        return lambda key: client.ping()

    rows = []
    for clients in CLIENTS:
        samples = [_per_second(make_ping, clients) for _ in range(repeats)]
        measure = THROUGHPUT.format(clients, "s" if clients > 1 else "")
        case = Case(measure, "PING", note="redis-py, the reference")
        rows.append(record(SECTION, measure, "redis (bare)", case, samples, "/s", [1.0]))
    return rows


def _ping_async_row(url: str, repeats: int, target: float) -> dict[str, Any]:
    import redis.asyncio

    loop = event_loop()
    client = redis.asyncio.Redis.from_url(url)
    loop.run_until_complete(client.ping())
    stmt = "await client.ping()"
    n = calibrate(lambda n: time_async(stmt, {"client": client}, n, loop), target)
    samples = [time_async(stmt, {"client": client}, n, loop) / n for _ in range(repeats)]
    loop.run_until_complete(client.aclose())
    case = Case(ASYNC_LATENCY, "PING", note="redis.asyncio, the reference")
    return record(
        SECTION, ASYNC_LATENCY, "redis (bare)", case, [s * 1e6 for s in samples], "us", [1.0]
    )


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
        if name != "floor":
            return []
        rows = [_ping_row(url, repeats, target), _ping_async_row(url, repeats, target)]
        return rows + _ping_throughput_rows(url, realtime)
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
            if case.make_async is not None:
                try:
                    samples, ratios = _async_latency(case, url, repeats, target)
                    micros = [s * 1e6 for s in samples]
                    records.append(record(SECTION, ASYNC_LATENCY, name, case, micros, "us", ratios))
                except Exception as error:
                    records.append(error_record(SECTION, ASYNC_LATENCY, name, case, error))
            for clients in CLIENTS:
                measure = THROUGHPUT.format(clients, "s" if clients > 1 else "")
                try:
                    samples, ratios = _throughput(case, url, clients, realtime)
                except Exception as error:
                    records.append(error_record(SECTION, measure, name, case, error))
                    continue
                records.append(record(SECTION, measure, name, case, samples, "/s", ratios))
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
