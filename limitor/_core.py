"""Former home of the limiter machinery, kept for code that imports it from here.

Everything now lives in :mod:`limitor.limiter` (the one limiter class, over a backend's
store) and :mod:`limitor.backends` (where the state lives).
"""

from __future__ import annotations

from limitor.clock import check_clock
from limitor.limiter import _CURRENT, Limiter

LimiterCore = Limiter
"""The one limiter class (:class:`limitor.limiter.Limiter`)."""

__all__ = ("_CURRENT", "LimiterCore", "check_clock")
