"""Validation of per-call arguments (amounts and timeouts), with errors that name the value.

Every check turns what ``float()`` cannot take (a signalling ``Decimal("sNaN")``, an int
or a ``Fraction`` beyond the float range such as ``10**400``) into the library's own
error instead of ``ValueError``, ``OverflowError`` or ``decimal.InvalidOperation``.
"""

from __future__ import annotations

import math
import numbers
import reprlib
from collections.abc import Callable, Hashable
from decimal import Decimal
from typing import Literal

from limitor.errors import AmountError, AmountTypeError, ConfigError, ConfigTypeError

INF = math.inf

OnBackendError = Literal["raise", "allow"]
"""What to do when a limit's backend fails: raise ``BackendError``, or admit (fail open)."""

_SHORT = reprlib.Repr()
_SHORT.maxlong = 24
_SHORT.maxstring = 40
_SHORT.maxother = 40


def show(value: object) -> str:
    """``repr(value)``, shortened for messages (``10**400`` is not printed in full)."""
    return _SHORT.repr(value)


def as_float(value: object) -> float | None:
    """A real number ``value`` as a float, or None when no float can stand for it.

    None for a signalling NaN and for finite values beyond the float range (``10**400``,
    ``Decimal("1e400")``, ``Fraction(10**400)``); a quiet NaN comes back as NaN and an
    infinite value as infinity, for the caller to judge. ``value`` must be a
    :class:`numbers.Real` or a :class:`~decimal.Decimal`.
    """
    try:
        number = float(value)  # type: ignore[arg-type]
    except (OverflowError, ValueError, ArithmeticError):
        return None
    if math.isinf(number) and (
        isinstance(value, numbers.Integral) or (isinstance(value, Decimal) and value.is_finite())
    ):
        return None  # a finite number too large for a float
    return number


def is_number(value: object) -> bool:
    """True for a real number limitor accepts (bools are not numbers here)."""
    return not isinstance(value, bool) and isinstance(value, (numbers.Real, Decimal))


def check_quantity(name: str, value: object) -> float:
    """``value`` as a float if it is a finite real number of zero or more, else raise.

    Raises:
        AmountTypeError: ``value`` is not a real number (``None``, a string, a bool...).
        AmountError: negative, NaN (``Decimal("sNaN")`` too), infinite, or too large for
            a float (``10**400``).
    """
    if not is_number(value):
        raise AmountTypeError(f"{name} must be a number, got {show(value)}")
    number = as_float(value)
    if number is None or not math.isfinite(number) or number < 0:
        raise AmountError(f"{name} must be a finite number of zero or more, got {show(value)}")
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
            f"amount {show(value)} is larger than the burst ({burst:g}) and can never be admitted"
        )
    return amount


def check_timeout(value: object) -> float:
    """The longest wait allowed by ``timeout`` (``None`` means forever).

    Raises:
        ConfigTypeError: ``value`` is neither a number nor None.
        ConfigError: negative, NaN, or a finite number too large for a float
            (``10**400``: give ``None`` to wait for ever).
    """
    if value is None:
        return INF
    if not is_number(value):
        raise ConfigTypeError(f"timeout must be a number of seconds or None, got {show(value)}")
    seconds = as_float(value)
    if seconds is None or math.isnan(seconds) or seconds < 0:
        raise ConfigError(
            f"timeout must be zero or more seconds (None: no limit), got {show(value)}"
        )
    return seconds


def check_count(name: str, value: object, minimum: int = 1) -> int:
    """``value`` if it is a whole number of at least ``minimum``, else raise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigTypeError(f"{name} must be a whole number, got {show(value)}")
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {show(value)}")
    return value


def check_name(name: object) -> str | None:
    """``name`` if it is ``None`` or a non-empty string (a limit's identity).

    Raises:
        ConfigTypeError: anything else (the empty string too).
    """
    if name is None or (isinstance(name, str) and name):
        return name
    raise ConfigTypeError(f"name must be a non-empty string, got {show(name)}")


def check_on_backend_error(value: object) -> OnBackendError:
    """``value`` if it is ``"raise"`` or ``"allow"``.

    Raises:
        ConfigError: anything else.
    """
    if value == "raise" or value == "allow":
        return value
    raise ConfigError(f"on_backend_error must be 'raise' or 'allow', got {show(value)}")


def check_not_negative(name: str, value: object) -> float:
    """``value`` as a float if it is a finite real number of zero or more (a setting).

    The settings' twin of :func:`check_quantity`, which raises the amount errors.

    Raises:
        ConfigTypeError: ``value`` is not a real number (bools and strings included).
        ConfigError: negative, NaN, infinite, or too large for a float (``10**400``).
    """
    try:
        return check_quantity(name, value)
    except AmountTypeError as error:
        raise ConfigTypeError(*error.args) from None
    except AmountError as error:
        raise ConfigError(*error.args) from None


def check_weight(weight: object) -> Callable[[Hashable], float] | None:
    """``weight`` if it is a callable (or ``None``: every key weighs 1)."""
    if weight is not None and not callable(weight):
        raise ConfigTypeError(f"weight must be a callable key -> positive number, got {weight!r}")
    return weight
