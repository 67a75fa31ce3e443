"""Reading LLM providers' rate-limit headers.

OpenAI-style responses carry ``x-ratelimit-limit-requests``, ``x-ratelimit-remaining-
requests``, ``x-ratelimit-reset-requests`` (a duration such as ``6m0s``, ``1s`` or
``120ms``) and the same for ``tokens``; Anthropic-style ones carry
``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}``
(the reset as an RFC 3339 time). Either may send ``retry-after`` (seconds or an HTTP date)
and OpenAI ``retry-after-ms``.

Every value is read in time linear in its length, and values longer than
:data:`MAX_VALUE_LENGTH` characters are refused without being parsed; ``bytes`` names and
values are accepted (ASCII; anything else is a malformed value). A reset longer than
:data:`MAX_HEADER_WAIT` (one day) is read as one day, and a ``retry-after`` longer than
``max_retry_after`` (default :data:`MAX_RETRY_AFTER`, ten minutes) as that, with a warning
logged once per header name: a stray ``retry-after: 1e300`` cannot freeze a limiter. When
a header comes several times, the most cautious value counts: the largest wait or reset,
the smallest limit or remaining count. A bare number is always seconds (``20250101`` is
20,250,101 seconds, capped, not a date).
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import cast

from limitor.errors import LimitorError

__all__ = (
    "MAX_HEADER_WAIT",
    "MAX_RETRY_AFTER",
    "MAX_VALUE_LENGTH",
    "HeaderError",
    "ProviderReport",
    "parse_duration",
    "parse_rate_limit_headers",
)

log = logging.getLogger("limitor")

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)", re.ASCII)
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+|[0-9]+(?:\.[0-9]*)?[eE][+-]?[0-9]+")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
MAX_HEADER_WAIT = 86_400.0
"""The longest reset, in seconds, that a header is taken to announce: one day.

Providers' limits reset within a day; a longer value is a bug or an attack, and would
otherwise keep a limiter closed for ever.
"""

MAX_RETRY_AFTER = 600.0
"""The longest ``retry-after`` (seconds) a response is taken to ask for by default: ten
minutes. A longer one is read as this (``parse_rate_limit_headers(max_retry_after=...)``)."""

MAX_VALUE_LENGTH = 1024
"""The longest header value read, in characters; a longer one is malformed (not parsed)."""

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
    ``max_retry_after`` (:data:`MAX_RETRY_AFTER` by default)."""


def _too_long(text: str, what: str) -> HeaderError | None:
    if len(text) > MAX_VALUE_LENGTH:
        return HeaderError(f"{what}: longer than {MAX_VALUE_LENGTH} characters ({len(text)})")
    return None


def parse_duration(text: str) -> float:
    """Seconds in a Go-style duration: ``"6m0s"``, ``"1s"``, ``"120ms"``, ``"1h2m3.5s"``.

    A bare number is taken as seconds. Linear in the length of ``text``.

    Raises:
        HeaderError: the text is not a duration (or is longer than
            :data:`MAX_VALUE_LENGTH`).
    """
    if not isinstance(text, str):
        raise HeaderError(f"a duration must be a str, got {type(text).__name__}")
    too_long = _too_long(text, "duration")
    if too_long is not None:
        raise too_long
    value = text.strip().lower()
    if _NUMBER.fullmatch(value):
        seconds = float(value)
    else:
        # One anchored match per part and never a restart: a failed part fails the
        # whole text, so the scan is linear (findall would retry at every digit).
        seconds, position, end = 0.0, 0, len(value)
        if not end:
            raise HeaderError(f"not a duration: {text!r}")
        while position < end:
            part = _DURATION_PART.match(value, position)
            if part is None:
                raise HeaderError(f"not a duration: {_shown(text)}")
            seconds += float(part[1]) * _UNITS[part[2]]
            position = part.end()
    if not math.isfinite(seconds) or seconds < 0:
        raise HeaderError(f"not a duration: {_shown(text)}")
    return seconds


def _shown(text: str) -> str:
    """``text`` for an error message: its repr, cut to 60 characters."""
    return repr(text) if len(text) <= 60 else repr(text[:60]) + f"... ({len(text)} characters)"


