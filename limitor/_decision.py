"""The outcome of one admission decision: a leaf that the engines and the results share.

:class:`Decision` is what :meth:`limitor.engines._base.Engine.decide` returns; it is importable
from :mod:`limitor.engines` and :mod:`limitor.results`. It lives here, beside neither, so
that the result objects do not import the engines (nor the engines the results).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ("Decision",)


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one admission decision (see :meth:`limitor.engines._base.Engine.decide`)."""

    admitted: bool
    """True when the request was admitted and committed to the state."""

    delay: float
    """Seconds from the decision until the request may go (0 means now, or refused)."""

    retry_after: float
    """Seconds until the amount would be admitted without waiting (when refused)."""
