"""Requests-per-minute and tokens-per-minute limits together, as LLM providers set them.

An :class:`LLMLimiter` holds several :class:`Limit` s (requests, tokens, optionally input
and output tokens separately, per minute and per day) and admits a call only when every
one has room, at the same time for all: a call refused or timed out takes nothing from
any limit. A call's :class:`Cost` is estimated before it runs and reconciled after: unused
tokens come back at once, an underestimate becomes debt that delays later calls.
Token limits refill continuously, as the providers' ``x-ratelimit-reset-tokens`` describe.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

from limitor._checks import check_count, check_name, check_quantity, check_weight
from limitor._totals import TotalVerbs
from limitor.backends.base import TOTAL, LimitSpec, Part, PartStatus
from limitor.configs import check_positive
from limitor.errors import AmountError, ConfigError, ConfigTypeError
from limitor.limiter import Limiter
from limitor.llm._cost import UNITS, Cost, CostAmounts, Limit
from limitor.llm._cost import Unit as Unit
from limitor.llm._cost import as_cost as as_cost
from limitor.llm._keywords import LIMIT_NAMES as LIMIT_NAMES
from limitor.llm._keywords import LLM, MULTI, SAFETY_MARGIN, check_totals, held_back, named_limits
from limitor.llm._keywords import TOTAL_NAMES as TOTAL_NAMES
from limitor.llm._keywords import LLMLimiterKeywords as LLMLimiterKeywords
from limitor.llm._keywords import MoreLimits as MoreLimits
from limitor.llm._keywords import MultiLimitKeywords as MultiLimitKeywords
from limitor.llm._keywords import NamedLimits as NamedLimits
from limitor.llm._keywords import NamedTotals as NamedTotals
from limitor.llm.headers import ProviderReport, parse_rate_limit_headers
from limitor.llm.raw import response_headers
from limitor.results import Reservation, Stats, Status

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ("SAFETY_MARGIN", "UNITS", "Cost", "CostAmounts", "LLMLimiter", "Limit")

log = logging.getLogger("limitor")


def _status_of(limit: Limit, part: PartStatus) -> Status:
    return Status(
        limit=limit.max_burst,
        remaining=part.remaining,
        retry_after=part.retry_after,
        reset_after=part.reset_after,
    )


class MultiLimitBase(Limiter):
    """Several limits (requests, tokens...) admitted together, all or nothing.

    The configuration, amounts, status and provider feedback shared by
    :class:`LLMLimiter` and the LLM buckets of :mod:`limitor.llm_token.core`.

    Args:
        requests_per_minute: requests per minute (RPM).
        tokens_per_minute: input plus output tokens per minute (TPM).
        input_tokens_per_minute: input tokens per minute (ITPM).
        output_tokens_per_minute: output tokens per minute (OTPM).
        requests_per_day: requests per day (RPD).
        tokens_per_day: tokens per day (TPD).
        limits: more :class:`Limit` s (custom periods or bursts).
        max_keys: how many keys' limits to keep in memory (see ``PerUserLimiter``).
        ttl: keep a key's limits at least this long after they were stored.
        clock: the time source (tests pass a ``FakeClock``).
        backend: where the limits live (default: this process's memory).
        name: the limits' identity in a shared backend.
        on_backend_error: ``"raise"`` (default) or ``"allow"`` (fail open).
        safety_margin: seconds of refill held back from each limit's burst (default 0:
            the exact limits; give :data:`SAFETY_MARGIN`, 0.2 s, when the limits equal
            the provider's).
        total_limits: limits shared by every key (see :class:`LLMLimiter`); each counts
            the units of the per-key limit of the same name (added, equal to the
            total, when not given).
    """

    __slots__ = ("_limits", "_totals")

    @MULTI.signature
    def __init__(
        self,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        **options: Unpack[MultiLimitKeywords],
    ) -> None:
        given = MULTI.fill(options, f"{type(self).__name__}.__init__")
        safety_margin, name = given["safety_margin"], given["name"]
        max_keys, ttl = given["max_keys"], given["ttl"]
        try:
            margin = check_quantity("safety_margin", safety_margin)
        except AmountError as error:
            kind = ConfigTypeError if isinstance(error, TypeError) else ConfigError
            raise kind(str(error)) from None
        all_limits = named_limits(
            {"requests_per_minute": requests_per_minute, "tokens_per_minute": tokens_per_minute}
            | dict(given)
        )
        for limit in given["limits"]:
            if not isinstance(limit, Limit):
                raise ConfigTypeError(f"limits must be Limit objects, got {limit!r}")
            all_limits.append(limit)
        totals = check_totals(given["total_limits"], all_limits, margin)
        if not all_limits:
            raise ConfigError("give at least one limit (requests_per_minute=, ...)")
        names = [limit.name for limit in all_limits]
        if len(set(names)) != len(names):
            raise ConfigError(f"each limit may be given once, got {names}")
        spec = LimitSpec(
            parts=tuple(
                Part(limit.rate, held_back(limit, margin), label=limit.name) for limit in all_limits
            ),
            name=check_name(name),
            algorithm="gcra",
            keyed=True,
            max_keys=check_count("max_keys", max_keys),
            ttl=None if ttl is None else check_positive("ttl", ttl),
            totals=tuple(
                Part(total.rate, held_back(total, margin), label=total.name) for total in totals
            ),
        )
        super().__init__(
            spec,
            given["clock"],
            backend=given["backend"],
            on_backend_error=given["on_backend_error"],
            amounts=CostAmounts(all_limits),
        )
        self._totals = totals
        self._limits = tuple(all_limits)
        if any(
            limit.unit == "requests" and limit.max_burst < 1 for limit in (*all_limits, *totals)
        ):
            raise ConfigError("a requests limit needs a burst of at least 1 request")

    @property
    def limits(self) -> tuple[Limit, ...]:
        """The limits, in the order amounts list them."""
        return self._limits

    def status(self, key: Hashable = None, amount: object = 0) -> dict[str, Status]:
        """Each limit's live state, by limit name; changes nothing."""
        return self._statuses(self._peek(key, self._amounts.probe(amount)))

    async def status_async(self, key: Hashable = None, amount: object = 0) -> dict[str, Status]:
        """:meth:`status` for tasks (never blocks the event loop)."""
        return self._statuses(await self._peek_async(key, self._amounts.probe(amount)))

    def _statuses(self, parts: tuple[PartStatus, ...], *, merge: bool = True) -> dict[str, Status]:
        """Each per-key limit's status, by name; with ``merge``, the line that binds.

        With totals, ``merge`` reports for a limit that has a total the one of the two
        that makes the amount wait longer (or leaves less), as ``PerUserLimiter`` does.
        """
        count = len(self._limits)
        statuses = {
            limit.name: _status_of(limit, part)
            for limit, part in zip(self._limits, parts[:count], strict=True)
        }
        if merge and len(parts) > count:
            for name, line in self._total_statuses(parts).items():
                statuses[name] = max(
                    (statuses[name], line), key=lambda s: (s.retry_after, -s.remaining)
                )
        return statuses

    def _total_statuses(self, parts: tuple[PartStatus, ...]) -> dict[str, Status]:
        """Each total's status, by name (full when the backend failed open)."""
        lines = parts[len(self._limits) :]
        if len(lines) != len(self._totals):
            lines = tuple(PartStatus(total.max_burst, 0.0, 0.0) for total in self._totals)
        return {
            total.name: _status_of(total, part)
            for total, part in zip(self._totals, lines, strict=True)
        }

    @property
    def stats(self) -> Stats:
        """Counters since the limiter was made or reset, and how many keys it holds."""
        return self._stats(keyed=True)

    def hold(self, seconds: float, *, key: Hashable = None) -> None:
        """Admit nothing for ``key`` during the next ``seconds`` (a provider's retry-after)."""
        self._hold(key, seconds)

    def charge(self, amount: object, *, key: Hashable = None) -> None:
        """Consume ``amount`` (tokens or a :class:`Cost`) now without any check (debt)."""
        self._charge(key, amount)

    def reset(self, *keys: Hashable) -> None:
        """Forget the limits' state of ``keys`` (given none: of every key, and the counters)."""
        if not keys:
            self._reset()
        for key in keys:
            self._reset(key)

    async def hold_async(self, seconds: float, *, key: Hashable = None) -> None:
        """:meth:`hold` for tasks (never blocks the event loop)."""
        await self._hold_async(key, seconds)

    async def charge_async(self, amount: object, *, key: Hashable = None) -> None:
        """:meth:`charge` for tasks (never blocks the event loop)."""
        await self._charge_async(key, amount)

    async def reset_async(self, *keys: Hashable) -> None:
        """:meth:`reset` for tasks (never blocks the event loop)."""
        if not keys:
            await self._reset_async()
        for key in keys:
            await self._reset_async(key)

    # -- provider feedback -------------------------------------------------------------

    def update_from_headers(self, headers: object, *, key: Hashable = None) -> ProviderReport:
        """Bring the limits in line with a response's rate-limit headers.

        ``headers`` may also be an HTTP response, an SDK raw response, stream or error
        (:func:`~limitor.llm.response_headers`). Reads OpenAI-style
        ``x-ratelimit-remaining-requests/tokens`` and
        ``x-ratelimit-reset-*``, Anthropic-style ``anthropic-ratelimit-*`` and
        ``retry-after``. Only ever tightens: when the provider reports fewer units left
        than the limiter believes, the difference is charged as debt; a ``retry-after``
        admits nothing until then. Malformed values are skipped with a warning.

        When the backend fails open, nothing is charged (what the limits hold is not
        known), and the hold does nothing.

        Returns:
            What was understood from the headers.
        """
        report = parse_rate_limit_headers(response_headers(headers) or (), strict=False)
        target = TOTAL if self._totals else key
        if report.remaining:
            believed = self._peek(key, self._amounts.nothing(), unknown=None)
            debt = None if believed is None else self._header_debt(report, believed)
            if debt is not None:
                self._call(key, debt, None, "charge", target, debt)
        if report.retry_after:
            self._hold(target, report.retry_after)
        return report

    async def update_from_headers_async(
        self, headers: object, *, key: Hashable = None
    ) -> ProviderReport:
        """:meth:`update_from_headers` for tasks (never blocks the event loop)."""
        report = parse_rate_limit_headers(headers, strict=False)
        target = TOTAL if self._totals else key
        if report.remaining:
            believed = await self._peek_async(key, self._amounts.nothing(), unknown=None)
            debt = None if believed is None else self._header_debt(report, believed)
            if debt is not None:
                await self._acall(key, debt, None, "charge", target, debt)
        if report.retry_after:
            await self._hold_async(target, report.retry_after)
        return report

    def _header_debt(
        self, report: ProviderReport, believed: tuple[PartStatus, ...]
    ) -> tuple[float, ...] | None:
        """What to charge so that no limit believes in more than the provider reports.

        With totals, the provider's headers describe the totals (one provider key for
        every key): the debt is for them, as a vector of the per-key limits' units.
        """
        debt = [0.0] * len(self._limits)
        limits = self._totals or self._limits
        lines = believed[len(self._limits) :] if self._totals else believed
        names = [limit.name for limit in self._limits]
        for unit, remaining in report.remaining.items():
            index = self._shortest(unit, limits)
            if index is not None and lines[index].remaining > remaining:
                debt[names.index(limits[index].name)] = lines[index].remaining - remaining
        return tuple(debt) if any(debt) else None

    @staticmethod
    def _shortest(unit: str, limits: tuple[Limit, ...]) -> int | None:
        """The index of the limit on ``unit`` with the shortest period (the per-minute one)."""
        candidates = [
            (limit.seconds, index) for index, limit in enumerate(limits) if limit.unit == unit
        ]
        return min(candidates)[1] if candidates else None

    def __repr__(self) -> str:
        limits = ", ".join(f"{limit.name}={limit.capacity:g}" for limit in self._limits)
        return f"<{type(self).__name__} {limits} keys={self.stats.users}>"


class LLMLimiter(TotalVerbs, MultiLimitBase):
    """Several limits (requests, tokens...) admitted together, per key or shared.

    Most code uses :func:`limitor.llm_rate_limit`; this is the limiter underneath. The
    key ``None`` (the default) is one shared set of limits; other keys (a user, a model)
    each get their own, kept as :class:`~limitor.per_user.PerUserLimiter` keeps buckets.
    The arguments are those of :class:`MultiLimitBase`, and:

    Args:
        total_requests_per_minute: requests per minute for every key together (an
            organisation's, or one provider key's, RPM over the per-key limits).
        total_tokens_per_minute: tokens per minute for every key together.
        total_input_tokens_per_minute: input tokens per minute for every key together.
        total_output_tokens_per_minute: output tokens per minute for every key together.
        total_requests_per_day: requests per day for every key together.
        total_tokens_per_day: tokens per day for every key together.
        total_limits: more totals as :class:`Limit` s (custom periods or bursts).
        fair: while a total binds, admit waiting callers across keys in weighted round
            robin, each key FIFO within itself (needs a total); ``False`` (default):
            FIFO. Fairness is within this process (see :mod:`limitor._fair`).
        weight: with ``fair=True``, a callable key -> positive number: a key's share of
            the totals while several keys wait (default 1 for every key).

    A call is admitted only when its key's limits and the totals all allow it, in one
    decision (all or nothing); giving back (cancel, a refund from ``reconcile``) frees its
    units on both, and debt is charged to both. Each total counts the units of the
    per-key limit of the same name; a total with no such per-key limit gives every key
    that limit, equal to the total (each key may use all of it). A total for only some
    units (only ``total_tokens_per_minute``) leaves the others per key only. A call
    above a total's burst raises :class:`~limitor.errors.AmountError` at once, taking
    nothing (it could never be admitted). ``fair=True`` without a total and a
    ``weight`` that is not callable raise :class:`~limitor.errors.ConfigError`; a weight
    that is not positive raises at use, with nothing taken. ``safety_margin`` holds back
    the totals' bursts as well.

    Under ``fair=True``, :meth:`reserve` books no future slot (a delay-0 reservation, or
    :class:`~limitor.errors.RateLimitExceeded` with an estimated ``retry_after``), and
    :meth:`acquire` takes its grant at its turn (``timeout=`` raises at once when the
    estimate exceeds it, else at the deadline with nothing taken).

    With totals, :meth:`status` reports for each limit the line that binds (the key's or
    its total's); :meth:`status_both` gives both; ``hold(seconds, total=True)`` holds the
    totals (every key); ``reset(key)`` leaves the totals as they are, ``reset()`` forgets
    them too, :meth:`reset_total` forgets the totals only; and
    :meth:`~MultiLimitBase.update_from_headers` reads the provider's headers as the
    totals' (debt and ``retry-after`` go to the totals, so to every key).

    Example:
        >>> limiter = LLMLimiter(requests_per_minute=500, tokens_per_minute=200_000)
        >>> reservation = limiter.reserve(Cost(input_tokens=900, output_tokens=512))
        >>> reservation.reconcile(Cost(input_tokens=900, output_tokens=120))  # refund 392
        >>> gateway = LLMLimiter(
        ...     requests_per_minute=20, tokens_per_minute=20_000,  # each user
        ...     total_requests_per_minute=500, total_tokens_per_minute=200_000, fair=True,
        ... )
        >>> gateway.try_acquire(1_000, key="alice")
        True
    """

    __slots__ = ()

    _total_keyword = "a total (total_...=)"

    @LLM.signature
    def __init__(
        self,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        **options: Unpack[LLMLimiterKeywords],
    ) -> None:
        given = LLM.fill(options, "LLMLimiter.__init__")
        fair, weight, total_limits = given["fair"], given["weight"], given["total_limits"]
        totals = named_limits(given, total=True)
        totals.extend((total_limits,) if isinstance(total_limits, Limit) else total_limits)
        if not isinstance(fair, bool):
            raise ConfigTypeError(f"fair must be True or False, got {fair!r}")
        if fair and not totals:
            raise ConfigError(
                "fair=True shares totals between keys: give a total as well "
                "(total_tokens_per_minute=, ...)"
            )
        weigh = check_weight(weight)
        if weigh is not None and not fair:
            raise ConfigError("weight= gives shares of the totals under fair=True")
        base: dict[str, Any] = {name: given[name] for name in MULTI.names}  # type: ignore[literal-required]
        base["total_limits"] = totals
        super().__init__(requests_per_minute, tokens_per_minute, **base)
        if fair:
            self._make_fair(weigh)

    # -- the verbs -------------------------------------------------------------------

    def acquire(
        self, amount: object = 0, *, key: Hashable = None, timeout: float | None = None
    ) -> Reservation:
        """Block until the call may go; ``amount`` is its tokens (a number or a Cost).

        Returns the reservation, to :meth:`~limitor.results.Reservation.reconcile` once
        the real usage is known.

        Raises:
            AmountError: an amount that no limit could ever admit.
            AcquireTimeout: the wait would exceed ``timeout``; raised at once.
        """
        return self._acquire_sync(key, amount, timeout)

    async def acquire_async(
        self, amount: object = 0, *, key: Hashable = None, timeout: float | None = None
    ) -> Reservation:
        """Like :meth:`acquire`, awaiting without blocking the event loop."""
        return await self._acquire_async(key, amount, timeout)

    def try_acquire(self, amount: object = 0, *, key: Hashable = None) -> bool:
        """Take the call's cost if every limit has room right now; never waits."""
        return self._police_or_raise(key, amount)

    def reserve(
        self, amount: object = 0, *, key: Hashable = None, timeout: float | None = None
    ) -> Reservation:
        """Commit the call's cost at the earliest time all limits allow; return at once."""
        return self._reserve_for(key, amount, timeout)

    async def try_acquire_async(self, amount: object = 0, *, key: Hashable = None) -> bool:
        """:meth:`try_acquire` for tasks (never blocks the event loop)."""
        return await self._police_or_raise_async(key, amount)

    async def reserve_async(
        self, amount: object = 0, *, key: Hashable = None, timeout: float | None = None
    ) -> Reservation:
        """:meth:`reserve` for tasks (never blocks the event loop)."""
        return await self._reserve_for_async(key, amount, timeout)

    # -- totals ----------------------------------------------------------------------

    def status_both(
        self, key: Hashable = None, amount: object = 0
    ) -> tuple[dict[str, Status], dict[str, Status]]:
        """``key``'s own limits' live state and the totals', by limit name (for headers).

        Raises:
            ConfigError: the limiter has no total.
        """
        self._need_total("status_both")
        parts = self._peek(key, self._amounts.probe(amount))
        return self._statuses(parts, merge=False), self._total_statuses(parts)

    async def status_both_async(
        self, key: Hashable = None, amount: object = 0
    ) -> tuple[dict[str, Status], dict[str, Status]]:
        """:meth:`status_both` for tasks (never blocks the event loop)."""
        self._need_total("status_both_async")
        parts = await self._peek_async(key, self._amounts.probe(amount))
        return self._statuses(parts, merge=False), self._total_statuses(parts)

    @property
    def totals(self) -> tuple[Limit, ...]:
        """The limits every key shares (``()``: none)."""
        return self._totals

    @property
    def fair(self) -> bool:
        """True when waiting keys take turns at the totals."""
        return self._fair is not None

    def __repr__(self) -> str:
        text = super().__repr__()
        if not self._totals:
            return text
        totals = ", ".join(f"{total.name}={total.capacity:g}" for total in self._totals)
        fair = " fair" if self._fair is not None else ""
        return f"{text[:-1]} totals: {totals}{fair}>"
