"""Reading arrivals: trace files (CSV, JSON lines) and iterables of ``(time, amount[, key])``.

Every reader is lazy and bounded: a line longer than :data:`MAX_LINE_BYTES` or nested
deeper than :data:`MAX_NESTING` is refused, never read whole; times must not go backwards.
A line that cannot be replayed raises :class:`TraceError`, which names it.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from collections.abc import Callable, Hashable, Iterable, Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, AnyStr, Literal

from limitor._checks import as_float, is_number
from limitor.errors import ConfigError

LONGEST = 1e12
"""The largest time (and duration) in seconds a simulation takes: about 31,700 years."""

MAX_LINE_BYTES = 1 << 20
"""The longest line of a trace file (1 MiB); a longer one is refused, never read whole."""

MAX_NESTING = 32
"""The deepest nesting of ``[`` and ``{`` in a JSON-lines record (a record is flat)."""

_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?"


class TraceError(ConfigError):
    """A trace that cannot be replayed; the message names the line (or arrival) at fault."""

    def __init__(self, message: str, line: int | None = None, where: str = "line") -> None:
        super().__init__(message if line is None else f"{where} {line}: {message}")
        self.line = line
        """The 1-based line of the file (or position in the iterable) at fault."""
        self.reason = message
        """The message without the line."""


_TIME_UNITS = {
    "": 1.0,
    "s": 1.0,
    "sec": 1.0,
    "ms": 1e-3,
    "us": 1e-6,
    "µs": 1e-6,
    "ns": 1e-9,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}
_TIME = re.compile(rf"^\s*(?P<value>[+-]?{_NUMBER}|[+-]?inf|nan)\s*(?P<unit>[^\d\s.+-][^\s]*)?\s*$")


def _parse_time(text: str, line: int) -> float | datetime:
    """A trace's time: seconds (``1.5``, ``1500ms``, ``2 min``) or an ISO 8601 timestamp."""
    match = _TIME.match(text.lower())
    if match is None:
        try:
            stamp = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            raise TraceError(
                f"time {text!r} is neither a number of seconds (1.5, 1500ms) "
                "nor an ISO 8601 timestamp",
                line,
            ) from None
        return stamp
    unit = match.group("unit") or ""
    scale = _TIME_UNITS.get(unit)
    if scale is None:
        raise TraceError(
            f"unknown unit {unit!r} in time {text!r} (use s, ms, us, ns, min, h or d)", line
        )
    value = float(match.group("value")) * scale
    if not math.isfinite(value):
        raise TraceError(f"time {text!r} is not a finite number", line)
    return value


def _parse_amount(value: object, line: int) -> float:
    original = value
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise TraceError(f"amount {value!r} is not a number", line) from None
    if not is_number(value):
        raise TraceError(f"amount {value!r} is not a number", line)
    amount = as_float(value)
    if amount is None:
        raise TraceError(f"amount {value!r} is not a finite number", line)
    if not math.isfinite(amount) or amount < 0:
        raise TraceError(f"amount {original!r} must be a finite number of zero or more", line)
    return amount


_TIME_COLUMNS = ("time", "t", "timestamp", "at")
_AMOUNT_COLUMNS = ("amount", "tokens", "cost", "units")
_KEY_COLUMNS = ("key", "user", "user_id", "client")


class _Times:
    """Turns the times of a trace into seconds from its start, checking their order."""

    __slots__ = ("_epoch", "_last")

    def __init__(self) -> None:
        self._epoch: datetime | None = None
        self._last = -math.inf

    def seconds(self, raw: object, line: int) -> float:
        if isinstance(raw, str):
            parsed: float | datetime = _parse_time(raw, line)
        elif not is_number(raw):
            raise TraceError(f"time {raw!r} is not a number of seconds", line)
        else:
            number = as_float(raw)
            if number is None or not math.isfinite(number):
                raise TraceError(f"time {raw!r} is not a finite number", line)
            parsed = number
        if isinstance(parsed, datetime):
            if self._epoch is None:
                if self._last != -math.inf:
                    raise TraceError("a timestamp after times in seconds", line)
                self._epoch = parsed
            try:
                parsed = (parsed - self._epoch).total_seconds()
            except TypeError:
                raise TraceError(
                    "timestamps with and without a time zone in one trace", line
                ) from None
        elif self._epoch is not None:
            raise TraceError("a time in seconds after ISO 8601 timestamps", line)
        if abs(parsed) > LONGEST:
            raise TraceError(f"time {raw!r} is out of range (more than {LONGEST:g} s)", line)
        if parsed < self._last:
            raise TraceError(
                f"time goes backwards: {parsed:g} s after {self._last:g} s "
                "(sort the trace by time)",
                line,
            )
        self._last = parsed
        return parsed


def _column(names: list[str], choices: tuple[str, ...]) -> int | None:
    for index, name in enumerate(names):
        if name.strip().lower() in choices:
            return index
    return None


def _read_csv(lines: Iterable[str]) -> Iterator[tuple[float, float, Hashable]]:
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as error:
        raise TraceError(f"malformed CSV header ({error})", 1) from None
    t_col = _column(header, _TIME_COLUMNS)
    if t_col is None:
        raise TraceError(
            f"the header needs a time column ({', '.join(_TIME_COLUMNS)}); got {header}", 1
        )
    a_col = _column(header, _AMOUNT_COLUMNS)
    k_col = _column(header, _KEY_COLUMNS)
    times = _Times()
    try:
        for row in reader:
            line = reader.line_num
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise TraceError(
                    f"malformed line: {len(row)} fields where the header has {len(header)}",
                    line,
                )
            amount = 1.0 if a_col is None else _parse_amount(row[a_col].strip(), line)
            key = None if k_col is None else (row[k_col].strip() or None)
            yield times.seconds(row[t_col], line), amount, key
    except csv.Error as error:
        raise TraceError(f"malformed line ({error})", reader.line_num) from None


def _nesting(text: str) -> int:
    """How deep ``[`` and ``{`` nest in JSON ``text`` (outside strings); linear."""
    if text.count("[") + text.count("{") <= MAX_NESTING:
        return 0  # cannot be deeper than that: the common case costs two counts
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_NESTING:
                    return deepest
        elif char in "]}":
            depth -= 1
    return deepest


def _read_jsonl(lines: Iterable[str]) -> Iterator[tuple[float, float, Hashable]]:
    times = _Times()
    for line, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        if _nesting(text) > MAX_NESTING:
            raise TraceError(f"malformed line: nested deeper than {MAX_NESTING} levels", line)
        try:
            record = json.loads(text)
        except ValueError as error:
            raise TraceError(f"malformed line, not JSON ({error.args[0]})", line) from None
        except RecursionError:  # pragma: no cover - _nesting refuses it first
            raise TraceError("malformed line: nested too deep", line) from None
        if isinstance(record, list) and 2 <= len(record) <= 3:
            record = dict(zip(("time", "amount", "key"), record, strict=False))
        if not isinstance(record, dict):
            raise TraceError(
                'malformed line: expected an object like {"time": 1.5, "amount": 1}', line
            )
        t_name = next((name for name in _TIME_COLUMNS if name in record), None)
        if t_name is None:
            raise TraceError(f"no time field ({', '.join(_TIME_COLUMNS)})", line)
        a_name = next((name for name in _AMOUNT_COLUMNS if name in record), None)
        amount = 1.0 if a_name is None else _parse_amount(record[a_name], line)
        k_name = next((name for name in _KEY_COLUMNS if name in record), None)
        key = None if k_name is None else record[k_name]
        if isinstance(key, (list, dict)):
            raise TraceError(f"key {key!r} must be a string or a number", line)
        yield times.seconds(record[t_name], line), amount, key


def read_trace(
    source: str | os.PathLike[str] | io.TextIOBase,
    *,
    format: Literal["csv", "jsonl"] | None = None,
) -> Iterator[tuple[float, float, Hashable]]:
    """Read a trace file lazily as ``(seconds, amount, key)`` arrivals.

    A CSV file has a header naming its columns: a time (``time``, ``t``, ``timestamp``
    or ``at``), optionally an amount (``amount``, ``tokens``, ``cost`` or ``units``;
    default 1) and a key (``key``, ``user``, ``user_id`` or ``client``). A JSON-lines file
    has one object per line with the same names (or a ``[time, amount, key]`` list).
    Times are seconds, optionally with a unit (``250ms``, ``2 min``), or ISO 8601
    timestamps (seconds from the first); they must not go backwards.

    Args:
        source: a path (``.csv``, or ``.jsonl`` / ``.ndjson`` / ``.json``) or an open text file.
        format: ``"csv"`` or ``"jsonl"``; default: from the file name's suffix.

    Raises:
        TraceError: (when iterated) a line that cannot be replayed; the message names it.
    """
    if isinstance(source, io.TextIOBase):
        kind = format or "csv"
        texts = _bounded_text_lines(source)
        return _read_csv(texts) if kind == "csv" else _read_jsonl(texts)
    path = Path(source)
    kind = format or ("jsonl" if path.suffix.lower() in (".jsonl", ".ndjson", ".json") else "csv")
    if kind not in ("csv", "jsonl"):
        raise ConfigError(f"format must be 'csv' or 'jsonl', got {format!r}")
    if not path.is_file():
        raise ConfigError(f"trace file {str(path)!r} does not exist or is not a file")

    def lines() -> Iterator[tuple[float, float, Hashable]]:
        with path.open("rb") as handle:
            texts = _bounded_lines(handle, path.name)
            yield from _read_csv(texts) if kind == "csv" else _read_jsonl(texts)

    return lines()


def _limited(readline: Callable[[int], AnyStr]) -> Iterator[tuple[int, AnyStr]]:
    """``(line number, line)`` read with a size limit, so memory is bounded by the longest."""
    line = 0
    while True:
        data = readline(MAX_LINE_BYTES + 1)
        if not data:
            return
        line += 1
        if len(data) > MAX_LINE_BYTES:
            raise TraceError(f"line longer than {MAX_LINE_BYTES // (1 << 20)} MiB", line)
        yield line, data


def _bounded_lines(handle: Any, name: str) -> Iterator[str]:
    """The lines of a binary file as text, each read with a size limit.

    UTF-8 (a BOM is skipped), never binary data (a NUL byte).
    """
    for line, data in _limited(handle.readline):
        if line == 1 and data.startswith(b"\xef\xbb\xbf"):  # a BOM (Excel) is skipped
            data = data[3:]
        if b"\x00" in data:
            raise TraceError(f"{name} is binary data, not a text trace", line)
        try:
            yield data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise TraceError(f"{name} is not UTF-8 text ({error.reason})", line) from None


def _bounded_text_lines(handle: io.TextIOBase) -> Iterator[str]:
    """The lines of an open text file, each read with a size limit."""
    return (text for _, text in _limited(handle.readline))


def from_iterable(arrivals: Iterable[Any]) -> Iterator[tuple[float, float, Hashable]]:
    try:
        yield from _checked(arrivals)
    except TraceError as error:
        raise TraceError(error.reason, error.line, "arrival") from None


def _checked(arrivals: Iterable[Any]) -> Iterator[tuple[float, float, Hashable]]:
    times = _Times()
    for index, arrival in enumerate(arrivals, start=1):
        if isinstance(arrival, (int, float, Decimal)) and not isinstance(arrival, bool):
            arrival = (arrival, 1.0)
        if not isinstance(arrival, (tuple, list)) or not 1 <= len(arrival) <= 3:
            raise TraceError(f"arrival {arrival!r} is not (time, amount[, key])", index)
        amount = _parse_amount(arrival[1], index) if len(arrival) > 1 else 1.0
        key = arrival[2] if len(arrival) > 2 else None
        yield times.seconds(arrival[0], index), amount, key