def _number(text: str, name: str) -> float:
    value = text.strip()
    if not _NUMBER.fullmatch(value):
        raise HeaderError(f"{name}: not a number: {_shown(text)}")
    number = float(value)
    if not math.isfinite(number):
        raise HeaderError(f"{name}: not a count: {_shown(text)}")
    return number


def _seconds_until(text: str, name: str, wall_now: float) -> float:
    """Seconds from ``wall_now`` until an RFC 3339 or HTTP date, or a number, or a duration.

    A bare number is never a date: ``20250101`` is seconds.
    """
    value = text.strip()
    if _NUMBER.fullmatch(value):
        return float(value)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            try:
                return parse_duration(value)
            except HeaderError:
                raise HeaderError(f"{name}: not a time or duration: {_shown(text)}") from None
    try:
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        stamp = moment.timestamp()
    except (OverflowError, ValueError, OSError):
        raise HeaderError(f"{name}: not a time: {_shown(text)}") from None
    return max(stamp - wall_now, 0.0)


def _capped(seconds: float, name: str, cap: float = MAX_HEADER_WAIT) -> float:
    """``seconds``, or ``cap`` if longer (logged once per header name)."""
    if seconds <= cap:
        return seconds
    if name not in _capped_names:
        _capped_names.add(name)
        log.warning("rate-limit header %s asks for %.6g s; taking %g s instead", name, seconds, cap)
    return cap


def _text(value: object, strict: bool) -> str:
    """A header name or value as text: ``bytes`` must be ASCII (strict), else latin-1."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        try:
            return data.decode("ascii")
        except UnicodeDecodeError:
            if strict:
                raise HeaderError(f"header bytes are not ASCII: {_shown(repr(data))}") from None
            return data.decode("latin-1")
    try:
        return str(value)
    except Exception as error:  # a hostile __str__
        raise HeaderError(f"cannot read header {type(value).__name__}: {error}") from None


def _lowercase(headers: object, strict: bool) -> dict[str, list[str]]:
    """Every value of every header, by lowercase name (in order)."""
    if isinstance(headers, Mapping):
        items: Iterable[object] = headers.items()
    elif isinstance(headers, Iterable) and not isinstance(headers, (str, bytes)):
        items = headers
    else:
        raise HeaderError(
            f"headers must be a mapping or (name, value) pairs, got {type(headers).__name__}"
        )
    result: dict[str, list[str]] = {}
    for pair in items:
        try:
            name, value = cast("tuple[object, object]", pair)
        except (TypeError, ValueError):
            raise HeaderError(f"not a (name, value) pair: {_shown(repr(pair))}") from None
        try:
            text = _text(value, strict)
            lowered = _text(name, strict).lower()
        except HeaderError as error:
            if strict:
                raise
            log.warning("ignoring a rate-limit header: %s", error)
            continue
        result.setdefault(lowered, []).append(text)
    return result


def parse_rate_limit_headers(
    headers: object,
    *,
    strict: bool = True,
    wall_now: float | None = None,
    max_retry_after: float = MAX_RETRY_AFTER,
) -> ProviderReport:
    """Read the rate-limit headers of an LLM provider's response.

    Args:
        headers: a mapping (``dict``, ``httpx.Headers``...) or ``(name, value)`` pairs;
            names and values may be ``str`` or ``bytes``.
        strict: raise :class:`HeaderError` on a malformed value (default); with
            ``False``, skip it with a logged warning (never raise).
        wall_now: the current Unix time, for reset times given as dates (tests).
        max_retry_after: the longest ``retry-after`` taken (seconds); longer is read as
            this, with a warning logged once per header name.

    Resets longer than :data:`MAX_HEADER_WAIT` (one day) are read as one day. A header
    given several times counts with its most cautious value (the largest wait or reset,
    the smallest limit or remaining count); so does a ``retry-after`` whose values were
    joined with commas (``"120, 5"``). Every value is read in linear time, and one longer
    than :data:`MAX_VALUE_LENGTH` is malformed.

    Example:
        >>> report = parse_rate_limit_headers(
        ...     {"x-ratelimit-remaining-tokens": "1500", "x-ratelimit-reset-tokens": "6m0s"}
        ... )
        >>> report.remaining["tokens"], report.reset_after["tokens"]
        (1500.0, 360.0)
    """
    if not strict:
        try:
            return _parse(headers, False, wall_now, max_retry_after)
        except HeaderError as error:  # the headers as a whole cannot be read
            log.warning("ignoring rate-limit headers: %s", error)
            return ProviderReport()
    return _parse(headers, True, wall_now, max_retry_after)


_UNIT_HEADERS = tuple(
    (unit, f"{prefix}limit{suffix}", f"{prefix}remaining{suffix}", f"{prefix}reset{suffix}", dated)
    for kind, unit in _KINDS.items()
    for prefix, suffix, dated in (
        ("x-ratelimit-", f"-{kind}", False),
        (f"anthropic-ratelimit-{kind}-", "", True),
    )
)
"""The per-unit headers, in reading order: ``(unit, limit, remaining, reset, dated)``.

