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
import math
import numbers
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from limitor._checks import check_count, check_name, check_quantity, check_weight
from limitor._keywords import Keywords
from limitor.backends.base import TOTAL, Backend, LimitSpec, Part, PartStatus
from limitor.configs import check_positive, check_rate
from limitor.errors import AmountError, AmountTypeError, ConfigError, ConfigTypeError
from limitor.limiter import Limiter, OnBackendError
from limitor.llm.headers import ProviderReport, parse_rate_limit_headers
from limitor.llm.raw import response_headers
from limitor.results import Reservation, Stats, Status

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ("SAFETY_MARGIN", "UNITS", "Cost", "CostAmounts", "LLMLimiter", "Limit")

log = logging.getLogger("limitor")

Unit = Literal["requests", "tokens", "input_tokens", "output_tokens"]
UNITS: tuple[str, ...] = ("requests", "tokens", "input_tokens", "output_tokens")
"""What a limit can count."""

_FLOAT_MAX = 1.7976931348623157e308
"""The largest float: a plain int beyond it cannot become one."""

_PERIODS = {1.0: "second", 60.0: "minute", 3600.0: "hour", 86400.0: "day"}


@dataclass(frozen=True)
class Limit:
    """``capacity`` units of ``unit`` every ``seconds``, refilling continuously.

    Args:
        unit: ``"requests"``, ``"tokens"`` (input and output together),
            ``"input_tokens"`` or ``"output_tokens"``.
        capacity: units per ``seconds``.
        seconds: the period (60 for per-minute limits, 86400 for per-day ones).
        burst: the most units at once (default: ``capacity``, as providers do).
    """

    unit: Unit
    capacity: float
    seconds: float = 60.0
    burst: float | None = None

    def __post_init__(self) -> None:
        """Validate the fields."""
        if self.unit not in UNITS:
            raise ConfigError(f"unit must be one of {UNITS}, got {self.unit!r}")
        try:
            capacity = check_positive("capacity", self.capacity)
            seconds = check_positive("seconds", self.seconds)
            burst = capacity if self.burst is None else check_positive("burst", self.burst)
            check_rate(capacity, seconds, burst)
        except ConfigError as error:  # say which limit: "tokens limit: capacity ..."
            raise type(error)(f"{self.unit} limit: {error}") from None

    @property
    def name(self) -> str:
        """``"tokens_per_minute"``, ``"requests_per_day"``, ...; ``"tokens_per_90s"`` otherwise."""
        period = _PERIODS.get(float(self.seconds), f"{float(self.seconds):g}s")
        return f"{self.unit}_per_{period}"

    @property
    def rate(self) -> float:
        """Units per second."""
        return float(self.capacity) / float(self.seconds)

    @property
    def max_burst(self) -> float:
        """The effective burst."""
        return float(self.capacity if self.burst is None else self.burst)


@dataclass(slots=True)
class Cost:
    """What one call takes: one request and some tokens.

    ``tokens`` is the total that a ``"tokens"`` limit counts; it defaults to
    ``input_tokens + output_tokens``. Limiters with separate input and output limits need
    the split. (A plain value object; not frozen, as it is made on every call.)

    The fields are checked when a limiter uses the cost: a field that is not a finite
    number of zero or more (``None`` included, except for ``tokens``) raises
    :class:`~limitor.errors.AmountTypeError` or :class:`~limitor.errors.AmountError`
    naming it, before anything is taken.
    """

    input_tokens: float = 0.0
    output_tokens: float = 0.0
    tokens: float | None = None
    requests: float = 1.0

    @property
    def total_tokens(self) -> float:
        """``tokens`` if given, else ``input_tokens + output_tokens``."""
        return self.input_tokens + self.output_tokens if self.tokens is None else self.tokens

    def units(self, unit: str) -> float:
        """How many units of ``unit`` this cost takes."""
        if unit == "requests":
            return self.requests
        if unit == "tokens":
            return self.total_tokens
        if unit == "input_tokens":
            return self.input_tokens
        return self.output_tokens


