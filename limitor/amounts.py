"""What an amount is, for a limiter: one small policy object.

A :class:`~limitor.limiter.Limiter` asks its amounts policy every question about an
amount, and nothing else does: is it valid (``check``; ``check_actual`` and
``check_estimate`` for what a reconcile brings), what its store sees (``vector``: one
number per part), whether it takes anything (``is_nothing``), how an error message shows
it (``describe``) and what a reconcile charges and refunds (``split``).

:class:`ScalarAmounts` is one number (buckets and per-user limiters); the LLM limiter's
:class:`~limitor.llm.limits.CostAmounts` is a :class:`~limitor.llm.Cost` over several
parts (requests and tokens).
"""

from __future__ import annotations

from typing import Any, Protocol

from limitor._checks import check_amount, check_quantity

__all__ = ("Amounts", "ScalarAmounts")


class Amounts(Protocol):
    """What a limiter needs to know about its amounts (a valid amount is opaque to it)."""

    def check(self, amount: object) -> Any:
        """A valid amount to admit, normalised; raise ``AmountError`` otherwise."""
        ...

    def check_actual(self, actual: object, reserved: Any) -> Any:
        """A valid actual amount to reconcile ``reserved`` to (no burst bound: debt)."""
        ...

    def check_estimate(self, estimated: object) -> Any:
        """A valid earlier estimate, for the 0.6 ``reconcile(actual, estimated)``."""
        ...

    def probe(self, amount: object) -> Any:
        """A valid amount to ask the state about (``status``): no burst bound."""
        ...

    def vector(self, amount: Any) -> tuple[float, ...]:
        """A valid amount as the store sees it: one number per part."""
        ...

    def is_nothing(self, amount: Any) -> bool:
        """True for an amount that takes nothing from any limit."""
        ...

    def describe(self, amount: Any) -> str:
        """The amount, for error messages."""
        ...

    def split(self, actual: Any, reserved: Any) -> tuple[Any, Any]:
        """``(extra, unused)``: what to charge as debt and what to refund (None: nothing)."""
        ...

    def nothing(self) -> Any:
        """The amount that takes nothing (to read the state)."""
        ...


class ScalarAmounts:
    """One number of units, at most ``burst`` at once.

    Example:
        >>> amounts = ScalarAmounts(10.0)
        >>> amounts.check(4), amounts.vector(4.0), amounts.split(3.0, 4.0)
        (4.0, (4.0,), (None, 1.0))
    """

    __slots__ = ("burst",)

    def __init__(self, burst: float) -> None:
        self.burst = burst
        """The largest amount that can ever be admitted."""

    def check(self, amount: object) -> float:
        """``amount`` as a float if it is a valid amount of at most the burst."""
        return check_amount(amount, self.burst)

    def check_actual(self, actual: object, reserved: Any) -> float:
        """A valid actual amount (any size: what exceeds the reservation is debt)."""
        return check_quantity("actual", actual)

    def check_estimate(self, estimated: object) -> float:
        """A valid earlier estimate."""
        return check_quantity("estimated", estimated)

    def probe(self, amount: object) -> float:
        """A valid amount to ask about."""
        return check_quantity("amount", amount)

    def vector(self, amount: Any) -> tuple[float, ...]:
        """``(amount,)``."""
        return (float(amount),)

    def is_nothing(self, amount: Any) -> bool:
        """True for zero."""
        return bool(amount == 0)

    def describe(self, amount: Any) -> str:
        """``"4"``, ``"0.5"``."""
        return f"{amount:g}"

    def split(self, actual: Any, reserved: Any) -> tuple[Any, Any]:
        """``(actual - reserved, None)`` above the reservation, ``(None, unused)`` below."""
        if actual > reserved:
            return actual - reserved, None
        if actual < reserved:
            return None, reserved - actual
        return None, None

    def nothing(self) -> float:
        """``0.0``."""
        return 0.0

    def __repr__(self) -> str:
        return f"ScalarAmounts(burst={self.burst:g})"
