"""The kinds of case an adapter module hands to the sections."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = (
    "BARE_ASYNC",
    "BARE_SYNC",
    "Case",
    "Keyed",
    "RedisCase",
    "Shaper",
    "Timed",
    "Unavailable",
    "aidentity",
    "bare_namespace",
    "closure_namespace",
    "decorator_timings",
    "identity",
)

# Measures of the overhead section, in table order.
SYNC_ACQUIRE = "sync acquire"
SYNC_TRY = "sync try_acquire (policing)"
ASYNC_ACQUIRE = "async acquire"
SYNC_DECORATOR = "sync decorator - bare call"
SYNC_DECORATOR_VS_CLOSURE = "sync decorator - bare call, x ref = closure decorator - bare"
ASYNC_DECORATOR = "async decorator - bare call"
PER_KEY_DECORATOR = "per-key decorator - bare call"
LLM_CALL = "LLM call (requests + tokens, reconciled) - bare call"

BARE_SYNC = "function(1)"
BARE_ASYNC = "await function(1)"


def _bare(x: int, *, user_id: object = None) -> int:
    return x


async def _abare(x: int, *, user_id: object = None) -> int:
    return x


def identity(x: int) -> int:
    """A function to decorate: it does nothing."""
    return x


async def aidentity(x: int) -> int:
    """An async function to decorate: it does nothing."""
    return x


def bare_namespace(is_async: bool) -> dict[str, Any]:
    """The undecorated function that decorated calls are compared with."""
    return {"function": _abare if is_async else _bare}


def closure_namespace() -> dict[str, Any]:
    """The function decorated by hand: a plain closure around the floor bucket.

    The reference for a decorator's own cost: what ``bucket.acquire(); return f(...)``
    written as a closure costs over the bare call.
    """
    from benchmarks.floor import FloorBucket

    bucket = FloorBucket(1e12, 1e12)
    acquire = bucket.acquire

    def closure(*args: Any, **kwargs: Any) -> Any:
        acquire()
        return _bare(*args, **kwargs)

    return {"function": closure}


@dataclass
class Case:
    """What every case has: the measure it belongs to and the algorithm it runs."""

    measure: str
    algorithm: str
    note: str = ""


@dataclass
class Unavailable(Case):
    """A row the library cannot fill, with the reason (shown instead of a number)."""

    status: str = "n/a"


@dataclass
class Timed(Case):
    """A statement timed in a loop; ``setup()`` returns its names (fresh each repeat).

    With ``bare``, the figure is the statement's time minus that of ``bare`` (the same
    call without the rate limiter), timed in the same repeat. With ``reference_setup``
    too, the ratio is to the ``bare`` statement run on its names (minus the bare call),
    timed in the same repeat, instead of to the floor.
    """

    stmt: str = ""
    setup: Callable[[], dict[str, Any]] = dict
    is_async: bool = False
    bare: str | None = None
    bare_setup: Callable[[], dict[str, Any]] | None = None
    reference_setup: Callable[[], dict[str, Any]] | None = None


@dataclass
class Shaper(Case):
    """``make(rate, burst)`` returns ``acquire(amount)``: blocks (or awaits) until admitted.

    ``config(rate, burst)`` describes how the limit was expressed in the library, when it
    cannot say "rate r, burst b" directly.
    """

    make: Callable[[float, float], Callable[[int], Any]] = field(default=lambda r, b: print)
    is_async: bool = False
    config: Callable[[float, float], str] | None = None


@dataclass
class Keyed(Case):
    """``make(rate, burst)`` returns ``hit(key)``: one admission for ``key`` (async if set)."""

    make: Callable[[float, float], Callable[[str], Any]] = field(default=lambda r, b: print)
    is_async: bool = False


@dataclass
class RedisCase(Case):
    """``make(url, rate, burst)`` returns ``decide(key) -> bool`` (policing, never waits).

    ``config(rate, burst)`` describes how the limit was expressed, as for :class:`Shaper`.
    """

    make: Callable[[str, float, float], Callable[[str], bool]] = field(default=lambda u, r, b: bool)
    config: Callable[[float, float], str] | None = None
    make_async: Callable[[str, float, float], Callable[[str], Awaitable[bool]]] | None = None
    """Like ``make`` for asyncio callers (``await decide(key)``); None: no async row."""


def decorator_timings(
    algorithm: str,
    sync_setup: Callable[[], dict[str, Any]],
    async_setup: Callable[[], dict[str, Any]],
    *,
    sync_note: str,
    async_note: str,
) -> list[Case]:
    """A library's two decorator timings: decorated minus bare call, sync and async."""
    return [
        Timed(
            SYNC_DECORATOR,
            algorithm,
            stmt=BARE_SYNC,
            setup=sync_setup,
            bare=BARE_SYNC,
            bare_setup=lambda: bare_namespace(False),
            note=sync_note,
        ),
        Timed(
            ASYNC_DECORATOR,
            algorithm,
            stmt=BARE_ASYNC,
            setup=async_setup,
            is_async=True,
            bare=BARE_ASYNC,
            bare_setup=lambda: bare_namespace(True),
            note=async_note,
        ),
    ]
