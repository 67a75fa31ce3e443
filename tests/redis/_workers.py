"""Functions run in child processes by the multi-process tests (importable by spawn)."""

from __future__ import annotations

import random
import time
from typing import Any

from limitor.backends.base import LimitSpec, Part
from limitor.clock import MONOTONIC


def police(
    url: str,
    name: str,
    parts: list[tuple[float, float]],
    start_at: float,
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
