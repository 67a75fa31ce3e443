"""The stores: one limit's keys on the server, the scripts' arguments and replies.

:class:`RedisStore` for a limit (one key or one per user); :class:`RedisTotalStore` for
per-key limits under totals.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Sequence
from functools import partial
from typing import TYPE_CHECKING, ClassVar

import anyio
import anyio.lowlevel
import anyio.to_thread

from limitor.backends._keys import redis_escape, redis_part
from limitor.backends.base import (
    ALL_KEYS,
    TOTAL,
    Amount,
    Grant,
    LimitSpec,
    Part,
    PartStatus,
    StoreCounts,
    Ticket,
)
from limitor.backends.redis._scripts import SCRIPTS, Script
from limitor.clock import Clock
from limitor.engines import schedule as sch
from limitor.errors import ConfigError

if TYPE_CHECKING:
    from limitor.backends.redis._connection import RedisBackend, Undo

__all__ = ("RedisStore", "RedisTotalStore")

US = 1e6  # microseconds per second: the scripts' time unit
MIN_INTERVAL = 0.25
"""Microseconds per unit at least (4 million units per second per part, the most a part
kept in Redis admits): tickets' times near 2^46.5 us are 1/64 us apart and two times
within 0.05 us are one time (see scripts/schedule.lua), so a unit must be longer."""
_NO_WAIT_LIMIT = "-1"
_INF = float("inf")
_REFUND, _CANCEL, _REVOKE, _REFUND_AT_END = "0", "1", "2", "3"
_EPOCH = 1_700_000_000  # seconds: the scripts' times are microseconds since then


def _server_now(seconds: bytes, micros: bytes) -> float:
    """The scripts' time from the two tokens they reply with (the same arithmetic as Lua)."""
    if micros == b"-":  # a test's fixed time
        return float(seconds)
    return float((int(seconds) - _EPOCH) * 1_000_000 + int(micros))


def _pieces(
    tokens: list[bytes], index: int, count: int, into: list[tuple[tuple[float, float], ...]]
) -> int:
    """Append the ``count`` pieces ``s e`` at ``tokens[index:]`` to ``into``; the next index."""
    end = index + 2 * count
    values = [float(x) for x in tokens[index:end]]
    into.append(tuple(zip(values[::2], values[1::2], strict=True)))
    return end


