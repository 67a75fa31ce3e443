"""The backend contract: where the state of a limit lives, and who decides.

A *backend* keeps the state of limits somewhere (this process's memory, a Redis server)
and makes decisions on it. A limiter binds its limit to a backend once, with
:meth:`Backend.bind`, and gets a :class:`Store`: the handle through which every decision
for that limit is made. The contract is deliberately narrow, so that each verb can be one
atomic step (one short lock in memory, one Lua script call on Redis):

``reserve``
    one whole decision for one key: every part of the limit at once (one part for a
    bucket; requests and tokens for an LLM call), all or nothing. Admit ``amount`` at the
    earliest time it fits and commit it, unless that is more than ``max_wait`` seconds
    away: then refuse with ``retry_after`` and change nothing.
``give_back``
    return what a grant will not use: a cancelled reservation (``cancel=True``: all of it,
    unless its time has come) or the unused part of one (a refund after reconciling).
``charge``
    consume more without any check (debt: a call used more than it reserved).
``peek``
    the live state for an amount, changing nothing.
``hold``
    admit nothing for a while (a provider's ``retry-after``).
``reset``
    forget a key's state (full again), or every key's.

**Time belongs to the backend** (memory: the limiter's clock; Redis: the server's
``TIME``), so processes and hosts never compare clocks. A :class:`Grant` says how long
the caller must wait *from the moment of the decision*; the caller sleeps on its own
clock. Every verb has an async twin named with an ``a`` prefix (``areserve``,
``agive_back``, ``acharge``, ``apeek``, ``ahold``, ``areset``): async code calls those
and never makes a blocking backend call. A store that does no I/O (``does_io`` False,
memory) serves them without awaiting anything (:class:`SyncStoreAsyncTwins`).

**The schedule.** All four algorithms admit by the same rule (bursts of ``burst``, then
``rate`` units per second), so every part of a limit can be thought of as one line of
time on which each admitted unit occupies ``1 / rate`` seconds: the line's end is the
*theoretical arrival time* (TAT), and the line from the TAT on is free, as is every piece
given back before it. A request of ``n`` units is admitted at the earliest time ``a``
(not before now, nor before a hold ends) at which the free line within
``[a, a + burst / rate)`` holds ``n / rate`` for every part at once, in as many pieces as
it takes, and it occupies the earliest of those pieces. With nothing given back that is
plain GCRA: ``max(TAT, now) + n / rate - burst / rate`` (at once if that is not after
``now``). A grant's :class:`Ticket` records, for each part, the pieces ``(start, end)``
it occupies. Giving back frees exactly those pieces, never snapshots of state:

* a cancel frees all of them, a refund its latest pieces first;
* a freed piece that reaches the TAT moves it back to the piece's start, and then past
  every free piece that now reaches it (a crowd of waiters cancelled in any order rolls
  the limit back exactly as if they had never come);
* any other freed piece stays free for later requests, and standing waiters keep their
  times.

Every unit then sits within one burst after its own admission time, so any window of
``w`` seconds holds at most ``burst + rate * w`` units of actual use. Free line before
now is gone (a full bucket holds no more than its burst); free pieces coalesce, and past
a cap per part the earliest are dropped (that admits less, never more), so memory for
them is bounded and goes with the key. The arithmetic is :mod:`limitor.engines.schedule`.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from limitor.clock import Clock

__all__ = (
    "ALL_KEYS",
    "TOTAL",
    "Backend",
    "Grant",
    "LimitSpec",
    "Part",
    "PartStatus",
    "Store",
    "StoreCounts",
    "SyncStoreAsyncTwins",
    "Ticket",
)


@dataclass(frozen=True, slots=True)
class Part:
    """One limit: ``rate`` units per second, at most ``burst`` units at once."""

    rate: float
    burst: float
    label: str = "units"
    """What the part counts (``"requests"``, ``"tokens"``...), for messages and keys."""

    @property
    def interval(self) -> float:
        """Seconds per unit on the schedule (the GCRA emission interval ``T``)."""
        return 1.0 / self.rate

    @property
    def tolerance(self) -> float:
        """Seconds of burst (the GCRA tolerance ``tau = burst * T``)."""
        return self.burst / self.rate


@dataclass(frozen=True, slots=True)
class LimitSpec:
    """Everything a backend needs to know about a limit to keep and decide it.

    Args:
        parts: the limits a decision checks together (one for a bucket).
        name: the limit's identity in a shared backend (Redis keys are made from it);
            ``None`` for a limit private to this limiter.
        algorithm: the bookkeeping an in-memory store uses (``"leaky_bucket"``,
            ``"token_bucket"``, ``"gcra"``, ``"gcra_leaky_bucket"``); every algorithm
            gives the same schedule, so shared backends may keep one form for all.
        keyed: one state per key (per user); otherwise only the key ``None`` is used.
        max_keys: how many keys' states an in-memory store keeps before it drops full
            ones (least recently used first).
        ttl: keep a key's state at least this long after it was stored (in memory).
        totals: limits shared by every key (a total over per-key limits), one per part
            (the same units as the part of the same index), or ``()``. A decision then
            checks the key's parts and the totals together, all or nothing; a ticket
            holds the key's parts' pieces, then the totals'; a peek reports the key's
            parts, then the totals. The key :data:`TOTAL` names the totals themselves
            (for ``hold``).
    """

    parts: tuple[Part, ...]
    name: str | None = None
    algorithm: str = "leaky_bucket"
    keyed: bool = False
    max_keys: int = 10_000
    ttl: float | None = None
    totals: tuple[Part, ...] = ()


@dataclass(frozen=True, slots=True)
class Ticket:
    """What giving back a grant needs: when it goes and the pieces it occupies.

    Times are on the backend's own scale (memory: seconds since the store was made;
    Redis: integer microseconds since the script's epoch), opaque to the limiter.
    """

    at: float
    """The backend time at which the grant may go."""

    pieces: tuple[tuple[tuple[float, float], ...], ...]
    """For each part, the pieces ``(start, end)`` it occupies on that part's schedule,
    sorted and disjoint; ``()`` for a part not charged (or wholly given back)."""

    delay: float = 0.0
    """The wait the grant was handed (a store's counters take it back on cancel)."""


class Grant:
    """The outcome of :meth:`Store.reserve`: admitted (maybe later), or refused."""

    __slots__ = ("admitted", "delay", "now", "retry_after", "ticket")

    def __init__(
        self,
        admitted: bool,
        delay: float,
        retry_after: float,
        ticket: Ticket | None,
        now: float,
    ) -> None:
        self.admitted = admitted
        """True when the amount was committed (it may go after ``delay``)."""
        self.delay = delay
        """Seconds from the decision until the caller may go (0: at once)."""
        self.retry_after = retry_after
        """When refused: seconds until the amount would be admitted without waiting."""
        self.ticket = ticket
        """What :meth:`Store.give_back` needs (``None`` when refused)."""
        self.now = now
        """The limiter's clock reading the ``delay`` counts from."""

    def __repr__(self) -> str:
        if not self.admitted:
            return f"<Grant refused retry_after={self.retry_after:.6g}>"
        return f"<Grant delay={self.delay:.6g} ticket={self.ticket!r}>"


@dataclass(frozen=True, slots=True)
class PartStatus:
    """One part's live state for an amount (:meth:`Store.peek`)."""

    remaining: float
    """Units that could be admitted right now (never negative)."""
    retry_after: float
    """Seconds until the amount would be admitted without waiting (0: now)."""
    reset_after: float
    """Seconds until the part is full again if nothing else is admitted."""


@dataclass(frozen=True, slots=True)
class StoreCounts:
    """What a store has decided in this process since it was made or reset."""

    admitted: int = 0
    waited: int = 0
    total_wait: float = 0.0
    rejected: int = 0
    cancelled: int = 0
    users: int = 0
    evictions: int = 0
    overflows: int = 0


ALL_KEYS: object = type("AllKeys", (), {"__repr__": lambda self: "ALL_KEYS"})()
"""``reset(ALL_KEYS)`` forgets every key of the limit."""

TOTAL: object = type("Total", (), {"__repr__": lambda self: "TOTAL"})()
"""``hold(TOTAL, seconds)`` holds a limit's totals (every key); ``reset(TOTAL)`` forgets them."""

Amount = tuple[float, ...]
"""Units per part, in the order of :attr:`LimitSpec.parts`."""


@runtime_checkable
class Store(Protocol):
    """One limit bound to a backend: every decision for it goes through these verbs.

    Keys are ``None`` (the shared state) or any hashable (a user). Amounts are tuples
    with one number per part; callers have validated them (finite, at least zero, no
    part above its burst). Each verb is atomic for its key.
    """

    @property
    def does_io(self) -> bool:
        """True when the verbs do I/O: async callers then use the ``a``-prefixed twins."""
        ...

    @property
    def spec(self) -> LimitSpec:
        """The limit this store decides."""
        ...

    def reserve(self, key: Hashable, amount: Amount, max_wait: float) -> Grant:
        """Admit ``amount`` at the earliest time it fits, or refuse beyond ``max_wait``.

        A grant may go ``delay`` seconds after the decision; ``delay`` may exceed
        ``max_wait`` by float rounding only (a wait of exactly the timeout is admitted).
        """
        ...

    def give_back(
        self, key: Hashable, amount: Amount, ticket: Ticket | None, *, cancel: bool
    ) -> tuple[float, Ticket | None]:
        """Return ``amount`` (at most what ``ticket`` holds) to the limit.

        With ``cancel=True`` nothing is returned once the ticket's time has come (its
        caller may have gone). Without a ticket (``None``, a refund only) the units come
        off the end of the schedule, never below now: exact when the refunded grant is
        the latest. Returns the units given back (summed over the parts) and the ticket
        for what the grant still holds.
        """
        ...

    def charge(self, key: Hashable, amount: Amount, ticket: Ticket | None = None) -> None:
        """Consume ``amount`` now without any check (debt that delays later callers).

        With a grant's ``ticket`` (an overrun learned before the grant's time has come)
        the debt goes no earlier than the grant's time: the units are used when the call
        runs. The limiter passes a ticket only then, so a store written before this
        parameter existed keeps working for every other debt.
        """
        ...

    def peek(self, key: Hashable, amount: Amount) -> tuple[PartStatus, ...]:
        """Each part's live state for ``amount``; changes nothing."""
        ...

    def hold(self, key: Hashable, seconds: float) -> None:
        """Admit nothing for ``key`` during the next ``seconds``.

        Grants already made keep their times; after the hold every part is as it would
        have been without it. A longer hold replaces a shorter one, never the reverse.
        """
        ...

    def reset(self, key: object) -> None:
        """Forget ``key``'s state (it is full again); :data:`ALL_KEYS` forgets every key."""
        ...

    def counts(self) -> StoreCounts:
        """What this store decided in this process (for ``stats``)."""
        ...

    # -- the async half: the same verbs for async callers, never blocking an event loop.
    # A cancelled caller leaves at once; what the store committed for it is given back.

    async def areserve(self, key: Hashable, amount: Amount, max_wait: float) -> Grant:
        """:meth:`reserve` for async callers; a cancelled caller's grant is given back."""
        ...

    async def agive_back(
        self, key: Hashable, amount: Amount, ticket: Ticket | None, *, cancel: bool
    ) -> tuple[float, Ticket | None]:
        """:meth:`give_back` for async callers."""
        ...

    async def acharge(self, key: Hashable, amount: Amount, ticket: Ticket | None = None) -> None:
        """:meth:`charge` for async callers."""
        ...

    async def apeek(self, key: Hashable, amount: Amount) -> tuple[PartStatus, ...]:
        """:meth:`peek` for async callers."""
        ...

    async def ahold(self, key: Hashable, seconds: float) -> None:
        """:meth:`hold` for async callers."""
        ...

    async def areset(self, key: object) -> None:
        """:meth:`reset` for async callers."""
        ...


class SyncStoreAsyncTwins:
    """The async half of the contract for a store that does no I/O (``does_io`` False).

    Each twin runs the sync verb and returns: the verb takes one short lock and never
    waits, so an event loop is not blocked and there is no await point to cancel at.
    """

    __slots__ = ()

    async def areserve(self: Store, key: Hashable, amount: Amount, max_wait: float) -> Grant:
        """:meth:`Store.reserve`, for async callers."""
        return self.reserve(key, amount, max_wait)

    async def agive_back(
        self: Store, key: Hashable, amount: Amount, ticket: Ticket | None, *, cancel: bool
    ) -> tuple[float, Ticket | None]:
        """:meth:`Store.give_back`, for async callers."""
        return self.give_back(key, amount, ticket, cancel=cancel)

    async def acharge(
        self: Store, key: Hashable, amount: Amount, ticket: Ticket | None = None
    ) -> None:
        """:meth:`Store.charge`, for async callers."""
        if ticket is None:
            self.charge(key, amount)
        else:
            self.charge(key, amount, ticket)

    async def apeek(self: Store, key: Hashable, amount: Amount) -> tuple[PartStatus, ...]:
        """:meth:`Store.peek`, for async callers."""
        return self.peek(key, amount)

    async def ahold(self: Store, key: Hashable, seconds: float) -> None:
        """:meth:`Store.hold`, for async callers."""
        self.hold(key, seconds)

    async def areset(self: Store, key: object) -> None:
        """:meth:`Store.reset`, for async callers."""
        self.reset(key)


class Backend(Protocol):
    """Where limits live: binds a :class:`LimitSpec` to a :class:`Store`."""

    def bind(self, spec: LimitSpec, clock: Clock) -> Store:
        """A store for ``spec``; ``clock`` is the limiter's (an in-memory store decides on it)."""
        ...
