"""Configuration of a limit: how much, over how long, and how much at once.

``BucketConfig(capacity=10, seconds=1)`` is the limitor 0.6 spelling of "10 per second":
the rate is ``capacity / seconds`` units per second and, unless ``burst`` says otherwise,
up to ``capacity`` units may go at once. :func:`parse_rate` reads the same from text such
as ``"10/s"`` or ``"100 per minute"``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import NamedTuple

from limitor._checks import as_float, is_number, show
from limitor.errors import ConfigError, ConfigTypeError

__all__ = ("BucketConfig", "Capacity", "as_config", "parse_rate")


def check_positive(name: str, value: object) -> float:
    """Return ``value`` as a float if it is a finite number above zero, else raise.

    Raises:
        ConfigTypeError: ``value`` is not a real number (bools and strings included).
        ConfigError: ``value`` is zero, negative, NaN or infinite, too large for a float
            (``10**400``) or so small that it rounds to zero as a float.
    """
    if not is_number(value):
        raise ConfigTypeError(f"{name} must be a number, got {show(value)}")
    number = as_float(value)
    if number is None or not math.isfinite(number) or number <= 0:
        raise ConfigError(f"{name} must be a finite number above zero, got {show(value)}")
    return number


def check_rate(capacity: float, seconds: float, burst: float) -> float:
    """The rate ``capacity / seconds`` if the engines can compute with it, else raise.

    The engines divide by the rate and by the burst: the rate, the interval between
    units (``1 / rate``) and the burst's length in seconds (``burst / rate``) must all be
    finite floats above zero. Far-apart values such as ``capacity=1e-200,
    seconds=1e200`` or ``capacity=1e-320`` fail here, at construction, instead of
    dividing by zero or admitting without limit later.

    Args:
        capacity: units per ``seconds``, already checked by :func:`check_positive`.
        seconds: the period, already checked.
        burst: the effective burst, already checked.

    Raises:
        ConfigError: one of the three is zero or infinite as a float; the message names
            the fields.
    """
    rate = capacity / seconds
    if rate == 0.0 or math.isinf(rate):
        raise ConfigError(
            f"capacity={capacity!r} over seconds={seconds!r} is a rate that "
            f"{'rounds to zero' if rate == 0.0 else 'overflows'} as a float: "
            "give the capacity and seconds closer in size"
        )
    interval, length = 1.0 / rate, burst / rate
    if math.isinf(interval):
        raise ConfigError(
            f"capacity={capacity!r} over seconds={seconds!r} is a rate of {rate!r} per "
            "second, too small: the time between two units overflows a float"
        )
    if length == 0.0 or math.isinf(length):
        raise ConfigError(
            f"burst={burst!r} at a rate of {rate!r} per second lasts "
            f"{'zero' if length == 0.0 else 'infinitely many'} seconds as a float: "
            "give a burst closer in size to the rate"
        )
    return rate


class CapacityPerSeconds:
    """A limit written as ``capacity`` units every ``seconds``, at most ``burst`` at once.

    The rate and the effective burst of :class:`BucketConfig` and of the LLM limiters'
    :class:`~limitor.llm.Limit`, which both declare the three fields.
    """

    __slots__ = ()

    capacity: float
    seconds: float
    burst: float | None

    @property
    def rate(self) -> float:
        """The rate in units per second, ``capacity / seconds``."""
        return float(self.capacity) / float(self.seconds)

    @property
    def max_burst(self) -> float:
        """The effective burst, as a float (``burst``, or ``capacity`` when not given)."""
        return float(self.capacity if self.burst is None else self.burst)


@dataclass(frozen=True)
class BucketConfig(CapacityPerSeconds):
    """A limit of ``capacity`` units every ``seconds``, with bursts of up to ``burst`` units.

    Args:
        capacity: units admitted per ``seconds`` (requests, tokens, bytes...).
        seconds: the period over which ``capacity`` units are admitted.
        burst: the most units admitted at once by an idle limiter; defaults to ``capacity``.

    Raises:
        ConfigError: a value is zero, negative, NaN, infinite or beyond the float range
            (``ConfigTypeError`` for values that are not numbers), or the rate, the time
            between two units or the burst's length in seconds is zero or infinite as a
            float; the message names the field.

    Example:
        >>> BucketConfig(capacity=100, seconds=60).rate
        1.6666666666666667
    """

    capacity: float = 10
    """Units admitted per ``seconds``; also the default burst."""

    seconds: float = 1
    """The period, in seconds, over which ``capacity`` units are admitted."""

    burst: float | None = None
    """The most units an idle limiter admits at once; ``None`` means ``capacity``."""

    def __post_init__(self) -> None:
        """Validate every field."""
        capacity = check_positive("capacity", self.capacity)
        seconds = check_positive("seconds", self.seconds)
        if self.burst is not None:
            burst = check_positive("burst", self.burst)
        elif capacity < 1:
            raise ConfigError(
                f"capacity {show(self.capacity)} with the default burst (the capacity) "
                "could never admit one unit; for one call every 2 s write capacity=1, "
                "seconds=2, or give burst="
            )
        else:
            burst = capacity
        check_rate(capacity, seconds, burst)


class Capacity(NamedTuple):
    """Whether a bucket could admit an amount right now (limitor 0.6 ``capacity_info``)."""

    has_capacity: bool
    """True when the amount would be admitted without waiting."""

    needed_capacity: float
    """How many units are missing for the amount (zero or negative when it fits)."""


_UNITS = {
    "ms": 0.001,
    "millisecond": 0.001,
    "milliseconds": 0.001,
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "minutes": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
    "days": 86400.0,
}
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?"
_RATE = re.compile(
    rf"^\s*(?P<amount>{_NUMBER})\s*(?:/|per)\s*(?P<count>{_NUMBER})?\s*(?P<unit>[a-z]+)\s*$"
)


def parse_rate(text: str, *, burst: float | None = None) -> BucketConfig:
    """Parse ``"10/s"``, ``"100/minute"``, ``"5 per 2 seconds"``, ``"1000/h"`` or ``"1e3/s"``.

    Args:
        text: ``<amount>/<unit>`` or ``<amount> per <count> <unit>``; numbers may have a
            fraction or an exponent; units are ms, s, m (minutes), h and d, singular,
            plural or abbreviated.
        burst: the burst of the resulting config (default: the amount).

    Raises:
        ConfigError: the text is not a rate.

    Example:
        >>> parse_rate("100/minute")
        BucketConfig(capacity=100.0, seconds=60.0, burst=None)
    """
    if not isinstance(text, str):
        raise ConfigTypeError(f"rate must be a string such as '10/s', got {text!r}")
    match = _RATE.match(text.lower())
    unit = _UNITS.get(match.group("unit")) if match else None
    if match is None or unit is None:
        raise ConfigError(f"rate must look like '10/s' or '100 per minute', got {text!r}")
    count = float(match.group("count") or 1)
    return BucketConfig(capacity=float(match.group("amount")), seconds=count * unit, burst=burst)


def as_rate(
    rate: object,
    burst: float | None = None,
    *,
    name: str = "rate",
    expected: str = "a string such as '10/s'",
) -> BucketConfig:
    """A limit given as a rate string (``"10/s"``) or a :class:`BucketConfig`.

    ``burst`` (when given) replaces the string's default burst or the config's.

    Raises:
        ConfigTypeError: ``rate`` is neither; the message calls it ``name`` and says it
            must be ``expected`` or a BucketConfig.
        ConfigError: the string is not a rate.
    """
    if isinstance(rate, str):
        return parse_rate(rate, burst=burst)
    if isinstance(rate, BucketConfig):
        if burst is None:
            return rate
        return BucketConfig(capacity=rate.capacity, seconds=rate.seconds, burst=burst)
    raise ConfigTypeError(f"{name} must be {expected} or a BucketConfig, got {rate!r}")


def as_config(
    bucket_config: object = None, *, rate: object = None, burst: float | None = None
) -> BucketConfig:
    """The limit a bucket was given: a :class:`BucketConfig`, a rate string, or ``rate=``.

    ``None`` everywhere means the default, 10 per second. ``burst`` goes with a rate
    string (a ``BucketConfig`` carries its own).

    Raises:
        ConfigError: both a config and a rate are given, or ``burst`` without a rate.
        ConfigTypeError: ``bucket_config`` is neither a config nor a string.
    """
    if bucket_config is not None and rate is not None:
        raise ConfigError("give bucket_config or rate=, not both")
    if isinstance(bucket_config, str):
        bucket_config, rate = None, bucket_config
    if rate is not None:
        return parse_rate(rate, burst=burst)  # type: ignore[arg-type]
    if burst is not None:
        raise ConfigError("burst= goes with rate='10/s'; a BucketConfig has its own burst")
    if bucket_config is None:
        return BucketConfig()
    if not isinstance(bucket_config, BucketConfig):
        raise ConfigTypeError(
            f"bucket_config must be a BucketConfig or a rate such as '10/s', got {bucket_config!r}"
        )
    return bucket_config