class RedisStore:
    """One limit on a Redis server: every :class:`~limitor.backends.base.Store` verb.

    Times in tickets are microseconds on the server's clock (since the scripts' epoch).
    """

    piece_cap: ClassVar[int] = sch.CAP
    """Free pieces kept per part and key at most (past it the earliest are dropped), the
    same cap as the memory store's; read when a store is made."""

    __slots__ = (
        "_backend",
        "_clock",
        "_counts",
        "_head",
        "_intervals",
        "_key_none",
        "_key_user",
        "_lock",
        "_now_us",
        "_spec",
        "name",
    )

    def __init__(self, backend: RedisBackend, spec: LimitSpec, clock: Clock) -> None:
        if not spec.name:
            raise ConfigError(
                "a limit kept in Redis needs a name (name=...), its identity in every process"
            )
        self._backend = backend
        self._spec = spec
        self._clock = clock
        self.name = spec.name
        """The limit's identity in Redis."""
        name = redis_escape(spec.name)
        self._key_none = f"{backend.prefix}{{{name}}}"
        self._key_user = f"{backend.prefix}{{{name}:"
        # At least MIN_INTERVAL: a unit must be many doubles long at the scripts' times
        # (1/64 us apart), or the schedule cannot tell two units apart (admits less above).
        self._intervals = tuple(max(US / part.rate, MIN_INTERVAL) for part in spec.parts)
        self._head = self._head_of(spec.parts)
        self._lock = threading.Lock()
        self._counts = [0, 0, 0.0, 0, 0]  # admitted, waited, total_wait, rejected, cancelled
        self._now_us: float | None = None
        """Tests only: a fixed server time in microseconds instead of ``TIME``."""

    def _head_of(self, parts: Sequence[Part]) -> str:
        """The limit as the scripts read it: lines, intervals and tolerances, the cap.

        The number of lines, each line's interval and tolerance (microseconds), and the
        free pieces kept per line at most.
        """
        head = [str(len(parts))]
        for part in parts:
            interval = max(US / part.rate, MIN_INTERVAL)
            head += [repr(interval), repr(part.burst * interval)]
        head.append(str(self.piece_cap))
        return " ".join(head)

    @property
    def does_io(self) -> bool:
        """Always True: every verb is a round trip to the server."""
        return True

    @property
    def spec(self) -> LimitSpec:
        """The limit this store decides."""
        return self._spec

    @property
    def backend(self) -> RedisBackend:
        """The backend this store was bound to."""
        return self._backend

    def redis_key(self, key: Hashable) -> str:
        """The Redis key holding ``key``'s state: ``prefix{name}`` or ``prefix{name:user}``.

        Both parts are encoded (:func:`limitor.backends._keys.redis_part`): ``%``, ``:``,
        ``{`` and ``}`` are percent-escaped and a key that is not a ``str`` carries its
        type (``%i42`` for the int 42, ``%r('a', 1)`` for a tuple, ``%h`` and a digest for
        a key longer than 64 bytes), so distinct ``(name, key)`` pairs never share a Redis
        key and the hash tag is always the whole identity.
        """
        if key is None:
            return self._key_none
        return f"{self._key_user}{redis_part(key)}}}"

    def holes_key(self, key: Hashable) -> str:
        """The Redis key holding ``key``'s given-back spans (same hash tag, same slot)."""
        return self.redis_key(key) + ":holes"

    def _now_arg(self) -> str:
        return "-" if self._now_us is None else repr(float(self._now_us))

    def _args(self, *verb_args: str) -> tuple[str]:
        """The scripts' one argument: the time override, the limit, the verb's arguments."""
        return (" ".join((self._now_arg(), self._head, *verb_args)),)

    def _run(self, verb: str, keys: Sequence[str], args: Sequence[str]) -> bytes:
        return self._backend.run(SCRIPTS[verb], keys, args)

    async def _arun(
        self,
        verb: str,
        keys: Sequence[str],
        args: Sequence[str],
        undo: Undo | None = None,
    ) -> bytes:
        return await self._backend.arun(SCRIPTS[verb], keys, args, undo)

    # -- reserve -------------------------------------------------------------------

    def _reserve_args(self, amount: Amount, max_wait: float) -> tuple[str]:
        if max_wait == _INF:
            limit = _NO_WAIT_LIMIT
        elif max_wait > 0:
            limit = repr(max_wait * US)
        else:
            limit = "0"
        if len(amount) == 1:
            return (f"{self._now_arg()} {self._head} {amount[0]} {limit}",)
        return self._args(*map(str, amount), limit)

    def _grant(self, reply: bytes, amount: Amount, count: bool = True) -> Grant:
        now = self._clock.now()
        tokens = reply.split()
        if tokens[0] == b"0":
            with self._lock:
                self._counts[3] += count
            return Grant(False, 0.0, float(tokens[1]) / US, None, now)
        wait = float(tokens[1])
        server_now = _server_now(tokens[2], tokens[3])
        at = server_now + wait
        spans: list[tuple[tuple[float, float], ...]] = []
        index = 4
        for units, interval in zip(amount, self._intervals, strict=True):
            token = tokens[index]
            index += 1
            if token == b"-":
                spans.append(())
            elif token[:1] == b"#":  # the pieces the part occupies
                index = _pieces(tokens, index, int(token[1:]), spans)
            else:  # one piece, the same doubles the script stored: x + units * interval
                start = server_now if token == b"=" else float(token)
                x = start if start > at else at
                spans.append(((x, x + float(units) * interval),))
        delay = wait / US
        if not count:  # a grant nobody will use (its caller was cancelled)
            return Grant(True, delay, 0.0, Ticket(at, tuple(spans)), now)
        with self._lock:
            counts = self._counts
            counts[0] += 1
            if delay > 0:
                counts[1] += 1
                counts[2] += delay
        return Grant(True, delay, 0.0, Ticket(at, tuple(spans)), now)

    def _keys(self, key: Hashable) -> tuple[str, ...]:
        """The Redis keys a decision for ``key`` reads and writes: its state and pieces."""
        state = self._key_none if key is None else self.redis_key(key)
        return (state, state + ":holes")  # the holes_key

    def _units(self, amount: Amount) -> Amount:
        """The units per line of a decision (one line per part)."""
        return amount

    def reserve(self, key: Hashable, amount: Amount, max_wait: float) -> Grant:
        """Admit ``amount`` at the earliest time it fits, or refuse beyond ``max_wait``."""
        units = self._units(amount)
        reply = self._run("reserve", self._keys(key), self._reserve_args(units, max_wait))
        return self._grant(reply, units)

    async def areserve(self, key: Hashable, amount: Amount, max_wait: float) -> Grant:
        """:meth:`reserve` for async callers; a caller cancelled meanwhile gives the grant back."""
        units = self._units(amount)
        args = self._reserve_args(units, max_wait)
        undo = partial(self._undo_reserve, key, units)
        reply = await self._arun("reserve", self._keys(key), args, undo)
        return self._grant(reply, units)

    def _undo_reserve(
        self, key: Hashable, amount: Amount, reply: bytes
    ) -> tuple[Script, Sequence[str], Sequence[str]] | None:
        """The call that gives back the grant in ``reply`` (its caller was cancelled)."""
        grant = self._grant(reply, amount, count=False)
        if grant.ticket is None:
            return None
        give = self._give_back_args(amount, grant.ticket, _REVOKE)
        return SCRIPTS["give_back"], self._keys(key), give

    # -- give back -----------------------------------------------------------------

    def _give_back_args(self, amount: Amount, ticket: Ticket | None, mode: str) -> tuple[str]:
        if ticket is None:  # a refund without a ticket: off the end of the schedule
            return self._args(_REFUND_AT_END, "0", *(f"{units} 0" for units in amount))
        args = [mode, repr(float(ticket.at))]
        for units, pieces in zip(amount, ticket.pieces, strict=True):
            args += [str(units), str(len(pieces))]
            for start, end in pieces:
                args += [repr(float(start)), repr(float(end))]
        return self._args(*args)

    def _given(
        self, reply: bytes, ticket: Ticket | None, cancel: bool
    ) -> tuple[float, Ticket | None]:
        tokens = reply.split()
        if ticket is None:
            return float(tokens[0]), None
        spans: list[tuple[tuple[float, float], ...]] = []
        index = 3
        for _ in ticket.pieces:
            index = _pieces(tokens, index + 1, int(tokens[index][1:]), spans)
        if cancel and tuple(spans) != ticket.pieces:
            with self._lock:
                self._counts[4] += 1
        return float(tokens[0]), Ticket(ticket.at, tuple(spans), ticket.delay)

    def give_back(
        self, key: Hashable, amount: Amount, ticket: Ticket | None, *, cancel: bool
    ) -> tuple[float, Ticket | None]:
        """Return ``amount`` of ``ticket`` (see the package docs for what comes back when).

        Without a ticket a refund comes off the end of the schedule (never below now) and
        a cancel gives nothing back, as the contract says.
        """
        if ticket is None and cancel:
            return 0.0, None
        args = self._give_back_args(self._units(amount), ticket, _CANCEL if cancel else _REFUND)
        return self._given(self._run("give_back", self._keys(key), args), ticket, cancel)

    async def agive_back(
        self, key: Hashable, amount: Amount, ticket: Ticket | None, *, cancel: bool
    ) -> tuple[float, Ticket | None]:
        """:meth:`give_back` for async callers."""
        if ticket is None and cancel:
            return 0.0, None
        args = self._give_back_args(self._units(amount), ticket, _CANCEL if cancel else _REFUND)
        reply = await self._arun("give_back", self._keys(key), args)
        return self._given(reply, ticket, cancel)

    # -- charge, peek, hold, reset -------------------------------------------------

    def charge(self, key: Hashable, amount: Amount, ticket: Ticket | None = None) -> None:
        """Consume ``amount`` now without any check (debt).

        With a grant's ``ticket``: no earlier than the grant's time.
        """
        args = self._charge_args(self._units(amount), ticket)
        self._run("charge", self._keys(key), args)

    async def acharge(self, key: Hashable, amount: Amount, ticket: Ticket | None = None) -> None:
        """:meth:`charge` for async callers."""
        args = self._charge_args(self._units(amount), ticket)
        await self._arun("charge", self._keys(key), args)

    def _charge_args(self, amount: Amount, ticket: Ticket | None) -> tuple[str]:
        start = "-1" if ticket is None else repr(float(ticket.at))
        return self._args(*map(str, amount), start)

    @staticmethod
    def _statuses(reply: bytes) -> tuple[PartStatus, ...]:
        values = [float(x) for x in reply.split()[2:]]
        return tuple(
            PartStatus(values[i], values[i + 1] / US, values[i + 2] / US)
            for i in range(0, len(values), 3)
        )

    def peek(self, key: Hashable, amount: Amount) -> tuple[PartStatus, ...]:
        """Each part's live state for ``amount``; changes nothing."""
        args = self._args(*map(str, self._units(amount)))
        return self._statuses(self._run("peek", self._keys(key), args))

    async def apeek(self, key: Hashable, amount: Amount) -> tuple[PartStatus, ...]:
        """:meth:`peek` for async callers."""
        args = self._args(*map(str, self._units(amount)))
        reply = await self._arun("peek", self._keys(key), args)
        return self._statuses(reply)

    def _hold_call(self, key: Hashable, seconds: float) -> tuple[tuple[str, ...], tuple[str]]:
        """The keys and argument of the hold script for ``key``."""
        return (self.redis_key(key),), self._args(repr(max(float(seconds), 0.0) * US))

    def hold(self, key: Hashable, seconds: float) -> None:
        """Admit nothing for ``key`` during the next ``seconds`` (a longer hold wins)."""
        self._run("hold", *self._hold_call(key, seconds))

    async def ahold(self, key: Hashable, seconds: float) -> None:
        """:meth:`hold` for async callers."""
        await self._arun("hold", *self._hold_call(key, seconds))

    def reset(self, key: object) -> None:
        """Forget ``key``'s state (full again); :data:`ALL_KEYS` forgets every user's too."""
        if key is ALL_KEYS:
            self._backend.delete((self._key_none, self.holes_key(None)), self.name)
            with self._lock:
                self._counts = [0, 0, 0.0, 0, 0]
            return
        self._backend.delete((self.redis_key(key), self.holes_key(key)))

    async def areset(self, key: object) -> None:
        """:meth:`reset` for async callers (in a worker thread: it may scan many keys)."""
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self.reset, key)

    def counts(self) -> StoreCounts:
        """What this store decided in this process (Redis keeps no per-process counts).

        Failures are counted once, by the limiter that applies the backend-failure
        policy (``stats.backend_errors``).
        """
        with self._lock:
            counts = tuple(self._counts)
        return StoreCounts(
            admitted=int(counts[0]),
            waited=int(counts[1]),
            total_wait=float(counts[2]),
            rejected=int(counts[3]),
            cancelled=int(counts[4]),
        )

    def __repr__(self) -> str:
        return f"<RedisStore {self._key_none!r} on {self._backend.label}>"