def as_cost(value: object, name: str = "amount") -> tuple[Cost, bool]:
    """``value`` (a Cost, a number of tokens or a mapping) as a validated :class:`Cost`.

    Returns:
        The cost, and whether it says how its tokens split into input and output.

    Raises:
        AmountTypeError: ``value`` is not a number, Cost or mapping, a mapping has
            unknown keys, or a field is not a number (``None`` is allowed for ``tokens``
            only); the message names the field, as ``amount.input_tokens``.
        AmountError: a field is negative, NaN, infinite or beyond the float range.
    """
    if isinstance(value, Cost):
        cost, split = value, value.tokens is None or bool(value.input_tokens or value.output_tokens)
    elif isinstance(value, Mapping):
        unknown = set(value) - {"input_tokens", "output_tokens", "tokens", "requests"}
        if unknown:
            raise AmountTypeError(f"{name} has unknown keys {sorted(unknown)}")
        cost, split = Cost(**value), "input_tokens" in value or "output_tokens" in value
    elif isinstance(value, bool) or not isinstance(value, (numbers.Real, Decimal)):
        raise AmountTypeError(
            f"{name} must be a number of tokens, a Cost or a mapping, got {value!r}"
        )
    else:
        cost, split = Cost(tokens=check_quantity(name, value), requests=1.0), False
    for field in ("input_tokens", "output_tokens", "tokens", "requests"):
        units = getattr(cost, field)
        if units is not None or field != "tokens":
            check_quantity(f"{name}.{field}", units)
    return cost, split


