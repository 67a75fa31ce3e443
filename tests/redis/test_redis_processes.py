"""Several processes share one limit on one server: no window ever holds more than allowed."""

from __future__ import annotations

import multiprocessing
import time
import uuid
from typing import Any

from ._workers import police_into

PROCESSES = 4
SECONDS = 2.0


def most_in_window(events: list[tuple[float, float]], window_us: float) -> float:
    """The most units admitted in any closed window of ``window_us`` microseconds."""
    events = sorted(events)
    best = total = 0.0
    low = 0
    for time_us, units in events:
        total += units
        while events[low][0] < time_us - window_us:
            total -= events[low][1]
            low += 1
        best = max(best, total)
    return best


def run_processes(url: str, parts: list[tuple[float, float]]) -> list[Any]:
    """One process per worker (a pool could hand one process two runs, one too late), all
    starting at the same moment, well after a loaded machine has spawned them."""
    name = f"shared-{uuid.uuid4().hex}"
    start_at = time.time() + 4.0  # spawned children import limitor meanwhile
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [
        context.Process(target=police_into, args=(queue, i, url, name, parts, start_at, SECONDS, i))
        for i in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    try:
        runs = dict(queue.get(timeout=60) for _ in workers)
    finally:
        for worker in workers:
            worker.join(10)
    assert all(worker.exitcode == 0 for worker in workers)
    return [runs[i] for i in range(PROCESSES)]


def assert_bounded(runs: list[Any], part: int, rate: float, burst: float) -> None:
    events = [(at, amount[part]) for run in runs for at, amount in run]
    for window in (0.0, 0.05, 0.25, 0.5, 1.0, 1.5, SECONDS):
        most = most_in_window(events, window * 1e6)
        assert most <= burst + rate * window + 1e-6, (part, window, most)


def test_four_processes_share_20_per_second_burst_20(redis_server: Any) -> None:
    runs = run_processes(redis_server.url, [(20, 20)])
    assert_bounded(runs, 0, 20, 20)
    total = sum(len(run) for run in runs)
    assert total >= 20 + 20 * SECONDS * 0.8  # the limit is used, not wasted
    assert all(len(run) >= 1 for run in runs), [len(run) for run in runs]  # every one a share


def test_four_processes_share_an_llm_limit_of_requests_and_tokens(redis_server: Any) -> None:
    requests, tokens = (10.0, 10.0), (400.0, 400.0)  # per second, burst
    runs = run_processes(redis_server.url, [requests, tokens])
    assert_bounded(runs, 0, *requests)
    assert_bounded(runs, 1, *tokens)
    assert all(len(run) >= 1 for run in runs), [len(run) for run in runs]  # every one a share
