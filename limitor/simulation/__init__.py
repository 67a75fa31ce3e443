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

The modules, one job each:

- ``_traces``: reading trace files (CSV, JSON lines) and iterables: :func:`read_trace`,
  :class:`TraceError`;
- ``_patterns``: synthetic arrivals: :class:`Pattern`;
- ``_setup``: the settings checked, the arrivals opened, the limiter built;
- ``_replay``: the driver: FIFO on a ``FakeClock``, the fair replay on trio's clock;
- ``_stats``: what is measured while streaming: wait percentiles, the busiest window,
  the timeline, per-key counts;
- ``_result``: :class:`SimulationResult` and its records, with JSON and text summaries;
- ``_plot``: the matplotlib theme of limitor's pictures and :func:`plot`.

:func:`simulate` (here) checks its arguments, builds the limiter and hands both to the
replay.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from limitor.configs import BucketConfig, parse_rate
from limitor.simulation._patterns import Pattern
from limitor.simulation._plot import COLOURS as COLOURS
from limitor.simulation._plot import GREY as GREY
from limitor.simulation._plot import THEME as THEME
from limitor.simulation._plot import plot
from limitor.simulation._plot import require_pyplot as require_pyplot
from limitor.simulation._plot import style_axes as style_axes
from limitor.simulation._replay import replay
from limitor.simulation._result import Call, KeySummary, LimitReport, SimulationResult, Timeline
from limitor.simulation._setup import ALGORITHMS as ALGORITHMS
from limitor.simulation._setup import MAX_ARRIVALS as MAX_ARRIVALS
from limitor.simulation._setup import (
    SIMULATE,
    SimulateKeywords,
    arrivals_of,
    limit_and_settings,
)
from limitor.simulation._setup import Mode as Mode
from limitor.simulation._stats import TOLERANCE as TOLERANCE
from limitor.simulation._traces import LONGEST as LONGEST
from limitor.simulation._traces import MAX_LINE_BYTES as MAX_LINE_BYTES
from limitor.simulation._traces import MAX_NESTING as MAX_NESTING
from limitor.simulation._traces import TraceError, read_trace

if TYPE_CHECKING:
    from typing_extensions import Unpack

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

EXACT_WAITS = 100_000
"""Wait percentiles are exact up to this many admitted calls; beyond it the waits go into
a logarithmic histogram (relative error below 0.1%), so memory stays flat."""

parse_limit = parse_rate
"""The rate parser (:func:`limitor.configs.parse_rate`), under the name this module used."""


@SIMULATE.signature
def simulate(
    arrivals: Pattern | str | os.PathLike[str] | Iterable[Any],
    rate: str | BucketConfig | None = None,
    **options: Unpack[SimulateKeywords],
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
        total: with ``per_key``, one more limit shared by every key (a rate or a
            ``BucketConfig``; ``PerUserLimiter(..., total=)``): a call goes only when its
            key's limit and the total both allow it.
        total_burst: the total's burst (default: its amount per period).
        total_requests_per_minute: with ``per_key`` and LLM limits, requests per minute
            for every key together (``LLMLimiter(..., total_requests_per_minute=)``).
        total_tokens_per_minute: with ``per_key`` and LLM limits, tokens per minute for
            every key together.
        fair: while the total binds, waiting keys take turns (weighted round robin,
            each key FIFO) instead of one FIFO line. The calls then wait as tasks on
            trio's virtual clock (``trio`` must be installed), so the trace is held in
            memory; ``levels`` are not sampled.
        weight: with ``fair``, a key's share of the total (callable key -> number).
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
    given = SIMULATE.fill(options, "simulate")
    limit, settings = limit_and_settings(rate, given)
    stream = arrivals_of(arrivals, settings.max_arrivals, limit.largest)
    return replay(
        limit,
        stream,
        settings,
        record=given["record"],
        progress=given["progress"],
        exact_waits=EXACT_WAITS,
    )