class CostAmounts:
    """What an amount is for several limits at once: a :class:`Cost`, as one number per limit.

    The amounts policy (:mod:`limitor.amounts`) of the LLM limiters. A valid amount is a
    tuple with one number per limit, in the order of ``limits``. A plain number is a
    number of tokens (and one request); a :class:`Cost` or a mapping says more.

    Args:
        limits: the limits, in the order amounts list them.
    """

    __slots__ = ("_limits", "_split_units", "_tokens_burst", "_unit_names")

    def __init__(self, limits: Sequence[Limit]) -> None:
        self._limits = tuple(limits)
        self._unit_names = tuple(limit.unit for limit in self._limits)
        self._tokens_burst = min(
            (limit.max_burst for limit in self._limits if limit.unit == "tokens"),
            default=math.inf,
        )
        self._split_units = any(
            limit.unit in ("input_tokens", "output_tokens") for limit in self._limits
        )

    def cost_vector(self, cost: Cost) -> tuple[float, ...]:
        """``cost`` as one number per limit (no checks)."""
        return tuple(float(cost.units(limit.unit)) for limit in self._limits)

    def vector(self, amount: Any) -> tuple[float, ...]:
        """A valid amount as the store sees it (it is one already)."""
        vector: tuple[float, ...] = amount
        return vector

    def check_estimate(self, estimated: object) -> Any:
        """A valid estimate: as :meth:`check`."""
        return self.check(estimated)

    def probe(self, amount: object) -> Any:
        """A valid amount to ask about (``status``): any size."""
        cost, _ = as_cost(amount)
        return self.cost_vector(cost)

    def check(self, amount: object) -> Any:
        """``amount`` (tokens, a Cost or a mapping) as a vector every limit could admit.

        Raises:
            AmountTypeError: not a number, Cost or mapping (see :func:`as_cost`).
            AmountError: a field is invalid, a limit could never admit it, or the limits
                count input and output tokens and the amount does not split them.
        """
        kind = type(amount)
        if (kind is int or kind is float) and not self._split_units:
            # The common case, a plain number of tokens: no Cost object needed.
            if 0.0 <= amount <= self._tokens_burst and amount < _FLOAT_MAX:  # type: ignore[operator]
                tokens = float(amount)  # type: ignore[arg-type]  # NaN was refused above
                return tuple(1.0 if unit == "requests" else tokens for unit in self._unit_names)
        elif isinstance(amount, Cost) and amount.tokens is None:
            vector = self._fast_vector(amount)
            if vector is not None:
                return vector
        cost, split = as_cost(amount)
        if self._split_units and not split:
            raise AmountError(
                "these limits count input and output tokens separately: give "
                "Cost(input_tokens=..., output_tokens=...)"
            )
        vector = self.cost_vector(cost)
        for limit, units in zip(self._limits, vector, strict=True):
            if units > limit.max_burst:
                raise AmountError(
                    f"{units:g} {limit.unit} is more than {limit.name} allows at once "
                    f"({limit.max_burst:g}) and can never be admitted"
                )
        return vector

    def _fast_vector(self, cost: Cost) -> tuple[float, ...] | None:
        """The vector of an estimate whose fields are plain, valid numbers (else None)."""
        inputs, outputs, requests = cost.input_tokens, cost.output_tokens, cost.requests
        if not (
            type(inputs) is float
            and type(outputs) is float
            and type(requests) is float
            and 0.0 <= inputs < math.inf
            and 0.0 <= outputs < math.inf
            and 0.0 <= requests < math.inf
        ):
            return None
        vector = tuple(
            requests
            if unit == "requests"
            else inputs + outputs
            if unit == "tokens"
            else inputs
            if unit == "input_tokens"
            else outputs
            for unit in self._unit_names
        )
        for units, limit in zip(vector, self._limits, strict=True):
            if units > limit.max_burst:
                return None  # let the full check raise the error
        return vector

    def check_actual(self, actual: object, reserved: Any) -> Any:
        """A call's real usage as a vector; requests stay as ``reserved`` (no burst bound)."""
        kind = type(actual)
        if kind is int or kind is float:
            tokens = float(actual)  # type: ignore[arg-type]
            if 0.0 <= tokens < math.inf:  # a plain total: only "tokens" limits take it
                return tuple(
                    tokens if unit == "tokens" else reserved[index]
                    for index, unit in enumerate(self._unit_names)
                )
        if isinstance(actual, Cost):
            fast = self._fast_actual(actual, reserved)
            if fast is not None:
                return fast
        cost, split = as_cost(actual, "actual")
        vector = self.cost_vector(cost)
        return tuple(
            reserved_units
            if limit.unit == "requests" or (limit.unit != "tokens" and not split)
            else units  # requests stay as reserved; input/output need the split
            for limit, units, reserved_units in zip(self._limits, vector, reserved, strict=True)
        )

    def _fast_actual(self, cost: Cost, reserved: tuple[float, ...]) -> tuple[float, ...] | None:
        """The actual vector of a usage whose fields are plain, valid floats (else None)."""
        inputs, outputs, total = cost.input_tokens, cost.output_tokens, cost.tokens
        if total is None:
            total = inputs + outputs
        if not (
            type(inputs) is float
            and type(outputs) is float
            and type(total) is float
            and 0.0 <= inputs < math.inf
            and 0.0 <= outputs < math.inf
            and 0.0 <= total < math.inf
        ):
            return None
        return tuple(
            total
            if unit == "tokens"
            else inputs
            if unit == "input_tokens"
            else outputs
            if unit == "output_tokens"
            else reserved[index]  # requests stay as reserved
            for index, unit in enumerate(self._unit_names)
        )

    def is_nothing(self, amount: Any) -> bool:
        """True when no limit takes anything."""
        return not any(amount)

    def describe(self, amount: Any) -> str:
        """``"1 requests, 900 tokens"``."""
        return ", ".join(
            f"{units:g} {limit.unit}" for limit, units in zip(self._limits, amount, strict=True)
        )

    def split(self, actual: Any, reserved: Any) -> tuple[Any, Any]:
        """``(extra, unused)`` per limit; None where no limit has any."""
        extra: list[float] = []
        unused: list[float] = []
        for a, r in zip(actual, reserved, strict=True):
            extra.append(a - r if a > r else 0.0)
            unused.append(r - a if r > a else 0.0)
        return (tuple(extra) if any(extra) else None), (tuple(unused) if any(unused) else None)

    def nothing(self) -> tuple[float, ...]:
        """Zero for every limit."""
        return tuple(0.0 for _ in self._limits)

    def __repr__(self) -> str:
        return f"CostAmounts({', '.join(limit.name for limit in self._limits)})"


SAFETY_MARGIN = 0.2
"""The ``safety_margin`` to give when the limits equal the provider's: 0.2 s of refill.

A limit set exactly to the provider's starts refilling when the client sends, one request
latency before the provider's bucket counts the request: in the provider's window of
``w`` seconds the client may have sent up to ``burst + rate * (w + latency)``. Holding
``rate * safety_margin`` units back from each burst (at most a tenth of it, and a requests
burst keeps at least one request) covers latencies up to ``safety_margin``: measured
against a provider with the same limits, 1-6 x 429 per 100 calls without it, none with
0.2 s. The default, ``safety_margin=0``, keeps the exact configured limits.
"""


