"""Rate-limit headers: read from a server's response, and written for our own responses.

Reading (the httpx transports): what a response says about the server's limit for us,
as a :class:`Feedback`, from

* ``Retry-After`` (seconds or an HTTP date) and ``retry-after-ms``, on 429 and 503;
* the IETF fields of draft-ietf-httpapi-ratelimit-headers (``RateLimit:
  "default";r=50;t=30`` and ``RateLimit-Policy: "default";q=100;w=60``, HTTP Structured
  Fields lists, parsed with ``http_sf``), and the earlier drafts' ``RateLimit-Remaining``;
* ``x-ratelimit-remaining`` and OpenAI-style ``x-ratelimit-remaining-requests`` (through
  :func:`limitor.llm.parse_rate_limit_headers`).

Malformed fields are ignored (the draft requires it), with a debug log line. Every field
is read in time linear in its length; values longer than
:data:`~limitor.llm.headers.MAX_VALUE_LENGTH` (the ``RateLimit`` lists: ``MAX_FIELD_LENGTH``
in all) are ignored, and ``bytes`` are accepted. Of several ``Retry-After`` fields the
largest counts.

Writing (the ASGI middleware): the two IETF fields for a bucket, serialised by ``http_sf``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from limitor.contrib._common import require
from limitor.llm.headers import MAX_RETRY_AFTER, MAX_VALUE_LENGTH, parse_rate_limit_headers
from limitor.per_user import PerUserLimiter
from limitor.results import Status

log = logging.getLogger("limitor")

MAX_HOLD = MAX_RETRY_AFTER
"""The longest hold a ``Retry-After`` may impose by default: ten minutes (longer values are
capped and logged; the httpx transports cap at their ``max_retry_after``)."""

MAX_FIELD_LENGTH = 2 * MAX_VALUE_LENGTH
"""The longest ``RateLimit``/``RateLimit-Policy`` field read (all its lines together; a
real one names a few policies in a hundred characters or so)."""

RETRY_STATUSES = frozenset({429, 503})
"""Statuses whose ``Retry-After`` means "send nothing until then"."""


@dataclass(frozen=True, slots=True)
class Feedback:
    """What a response's headers say about the server's limit for this key."""

    retry_after: float | None = None
    """Seconds the server asks to wait before any new request (429/503 only)."""

    remaining: float | None = None
    """The fewest units the headers say are left now (``None``: no header says)."""


def _field(pairs: list[tuple[str, str]], name: str) -> list[Any]:
    """The members of the Structured Fields list ``name`` (all its lines), or []."""
    values = [value for key, value in pairs if key == name]
    if not values:
        return []
    if sum(len(value) for value in values) > MAX_FIELD_LENGTH:
        log.debug("ignoring a %s header longer than %d characters", name, MAX_FIELD_LENGTH)
        return []
    http_sf = require("http_sf", "httpx")
    try:
        parsed = http_sf.parse(", ".join(values).encode("latin-1"), tltype="list")
    except (http_sf.StructuredFieldError, UnicodeEncodeError, ValueError) as error:
        log.debug("ignoring malformed %s header %r: %s", name, values, error)
        return []
    return list(parsed)


def _count(value: object) -> float | None:
    """A non-negative finite number of units, else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


def _number(text: str | None) -> float | None:
    if text is None or len(text) > MAX_VALUE_LENGTH:
        return None
    try:
        return _count(float(text.strip()))
    except ValueError:
        return None


