"""limitor 0.6 helpers, kept so 0.6 code keeps importing them."""

from __future__ import annotations

from typing import ParamSpec, TypeVar

from limitor._checks import check_amount
from limitor.base import HasCapacity

__all__ = ("P", "R", "validate_amount")

P = ParamSpec("P")  # parameters
R = TypeVar("R")  # return type


def validate_amount(rate_limiter: HasCapacity, amount: float) -> None:
    """Raise if ``amount`` could never be acquired from ``rate_limiter`` (limitor 0.6).

    Raises:
        AmountError: ``amount`` is negative, NaN, not a number, or above the capacity (a
            ``ValueError``, as in 0.6).
    """
    check_amount(amount, float(rate_limiter.capacity))
