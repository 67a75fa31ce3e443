"""What an LLM call costs: :class:`Limit`, :class:`Cost` and the amounts policy over several limits.

A :class:`Limit` is one provider limit (requests or tokens per period); a :class:`Cost`
is what one call takes; :func:`as_cost` validates any amount as a Cost; and
:class:`CostAmounts` is the amounts policy (:mod:`limitor.amounts`) of the LLM limiters:
a cost as one number per limit. Re-exported by :mod:`limitor.llm.limits`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from limitor._checks import check_quantity
from limitor.configs import CapacityPerSeconds, check_positive, check_rate
from limitor.errors import AmountError, AmountTypeError, ConfigError

__all__ = ("PERIODS", "UNITS", "Cost", "CostAmounts", "Limit", "Unit", "as_cost")

Unit = Literal["requests", "tokens", "input_tokens", "output_tokens"]
UNITS: tuple[str, ...] = ("requests", "tokens", "input_tokens", "output_tokens")
"""What a limit can count."""

_FLOAT_MAX = 1.7976931348623157e308
"""The largest float: a plain int beyond it cannot become one."""

PERIODS = {1.0: "second", 60.0: "minute", 3600.0: "hour", 86400.0: "day"}
"""A period's name by its seconds (``Limit.name``)."""


@dataclass(frozen=True)
class Limit(CapacityPerSeconds):
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
        period = PERIODS.get(float(self.seconds), f"{float(self.seconds):g}s")
        return f"{self.unit}_per_{period}"


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
        requests = cost.requests  # not used (requests stay as reserved), but checked
        if not (
            type(inputs) is float
            and type(outputs) is float
            and type(total) is float
            and type(requests) is float
            and 0.0 <= inputs < math.inf
            and 0.0 <= outputs < math.inf
            and 0.0 <= total < math.inf
            and 0.0 <= requests < math.inf
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
