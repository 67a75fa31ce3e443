"""The Redis backend: one limit shared by every process and host that uses the same server.

Install with ``pip install 'limitor[redis]'``. Each decision is one Lua script call
(EVALSHA, falling back to EVAL when the server has lost its script cache) that reads the
server's ``TIME``, decides and commits atomically, for one limit or every limit of an LLM
call at once. State is one number per limit part (its theoretical arrival time, in
microseconds) in one string per key, ``prefix{name}`` or ``prefix{name:user}``: the hash
tag keeps a decision in one Redis Cluster slot and spreads users over slots. Every key
expires when its bucket is full again. A limit under totals (``LimitSpec.totals``: a
per-user limit with ``total=``) keeps every key in the limit's own tag instead
(``prefix{name}``, ``prefix{name}:u:user``, ``prefix{name}:total``), and one script
decides the key and the totals together (:class:`RedisTotalStore`).

Giving back follows the contract's schedule model (see :mod:`limitor.backends.base`)
with a Lua transliteration of :mod:`limitor.engines.schedule`: a grant's ticket holds the
pieces it occupies, giving back frees exactly those (free pieces live in ``...:holes``,
the same hash slot, at most 256 per part and key), and new callers are admitted in the
free pieces at the earliest time the free line of one burst window holds them, exactly as
the memory backend does. So a crowd of waiters cancelled in any order leaves the limit as
if they had never come, refunds are usable again at once, and nothing is ever
over-admitted.

The package is two rooms: :mod:`~limitor.backends.redis._connection` (clients, URLs,
Cluster, pools, running scripts sync and async, the one error wrapper) and
:mod:`~limitor.backends.redis._store` (a limit's keys, the scripts' arguments and
replies); the scripts are in ``scripts/`` (:mod:`~limitor.backends.redis._scripts`).
"""

from __future__ import annotations

from limitor.backends.redis._connection import DEFAULT_PREFIX, DEFAULT_TIMEOUT, RedisBackend
from limitor.backends.redis._store import RedisStore, RedisTotalStore

__all__ = ("DEFAULT_PREFIX", "DEFAULT_TIMEOUT", "RedisBackend", "RedisStore", "RedisTotalStore")