def _held_back(limit: Limit, margin: float) -> float:
    """``limit``'s burst less ``margin`` seconds of its refill (capped, see SAFETY_MARGIN)."""
    burst = limit.max_burst
    if not margin:
        return burst
    kept = burst - min(limit.rate * margin, burst / 10)
    if limit.unit == "requests":
        kept = max(kept, min(burst, 1.0))
    return kept


class _FirstLimits(TypedDict, total=False):
    requests_per_minute: float | None
    tokens_per_minute: float | None


class MoreLimits(TypedDict, total=False):
    """The named limits after the first two (which a limiter takes by position too)."""

    input_tokens_per_minute: float | None
    output_tokens_per_minute: float | None
    requests_per_day: float | None
    tokens_per_day: float | None


class NamedLimits(_FirstLimits, MoreLimits, total=False):
    """The limits an LLM limiter takes by name, each an amount per minute or per day."""


class NamedTotals(TypedDict, total=False):
    """The totals an LLM limiter takes by name: ``total_`` and a :class:`NamedLimits` name."""

    total_requests_per_minute: float | None
    total_tokens_per_minute: float | None
    total_input_tokens_per_minute: float | None
    total_output_tokens_per_minute: float | None
    total_requests_per_day: float | None
    total_tokens_per_day: float | None


LIMIT_NAMES: tuple[str, ...] = tuple(NamedLimits.__annotations__)
"""``"requests_per_minute"``, ..., ``"tokens_per_day"``: the :class:`NamedLimits`, in order."""
TOTAL_NAMES: tuple[str, ...] = tuple(NamedTotals.__annotations__)
"""``"total_requests_per_minute"``, ...: the :class:`NamedTotals`, in order."""
_SECONDS = {period: seconds for seconds, period in _PERIODS.items()}


def _named_limits(given: Mapping[str, Any], *, total: bool = False) -> list[Limit]:
    """The limits given by name (``requests_per_minute=500``...), in :data:`LIMIT_NAMES` order.

    ``total``: read the ``total_`` names instead (:data:`TOTAL_NAMES`).
    """
    found = []
    for name in LIMIT_NAMES:
        amount = given.get(f"total_{name}" if total else name)
        if amount is not None:
            unit, period = name.rsplit("_per_", 1)
            try:
                found.append(Limit(unit, amount, _SECONDS[period]))  # type: ignore[arg-type]
            except ConfigError as error:  # say which: "total tokens limit: ..."
                raise type(error)(f"total {error}" if total else str(error)) from None
    return found


class MultiLimitKeywords(MoreLimits, total=False):
    """The keywords of :class:`MultiLimitBase` (after its first two limits)."""

    limits: Sequence[Limit]
    max_keys: int
    ttl: float | None
    clock: Any
    backend: Backend | None
    name: str | None
    on_backend_error: OnBackendError
    safety_margin: float
    total_limits: Sequence[Limit]


class LLMLimiterKeywords(MultiLimitKeywords, NamedTotals, total=False):
    """The keywords of :class:`LLMLimiter` (after its first two limits)."""

    fair: bool
    weight: Callable[[Hashable], float] | None


_MULTI_DEFAULTS: dict[str, object] = {
    "limits": (),
    "max_keys": 10_000,
    "on_backend_error": "raise",
    "safety_margin": 0.0,
    "total_limits": (),
}
_MULTI = Keywords(MultiLimitKeywords, _MULTI_DEFAULTS)
_LLM = Keywords(LLMLimiterKeywords, {**_MULTI_DEFAULTS, "fair": False})


def _status_of(limit: Limit, part: PartStatus) -> Status:
    return Status(
        limit=limit.max_burst,
        remaining=part.remaining,
        retry_after=part.retry_after,
        reset_after=part.reset_after,
    )


