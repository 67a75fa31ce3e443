"""6. A total over per-key limits: the cost of a decision, and fair waiting against FIFO.

limitor only (no peer has a total over per-key limits, nor fair shares of one).

* Cost: one ``try_acquire(key)`` on a ``PerUserLimiter`` that never binds, with a total
  and without one, in memory and on Redis (when the coordinator started a private
  ``redis-server``). Both are timed in each repeat, one right after the other; the
  ratio is with / without (the price of deciding the key and the total at once). In
  memory also the store's ``reserve`` alone: the limiter admits a plain key through a
  fast path that a key under a total does not take, so the two rows separate the
  decision's own cost from the path around it.
* Fair against FIFO: on trio's virtual clock (``MockClock``: deterministic and instant),
  a heavy key queues 300 calls at t=0 under a total of 10/s (burst 1; each key's own
  limit 100/s never binds), and a light key asks once every 0.5 s from t=1 to t=21 (40
  calls). Reported is the light key's p99 wait, with ``fair=True`` and without (FIFO);
  x ref = ratio to the light key's ideal wait under fair shares, one unit over its half
  of the total (1 / 5 = 0.2 s).
"""

from __future__ import annotations

import uuid
from typing import Any

from benchmarks.libraries.base import Case
from benchmarks.measure import calibrate, time_sync
from benchmarks.sections.common import error_record, record

SECTION = "total"
HUGE = "1000000/s"  # a limit that never binds at these call rates (Redis: 4e6/s at most)
COST = "decision with a total, {}"
P99 = "light key p99 wait, {}"
HEAVY_CALLS = 300
TOTAL_RATE = 10.0
LIGHT_EVERY = 0.5
LIGHT_CALLS = 40
IDEAL = 1 / (TOTAL_RATE / 2)


def _cost(
    make: Any, repeats: int, target: float, store: bool = False
) -> tuple[list[float], list[float]]:
    """Microseconds per decision with a total, and its ratio to the same without one.

    ``store``: the store's ``reserve`` itself (the decision, without the limiter around it).
    """
    with_total = make(True)
    without = make(False)
    stmt = "decide(key, (1.0,), 0.0)" if store else "decide(key)"
    decide_total = with_total.store.reserve if store else with_total.try_acquire
    decide_plain = without.store.reserve if store else without.try_acquire
    for limiter in (with_total, without):
        limiter.try_acquire("k")  # connected, states made
    n = calibrate(lambda n: time_sync(stmt, {"decide": decide_total, "key": "k"}, n), target)
    samples: list[float] = []
    ratios: list[float] = []
    for _ in range(repeats):
        plain = time_sync(stmt, {"decide": decide_plain, "key": "k"}, n) / n
        total = time_sync(stmt, {"decide": decide_total, "key": "k"}, n) / n
        samples.append(total * 1e6)
        ratios.append(total / plain)
    return samples, ratios


def _memory_limiter(total: bool) -> Any:
    from limitor import PerUserLimiter

    return PerUserLimiter(HUGE, total=HUGE if total else None)


def _redis_maker(url: str) -> Any:
    from limitor import PerUserLimiter
    from limitor.backends.redis import RedisBackend

    backend = RedisBackend.from_url(url)

    def make(total: bool) -> Any:
        name = f"bench-total-{uuid.uuid4().hex}"
        return PerUserLimiter(HUGE, total=HUGE if total else None, backend=backend, name=name)

    return make


def light_waits(fair: bool) -> list[float]:
    """The light key's waits (virtual seconds) behind a heavy key's backlog."""
    import anyio
    import trio.testing

    from limitor import PerUserLimiter
    from limitor.clock import AnyioClock

    async def main() -> list[float]:
        limiter = PerUserLimiter(
            "100/s", total=f"{TOTAL_RATE:g}/s", total_burst=1, fair=fair, clock=AnyioClock()
        )
        waits: list[float] = []

        async def light() -> None:
            asked = anyio.current_time()
            await limiter.acquire_async("light")
            waits.append(anyio.current_time() - asked)

        async with anyio.create_task_group() as group:
            for _ in range(HEAVY_CALLS):
                group.start_soon(limiter.acquire_async, "heavy")
            await anyio.sleep(1.0)
            async with anyio.create_task_group() as lights:
                for _ in range(LIGHT_CALLS):
                    lights.start_soon(light)
                    await anyio.sleep(LIGHT_EVERY)
            group.cancel_scope.cancel()  # the heavy backlog's rest: not measured
        return waits

    clock = trio.testing.MockClock(autojump_threshold=0)
    result: list[float] = anyio.run(main, backend="trio", backend_options={"clock": clock})
    return result


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def run(library: Any, spec: dict[str, Any]) -> list[dict[str, Any]]:
    if library.LIBRARY != "limitor":
        return []  # no peer has a total over per-key limits
    repeats = int(spec["repeats"])
    target = float(spec["target"])
    records: list[dict[str, Any]] = []
    makers: list[tuple[str, Any, bool]] = [
        ("memory", _memory_limiter, False),
        ("memory, the store's reserve", _memory_limiter, True),
    ]
    url = spec.get("redis_url")
    if url:
        makers.append(("Redis", _redis_maker(url), False))
    for where, make, store in makers:
        measure = COST.format(where)
        case = Case(measure, "leaky bucket", note="x ref = ratio to the same without a total")
        try:
            samples, ratios = _cost(make, repeats, target, store)
        except Exception as error:
            records.append(error_record(SECTION, measure, library.LIBRARY, case, error))
        else:
            records.append(record(SECTION, measure, library.LIBRARY, case, samples, "us", ratios))
    for fair in (True, False):
        measure = P99.format("fair" if fair else "FIFO")
        case = Case(measure, "leaky bucket", note="trio MockClock, virtual seconds")
        try:
            waits = light_waits(fair)
        except Exception as error:
            records.append(error_record(SECTION, measure, library.LIBRARY, case, error))
            continue
        value = p99(waits)
        note = f"{len(waits)} light calls; max {max(waits):.3g} s"
        records.append(
            record(SECTION, measure, library.LIBRARY, case, [value], "s", [value / IDEAL], note)
        )
    return records
