"""The LLM limiters' keywords: the named limits and totals, typed once, and their checks.

The limits an LLM limiter takes by name (``requests_per_minute=``, ...) and the totals
(``total_tokens_per_minute=``, ...) as :class:`~typing.TypedDict` s, the keywords of
:class:`~limitor.llm.limits.MultiLimitBase` and :class:`~limitor.llm.limits.LLMLimiter`,
and what turns them into :class:`~limitor.llm.Limit` s: :func:`named_limits`,
:func:`check_totals` and the safety margin (:func:`held_back`). Re-exported by
:mod:`limitor.llm.limits`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, TypedDict

from limitor._keywords import Keywords
from limitor.backends.base import Backend
from limitor.errors import ConfigError, ConfigTypeError
from limitor.limiter import OnBackendError
from limitor.llm._cost import PERIODS, Limit

__all__ = (
    "LIMIT_NAMES",
    "LLM",
    "MULTI",
    "SAFETY_MARGIN",
    "TOTAL_NAMES",
    "LLMLimiterKeywords",
    "MoreLimits",
    "MultiLimitKeywords",
    "NamedLimits",
    "NamedTotals",
    "check_totals",
    "held_back",
    "named_limits",
)

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


def held_back(limit: Limit, margin: float) -> float:
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
_SECONDS = {period: seconds for seconds, period in PERIODS.items()}


def named_limits(given: Mapping[str, Any], *, total: bool = False) -> list[Limit]:
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


MULTI_DEFAULTS: dict[str, object] = {
    "limits": (),
    "max_keys": 10_000,
    "on_backend_error": "raise",
    "safety_margin": 0.0,
    "total_limits": (),
}
MULTI = Keywords(MultiLimitKeywords, MULTI_DEFAULTS)
LLM = Keywords(LLMLimiterKeywords, {**MULTI_DEFAULTS, "fair": False})


def check_totals(
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
