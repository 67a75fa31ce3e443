"""The embedded backend (the default): limits in this process's memory, nothing to start.

A :class:`MemoryStore` keeps one engine state per key (in one slot, or for per-user
limits in a ``cachetools`` LRU cache) and decides under one short
``threading.Lock``, reading the limiter's clock once per decision. Times are kept relative
to the moment the store was made, so a clock that reads like ``time.time()`` (1.7e9) keeps
the same precision as one that starts at zero.

Giving back works on the schedule line of :mod:`limitor.backends.base`, with the pure
arithmetic of :mod:`limitor.engines.schedule`: a grant's ticket holds the pieces it
occupies, giving back frees exactly those, and later requests are admitted in the free
pieces at the earliest time the free line of one burst window holds them. The free pieces
before a part's end (*holes*) and a hold live in a small object hung on the state only
while there are any (``state.extra``), so the common case costs nothing and sees no
pieces at all: it is each algorithm's own arithmetic; they go with the key.

A per-key state is never forgotten while it is below full (refilling, in debt, holding
reservations or holes): forgetting a full state changes nothing, since a fresh one is the
same. ``max_keys`` bounds memory by dropping the least recently used *full* states; if
none is full, a new key does not grow the cache past ``max_keys``: it is decided by one
*overflow* state that every such key shares, with the limit's own rate and burst (that
admits less, never more), and ``overflows`` counts those decisions. While the overflow
state is still refilling, a key that gets a state of its own starts from a copy of it (it
may have been one of those keys), so moving out of the overflow never hands out a burst.
Long keys are kept as digests (:mod:`limitor.backends._keys`), so a key holds a bounded
number of bytes.
With ``ttl``, a state that is full and has not been used for ``ttl`` seconds is dropped
too: lazily, by a sweep after every so many new keys (O(1) per key on average), so no
per-key timer or heap entry is kept.
The store is fork-safe: a child process gets fresh locks.
"""

from __future__ import annotations

from limitor.backends.base import LimitSpec
from limitor.backends.memory._states import MultiState, StateTable
from limitor.backends.memory._store import MemoryStore
from limitor.backends.memory._total import TotalStore
from limitor.clock import Clock

__all__ = ("MEMORY", "MemoryBackend", "MemoryStore", "MultiState", "StateTable", "TotalStore")


class MemoryBackend:
    """Limits kept in this process's memory (the default backend).

    Every limiter bound to it gets a store of its own; nothing is shared between
    processes (use :mod:`limitor.backends.redis` for that).
    """

    __slots__ = ()

    def bind(self, spec: LimitSpec, clock: Clock) -> MemoryStore:
        """A new in-memory store for ``spec``, deciding on ``clock``."""
        if spec.totals:
            return TotalStore(spec, clock)
        return MemoryStore(spec, clock)

    def __repr__(self) -> str:
        return "MemoryBackend()"


MEMORY = MemoryBackend()
"""The default backend."""
