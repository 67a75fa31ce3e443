"""The replay: each arrival asked of the real limiter on a virtual clock, and measured.

FIFO limits are asked in arrival order, the :class:`~limitor.testing.FakeClock` moved to
each arrival: ``reserve()`` when callers wait (with the timeout, if any) and
``try_acquire()`` when they are refused at once (:func:`decider`). Under ``fair=True`` a
call's wait is known only when its turn comes, so :func:`fair_replay` first runs every
call as a task on trio's virtual clock and hands out their waits in order. Either way
:func:`replay` streams the arrivals through the trackers of :mod:`._stats` and returns
the frozen :class:`~limitor.simulation.SimulationResult`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterator
from types import MappingProxyType
from typing import Any

from limitor.errors import AcquireTimeout, AmountError, ConfigError
from limitor.simulation._result import Call, LimitReport, SimulationResult
from limitor.simulation._setup import Bound, Limit, Settings, too_many
from limitor.simulation._stats import (
    TOLERANCE,
    BusiestWindow,
    KeyStats,
    Quantiles,
    TimelineBuilder,
)

Stream = Iterator[tuple[float, float, Hashable]]
Decide = Callable[[float, Hashable], "float | None"]
"""``decide(amount, key) -> wait`` in seconds, or ``None`` when the call is refused."""


def replay(
    limit: Limit,
    stream: Stream,
    settings: Settings,
    *,
    record: bool,
    progress: Callable[[int], None] | None,
    exact_waits: int,
) -> SimulationResult:
    """Ask ``limit`` about every arrival of ``stream`` and summarise what it did.

    Args:
        limit: the limiter and its limits.
        stream: the arrivals, ``(time, amount, key)`` in time order.
        settings: the mode, timeout, window, level sampling and bound on calls.
        record: keep every call in the result.
        progress: called with the number of calls so far every 65,536 calls.
        exact_waits: wait percentiles are exact up to this many admitted calls.
    """
    if limit.fair:
        stream, decide = fair_replay(limit, stream, settings)
    else:
        decide = decider(limit, settings)
    run = _Run(limit, settings, record=record, exact_waits=exact_waits)
    run.replay(stream, decide, progress)
    return run.result()


class _Windows:
    """The busiest window of each limit (over every key's own) and of each total."""

    __slots__ = ("_counts_amount", "_per_key", "_totals_of", "_width", "by_key", "shared", "totals")

    def __init__(self, limit: Limit, width: float) -> None:
        bounds = limit.bounds
        self._width = width
        self._per_key = limit.per_key
        # what each limit counts of a call: its amount, or (an LLM requests limit) one request
        self._counts_amount = tuple(not limit.is_llm or unit != "requests" for unit, _, _ in bounds)
        self._totals_of = [
            index
            for unit, _, _ in limit.total_bounds
            for index, (own, _, _) in enumerate(bounds)
            if own == unit and (not limit.is_llm or index == _first_of(bounds, unit))
        ]
        self.by_key: dict[Hashable, list[BusiestWindow]] = {}
        self.shared = self.by_key[None] = [BusiestWindow(width) for _ in bounds]
        self.totals = [BusiestWindow(width) for _ in limit.total_bounds]

    def add(self, go: float, amount: float, key: Hashable) -> None:
        """Count an admission of ``amount`` at ``go`` for ``key``'s limits and the totals."""
        if self._per_key:
            found = self.by_key.get(key)
            if found is None:
                found = self.by_key[key] = [BusiestWindow(self._width) for _ in self.shared]
            trackers = found
        else:
            trackers = self.shared
        counts_amount = self._counts_amount
        for tracker, whole in zip(trackers, counts_amount, strict=True):
            tracker.add(go, amount if whole else 1.0)
        for tracker, index in zip(self.totals, self._totals_of, strict=True):
            tracker.add(go, amount if counts_amount[index] else 1.0)

    def reports(
        self, limit: Limit, *, admitted: int, units: float, span: float, first: float
    ) -> tuple[LimitReport, ...]:
        """One :class:`LimitReport` per limit, then one per total."""
        reports = []
        for index, bound in enumerate(limit.bounds):
            best: tuple[float, float, Hashable] = (0.0, first, None)
            for window_key, trackers in self.by_key.items():
                tracker = trackers[index]
                if tracker.best > best[0]:
                    best = (tracker.best, tracker.best_start, window_key)
            reports.append(self._report(bound, admitted, units, span, *best, total=False))
        for tracker, bound in zip(self.totals, limit.total_bounds, strict=True):
            start = tracker.best_start if tracker.best else first
            counts = (admitted, units, span, tracker.best, start, None)
            reports.append(self._report(bound, *counts, total=True))
        return tuple(reports)

    def _report(
        self,
        bound: Bound,
        admitted: int,
        units: float,
        span: float,
        most: float,
        start: float,
        key: Hashable,
        *,
        total: bool,
    ) -> LimitReport:
        unit, rate, burst = bound
        counted = admitted if unit == "requests" else units
        return LimitReport(
            unit=unit,
            rate=rate,
            burst=burst,
            achieved=counted / span if span > 0 else 0.0,
            window=self._width,
            most=most,
            bound=burst + rate * self._width,
            start=start,
            key=key,
            total=total,
        )


class _Levels:
    """The level of the limit sampled every ``every`` seconds of virtual time."""

    __slots__ = ("_limit", "_most", "_next", "every", "samples")

    def __init__(self, limit: Limit, every: float, most: int) -> None:
        self._limit = limit
        self._most = most
        self._next = 0.0
        self.every = every
        self.samples: list[tuple[float, tuple[float, ...]]] = []

    def until(self, virtual: float, offset: float) -> None:
        """Take every sample due up to ``virtual`` seconds after the first arrival.

        Raises:
            ConfigError: that makes more samples than ``max_arrivals``.
        """
        samples, every = self.samples, self.every
        if len(samples) + (virtual - self._next) / every > self._most:
            raise ConfigError(
                f"levels every {every:g} s make more than max_arrivals "
                f"({self._most:,}) samples; sample less often"
            )
        clock = self._limit.clock
        while self._next <= virtual:
            clock.advance(self._next - clock.now())
            samples.append((offset + clock.now(), level(self._limit)))
            self._next += every


def level(limit: Limit) -> tuple[float, ...]:
    """Units each limit holds now, reservations included: ``reset_after * rate``."""
    limiter, bounds = limit.limiter, limit.bounds
    if limit.is_llm:
        statuses = list(limiter.status().values())
        return tuple(
            status.reset_after * rate for status, (_, rate, _) in zip(statuses, bounds, strict=True)
        )
    return (limiter.status(0).reset_after * bounds[0][1],)


class _Run:
    """One replay's counts and trackers, filled by :meth:`replay`, frozen by :meth:`result`."""

    def __init__(self, limit: Limit, settings: Settings, *, record: bool, exact_waits: int):
        self.limit = limit
        self.settings = settings
        self.windows = _Windows(limit, settings.window)
        self.keys: dict[Hashable, KeyStats] = {}
        self.waits = Quantiles(exact_waits)
        self.timeline = TimelineBuilder()
        self.log: list[Call] | None = [] if record else None
        self.levels = (
            None
            if settings.levels is None
            else _Levels(limit, settings.levels, settings.max_arrivals)
        )
        self.counts = (0, 0, 0, 0, 0)  # calls, admitted, delayed, rejected, too large
        self.units = (0.0, 0.0, 0.0)  # arrived, admitted, waited in all
        self.times = (0.0, 0.0, 0.0)  # the first arrival, the last, the last admission

    def replay(
        self, stream: Stream, decide: Decide, progress: Callable[[int], None] | None
    ) -> None:
        """Move the clock to each arrival, ask ``decide``, count what it said."""
        clock, timeline, log, levels, keys = (
            self.limit.clock,
            self.timeline,
            self.log,
            self.levels,
            self.keys,
        )
        advance, add_wait, add_to, add_window = (
            clock.advance,
            self.waits.add,
            timeline.add,
            self.windows.add,
        )
        most = self.settings.max_arrivals
        calls = admitted = delayed = rejected = too_large = 0
        units_in = units_out = wait_total = 0.0
        first = last = last_go = math.nan
        offset: float | None = None
        now = 0.0
        for moment, amount, key in stream:
            if offset is None:
                offset = first = last_go = timeline.start = moment
            calls += 1
            if calls > most:
                raise too_many(most)
            virtual = moment - offset
            if levels is not None:
                levels.until(virtual, offset)
                now = clock.now()
            if virtual > now:
                advance(virtual - now)
                now = clock.now()
            last = moment
            units_in += amount
            add_to(timeline.arrived, moment, amount)
            try:
                wait = decide(amount, key)
            except AmountError:
                wait, too_large = None, too_large + 1
            if wait is not None and wait <= TOLERANCE:
                wait = 0.0
            if progress is not None and not calls & 0xFFFF:
                progress(calls)
            if key is not None:
                stats = keys.get(key)
                if stats is None:
                    stats = keys[key] = KeyStats()
                stats.count(amount, wait)
            if log is not None:
                log.append(Call(moment, amount, key, wait))
            if wait is None:
                rejected += 1
                add_to(timeline.rejected, moment, amount)
                continue
            if wait:
                delayed += 1
            admitted += 1
            units_out += amount
            wait_total += wait
            add_wait(wait)
            go = moment + wait
            if go > last_go:
                last_go = go
            add_to(timeline.admitted, go, amount)
            add_window(go, amount, key)
        if levels is not None and offset is not None:
            levels.until(last_go - offset + levels.every, offset)
        if offset is not None:
            self.times = (first, last, last_go)
        self.counts = (calls, admitted, delayed, rejected, too_large)
        self.units = (units_in, units_out, wait_total)

    def result(self) -> SimulationResult:
        """The frozen result of the replay."""
        limit, settings = self.limit, self.settings
        calls, admitted, delayed, rejected, too_large = self.counts
        units_in, units_out, wait_total = self.units
        first, last, last_go = self.times
        p50, p90, p99 = self.waits.percentiles((0.50, 0.90, 0.99))
        span = last_go - first
        reports = self.windows.reports(
            limit, admitted=admitted, units=units_out, span=span, first=first
        )
        return SimulationResult(
            limit=limit.words,
            rate=limit.bounds[0][1],
            burst=limit.bounds[0][2],
            algorithm=limit.algorithm,
            mode=settings.mode,
            timeout=settings.timeout,
            per_key=limit.per_key,
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
            wait_max=self.waits.max,
            wait_mean=wait_total / admitted if admitted else 0.0,
            exact_percentiles=self.waits.exact,
            first_arrival=first,
            last_arrival=last,
            last_admission=last_go,
            achieved_rate=units_out / span if span > 0 else 0.0,
            limits=reports,
            keys=MappingProxyType({key: stats.freeze() for key, stats in self.keys.items()}),
            timeline=self.timeline.build(),
            calls_log=None if self.log is None else tuple(self.log),
            levels=None if self.levels is None else tuple(self.levels.samples),
            total=limit.total_words,
            fair=limit.fair,
        )


def _first_of(bounds: tuple[Bound, ...], unit: str) -> int:
    """The index of the first limit on ``unit`` (the per-minute one)."""
    return next(index for index, (own, _, _) in enumerate(bounds) if own == unit)


_TOO_LARGE = -1.0
"""A fair replay's mark for a call larger than a burst (refused, counted as too large)."""


def fair_replay(limit: Limit, stream: Stream, settings: Settings) -> tuple[Stream, Decide]:
    """Replay a fair limiter's waits as tasks on trio's virtual clock, all at once.

    Under ``fair=True`` a call's wait is known only when its turn comes, so each arrival
    is a task that calls the limiter's async verb at its time (``acquire_async``, with
    the timeout; ``try_acquire_async`` for ``"raise"``) on trio's ``MockClock``. Returns
    the arrivals again and a ``decide`` that hands out their waits in order.

    Raises:
        ConfigError: trio is not installed.
    """
    try:
        import trio
        import trio.testing
    except ImportError:
        raise ConfigError(
            "fair=True replays the calls as tasks on trio's virtual clock: "
            "pip install 'limitor[trio]'"
        ) from None
    import anyio

    limiter, mode, timeout, is_llm = limit.limiter, settings.mode, settings.timeout, limit.is_llm
    arrivals = list(stream)
    if len(arrivals) > settings.max_arrivals:
        raise too_many(settings.max_arrivals)
    waits: list[float | None] = [None] * len(arrivals)

    async def call(index: int, amount: float, key: Hashable, asked: float) -> None:
        try:
            if mode == "raise":
                if is_llm:
                    admitted = await limiter.try_acquire_async(amount, key=key)
                else:
                    admitted = await limiter.try_acquire_async(key, amount)
                waits[index] = 0.0 if admitted else None
                return
            if is_llm:
                await limiter.acquire_async(amount, key=key, timeout=timeout)
            else:
                await limiter.acquire_async(key, amount, timeout=timeout)
            waits[index] = trio.current_time() - asked
        except AcquireTimeout:
            waits[index] = None
        except AmountError:
            waits[index] = _TOO_LARGE

    async def main() -> None:
        start = trio.current_time()
        first = arrivals[0][0] if arrivals else 0.0
        async with trio.open_nursery() as nursery:
            for index, (moment, amount, key) in enumerate(arrivals):
                at = start + (moment - first)
                if at > trio.current_time():
                    await trio.sleep_until(at)
                nursery.start_soon(call, index, amount, key, trio.current_time())

    anyio.run(
        main,
        backend="trio",
        backend_options={"clock": trio.testing.MockClock(autojump_threshold=0)},
    )
    replayed = iter(waits)

    def decide(amount: float, key: Hashable) -> float | None:
        wait = next(replayed)
        if wait == _TOO_LARGE:
            raise AmountError(f"amount {amount:g} is larger than a burst")
        return wait

    return iter(arrivals), decide


def decider(limit: Limit, settings: Settings) -> Decide:
    """``decide(amount, key) -> wait or None (refused)`` through the limiter's public verbs."""
    limiter, mode, timeout = limit.limiter, settings.mode, settings.timeout
    is_llm, per_key = limit.is_llm, limit.per_key
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
