"""The table: ordering, the "vs limitor" column, text and Markdown renderings, a summary."""

from __future__ import annotations

import math
from typing import Any

__all__ = ("SECTIONS", "annotate", "markdown", "summary", "text")

LIBRARY_ORDER = (
    "floor",
    "redis (bare)",
    "limitor",
    "limitor 0.6",
    "aiolimiter",
    "limits",
    "pyrate-limiter",
    "throttled-py",
    "token-throttle",
)
DEFAULT_ALGORITHM = "leaky bucket"

# section -> (title, how to read it)
SECTIONS = {
    "overhead": (
        "1. Uncontended overhead per call",
        "median microseconds per call (decorators: decorated minus bare call); x ref = ratio to "
        "the floor timed in the same worker before each repeat; lower is better",
    ),
    "shaping": (
        "2. Shaping accuracy: limit 50/s, burst 5, 200 requests back to back",
        "steady rate: x ref = achieved / configured (1.00 is exact); most in any 1 s: x ref = "
        "count / (rate + burst = 55), above 1.00 is over-admission",
    ),
    "fairness": (
        "3. Fairness: one limit shared by many callers",
        "Jain's index of admissions per worker (1.00 = equal shares) over 1 s at 500/s, burst "
        "10; large request: seconds a 20-unit request waits behind 4 callers of 1 unit at "
        "100/s, burst 20, x ref = ratio to the in-order wait (4 + 20) / 100 = 0.24 s",
    ),
    "keys": (
        "4. Per-key limiting: 100,000 keys, one hit each",
        "first hit: microseconds per key, x ref = ratio to the floor's acquire; memory: "
        "tracemalloc bytes per key, x ref = ratio to a dict of floor buckets; lower is better",
    ),
    "redis": (
        "5. Redis",
        "latency: microseconds per policing decision (sync, and asyncio where the library "
        "has it), x ref = ratio to a bare PING with the same kind of client; decisions per "
        "second with 1 and 8 threads, x ref = ratio to PINGs per second (higher is better); "
        "4 processes on one key at 100/s, burst 10, for 1.2 s: admitted vs allowed (130) and "
        "most in any 1 s vs rate + burst (110); above 1.00 is over-admission",
    ),
    "total": (
        "6. A total over per-key limits (limitor only)",
        "decision: microseconds per try_acquire on a per-key limit with a total that never "
        "binds, x ref = ratio to the same without a total (same repeat); light key p99 wait: "
        "virtual seconds a light key waits behind a heavy key's backlog of 300 under a total "
        "of 10/s, fair=True against FIFO, x ref = ratio to its fair-share wait (0.2 s)",
    ),
}


def _goal(section: str, measure: str) -> str:
    """How a measure is ranked: lower, higher, closest (to 1.00) or bound (<= 1.00)."""
    if measure.startswith(("steady rate", "large request")):
        return "closest"
    if measure.startswith(("Jain", "decisions per second")):
        return "higher"
    if measure.startswith(("most in any", "admitted vs")):
        return "bound"
    return "lower"


def _library_rank(library: str) -> int:
    return LIBRARY_ORDER.index(library) if library in LIBRARY_ORDER else len(LIBRARY_ORDER)


