"""Replay traffic through a limit on a virtual clock: :func:`simulate`.

:func:`simulate` builds the real limiter (``SyncLeakyBucket`` and the other buckets,
``PerUserLimiter`` for per-key limits, ``LLMLimiter`` for requests and tokens per minute)
on a :class:`~limitor.testing.FakeClock`, moves the clock to each arrival and asks the
limiter through its public verbs: ``reserve()`` when callers wait (with the timeout, if
any) and ``try_acquire()`` when they are refused at once. Nothing sleeps, so a day of
traffic replays in seconds, and what it reports is what the library would do.

Arrivals come from a trace (an iterable of ``(time, amount[, key])``, or a CSV or
JSON-lines file with those columns) or from a synthetic :class:`Pattern`. The result is
a frozen :class:`SimulationResult`; the summary is computed while streaming, so memory
stays flat however long the trace, unless the per-call records are asked for.

Example:
    >>> result = simulate([(0.0, 1)] * 20, "10/s", burst=5)
    >>> result.admitted, result.delayed, result.wait_max
    (20, 15, 1.5)
"""

from __future__ import annotations

import bisect
import csv
import io
import json
import math
import numbers
import os
import random
import re
from array import array
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from limitor.configs import BucketConfig, as_rate, parse_rate
from limitor.errors import AcquireTimeout, AmountError, ConfigError, ConfigTypeError
from limitor.generic_cell_rate.core import SyncLeakyBucketGCRA, SyncVirtualSchedulingGCRA
from limitor.leaky_bucket.core import SyncLeakyBucket
from limitor.llm import LLMLimiter
from limitor.per_user import PerUserLimiter
from limitor.testing import FakeClock
from limitor.token_bucket.core import SyncTokenBucket

__all__ = (
    "Call",
    "KeySummary",
    "LimitReport",
    "Pattern",
    "SimulationResult",
    "Timeline",
    "TraceError",
    "parse_limit",
    "plot",
    "read_trace",
    "simulate",
)

TOLERANCE = 1e-9
"""Waits up to this many seconds are float rounding, not a delay (a GCRA schedule can
leave 4.4e-16 s where the exact answer is 0)."""

MAX_ARRIVALS = 10_000_000
"""The default bound on the arrivals of one simulation (a minute or two of work)."""

LONGEST = 1e12
"""The largest time (and duration) in seconds a simulation takes: about 31,700 years."""

MAX_LINE_BYTES = 1 << 20
"""The longest line of a trace file (1 MiB); a longer one is refused, never read whole."""

MAX_NESTING = 32
"""The deepest nesting of ``[`` and ``{`` in a JSON-lines record (a record is flat)."""

EXACT_WAITS = 100_000
"""Wait percentiles are exact up to this many admitted calls; beyond it the waits go into
a logarithmic histogram (relative error below 0.1%), so memory stays flat."""

Mode = Literal["wait", "raise", "timeout"]

ALGORITHMS = ("leaky_bucket", "token_bucket", "gcra", "gcra_leaky_bucket")
"""The algorithms a simulation can use (one bucket class each)."""

_BUCKETS: dict[str, type[Any]] = {
    "leaky_bucket": SyncLeakyBucket,
    "token_bucket": SyncTokenBucket,
    "gcra": SyncVirtualSchedulingGCRA,
    "gcra_leaky_bucket": SyncLeakyBucketGCRA,
}


class TraceError(ConfigError):
    """A trace that cannot be replayed; the message names the line (or arrival) at fault."""

    def __init__(self, message: str, line: int | None = None, where: str = "line") -> None:
        super().__init__(message if line is None else f"{where} {line}: {message}")
        self.line = line
        """The 1-based line of the file (or position in the iterable) at fault."""
        self.reason = message
        """The message without the line."""


# -- numbers ---------------------------------------------------------------------------


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, Decimal)):
        raise ConfigTypeError(f"{name} must be a number, got {value!r}")
    try:
        return float(value)
    except (OverflowError, ArithmeticError):
        raise ConfigError(f"{name} must be a finite number, got {value!r}") from None


def _positive(name: str, value: object) -> float:
    number = _number(name, value)
    if not math.isfinite(number) or number <= 0:
        raise ConfigError(f"{name} must be a finite number above zero, got {value!r}")
    return number


def _not_negative(name: str, value: object) -> float:
    number = _number(name, value)
    if not math.isfinite(number) or number < 0:
        raise ConfigError(f"{name} must be a finite number of zero or more, got {value!r}")
    return number


_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?"

parse_limit = parse_rate
"""The rate parser (:func:`limitor.configs.parse_rate`), under the name this module used."""


# -- arrivals --------------------------------------------------------------------------

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
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, Decimal)):
        raise TraceError(f"amount {value!r} is not a number", line)
    try:
        amount = float(value)
    except (OverflowError, ArithmeticError):
        raise TraceError(f"amount {value!r} is not a finite number", line) from None
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
        elif isinstance(raw, bool) or not isinstance(raw, (numbers.Real, Decimal)):
            raise TraceError(f"time {raw!r} is not a number of seconds", line)
        else:
            try:
                parsed = float(raw)
            except (OverflowError, ArithmeticError):
                raise TraceError(f"time {raw!r} is not a finite number", line) from None
            if not math.isfinite(parsed):
                raise TraceError(f"time {raw!r} is not a finite number", line)
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


def _too_long(line: int) -> TraceError:
    return TraceError(f"line longer than {MAX_LINE_BYTES // (1 << 20)} MiB", line)