One row per unit and provider style, the three header names and whether the reset is a
time (Anthropic-style, ``dated``) rather than a duration (OpenAI-style, ``6m0s``).
"""


def _parse(
    headers: object, strict: bool, wall_now: float | None, max_retry_after: float
) -> ProviderReport:
    """:func:`parse_rate_limit_headers`; a malformed value raises only when ``strict``.

    Raises:
        HeaderError: ``headers`` cannot be read as a whole, or (``strict``) a value is
            malformed.
    """
    reader = _Reader(
        _lowercase(headers, strict), strict, time.time() if wall_now is None else wall_now
    )
    report = ProviderReport()
    for unit, limit, remaining, reset, dated in _UNIT_HEADERS:
        reader.read(limit, _number, report.limit, unit)
        reader.read(remaining, _number, report.remaining, unit)
        reset_after = reader.until if dated else _reset_duration
        reader.read(reset, reset_after, report.reset_after, unit, largest=True, cap=MAX_HEADER_WAIT)
    waits: dict[str, float] = {}
    reader.read("retry-after-ms", _wait_ms, waits, "ms", largest=True, cap=max_retry_after)
    reader.read("retry-after", reader.wait, waits, "s", largest=True, cap=max_retry_after)
    if waits:
        report.retry_after = waits.get("ms", waits.get("s"))
    return report


class _Reader:
    """One response's headers, read a header at a time into a :class:`ProviderReport`.

    Args:
        lowered: every value of every header, by lowercase name (:func:`_lowercase`).
        strict: raise :class:`HeaderError` on a malformed value; else skip it, logged.
        now: the current Unix time, for resets and waits given as dates.
    """

    __slots__ = ("lowered", "now", "strict")

    def __init__(self, lowered: dict[str, list[str]], strict: bool, now: float) -> None:
        self.lowered = lowered
        self.strict = strict
        self.now = now

    def read(
        self,
        name: str,
        parse: Callable[[str, str], float],
        target: dict[str, float],
        unit: str,
        *,
        largest: bool = False,
        cap: float | None = None,
    ) -> None:
        """Parse header ``name`` into ``target[unit]`` (its most cautious value)."""
        texts = self.lowered.get(name)
        if texts is None:
            return
        values = []
        for text in texts:
            try:
                too_long = _too_long(text, name)
                if too_long is not None:
                    raise too_long
                value = parse(text, name)
                if value < 0:
                    raise HeaderError(f"{name}: negative: {_shown(text)}")
            except HeaderError as error:
                if self.strict:
                    raise
                log.warning("ignoring rate-limit header %s: %s", name, error)
            else:
                values.append(value)
        if values:
            value = max(values) if largest else min(values)
            target[unit] = value if cap is None else _capped(value, name, cap)

    def until(self, text: str, name: str) -> float:
        """Seconds until a reset given as a time (or a number, or a duration)."""
        return _seconds_until(text, name, self.now)

    def wait(self, text: str, name: str) -> float:
        """A retry-after: several numbers joined by commas give the largest."""
        if "," in text and not any(c.isalpha() for c in text):
            return max(_seconds_until(piece, name, self.now) for piece in text.split(","))
        return _seconds_until(text, name, self.now)


def _reset_duration(text: str, name: str) -> float:
    """An OpenAI-style reset: a duration (``6m0s``), the error naming the header."""
    try:
        return parse_duration(text)
    except HeaderError:
        raise HeaderError(f"{name}: not a duration: {_shown(text)}") from None


def _wait_ms(text: str, name: str) -> float:
    """A ``retry-after-ms`` in seconds: several numbers joined by commas give the largest."""
    return max(_number(piece, name) for piece in text.split(",")) / 1000
