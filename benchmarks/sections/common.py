"""Record building and the event loop shared by a worker's sections."""

from __future__ import annotations

import asyncio
import traceback
from typing import Any

from benchmarks.libraries.base import Case, Unavailable
from benchmarks.measure import median

__all__ = ("cases_of", "error_record", "event_loop", "record", "unavailable_record")

_LOOP: asyncio.AbstractEventLoop | None = None


def event_loop() -> asyncio.AbstractEventLoop:
    """The worker's one asyncio event loop (async timings all run inside it)."""
    global _LOOP
    if _LOOP is None:
        _LOOP = asyncio.new_event_loop()
        asyncio.set_event_loop(_LOOP)
    return _LOOP


def cases_of(library: Any, kind: str, *args: Any) -> list[Case]:
    """``library.<kind>(*args)``, or no cases when the library has no such function."""
    function = getattr(library, kind, None)
    return [] if function is None else list(function(*args))


def run_in_loop(function: Any) -> Any:
    """Call ``function()`` while the worker's loop runs (for objects that need a loop)."""

    async def inner() -> Any:
        return function()

    return event_loop().run_until_complete(inner())


def record(
    section: str,
    measure: str,
    library: str,
    case: Case,
    samples: list[float],
    unit: str,
    ratios: list[float] | None = None,
    note: str = "",
    status: str = "",
    **extra: Any,
) -> dict[str, Any]:
    """A result row: the median of ``samples`` and of ``ratios`` (one each per repeat).

    ``extra`` adds fields, e.g. ``starved`` (runs in which a request was starved).
    """
    ratios = ratios or []
    return {
        **extra,
        "section": section,
        "measure": measure,
        "library": library,
        "algorithm": case.algorithm,
        "value": median(samples) if samples else None,
        "unit": unit,
        "ref": median(ratios) if ratios else None,
        "samples": samples,
        "ratios": ratios,
        "status": status,
        "note": "; ".join(part for part in (case.note, note) if part),
    }


def unavailable_record(
    section: str, measure: str, library: str, case: Unavailable
) -> dict[str, Any]:
    """The row of a case the library cannot do."""
    return record(section, measure, library, case, [], "", status=case.status)


def error_record(
    section: str, measure: str, library: str, case: Case, error: BaseException
) -> dict[str, Any]:
    """The row of a case that failed: the error's last line, never a crash of the run."""
    last = traceback.format_exception_only(type(error), error)[-1].strip()
    return record(section, measure, library, case, [], "", status="error", note=last[:160])