def _bounded_lines(handle: Any, name: str) -> Iterator[str]:
    """The lines of a binary file as text, each read with a size limit.

    Memory is bounded by the longest allowed line. UTF-8 (a BOM is skipped), never
    binary data (a NUL byte).
    """
    line = 0
    while True:
        data = handle.readline(MAX_LINE_BYTES + 1)
        if not data:
            return
        line += 1
        if len(data) > MAX_LINE_BYTES:
            raise _too_long(line)
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
    line = 0
    while True:
        text = handle.readline(MAX_LINE_BYTES + 1)
        if not text:
            return
        line += 1
        if len(text) > MAX_LINE_BYTES:
            raise _too_long(line)
        yield text


def _from_iterable(arrivals: Iterable[Any]) -> Iterator[tuple[float, float, Hashable]]:
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


@dataclass(frozen=True)
class Pattern:
    """Synthetic arrivals, reproducible from their seed.

    Args:
        kind: ``"poisson"`` (random, memoryless), ``"uniform"`` (evenly spaced),
            ``"bursts"`` (``rate * every`` arrivals at once every ``every`` seconds) or
            ``"daily"`` (Poisson whose rate follows a day: lowest at midnight, highest at
            noon, ``1 - depth`` and ``1 + depth`` times ``rate``, over ``period`` seconds).
        rate: mean arrivals per second.
        duration: seconds of arrivals.
        amount: units per arrival, or ``(low, high)`` to draw each uniformly (whole
            numbers when both are ints, as tokens are).
        every: seconds between bursts (``"bursts"``).
        depth: how far the daily curve swings around ``rate``, from 0 to 1 (``"daily"``).
        period: the length of the daily curve's cycle in seconds (``"daily"``).
        keys: spread the arrivals over this many keys (``"user0"``, ``"user1"``...) at
            random; 0 for none.
        seed: the seed of every random choice.

    Raises:
        ConfigError: a value out of range (the message names it).
    """

    kind: Literal["poisson", "uniform", "bursts", "daily"] = "poisson"
    rate: float = 10.0
    duration: float = 60.0
    amount: float | tuple[float, float] = 1.0
    every: float = 1.0
    depth: float = 0.8
    period: float = 86_400.0
    keys: int = 0
    seed: int = 1

    def __post_init__(self) -> None:
        """Check every field."""
        if self.kind not in ("poisson", "uniform", "bursts", "daily"):
            raise ConfigError(f"kind must be poisson, uniform, bursts or daily, got {self.kind!r}")
        _positive("arrival rate", self.rate)
        if _positive("duration", self.duration) > LONGEST:
            raise ConfigError(f"duration must be at most {LONGEST:g} s, got {self.duration!r}")
        _positive("every", self.every)
        _positive("period", self.period)
        depth = _not_negative("depth", self.depth)
        if depth > 1:
            raise ConfigError(f"depth must be between 0 and 1, got {self.depth!r}")
        if isinstance(self.amount, tuple):
            if len(self.amount) != 2:
                raise ConfigError(f"amount must be a number or (low, high), got {self.amount!r}")
            low = _not_negative("amount", self.amount[0])
            high = _not_negative("amount", self.amount[1])
            if low > high:
                raise ConfigError(f"amount range {self.amount!r} has low above high")
        else:
            _not_negative("amount", self.amount)
        if isinstance(self.keys, bool) or not isinstance(self.keys, int) or self.keys < 0:
            raise ConfigError(f"keys must be a whole number of zero or more, got {self.keys!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ConfigTypeError(f"seed must be a whole number, got {self.seed!r}")

    @property
    def burst_size(self) -> int:
        """Arrivals per burst (``"bursts"``): ``rate * every``, at least 1."""
        return max(1, round(self.rate * self.every))

    @property
    def expected(self) -> float:
        """The expected number of arrivals (exact for uniform and bursts)."""
        if self.kind == "uniform":
            return math.floor(self.rate * self.duration)
        if self.kind == "bursts":
            return self.burst_size * math.ceil(self.duration / self.every)
        return self.rate * self.duration

    @property
    def largest_amount(self) -> float:
        """The largest amount one arrival can have."""
        return float(self.amount[1] if isinstance(self.amount, tuple) else self.amount)

    def __iter__(self) -> Iterator[tuple[float, float, Hashable]]:
        """The arrivals, ``(time, amount, key)``, in time order."""
        rng = random.Random(self.seed)
        amount = self._amounts(rng)
        keys = self.keys
        names = [f"user{index}" for index in range(keys)]
        for moment in self._times(rng):
            yield moment, amount(), (names[rng.randrange(keys)] if keys else None)

    def _amounts(self, rng: random.Random) -> Callable[[], float]:
        if not isinstance(self.amount, tuple):
            fixed = float(self.amount)
            return lambda: fixed
        low, high = self.amount
        draw = rng.random
        if isinstance(low, int) and isinstance(high, int):
            span = high - low + 1
            return lambda: float(low + min(int(draw() * span), span - 1))
        return lambda: low + (high - low) * draw()

    def _times(self, rng: random.Random) -> Iterator[float]:
        rate, duration = float(self.rate), float(self.duration)
        if self.kind == "uniform":
            for index in range(math.floor(rate * duration)):
                yield index / rate
        elif self.kind == "bursts":
            size, every = self.burst_size, float(self.every)
            for index in range(math.ceil(duration / every)):
                moment = index * every
                for _ in range(size):
                    yield moment
        else:
            peak = rate * (1 + self.depth) if self.kind == "daily" else rate
            omega = 2 * math.pi / self.period
            now = 0.0
            while True:
                now += rng.expovariate(peak)
                if now >= duration:
                    return
                if self.kind == "daily":
                    share = (1 - self.depth * math.cos(omega * now)) / (1 + self.depth)
                    if rng.random() >= share:
                        continue
                yield now


# -- what is measured ------------------------------------------------------------------


class _Quantiles:
    """Nearest-rank percentiles: exact for the first values, a log histogram after."""

    __slots__ = ("_bins", "_count", "_exact", "_max", "_zeros")

    _BASE = 1e-9
    _LOG_STEP = math.log1p(1e-3)

    def __init__(self) -> None:
        self._exact: array[float] | None = array("d")
        self._bins: dict[int, int] = {}
        self._zeros = 0
        self._count = 0
        self._max = 0.0

    @property
    def exact(self) -> bool:
        return self._exact is not None

    def add(self, value: float) -> None:
        self._count += 1
        if value > self._max:
            self._max = value
        exact = self._exact
        if exact is not None:
            exact.append(value)
            if len(exact) > EXACT_WAITS:
                self._exact = None
                for each in exact:
                    self._bin(each)
            return
        self._bin(value)

    def _bin(self, value: float) -> None:
        if value <= TOLERANCE:
            self._zeros += 1
            return
        index = math.ceil(math.log(value / self._BASE) / self._LOG_STEP)
        self._bins[index] = self._bins.get(index, 0) + 1

    def percentiles(self, shares: Iterable[float]) -> list[float]:
        count = self._count
        ranks = [max(1, math.ceil(share * count)) for share in shares]
        if not count:
            return [0.0 for _ in ranks]
        if self._exact is not None:
            ordered = sorted(self._exact)
            return [ordered[rank - 1] for rank in ranks]
        results = []
        for rank in ranks:
            seen = self._zeros
            value = 0.0
            if rank > seen:
                for index in sorted(self._bins):
                    seen += self._bins[index]
                    if seen >= rank:
                        value = min(self._max, self._BASE * math.exp(index * self._LOG_STEP))
                        break
            results.append(value)
        return results


class _Window:
    """The most units admitted in any closed window of ``width`` seconds (streaming)."""

    __slots__ = ("_amounts", "_reach", "_sum", "_times", "best", "best_start", "width")

    def __init__(self, width: float) -> None:
        self.width = width
        self._reach = width + TOLERANCE
        self._times: deque[float] = deque()
        self._amounts: deque[float] = deque()
        self._sum = 0.0
        self.best = 0.0
        self.best_start = 0.0

    def add(self, moment: float, amount: float) -> None:
        times = self._times
        if times and moment < times[-1]:  # not expected (FIFO), but kept exact if it happens
            index = bisect.bisect_right(times, moment)
            times.insert(index, moment)
            self._amounts.insert(index, amount)
            self._sum += amount
            self._rescan()
            return
        times.append(moment)
        self._amounts.append(amount)
        total = self._sum + amount
        edge = moment - self._reach
        if times[0] < edge:
            amounts = self._amounts
            while times[0] < edge:
                times.popleft()
                total -= amounts.popleft()
        self._sum = total
        if total > self.best + TOLERANCE:
            self.best = total
            self.best_start = times[0]

    def _rescan(self) -> None:
        times, amounts = list(self._times), list(self._amounts)
        start = 0
        total = 0.0
        for end, moment in enumerate(times):
            total += amounts[end]
            while times[start] < moment - self.width - TOLERANCE:
                total -= amounts[start]
                start += 1
            if total > self.best + TOLERANCE:
                self.best, self.best_start = total, times[start]


class _TimelineBuilder:
    """Units arrived, admitted and rejected per interval; the interval doubles as needed."""

    __slots__ = ("_inverse", "admitted", "arrived", "rejected", "start", "used", "width")

    BINS = 128
    FIRST_WIDTH = 2.0**-10

    def __init__(self, start: float = 0.0) -> None:
        self.start = start
        self.width = self.FIRST_WIDTH
        self._inverse = 1.0 / self.width
        self.arrived = [0.0] * self.BINS
        self.admitted = [0.0] * self.BINS
        self.rejected = [0.0] * self.BINS
        self.used = 0

    def _double(self) -> None:
        self.width *= 2
        self._inverse = 1.0 / self.width
        half = self.BINS // 2
        for series in (self.arrived, self.admitted, self.rejected):
            series[:] = [series[i] + series[i + 1] for i in range(0, self.BINS, 2)]
            series.extend([0.0] * half)
        self.used = (self.used + 1) // 2

    def add(self, series: list[float], moment: float, amount: float) -> None:
        """Add ``amount`` at ``moment`` to one of the three series (the list itself)."""
        index = int((moment - self.start) * self._inverse)
        while index >= self.BINS:
            self._double()
            index = int((moment - self.start) * self._inverse)
        series[index] += amount
        if index >= self.used:
            self.used = index + 1

    def build(self) -> Timeline:
        used = self.used
        return Timeline(
            start=self.start,
            width=self.width,
            arrived=tuple(self.arrived[:used]),
            admitted=tuple(self.admitted[:used]),
            rejected=tuple(self.rejected[:used]),
        )


# -- the result ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Call:
    """One arrival and what the limiter did with it (``record=True``)."""

    time: float
    """When it arrived (seconds, trace time)."""
    amount: float
    """Units it asked for (tokens for an LLM limit)."""
    key: Hashable
    """Its key (``None`` for unkeyed traffic)."""
    wait: float | None
    """Seconds it waited (0 at once), or ``None`` when it was rejected."""

    @property
    def admitted_at(self) -> float | None:
        """When it went (``time + wait``), or ``None`` when it was rejected."""
        return None if self.wait is None else self.time + self.wait


@dataclass(frozen=True, slots=True)
class KeySummary:
    """What one key's calls met."""

    calls: int
    """Arrivals of this key."""
    admitted: int
    """Calls admitted, at once or after waiting."""
    delayed: int
    """Admitted calls that waited (more than float rounding)."""
    rejected: int
    """Calls refused."""
    units: float
    """Units admitted."""
    wait_mean: float
    """Mean wait of the admitted calls."""
    wait_max: float
    """Longest wait."""


@dataclass(frozen=True, slots=True)
class LimitReport:
    """One limit against what it admitted: its rate and its busiest window's bound."""

    unit: str
    """What the limit counts: ``"units"`` for a bucket, ``"requests"`` or ``"tokens"``."""
    rate: float
    """The limit's rate, per second."""
    burst: float
    """The limit's burst."""
    achieved: float
    """What it admitted per second, from the first arrival to the last admission."""
    window: float
    """The length of the busiest window, in seconds."""
    most: float
    """The most admitted in any closed window of that length."""
    bound: float
    """What the limit allows in such a window: ``burst + rate * window``."""
    start: float
    """When that busiest window starts."""
    key: Hashable
    """The key whose window it is (per-key limits), else ``None``."""


@dataclass(frozen=True, slots=True)
class Timeline:
    """Units per interval over the run, for sparklines and plots (at most 128 intervals)."""

    start: float
    """Time of the first interval's start (the first arrival)."""
    width: float
    """Seconds per interval."""
    arrived: tuple[float, ...]
    """Units that arrived in each interval."""
    admitted: tuple[float, ...]
    """Units admitted in each interval (by their admission time)."""
    rejected: tuple[float, ...]
    """Units refused in each interval."""

    def merged(self, columns: int) -> Timeline:
        """The same timeline in at most ``columns`` intervals (whole multiples merged)."""
        factor = max(1, math.ceil(len(self.arrived) / max(1, columns)))

        def merge(series: tuple[float, ...]) -> tuple[float, ...]:
            return tuple(sum(series[i : i + factor]) for i in range(0, len(series), factor))

        return Timeline(
            self.start,
            self.width * factor,
            merge(self.arrived),
            merge(self.admitted),
            merge(self.rejected),
        )


@dataclass(frozen=True)
class SimulationResult:
    """What a limit did to a stream of arrivals (see :func:`simulate`)."""

    limit: str
    """The limit, in words (``"10/s, burst 5"``)."""
    rate: float
    """The limit's rate in units per second (the first limit's, for LLM limits)."""
    burst: float
    """The limit's burst (the first limit's, for LLM limits)."""
    algorithm: str
    """The algorithm (``"gcra"`` for LLM limits, which always use it)."""
    mode: str
    """``"wait"``, ``"raise"`` or ``"timeout"``."""
    timeout: float | None
    """The longest wait in ``"timeout"`` mode."""
    per_key: bool
    """True when each key had a limit of its own."""
    calls: int
    """Arrivals."""
    admitted: int
    """Calls admitted, at once or after waiting."""
    delayed: int
    """Admitted calls that waited longer than float rounding (1e-9 s)."""
    rejected: int
    """Calls refused (policed, beyond the timeout, or larger than the burst)."""
    too_large: int
    """Of the rejected: calls larger than the burst, which no wait could admit."""
    units_arrived: float
    """Units asked for."""
    units_admitted: float
    """Units admitted."""
    wait_p50: float
    """Median wait of the admitted calls, in seconds."""
    wait_p90: float
    """90th percentile wait."""
    wait_p99: float
    """99th percentile wait."""
    wait_max: float
    """Longest wait."""
    wait_mean: float
    """Mean wait of the admitted calls."""
    exact_percentiles: bool
    """False when there were so many calls that the percentiles come from a histogram
    (within 0.1%)."""
    first_arrival: float
    """Time of the first arrival."""
    last_arrival: float
    """Time of the last arrival."""
    last_admission: float
    """Time the last admitted call went."""
    achieved_rate: float
    """Units (tokens for LLM limits) admitted per second from the first arrival to the last
    admission."""
    limits: tuple[LimitReport, ...]
    """Each limit's achieved rate and busiest window (over every key for per-key limits)."""
    keys: Mapping[Hashable, KeySummary] = field(repr=False, compare=False)
    """A summary per key (empty for unkeyed traffic)."""
    timeline: Timeline = field(repr=False, compare=False)
    """Units per interval, for a sparkline or a plot."""
    calls_log: tuple[Call, ...] | None = field(default=None, repr=False, compare=False)
    """Every call, with its wait, when ``record=True`` (else ``None``)."""
    levels: tuple[tuple[float, tuple[float, ...]], ...] | None = field(
        default=None, repr=False, compare=False
    )
    """``(time, level of each limit)`` every ``levels`` seconds when asked: the units the
    bucket holds (its admissions, reservations included, still to drain)."""

    def to_dict(self) -> dict[str, Any]:
        """The summary as plain JSON-ready data (no per-call records)."""
        return {
            "limit": self.limit,
            "rate": self.rate,
            "burst": self.burst,
            "algorithm": self.algorithm,
            "mode": self.mode,
            "timeout": self.timeout,
            "per_key": self.per_key,
            "calls": self.calls,
            "admitted": self.admitted,
            "delayed": self.delayed,
            "rejected": self.rejected,
            "too_large": self.too_large,
            "units_arrived": self.units_arrived,
            "units_admitted": self.units_admitted,
            "wait": {
                "p50": self.wait_p50,
                "p90": self.wait_p90,
                "p99": self.wait_p99,
                "max": self.wait_max,
                "mean": self.wait_mean,
                "exact": self.exact_percentiles,
            },
            "first_arrival": self.first_arrival,
            "last_arrival": self.last_arrival,
            "last_admission": self.last_admission,
            "achieved_rate": self.achieved_rate,
            "limits": [
                {
                    "unit": each.unit,
                    "rate": each.rate,
                    "burst": each.burst,
                    "achieved": each.achieved,
                    "window": each.window,
                    "most": each.most,
                    "bound": each.bound,
                    "start": each.start,
                    "key": _json_key(each.key),
                }
                for each in self.limits
            ],
            "keys": {
                str(_json_key(key)): {
                    "calls": summary.calls,
                    "admitted": summary.admitted,
                    "delayed": summary.delayed,
                    "rejected": summary.rejected,
                    "units": summary.units,
                    "wait_mean": summary.wait_mean,
                    "wait_max": summary.wait_max,
                }
                for key, summary in self.keys.items()
            },
        }

    def summary(self, *, keys: int = 5) -> str:
        """The result as a few lines of text (with the ``keys`` busiest keys, if any)."""
        calls = self.calls

        def share(count: int) -> str:
            return f"({count / calls:6.1%})" if calls else "(  0.0%)"

        lines = [
            f"  admitted  {self.admitted:>8}  {share(self.admitted)}",
            f"  delayed   {self.delayed:>8}  {share(self.delayed)}",
            f"  rejected  {self.rejected:>8}  {share(self.rejected)}"
            + (f", {self.too_large} larger than the burst" if self.too_large else ""),
            f"  wait      p50 {self.wait_p50:.3f} s  p90 {self.wait_p90:.3f} s  "
            f"p99 {self.wait_p99:.3f} s  max {self.wait_max:.3f} s"
            + ("" if self.exact_percentiles else " (within 0.1%)"),
        ]
        for each in self.limits:
            whose = "" if each.key is None else f" (key {each.key!r})"
            lines.append(
                f"  achieved  {each.achieved:.3f} {each.unit}/s, all keys together "
                f"(each key's limit: {each.rate:g}/s)"
                if self.per_key
                else f"  achieved  {each.achieved:.3f} {each.unit}/s from the first arrival "
                f"to the last admission (the limit: {each.rate:g}/s)"
            )
            lines.append(
                f"  busiest {each.window:g} s: {each.most:g} {each.unit}{whose} "
                f"(the bound burst + rate*w: {each.bound:g})"
            )
        if self.keys and keys > 0:
            top = sorted(self.keys.items(), key=lambda item: (-item[1].calls, str(item[0])))
            lines.append(f"  keys      {len(self.keys)}" + (", the busiest:" if top else ""))
            for key, summary in top[:keys]:
                lines.append(
                    f"    {key!s:<12} {summary.calls:>7} calls  {summary.admitted:>7} "
                    f"admitted  {summary.rejected:>7} rejected  wait max "
                    f"{summary.wait_max:.3f} s"
                )
        return "\n".join(lines)


def _json_key(key: Hashable) -> Any:
    return key if key is None or isinstance(key, (str, int, float)) else str(key)


# -- the simulation --------------------------------------------------------------------


class _KeyStats:
    __slots__ = ("admitted", "calls", "delayed", "rejected", "units", "wait_max", "wait_total")

    def __init__(self) -> None:
        self.calls = self.admitted = self.delayed = self.rejected = 0
        self.units = self.wait_total = self.wait_max = 0.0

    def freeze(self) -> KeySummary:
        return KeySummary(
            self.calls,
            self.admitted,
            self.delayed,
            self.rejected,
            self.units,
            self.wait_total / self.admitted if self.admitted else 0.0,
            self.wait_max,
        )


def _arrivals(
    arrivals: Any, max_arrivals: int
) -> tuple[Iterator[tuple[float, float, Hashable]], Pattern | None]:
    if isinstance(arrivals, Pattern):
        if arrivals.expected > max_arrivals:
            raise ConfigError(
                f"arrivals ({arrivals.kind}) at {arrivals.rate:g}/s for {arrivals.duration:g} s "
                f"make about {arrivals.expected:.4g} calls, more than max_arrivals "
                f"({max_arrivals:,}); shorten the duration or lower the rate"
            )
        return iter(arrivals), arrivals
    if isinstance(arrivals, (str, os.PathLike)):
        return read_trace(arrivals), None
    if isinstance(arrivals, io.TextIOBase):
        return read_trace(arrivals), None
    if isinstance(arrivals, Iterable):
        return _from_iterable(arrivals), None
    raise ConfigTypeError(
        "arrivals must be a Pattern, a trace file's path or an iterable of "
        f"(time, amount[, key]), got {arrivals!r}"
    )


def _limit_words(config: BucketConfig) -> str:
    return f"{config.rate:g}/s, burst {config.max_burst:g}"


def simulate(
    arrivals: Pattern | str | os.PathLike[str] | Iterable[Any],
    rate: str | BucketConfig | None = None,
    *,
    capacity: float | None = None,
    seconds: float = 1.0,
    burst: float | None = None,
    requests_per_minute: float | None = None,
    tokens_per_minute: float | None = None,
    requests_per_day: float | None = None,
    tokens_per_day: float | None = None,
    algorithm: str = "leaky_bucket",
    mode: Mode = "wait",
    timeout: float | None = None,
    per_key: bool = False,
    max_keys: int = 10_000,
    window: float = 1.0,
    record: bool = False,
    levels: float | None = None,
    max_arrivals: int = MAX_ARRIVALS,
    progress: Callable[[int], None] | None = None,
) -> SimulationResult:
    """Replay ``arrivals`` through a limit on a virtual clock and summarise what it did.

    The limit is a rate (``"10/s"``, ``"600/minute"``, ``"1e3/s"`` or a
    :class:`~limitor.configs.BucketConfig`), or ``capacity`` per ``seconds``, with
    ``burst``; or LLM limits (``requests_per_minute``, ``tokens_per_minute``, per day,
    several at once: each arrival's amount is its tokens, and it is one request). The
    real limiter is built on a :class:`~limitor.testing.FakeClock` and asked through its
    public verbs, so the outcome is exactly what the library does.

    Args:
        arrivals: a :class:`Pattern`, a trace file (see :func:`read_trace`) or an iterable
            of ``(time, amount[, key])`` in time order (a bare number is a time, amount 1).
        rate: the limit as text or a ``BucketConfig``.
        capacity: units per ``seconds`` (instead of ``rate``).
        seconds: the period of ``capacity``.
        burst: the most units admitted at once (default: the rate's amount).
        requests_per_minute: an LLM limit (with or without the others below).
        tokens_per_minute: an LLM limit on each arrival's amount.
        requests_per_day: an LLM limit.
        tokens_per_day: an LLM limit.
        algorithm: ``"leaky_bucket"``, ``"token_bucket"``, ``"gcra"`` or
            ``"gcra_leaky_bucket"`` (LLM limits always use GCRA).
        mode: ``"wait"`` (every call waits its turn: ``reserve()``), ``"raise"`` (refused
            unless it fits now: ``try_acquire()``) or ``"timeout"`` (waits up to
            ``timeout``, refused at once beyond it).
        timeout: the longest wait in ``"timeout"`` mode (giving it implies that mode).
        per_key: give each key of the traffic its own limit (``PerUserLimiter``, or an
            ``LLMLimiter`` keyed per call); otherwise all keys share one limit.
        max_keys: how many keys' buckets the per-key limiter keeps (its ``max_users``).
        window: the length of the busiest window, in seconds.
        record: keep every call in :attr:`SimulationResult.calls_log` (memory grows
            with the trace; without it memory stays flat).
        levels: also sample the bucket's level every ``levels`` seconds (not per key).
        max_arrivals: refuse a pattern expected to make more calls, and stop a trace
            with more, with a ``ConfigError``.
        progress: called with the number of calls so far every 65,536 calls (progress
            bars).

    Returns:
        A frozen :class:`SimulationResult`.

    Raises:
        ConfigError: a bad limit, mode or setting; ``TraceError`` (one) for a trace
            that cannot be replayed, naming the line.
    """
    llm_limits = {
        "requests_per_minute": requests_per_minute,
        "tokens_per_minute": tokens_per_minute,
        "requests_per_day": requests_per_day,
        "tokens_per_day": tokens_per_day,
    }
    is_llm = any(value is not None for value in llm_limits.values())
    if mode not in ("wait", "raise", "timeout"):
        raise ConfigError(f"mode must be 'wait', 'raise' or 'timeout', got {mode!r}")
    if timeout is not None:
        timeout = _not_negative("timeout", timeout)
        if mode == "raise":
            raise ConfigError("timeout applies to waiting calls, not to mode 'raise'")
        mode = "timeout"
    elif mode == "timeout":
        raise ConfigError("mode 'timeout' needs timeout= (seconds)")
    window = _positive("window", window)
    if levels is not None:
        levels = _positive("levels", levels)
        if per_key:
            raise ConfigError("levels are sampled for one limit, not per key")
    if isinstance(max_arrivals, bool) or not isinstance(max_arrivals, int) or max_arrivals < 1:
        raise ConfigError(f"max_arrivals must be a whole number above 0, got {max_arrivals!r}")
    if not isinstance(algorithm, str) or algorithm not in _BUCKETS:
        raise ConfigError(f"algorithm must be one of {sorted(_BUCKETS)}, got {algorithm!r}")

    clock = FakeClock()
    bounds: list[tuple[str, float, float]]  # (unit, rate, burst) per limit
    if is_llm:
        if rate is not None or capacity is not None or burst is not None:
            raise ConfigError("give either LLM limits or rate/capacity/burst, not both")
        limiter: Any = LLMLimiter(
            requests_per_minute,
            tokens_per_minute,
            requests_per_day=requests_per_day,
            tokens_per_day=tokens_per_day,
            max_keys=max_keys,
            clock=clock,
        )
        bounds = [(limit.unit, limit.rate, limit.max_burst) for limit in limiter.limits]
        words = ", ".join(
            f"{limit.capacity:g} {limit.unit}/{'minute' if limit.seconds == 60 else 'day'}"
            for limit in limiter.limits
        )
        algorithm = "gcra"
        largest = (
            min(b for unit, _, b in bounds if unit == "tokens")
            if any(unit == "tokens" for unit, _, _ in bounds)
            else math.inf
        )
    else:
        if rate is not None and capacity is not None:
            raise ConfigError("give either rate or capacity/seconds, not both")
        if rate is not None:
            config = as_rate(rate, burst)
        elif capacity is not None:
            config = BucketConfig(capacity, seconds, burst=burst)
        else:
            raise ConfigError("give the limit: a rate such as '10/s', capacity=, or LLM limits")
        if per_key:
            limiter = PerUserLimiter(config, algorithm=algorithm, max_users=max_keys, clock=clock)
        else:
            limiter = _BUCKETS[algorithm](config, clock=clock)
        bounds = [("units", config.rate, config.max_burst)]
        words = _limit_words(config)
        largest = config.max_burst

    stream, pattern = _arrivals(arrivals, max_arrivals)
    if pattern is not None and pattern.largest_amount > largest:
        raise ConfigError(
            f"amount {pattern.largest_amount:g} is larger than the burst ({largest:g}): "
            "the limiter would refuse every such call"
        )

    decide = _decider(limiter, mode, timeout, is_llm=is_llm, per_key=per_key)
    n_limits = len(bounds)
    # what each limit counts of a call: its amount, or (an LLM requests limit) one request
    counts_amount = tuple(not is_llm or unit != "requests" for unit, _, _ in bounds)
    windows: dict[Hashable, list[_Window]] = {}
    shared = windows[None] = [_Window(window) for _ in range(n_limits)]
    keys: dict[Hashable, _KeyStats] = {}
    waits = _Quantiles()
    timeline = _TimelineBuilder()
    arrived_series, admitted_series = timeline.arrived, timeline.admitted
    log: list[Call] | None = [] if record else None
    samples: list[tuple[float, tuple[float, ...]]] | None = [] if levels is not None else None
    next_sample = 0.0
    calls = admitted = delayed = rejected = too_large = 0
    units_in = units_out = wait_total = 0.0
    first = last = last_go = math.nan
    offset: float | None = None
    now = 0.0
    advance, add_wait, add_to = clock.advance, waits.add, timeline.add
    for moment, amount, key in stream:
        if offset is None:
            offset = moment
            first = last_go = moment
            timeline.start = moment
        calls += 1
        if calls > max_arrivals:
            raise ConfigError(
                f"more than max_arrivals ({max_arrivals:,}) calls; "
                "raise max_arrivals or replay a part of the trace"
            )
        virtual = moment - offset
        if samples is not None:
            if len(samples) + (virtual - next_sample) / levels > max_arrivals:  # type: ignore[operator]
                raise ConfigError(
                    f"levels every {levels:g} s make more than max_arrivals "
                    f"({max_arrivals:,}) samples; sample less often"
                )
            while next_sample <= virtual:
                clock.advance(next_sample - now)
                now = clock.now()
                samples.append((offset + now, _level(limiter, is_llm, bounds)))
                next_sample += levels  # type: ignore[operator]
        if virtual > now:
            advance(virtual - now)
            now = clock.now()
        last = moment
        units_in += amount
        add_to(arrived_series, moment, amount)
        stats = keys.get(key) if key is not None else None
        if key is not None and stats is None:
            stats = keys[key] = _KeyStats()
        if stats is not None:
            stats.calls += 1
        try:
            wait = decide(amount, key)
        except AmountError:
            wait, too_large = None, too_large + 1
        if progress is not None and not calls & 0xFFFF:
            progress(calls)
        if wait is None:
            rejected += 1
            add_to(timeline.rejected, moment, amount)
            if stats is not None:
                stats.rejected += 1
            if log is not None:
                log.append(Call(moment, amount, key, None))
            continue
        if wait <= TOLERANCE:
            wait = 0.0
        else:
            delayed += 1
            if stats is not None:
                stats.delayed += 1
        admitted += 1
        units_out += amount
        wait_total += wait
        add_wait(wait)
        go = moment + wait
        if go > last_go:
            last_go = go
        add_to(admitted_series, go, amount)
        if stats is not None:
            stats.admitted += 1
            stats.units += amount
            stats.wait_total += wait
            if wait > stats.wait_max:
                stats.wait_max = wait
        if per_key:
            trackers = windows.get(key)
            if trackers is None:
                trackers = windows[key] = [_Window(window) for _ in range(n_limits)]
        else:
            trackers = shared
        for tracker, whole in zip(trackers, counts_amount, strict=True):
            tracker.add(go, amount if whole else 1.0)
        if log is not None:
            log.append(Call(moment, amount, key, wait))
    if samples is not None and offset is not None:
        end = last_go - offset + levels  # type: ignore[operator]
        if len(samples) + (end - next_sample) / levels > max_arrivals:  # type: ignore[operator]
            raise ConfigError(
                f"levels every {levels:g} s make more than max_arrivals "
                f"({max_arrivals:,}) samples; sample less often"
            )
        while next_sample <= end:
            clock.advance(next_sample - now)
            now = clock.now()
            samples.append((offset + now, _level(limiter, is_llm, bounds)))
            next_sample += levels  # type: ignore[operator]
    if offset is None:
        first = last = last_go = 0.0
    p50, p90, p99 = waits.percentiles((0.50, 0.90, 0.99))
    span = last_go - first
    reports = []
    for index, (unit, unit_rate, unit_burst) in enumerate(bounds):
        best: tuple[float, float, Hashable] = (0.0, first, None)
        for window_key, trackers in windows.items():
            tracker = trackers[index]
            if tracker.best > best[0]:
                best = (tracker.best, tracker.best_start, window_key)
        total = admitted if unit == "requests" else units_out
        reports.append(
            LimitReport(
                unit=unit,
                rate=unit_rate,
                burst=unit_burst,
                achieved=total / span if span > 0 else 0.0,
                window=window,
                most=best[0],
                bound=unit_burst + unit_rate * window,
                start=best[1],
                key=best[2],
            )
        )
    return SimulationResult(
        limit=words,
        rate=bounds[0][1],
        burst=bounds[0][2],
        algorithm=algorithm,
        mode=mode,
        timeout=timeout,
        per_key=per_key,
        calls=calls,
        admitted=admitted,
        delayed=delayed,
        rejected=rejected,
        too_large=too_large,
        units_arrived=units_in,
        units_admitted=units_out,
        wait_p50=p50,
        wait_p90=p90,
        wait_p99=p99,
        wait_max=waits._max,
        wait_mean=wait_total / admitted if admitted else 0.0,
        exact_percentiles=waits.exact,
        first_arrival=first,
        last_arrival=last,
        last_admission=last_go,
        achieved_rate=units_out / span if span > 0 else 0.0,
        limits=tuple(reports),
        keys=MappingProxyType({key: stats.freeze() for key, stats in keys.items()}),
        timeline=timeline.build(),
        calls_log=None if log is None else tuple(log),
        levels=None if samples is None else tuple(samples),
    )


def _level(limiter: Any, is_llm: bool, bounds: list[tuple[str, float, float]]) -> tuple[float, ...]:
    """Units each limit holds now, reservations included: ``reset_after * rate``."""
    if is_llm:
        statuses = list(limiter.status().values())
        return tuple(
            status.reset_after * rate for status, (_, rate, _) in zip(statuses, bounds, strict=True)
        )
    return (limiter.status(0).reset_after * bounds[0][1],)


def _decider(
    limiter: Any, mode: str, timeout: float | None, *, is_llm: bool, per_key: bool
) -> Callable[[float, Hashable], float | None]:
    """``decide(amount, key) -> wait or None (refused)`` through the limiter's public verbs."""
    if mode == "raise":
        if is_llm:
            llm_try = limiter.try_acquire
            if per_key:
                return lambda amount, key: 0.0 if llm_try(amount, key=key) else None
            return lambda amount, key: 0.0 if llm_try(amount) else None
        try_acquire = limiter.try_acquire
        if per_key:
            return lambda amount, key: 0.0 if try_acquire(key, amount) else None
        return lambda amount, key: 0.0 if try_acquire(amount) else None

    reserve = limiter.reserve
    if is_llm:

        def reserve_call(amount: float, key: Hashable) -> Any:
            return reserve(amount, key=key if per_key else None, timeout=timeout)

    elif per_key:

        def reserve_call(amount: float, key: Hashable) -> Any:
            return reserve(key, amount, timeout)

    else:

        def reserve_call(amount: float, key: Hashable) -> Any:
            return reserve(amount, timeout)

    if mode == "wait":
        return lambda amount, key: reserve_call(amount, key).delay

    def with_timeout(amount: float, key: Hashable) -> float | None:
        try:
            return float(reserve_call(amount, key).delay)
        except AcquireTimeout:
            return None

    return with_timeout


# -- pictures --------------------------------------------------------------------------

GREY = "#888888"
"""Text, axes and grid: mid-grey reads on light and dark pages alike."""

COLOURS = {"arrived": "#8c8c8c", "admitted": "#2f81f7", "rejected": "#e5534b", "bound": "#d29922"}
"""Series colours chosen to read on light and dark backgrounds."""


def require_pyplot(*, headless: bool = False) -> Any:
    """``matplotlib.pyplot``, or an ImportError that names the ``limitor[plot]`` extra.

    With ``headless``, choose matplotlib's file-only Agg backend first (the command line).
    """
    try:
        import matplotlib

        if headless:
            matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("plots need matplotlib: pip install 'limitor[plot]'") from None
    return plt


THEME = {
    "text.color": GREY,
    "axes.labelcolor": GREY,
    "axes.titlecolor": GREY,
    "axes.edgecolor": GREY,
    "xtick.color": GREY,
    "ytick.color": GREY,
    "legend.labelcolor": GREY,
    "legend.frameon": False,
    "figure.facecolor": "none",
    "axes.facecolor": "none",
    "savefig.transparent": True,
    "svg.hashsalt": "limitor",
}
"""matplotlib settings for pictures that read on light and dark pages: transparent
background, mid-grey text, axes and ticks (use with ``matplotlib.rc_context(THEME)``)."""


def style_axes(axes: Any) -> None:
    """A light grey grid behind the data, on a transparent background."""
    axes.set_facecolor("none")
    axes.grid(color=GREY, alpha=0.25, linewidth=0.6)
    axes.set_axisbelow(True)


def plot(
    result: SimulationResult, path: str | os.PathLike[str], *, title: str | None = None
) -> None:
    """Draw arrivals against admissions over time, with the bound, to a PNG or SVG file.

    Cumulative units arrived, admitted and rejected at the edges of the timeline's intervals
    (:attr:`SimulationResult.timeline`, so summary mode is enough), and the most the limit
    allows, ``burst + rate * t``. With
    levels sampled, a second panel shows the bucket's level. Transparent background and
    grey text, readable on light and dark pages.

    Raises:
        ImportError: matplotlib is missing (install ``limitor[plot]``).
        ConfigError: the file name does not end in ``.png`` or ``.svg``.
    """
    target = Path(path)
    if target.suffix.lower() not in (".png", ".svg"):
        raise ConfigError(f"plot file must end in .png or .svg, got {str(target)!r}")
    plt = require_pyplot()
    with plt.rc_context(THEME):
        _draw(plt, result, target, title)


def _draw(plt: Any, result: SimulationResult, target: Path, title: str | None) -> None:
    panels = 2 if result.levels else 1
    figure, axes_list = plt.subplots(
        panels, 1, figsize=(7.5, 3.2 * panels), sharex=True, squeeze=False
    )
    axes = axes_list[0][0]
    line = result.timeline
    edges = [line.start + line.width * (index + 1) for index in range(len(line.arrived))]
    starts = [line.start, *edges]

    def cumulative(series: tuple[float, ...]) -> list[float]:
        total, out = 0.0, [0.0]
        for value in series:
            total += value
            out.append(total)
        return out

    axes.plot(
        starts,
        cumulative(line.arrived),
        color=COLOURS["arrived"],
        label="arrived",
        linewidth=1.5,
    )
    axes.plot(
        starts,
        cumulative(line.admitted),
        color=COLOURS["admitted"],
        label="admitted",
        linewidth=2,
    )
    if result.rejected:
        axes.plot(
            starts,
            cumulative(line.rejected),
            color=COLOURS["rejected"],
            label="rejected",
            linewidth=1.5,
        )
    first = result.limits[0]
    if first.unit != "requests" or len(result.limits) == 1:
        end = starts[-1]
        axes.plot(
            [line.start, end],
            [first.burst, first.burst + first.rate * (end - line.start)],
            color=COLOURS["bound"],
            linestyle="--",
            linewidth=1.2,
            label="bound: burst + rate·t",
        )
    axes.set_ylabel("units (cumulative)")
    mode = result.mode if result.timeout is None else f"timeout {result.timeout:g} s"
    axes.set_title(title or f"{result.limit}, {result.algorithm}, {mode}")
    axes.legend(loc="upper left")
    style_axes(axes)
    if result.levels:
        level_axes = axes_list[1][0]
        times = [sample[0] for sample in result.levels]
        level_axes.plot(
            times,
            [sample[1][0] for sample in result.levels],
            color=COLOURS["admitted"],
            linewidth=1.5,
            label="level",
        )
        level_axes.axhline(
            first.burst, color=COLOURS["bound"], linestyle="--", linewidth=1.2, label="burst"
        )
        level_axes.set_ylabel("bucket level")
        style_axes(level_axes)
    axes_list[-1][0].set_xlabel("time (s)")
    figure.tight_layout()
    figure.savefig(target, transparent=True, dpi=110)
    plt.close(figure)
