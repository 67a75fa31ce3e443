"""Validation of per-call arguments (amounts and timeouts), with errors that name the value."""

from __future__ import annotations

import math
import numbers
from decimal import Decimal

from limitor.errors import AmountError, AmountTypeError, ConfigError, ConfigTypeError

INF = math.inf


def check_quantity(name: str, value: object) -> float:
    """``value`` as a float if it is a finite real number of zero or more, else raise."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, Decimal)):
        raise AmountTypeError(f"{name} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise AmountError(f"{name} must be a finite number of zero or more, got {value!r}")
    return number


def check_amount(value: object, burst: float) -> float:
    """A valid amount for a limiter whose burst is ``burst``, as a float.

    Raises:
        AmountError: negative, NaN or infinite, or larger than the burst (it could never
            be admitted); ``AmountTypeError`` when it is not a number.
    """
    amount = check_quantity("amount", value)
    if amount > burst:
        raise AmountError(
            f"amount {value!r} is larger than the burst ({burst:g}) and can never be admitted"
        )
    return amount


def check_timeout(value: object) -> float:
    """The longest wait allowed by ``timeout`` (``None`` means forever)."""
    if value is None:
        return INF
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, Decimal)):
        raise ConfigTypeError(f"timeout must be a number of seconds or None, got {value!r}")
    seconds = float(value)
    if math.isnan(seconds) or seconds < 0:
        raise ConfigError(f"timeout must be zero or more seconds, got {value!r}")
    return seconds


def check_count(name: str, value: object, minimum: int = 1) -> int:
    """``value`` if it is a whole number of at least ``minimum``, else raise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigTypeError(f"{name} must be a whole number, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value!r}")
    return value
