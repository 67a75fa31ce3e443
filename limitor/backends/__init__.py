"""Backends: where limits keep their state and make their decisions.

* :mod:`limitor.backends.memory` (the default): this process's memory; nothing to start.
* :mod:`limitor.backends.redis`: a Redis, Valkey or Redis Cluster server shared by many
  processes and hosts (the ``limitor[redis]`` extra).

The contract every backend implements is in :mod:`limitor.backends.base`.
"""

from __future__ import annotations

from limitor.backends.base import (
    ALL_KEYS,
    Backend,
    Grant,
    LimitSpec,
    Part,
    PartStatus,
    Store,
    StoreCounts,
    Ticket,
)

__all__ = (
    "ALL_KEYS",
    "Backend",
    "Grant",
    "LimitSpec",
    "Part",
    "PartStatus",
    "Store",
    "StoreCounts",
    "Ticket",
)
