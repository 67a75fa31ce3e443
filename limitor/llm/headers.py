"""Reading LLM providers' rate-limit headers.

OpenAI-style responses carry ``x-ratelimit-limit-requests``, ``x-ratelimit-remaining-
requests``, ``x-ratelimit-reset-requests`` (a duration such as ``6m0s``, ``1s`` or
``120ms``) and the same for ``tokens``; Anthropic-style ones carry
``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}``
(the reset as an RFC 3339 time). Either may send ``retry-after`` (seconds or an HTTP date)
and OpenAI ``retry-after-ms``.

A wait or reset longer than :data:`MAX_HEADER_WAIT` (one day) is read as one day, with a
warning logged once per header name: a stray ``retry-after: 1e300`` cannot freeze a
limiter for ever.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

from limitor.errors import LimitorError

__all__ = (
    "MAX_HEADER_WAIT",
    "HeaderError",
    "ProviderReport",
    "parse_duration",
    "parse_rate_limit_headers",
)

log = logging.getLogger("limitor")

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
MAX_HEADER_WAIT = 86_400.0
"""The longest wait or reset, in seconds, that a header is taken to ask for: one day.

Providers' limits reset within a day; a longer value is a bug or an attack, and would
otherwise keep a limiter closed for ever.
"""

_capped_names: set[str] = set()  # header names whose capping was already logged

_KINDS = {
    "requests": "requests",
    "tokens": "tokens",
    "input-tokens": "input_tokens",
    "output-tokens": "output_tokens",
}


class HeaderError(LimitorError, ValueError):
    """A rate-limit header has a value that cannot be read."""


@dataclass
class ProviderReport:
    """What a response's headers say about the provider's limits, by unit.

    Units are ``"requests"``, ``"tokens"``, ``"input_tokens"`` and ``"output_tokens"``.
    """

    limit: dict[str, float] = field(default_factory=dict)
    """The provider's limit per unit."""

    remaining: dict[str, float] = field(default_factory=dict)
    """Units left now, per unit."""

    reset_after: dict[str, float] = field(default_factory=dict)
    """Seconds until each unit's limit is full again (at most :data:`MAX_HEADER_WAIT`)."""

    retry_after: float | None = None
    """Seconds the provider asks to wait before any new call (on a 429); at most
    :data:`MAX_HEADER_WAIT`."""


def parse_duration(text: str) -> float:
    """Seconds in a Go-style duration: ``"6m0s"``, ``"1s"``, ``"120ms"``, ``"1h2m3.5s"``.

    A bare number is taken as seconds.

    Raises:
        HeaderError: the text is not a duration.
    """
    value = text.strip().lower()
    try:
        seconds = float(value)
    except ValueError:
        parts = _DURATION.findall(value)
        if not parts or "".join(number + unit for number, unit in parts) != value:
            raise HeaderError(f"not a duration: {text!r}") from None
        seconds = sum(float(number) * _UNITS[unit] for number, unit in parts)
    if not math.isfinite(seconds) or seconds < 0:
        raise HeaderError(f"not a duration: {text!r}")
    return seconds


def _number(text: str, name: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise HeaderError(f"{name}: not a number: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise HeaderError(f"{name}: not a count: {text!r}")
    return value


def _seconds_until(text: str, name: str, wall_now: float) -> float:
    """Seconds from ``wall_now`` until an RFC 3339 or HTTP date (or a duration)."""
    value = text.strip()
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            try:
                return parse_duration(value)
            except HeaderError:
                raise HeaderError(f"{name}: not a time or duration: {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return max(moment.timestamp() - wall_now, 0.0)


def _capped(seconds: float, name: str) -> float:
    """``seconds``, or :data:`MAX_HEADER_WAIT` if longer (logged once per header name)."""
    if seconds <= MAX_HEADER_WAIT:
        return seconds
    if name not in _capped_names:
        _capped_names.add(name)
        log.warning(
            "rate-limit header %s asks for %.6g s; taking %g s (one day) instead",
            name,
            seconds,
            MAX_HEADER_WAIT,
        )
    return MAX_HEADER_WAIT


def _lowercase(headers: object) -> dict[str, str]:
    if isinstance(headers, Mapping):
        items: Iterable[tuple[object, object]] = headers.items()
    elif isinstance(headers, Iterable) and not isinstance(headers, (str, bytes)):
        items = headers
    else:
        raise HeaderError(f"headers must be a mapping or (name, value) pairs, got {headers!r}")
    result: dict[str, str] = {}
    for pair in items:
        try:
            name, value = pair
        except (TypeError, ValueError):
            raise HeaderError(f"not a (name, value) pair: {pair!r}") from None
        result[str(name).lower()] = value.decode() if isinstance(value, bytes) else str(value)
    return result


def parse_rate_limit_headers(
    headers: object, *, strict: bool = True, wall_now: float | None = None
) -> ProviderReport:
    """Read the rate-limit headers of an LLM provider's response.

    Args:
        headers: a mapping (``dict``, ``httpx.Headers``...) or ``(name, value)`` pairs.
        strict: raise :class:`HeaderError` on a malformed value (default); with
            ``False``, skip it with a logged warning.
        wall_now: the current Unix time, for reset times given as dates (tests).

    Waits and resets longer than :data:`MAX_HEADER_WAIT` (one day) are read as one day,
    with a warning logged once per header name.

    Example:
        >>> report = parse_rate_limit_headers(
        ...     {"x-ratelimit-remaining-tokens": "1500", "x-ratelimit-reset-tokens": "6m0s"}
        ... )
        >>> report.remaining["tokens"], report.reset_after["tokens"]
        (1500.0, 360.0)
    """
    lowered = _lowercase(headers)
    now = time.time() if wall_now is None else wall_now
    report = ProviderReport()

    def read(
        name: str, parse: object, target: dict[str, float], unit: str, wait: bool = False
    ) -> None:
        """Parse header ``name`` into ``target[unit]``; a ``wait`` is capped at one day."""
        text = lowered.get(name)
        if text is None:
            return
        try:
            value = parse(text, name)  # type: ignore[operator]
        except HeaderError as error:
            if strict:
                raise
            log.warning("ignoring rate-limit header %s: %s", name, error)
        else:
            target[unit] = _capped(value, name) if wait else value

    def reset_duration(text: str, name: str) -> float:
        try:
            return parse_duration(text)
        except HeaderError:
            raise HeaderError(f"{name}: not a duration: {text!r}") from None

    for kind, unit in _KINDS.items():
        read(f"x-ratelimit-limit-{kind}", _number, report.limit, unit)
        read(f"x-ratelimit-remaining-{kind}", _number, report.remaining, unit)
        read(f"x-ratelimit-reset-{kind}", reset_duration, report.reset_after, unit, True)
        read(f"anthropic-ratelimit-{kind}-limit", _number, report.limit, unit)
        read(f"anthropic-ratelimit-{kind}-remaining", _number, report.remaining, unit)
        read(
            f"anthropic-ratelimit-{kind}-reset",
            lambda text, name: _seconds_until(text, name, now),
            report.reset_after,
            unit,
            True,
        )
    waits: dict[str, float] = {}
    read("retry-after-ms", lambda text, name: _number(text, name) / 1000, waits, "ms", True)
    read("retry-after", lambda text, name: _seconds_until(text, name, now), waits, "s", True)
    if waits:
        report.retry_after = waits.get("ms", waits.get("s"))
    return report
