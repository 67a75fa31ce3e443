"""User keys as the backends keep them: bounded in size, and never confused with each other.

A key is whatever a caller passes (a user id, an IP address, an API key, a tuple of those).
Two rules hold for every backend:

* **Bounded bytes.** A ``str`` or ``bytes`` key longer than :data:`MAX_KEY_BYTES` (in UTF-8
  for a ``str``), and a tuple holding one, is replaced by a :class:`HashedKey`: a 16-byte
  BLAKE2b digest of its type and content. A rotating 1 KiB ``X-API-Key`` costs the same
  memory as a short one; two distinct long keys share a bucket only if their digests
  collide (about one chance in 2**64 among 2**32 keys).
* **No collisions.** In memory, keys are Python values: ``("a", 1)`` and its repr string
  are different keys. In Redis, :func:`redis_part` writes a key's type as well as its
  content, and escapes the characters that structure a Redis key name (``%``, ``:``,
  ``{`` and ``}``), so distinct keys (and distinct limit names) never share a Redis key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable
from typing import Any

from limitor.errors import KeyTypeError

__all__ = (
    "MAX_KEY_BYTES",
    "SHORT_STR",
    "HashedKey",
    "bounded_key",
    "redis_escape",
    "redis_part",
    "unhashable",
)

MAX_KEY_BYTES = 64
"""A ``str``/``bytes`` key longer than this (bytes; UTF-8 for a ``str``) is kept as a digest."""

_DIGEST_BYTES = 16

SHORT_STR = MAX_KEY_BYTES // 4
"""A ``str`` of at most this many characters is at most MAX_KEY_BYTES in UTF-8."""


class HashedKey:
    """A long key, kept as a 16-byte BLAKE2b digest of its type and content.

    It equals only another :class:`HashedKey` of the same digest: never a ``bytes`` or
    ``str`` a caller could pass.
    """

    __slots__ = ("digest",)

    def __init__(self, digest: bytes) -> None:
        self.digest = digest

    def __eq__(self, other: object) -> bool:
        return type(other) is HashedKey and other.digest == self.digest

    def __hash__(self) -> int:
        return hash((HashedKey, self.digest))

    def __repr__(self) -> str:
        return f"HashedKey({self.digest.hex()})"


def _digest(kind: bytes, data: bytes) -> HashedKey:
    return HashedKey(hashlib.blake2b(kind + data, digest_size=_DIGEST_BYTES).digest())


def _bound_str(key: str) -> Hashable:
    if len(key) <= SHORT_STR:
        return key
    if len(key) > MAX_KEY_BYTES:
        return _digest(b"s", key.encode("utf-8", "surrogatepass"))
    data = key.encode("utf-8", "surrogatepass")
    return key if len(data) <= MAX_KEY_BYTES else _digest(b"s", data)


def _bound_bytes(key: bytes) -> Hashable:
    return key if len(key) <= MAX_KEY_BYTES else _digest(b"b", bytes(key))


def _bound_tuple(key: tuple[Any, ...]) -> Hashable:
    for item in key:  # the common case (short items) allocates nothing
        kind = type(item)
        if kind is int or (kind is str and len(item) <= SHORT_STR):
            continue
        if kind in _BOUNDERS or isinstance(item, (str, bytes)):
            break
    else:
        return key
    bounded = tuple(bounded_key(item) for item in key)
    return key if all(a is b for a, b in zip(bounded, key, strict=True)) else bounded


_BOUNDERS: dict[type, Any] = {str: _bound_str, bytes: _bound_bytes, tuple: _bound_tuple}


def bounded_key(key: Hashable) -> Hashable:
    """``key`` itself, or a :class:`HashedKey` when it is a long ``str``/``bytes``.

    Tuples are bounded item by item. Other types (ints, enums, ...) are returned as they
    are: their size is the caller's.
    """
    bound = _BOUNDERS.get(type(key))
    if bound is None:
        if isinstance(key, str):
            return _bound_str(key)
        if isinstance(key, bytes):
            return _bound_bytes(key)
        return key
    result: Hashable = bound(key)
    return result


_ESCAPES = str.maketrans({"%": "%25", ":": "%3A", "{": "%7B", "}": "%7D"})


def redis_escape(text: str) -> str:
    """``text`` with ``%``, ``:``, ``{`` and ``}`` percent-escaped (never a tag or separator)."""
    return text.translate(_ESCAPES)


def redis_part(key: Hashable) -> str:
    """A (bounded) user key as it appears in a Redis key name: the same in every process.

    A ``str`` is itself (escaped); every other type starts with ``%`` and a letter no
    escaped ``str`` can start with: ``%i`` an int, ``%x`` bytes (hex), ``%h`` a digest of
    a long key, ``%r`` anything else (its repr, escaped; a tuple's repr never equals a
    ``str`` key since the ``str`` carries no marker).
    """
    key = bounded_key(key)
    if isinstance(key, str):
        return redis_escape(key)
    try:
        hash(key)
    except TypeError:
        raise unhashable(key) from None
    if isinstance(key, int):
        return "%i" + int.__repr__(key)
    if isinstance(key, bytes):
        return "%x" + key.hex()
    if isinstance(key, HashedKey):
        return "%h" + key.digest.hex()
    return "%r" + redis_escape(repr(key))


def unhashable(key: object) -> KeyTypeError:
    """The error for a key that cannot name a bucket."""
    text = repr(key)
    if len(text) > 60:
        text = text[:60] + "..."
    return KeyTypeError(f"a key must be hashable, got {type(key).__name__} {text}")
