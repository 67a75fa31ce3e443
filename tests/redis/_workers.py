"""Functions run in child processes by the multi-process tests (importable by spawn)."""

from __future__ import annotations

import random
import time
from typing import Any

from limitor.backends.base import LimitSpec, Part
from limitor.clock import MONOTONIC

Gate = tuple[Any, Any, Any]
"""A start gate: a queue the workers report ready on, an event, and the start time."""


def new_gate(context: Any) -> Gate:
    """A start gate for processes of ``context`` (passed to them as an argument)."""
    return (context.Queue(), context.Event(), context.Value("d", 0.0))


def open_gate(gate: Gate, workers: int, lead: float = 0.25) -> None:
    """Once ``workers`` are ready (spawned, imported, connected), start them all at once,
    ``lead`` seconds from now: a loaded machine may take many seconds to spawn them."""
    ready, go, start = gate
    for _ in range(workers):
        ready.get(timeout=120)
    start.value = time.time() + lead
    go.set()


def wait_for_start(gate: Gate) -> float:
    """Report ready, wait for the gate to open, and return the common start time."""
    ready, go, start = gate
    ready.put(None)
    if not go.wait(120):
        raise RuntimeError("the start gate never opened")
    return float(start.value)


def police(
    url: str,
    name: str,
    parts: list[tuple[float, float]],
    gate: Gate,
    seconds: float,
    seed: int,
) -> list[tuple[float, tuple[float, ...]]]:
    """Ask for ``parts`` as fast as is polite until ``seconds`` have passed.

    Returns each admission's server time (microseconds) and amount.
    """
    from limitor.backends.redis import RedisBackend

    backend = RedisBackend.from_url(url)
    store = backend.bind(LimitSpec(tuple(Part(r, b) for r, b in parts), name=name), MONOTONIC)
    rng = random.Random(seed)
    store.peek(None, tuple(0.0 for _ in parts))  # connected before the start
    start_at = wait_for_start(gate)
    time.sleep(max(start_at - time.time(), 0.0))
    end = start_at + seconds
    admitted: list[tuple[float, tuple[float, ...]]] = []
    while time.time() < end:
        amount = (1.0, *(float(rng.randint(1, int(b) // 4)) for _, b in parts[1:]))
        grant = store.reserve(None, amount, 0.0)
        if grant.admitted:
            assert grant.ticket is not None
            admitted.append((grant.ticket.at, amount))
        else:
            time.sleep(0.002)
    backend.close()
    return admitted


def police_into(queue: Any, index: int, *args: Any) -> None:
    """:func:`police` in a process of its own, its admissions put on ``queue``."""
    queue.put((index, police(*args)))


def llm_calls(
    url: str,
    name: str,
    rate: float,
    burst: float,
    gate: Gate,
    seconds: float,
    threads: int,
    estimate: float,
    used: float,
    call_seconds: float,
) -> list[tuple[float, float]]:
    """Overlapping LLM-like calls from ``threads`` threads until ``seconds`` have passed.

    Each call reserves ``estimate`` tokens, waits its turn, "runs" for ``call_seconds``
    and gives back what it did not use (``estimate - used``), as ``reconcile`` does.
    Returns each call's admission time (server microseconds) and the tokens it used.
    """
    import threading

    from limitor.backends.redis import RedisBackend

    backend = RedisBackend.from_url(url)
    store = backend.bind(LimitSpec((Part(rate, burst, "tokens"),), name=name), MONOTONIC)
    store.peek(None, (0.0,))  # connected before the start
    calls: list[tuple[float, float]] = []
    lock = threading.Lock()
    start_at = wait_for_start(gate)
    end = start_at + seconds

    def run() -> None:
        while time.time() < end:
            grant = store.reserve(None, (estimate,), float("inf"))
            assert grant.ticket is not None
            time.sleep(grant.delay)
            time.sleep(call_seconds)  # the call
            store.give_back(None, (estimate - used,), grant.ticket, cancel=False)
            with lock:
                calls.append((grant.ticket.at, used))

    time.sleep(max(start_at - time.time(), 0.0))
    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    backend.close()
    return calls


def llm_calls_into(queue: Any, index: int, *args: Any) -> None:
    """:func:`llm_calls` in a process of its own, its calls put on ``queue``."""
    queue.put((index, llm_calls(*args)))


def police_total(
    url: str,
    name: str,
    key_rate: float,
    key_burst: float,
    total_rate: float,
    total_burst: float,
    gate: Gate,
    seconds: float,
    seed: int,
) -> list[tuple[float, str]]:
    """Ask for one unit of a random key of three under a total, as fast as is polite.

    Returns each admission's server time (microseconds) and key.
    """
    from limitor.backends.redis import RedisBackend

    backend = RedisBackend.from_url(url)
    spec = LimitSpec(
        (Part(key_rate, key_burst),),
        name=name,
        keyed=True,
        totals=(Part(total_rate, total_burst),),
    )
    store = backend.bind(spec, MONOTONIC)
    rng = random.Random(seed)
    store.peek("a", (0.0,))  # connected before the start
    start_at = wait_for_start(gate)
    time.sleep(max(start_at - time.time(), 0.0))
    end = start_at + seconds
    admitted: list[tuple[float, str]] = []
    while time.time() < end:
        key = rng.choice("abc")
        grant = store.reserve(key, (1.0,), 0.0)
        if grant.admitted:
            assert grant.ticket is not None
            admitted.append((grant.ticket.at, key))
        else:
            time.sleep(0.002)
    backend.close()
    return admitted


def police_total_into(queue: Any, index: int, *args: Any) -> None:
    """:func:`police_total` in a process of its own, its admissions put on ``queue``."""
    queue.put((index, police_total(*args)))