def ordered(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records by section, then measure (in order of first appearance), then library."""
    by_library = sorted(records, key=lambda r: _library_rank(r["library"]))
    measures: dict[tuple[str, str], int] = {}
    # limitor's own order first (it has every measure), then whatever peers add
    for r in sorted(by_library, key=lambda r: r["library"] != "limitor"):
        measures.setdefault((r["section"], r["measure"]), len(measures))
    sections = list(SECTIONS)
    return sorted(
        by_library,
        key=lambda r: (
            sections.index(r["section"]) if r["section"] in sections else len(sections),
            measures[(r["section"], r["measure"])],
            _library_rank(r["library"]),
        ),
    )


def _comparable(r: dict[str, Any]) -> float | None:
    value = r["ref"] if r["ref"] is not None else r["value"]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)


def annotate(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add ``vs_limitor``: this row's ratio over limitor's row of the same measure.

    limitor's row of the same algorithm when there is one, else its leaky bucket (its
    default), else its first row of that measure. Ratios of ``ref`` (so of floor-relative
    figures: comparable across workers and minutes), else of the raw values.
    """
    ours: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in records:
        if r["library"] == "limitor" and _comparable(r) is not None:
            ours.setdefault((r["section"], r["measure"]), []).append(r)
    for r in records:
        r["vs_limitor"] = None
        candidates = ours.get((r["section"], r["measure"]), [])
        if r["library"] == "limitor" or not candidates or _comparable(r) is None:
            continue
        match = next((c for c in candidates if c["algorithm"] == r["algorithm"]), None)
        match = match or next((c for c in candidates if c["algorithm"] == DEFAULT_ALGORITHM), None)
        match = match or candidates[0]
        base = _comparable(match)
        mine = _comparable(r)
        if base and mine is not None:
            r["vs_limitor"] = mine / base
    return records


def _value(r: dict[str, Any]) -> str:
    v = r["value"]
    if r["status"]:
        return r["status"]
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    unit = r["unit"]
    if unit == "us":
        return f"{v:.0f} us" if v >= 100 else f"{v:.2f} us"
    if unit == "s":
        return f"{v:.3f} s"
    if unit == "/s":
        return f"{v:.1f}/s"
    if unit == "calls":
        return f"{v:.0f}"
    if unit == "B":
        return f"{v:,.0f} B"
    return f"{v:.3f}"


def _ratio(value: float | None) -> str:
    if value is None or math.isnan(value):
        return ""
    return f"{value:.2f}"


def text(records: list[dict[str, Any]], header: list[str]) -> str:
    """The plain-text table printed at the end of a run."""
    lines = [*header, ""]
    section = measure = None
    widths = (15, 27, 13, 6, 7)
    for r in ordered(records):
        if r["section"] != section:
            section = r["section"]
            title, how = SECTIONS.get(section, (section, ""))
            lines += ["", title, f"  ({how})"]
            lines.append(
                "    {:<15} {:<27} {:>13} {:>6} {:>7}  {}".format(
                    "library", "algorithm", "median", "x ref", "vs lim", "note"
                )
            )
            measure = None
        if r["measure"] != measure:
            measure = r["measure"]
            lines.append(f"  {measure}")
        cells = (
            r["library"],
            r["algorithm"],
            _value(r),
            _ratio(r["ref"]) if not r["status"] else "",
            _ratio(r.get("vs_limitor")),
        )
        row = "    {:<{}} {:<{}} {:>{}} {:>{}} {:>{}}".format(
            *(item for pair in zip(cells, widths, strict=True) for item in pair)
        )
        lines.append(f"{row}  {r['note']}".rstrip())
    return "\n".join(lines) + "\n"


def markdown(records: list[dict[str, Any]], header: list[str]) -> str:
    """The same table as Markdown."""
    out = ["# limitor benchmark results", "", *(f"- {line}" for line in header if line), ""]
    section = None
    for r in ordered(records):
        if r["section"] != section:
            section = r["section"]
            title, how = SECTIONS.get(section, (section, ""))
            out += [
                "",
                f"## {title}",
                "",
                how[0].upper() + how[1:] + ".",
                "",
                "| measure | library | algorithm | median | x ref | vs limitor | note |",
                "|---|---|---|---:|---:|---:|---|",
            ]
        cells = [
            r["measure"],
            r["library"],
            r["algorithm"],
            _value(r),
            _ratio(r["ref"]) if not r["status"] else "",
            _ratio(r.get("vs_limitor")),
            r["note"].replace("|", "/"),
        ]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def summary(records: list[dict[str, Any]], tolerance: float = 0.05) -> list[str]:
    """Where limitor does not lead (beyond ``tolerance``), and rows above their bound."""
    lines: list[str] = []
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in ordered(records):
        # a starved run disqualifies a row, whatever its median wait
        if _comparable(r) is not None and not r["status"] and not r.get("starved"):
            groups.setdefault((r["section"], r["measure"]), []).append(r)
    for (section, measure), rows in groups.items():
        goal = _goal(section, measure)
        if goal == "bound":
            for r in rows:
                value = _comparable(r)
                if value is not None and value > 1.02 and r["library"] != "floor":
                    lines.append(
                        f"over the bound: {measure}: {r['library']} {r['algorithm']} {value:.2f}x"
                    )
            continue

        def score(r: dict[str, Any], goal: str = goal) -> float:
            value = _comparable(r) or 0.0
            if goal == "higher":
                return -value
            if goal == "closest":
                return abs(value - 1.0)
            return value

        mine = [r for r in rows if r["library"] == "limitor"]
        others = [r for r in rows if r["library"] not in ("limitor", "floor")]
        if not mine or not others:
            continue
        best_mine = min(mine, key=score)
        best_other = min(others, key=score)
        a, b = _comparable(best_mine) or 0.0, _comparable(best_other) or 0.0
        if goal == "lower" and b > 0 and a > b * (1 + tolerance):
            gap = f"limitor {a / b:.2f}x slower/larger"
        elif goal == "higher" and b > a * (1 + tolerance / 5):
            gap = f"{b:.3f} vs limitor {a:.3f}"
        elif goal == "closest" and abs(b - 1) + tolerance < abs(a - 1):
            gap = f"{b:.3f} vs limitor {a:.3f} (ideal 1.00)"
        else:
            continue
        lines.append(
            f"limitor does not lead: {measure}: {best_other['library']} "
            f"({best_other['algorithm']}) {gap}"
        )
    return lines