def _text(value: object) -> str:
    """A header name or value as text (``bytes`` as latin-1, as HTTP has it)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("latin-1")
    return str(value)


def read_feedback(
    headers: Iterable[tuple[str | bytes, str | bytes]],
    status_code: int,
    *,
    wall_now: float | None = None,
    max_retry_after: float = MAX_HOLD,
) -> Feedback:
    """Read a response's rate-limit headers (``headers`` as ``(name, value)`` pairs).

    Never raises for what a server sent: a malformed field is ignored. A ``Retry-After``
    above ``max_retry_after`` is read as ``max_retry_after`` (logged once per name).
    """
    pairs = [(_text(name).lower(), _text(value)) for name, value in headers]
    last: dict[str, str] = {}
    for name, value in pairs:  # the most cautious of repeated counts: the smallest
        number = _number(value)
        current = _number(last.get(name))
        if name not in last or (number is not None and (current is None or number < current)):
            last[name] = value
    retry_after = None
    if status_code in RETRY_STATUSES:
        waits = [
            (name, value) for name, value in pairs if name in ("retry-after", "retry-after-ms")
        ]
        if waits:
            retry_after = parse_rate_limit_headers(
                waits, strict=False, wall_now=wall_now, max_retry_after=max_retry_after
            ).retry_after
    caps: list[float] = []
    for member in _field(pairs, "ratelimit"):  # "policy";r=REMAINING;t=SECONDS
        cap = _count(member[1].get("r")) if isinstance(member, tuple) else None
        if cap is not None:
            caps.append(cap)
    for member in _field(pairs, "ratelimit-policy"):  # "policy";q=QUOTA;w=SECONDS
        cap = _count(member[1].get("q")) if isinstance(member, tuple) else None
        if cap is not None:
            caps.append(cap)  # never more available than the whole quota
    for name in ("ratelimit-remaining", "x-ratelimit-remaining"):
        cap = _number(last.get(name))
        if cap is not None:
            caps.append(cap)
    if "x-ratelimit-remaining-requests" in last:
        report = parse_rate_limit_headers(pairs, strict=False, wall_now=wall_now)
        if "requests" in report.remaining:
            caps.append(report.remaining["requests"])
    return Feedback(retry_after=retry_after, remaining=min(caps) if caps else None)


def apply_feedback(
    limiter: PerUserLimiter, key: Any, feedback: Feedback, *, max_hold: float = MAX_HOLD
) -> None:
    """Tighten ``key``'s bucket by what the server said; never loosen it.

    A ``Retry-After`` holds the bucket (nothing is admitted until then, capped at
    ``max_hold``: the transport's ``max_retry_after``, by default :data:`MAX_HOLD`);
    otherwise, when the server says fewer units are left than the bucket believes, the
    difference is charged as debt.
    """
    if feedback.retry_after is not None:
        limiter.hold(_hold_for(feedback.retry_after, key, max_hold), key=key)
        return
    if feedback.remaining is None:
        return
    debt = _debt(limiter, limiter.status(key, 0), feedback.remaining)
    if debt > 0:
        limiter.charge(debt, key=key)


async def apply_feedback_async(
    limiter: PerUserLimiter, key: Any, feedback: Feedback, *, max_hold: float = MAX_HOLD
) -> None:
    """:func:`apply_feedback` for tasks: the limiter's async verbs, never blocking."""
    if feedback.retry_after is not None:
        await limiter.hold_async(_hold_for(feedback.retry_after, key, max_hold), key=key)
        return
    if feedback.remaining is None:
        return
    debt = _debt(limiter, await limiter.status_async(key, 0), feedback.remaining)
    if debt > 0:
        await limiter.charge_async(debt, key=key)


def _hold_for(seconds: float, key: Any, max_hold: float) -> float:
    """A server's ``Retry-After``, capped at ``max_hold`` (logged when it is)."""
    if seconds > max_hold:
        log.warning("Retry-After of %gs for %r capped at %gs", seconds, key, max_hold)
        return max_hold
    return seconds


def _debt(limiter: PerUserLimiter, status: Status, remaining: float) -> float:
    """What to charge so that the bucket believes in no more than the server reports."""
    # status() reads 0 while in debt; the debt itself is retry_after(0) * rate.
    believed = status.remaining if status.remaining > 0 else -status.retry_after * limiter.rate
    return believed - remaining


def policy_fields(
    name: str, status: Status, rate: float, *, retry_after: float | None
) -> dict[str, str]:
    """The IETF ``RateLimit-Policy`` and ``RateLimit`` fields for a bucket's ``status``.

    The policy is the burst as quota ``q`` over ``w``, the whole seconds a drained bucket
    needs to refill; ``r`` is the whole units left and ``t`` the whole seconds until the
    bucket is full again (for a refusal: until the request would be admitted, so that
    ``Retry-After`` never points before the end of ``t``).
    """
    http_sf = require("http_sf", "asgi")
    quota = math.floor(status.limit)
    window = max(1, math.ceil(status.limit / rate - 1e-9))
    if retry_after is None:
        reset = math.ceil(status.reset_after - 1e-9)
    else:
        reset = math.ceil(retry_after - 1e-9)
    remaining = 0 if retry_after is not None else math.floor(status.remaining + 1e-9)
    # Structured Fields integers have at most 15 digits: a hold of years must not make
    # the header unwritable (the middleware refuses limits that could not fit at all).
    top = 10**15 - 1
    quota, window, remaining = min(quota, top), min(window, top), min(remaining, top)
    return {
        "RateLimit-Policy": http_sf.ser([(name, {"q": quota, "w": window})]),
        "RateLimit": http_sf.ser([(name, {"r": remaining, "t": min(max(reset, 0), top)})]),
    }