def _check_totals(
    total_limits: Sequence[Limit], all_limits: list[Limit], margin: float
) -> tuple[Limit, ...]:
    """The totals, checked; a total with no per-key limit of its name adds one to ``all_limits``.

    Raises:
        ConfigError: a total is given twice, or is not a :class:`Limit`.
    """
    if isinstance(total_limits, Limit):
        total_limits = (total_limits,)
    totals: list[Limit] = []
    for total in total_limits:
        if not isinstance(total, Limit):
            raise ConfigTypeError(f"totals must be Limit objects, got {total!r}")
        if any(total.name == other.name for other in totals):
            raise ConfigError(f"each total may be given once, got {total.name} twice")
        totals.append(total)
        own = next((limit for limit in all_limits if limit.name == total.name), None)
        if own is None:  # each key may use the whole total
            all_limits.append(Limit(total.unit, total.capacity, total.seconds, total.burst))
    return tuple(totals)


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

    @_MULTI.signature
    def __init__(
        self,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        **options: Unpack[MultiLimitKeywords],
    ) -> None:
        given = _MULTI.fill(options, f"{type(self).__name__}.__init__")
        safety_margin, name = given["safety_margin"], given["name"]
        max_keys, ttl = given["max_keys"], given["ttl"]
        try:
            margin = check_quantity("safety_margin", safety_margin)
        except AmountError as error:
            kind = ConfigTypeError if isinstance(error, TypeError) else ConfigError
            raise kind(str(error)) from None
        all_limits = _named_limits(
            {"requests_per_minute": requests_per_minute, "tokens_per_minute": tokens_per_minute}
            | dict(given)
        )
        for limit in given["limits"]:
            if not isinstance(limit, Limit):
                raise ConfigTypeError(f"limits must be Limit objects, got {limit!r}")
            all_limits.append(limit)
        totals = _check_totals(given["total_limits"], all_limits, margin)
        if not all_limits:
            raise ConfigError("give at least one limit (requests_per_minute=, ...)")
        names = [limit.name for limit in all_limits]
        if len(set(names)) != len(names):
            raise ConfigError(f"each limit may be given once, got {names}")
        spec = LimitSpec(
            parts=tuple(
                Part(limit.rate, _held_back(limit, margin), label=limit.name)
                for limit in all_limits
            ),
            name=check_name(name),
            algorithm="gcra",
            keyed=True,
            max_keys=check_count("max_keys", max_keys),
            ttl=None if ttl is None else check_positive("ttl", ttl),
            totals=tuple(
                Part(total.rate, _held_back(total, margin), label=total.name) for total in totals
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


class LLMLimiter(MultiLimitBase):
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

    @_LLM.signature
    def __init__(
        self,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        **options: Unpack[LLMLimiterKeywords],
    ) -> None:
        given = _LLM.fill(options, "LLMLimiter.__init__")
        fair, weight, total_limits = given["fair"], given["weight"], given["total_limits"]
        totals = _named_limits(given, total=True)
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
        base: dict[str, Any] = {name: given[name] for name in _MULTI.names}  # type: ignore[literal-required]
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

    def hold(self, seconds: float, *, key: Hashable = None, total: bool = False) -> None:
        """Admit nothing for ``key`` during the next ``seconds`` (a provider's retry-after).

        With ``total=True`` (a limiter with totals), hold the totals instead: no key is
        admitted during the next ``seconds``.
        """
        if total:
            self._need_total("hold(total=True)")
            key = TOTAL
        self._hold(key, seconds)

    async def hold_async(
        self, seconds: float, *, key: Hashable = None, total: bool = False
    ) -> None:
        """:meth:`hold` for tasks (never blocks the event loop)."""
        if total:
            self._need_total("hold_async(total=True)")
            key = TOTAL
        await self._hold_async(key, seconds)

    def reset_total(self) -> None:
        """Forget the totals' state (full again); the keys' limits stay as they are."""
        self._need_total("reset_total")
        self._reset(TOTAL)

    async def reset_total_async(self) -> None:
        """:meth:`reset_total` for tasks (never blocks the event loop)."""
        self._need_total("reset_total_async")
        await self._reset_async(TOTAL)

    def _need_total(self, verb: str) -> None:
        if not self._totals:
            raise ConfigError(f"{verb}() needs a limiter made with a total (total_...=)")

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