class RedisTotalStore(RedisStore):
    """Per-key limits under totals every key shares, on a Redis server.

    Each verb is one script over the key's state and free pieces and the totals' (four
    Redis keys): a decision checks the key's lines and the totals' lines together, all or
    nothing, at the earliest time every line has room (``earliest_all``), and occupies
    pieces on each, as :class:`~limitor.backends.memory.TotalStore` does in memory. A
    ticket holds the key's pieces, then the totals'; a peek reports the key's parts, then
    the totals. Every key of the limit carries the tag ``{name}`` (``prefix{name}`` for the
    key ``None``, ``prefix{name}:u:<key>`` for a user, ``prefix{name}:total`` for the
    totals), so on a Redis Cluster the whole limit lives in one slot.
    """

    __slots__ = ("_head_key", "_head_total", "_key_total")

    def __init__(self, backend: RedisBackend, spec: LimitSpec, clock: Clock) -> None:
        super().__init__(backend, spec, clock)
        if len(spec.totals) != len(spec.parts):
            raise ConfigError(
                f"a limit of {len(spec.parts)} parts needs as many totals, got {len(spec.totals)}"
            )
        lines = (*spec.parts, *spec.totals)
        self._intervals = tuple(max(US / part.rate, MIN_INTERVAL) for part in lines)
        self._head_key = self._head
        self._head_total = self._head_of(spec.totals)
        self._head = self._head_of(lines)
        self._key_user = self._key_none + ":u:"
        self._key_total = self._key_none + ":total"

    def redis_key(self, key: Hashable) -> str:
        """The Redis key holding ``key``'s state, in the tag ``{name}``.

        ``prefix{name}`` for ``None``, ``prefix{name}:u:<key>`` for a user, and for
        :data:`~limitor.backends.base.TOTAL` the totals' ``prefix{name}:total``. The key
        is encoded as :meth:`RedisStore.redis_key` encodes it (``:`` is escaped, so no
        user's key is the totals' nor another user's).
        """
        if key is None:
            return self._key_none
        if key is TOTAL:
            return self._key_total
        return self._key_user + redis_part(key)

    def _keys(self, key: Hashable) -> tuple[str, ...]:
        state = self._key_none if key is None else self.redis_key(key)
        total = self._key_total
        return (state, state + ":holes", total, total + ":holes")

    def _units(self, amount: Amount) -> Amount:
        return (*amount, *amount)

    def _hold_call(self, key: Hashable, seconds: float) -> tuple[tuple[str, ...], tuple[str]]:
        head = self._head_total if key is TOTAL else self._head_key
        micros = repr(max(float(seconds), 0.0) * US)
        return (self.redis_key(key),), (" ".join((self._now_arg(), head, micros)),)

    def reset(self, key: object) -> None:
        """Forget ``key``'s state (full again) and leave the totals as they are.

        What the key used still counts there; :data:`~limitor.backends.base.TOTAL`
        forgets the totals only; :data:`ALL_KEYS` forgets every key and the totals.
        """
        if key is ALL_KEYS:
            keys = (self._key_none, self.holes_key(None))
            self._backend.delete(keys, self.name, tagged=True)
            with self._lock:
                self._counts = [0, 0, 0.0, 0, 0]
            return
        self._backend.delete((self.redis_key(key), self.holes_key(key)))

    def __repr__(self) -> str:
        return f"<RedisTotalStore {self._key_none!r} on {self._backend.label}>"
