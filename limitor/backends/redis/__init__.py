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

Giving back (the contract's schedule model, see :mod:`limitor.backends.base`): the latest
span rolls the limit back exactly, then past every hole that ends where it now ends;
another span is kept as a hole (at most 64 per part and key, in ``...:holes``), which
comes back when the spans after it are given back, but is not lent to new callers in the
meantime (the memory backend places new callers in holes). So a crowd of waiters
cancelled in any order leaves the limit exactly as if they had never come, and nothing
is ever over-admitted.
"""

from __future__ import annotations

from limitor.backends.redis._backend import (
    DEFAULT_PREFIX,
    DEFAULT_TIMEOUT,
    RedisBackend,
    RedisStore,
    RedisTotalStore,
)

__all__ = ("DEFAULT_PREFIX", "DEFAULT_TIMEOUT", "RedisBackend", "RedisStore", "RedisTotalStore")
