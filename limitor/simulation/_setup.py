"""A simulation's settings checked, its arrivals opened and its limiter built.

:func:`check_settings` and :func:`check_totals` refuse a bad setting before any work;
:func:`llm_limit` and :func:`bucket_limit` build the real limiter on a virtual clock and
describe its limits in a :class:`Limit`; :func:`arrivals_of` turns what was given as
arrivals into one stream of ``(time, amount, key)``.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

from limitor._checks import check_count, check_not_negative
from limitor._keywords import Keywords
from limitor.configs import BucketConfig, as_rate, check_positive
from limitor.errors import ConfigError, ConfigTypeError
from limitor.generic_cell_rate.core import SyncLeakyBucketGCRA, SyncVirtualSchedulingGCRA
from limitor.leaky_bucket.core import SyncLeakyBucket
from limitor.llm import LLMLimiter
from limitor.per_user import PerUserLimiter
from limitor.simulation._patterns import Pattern
from limitor.simulation._traces import from_iterable, read_trace
from limitor.testing import FakeClock
from limitor.token_bucket.core import SyncTokenBucket

MAX_ARRIVALS = 10_000_000
"""The default bound on the arrivals of one simulation (a minute or two of work)."""

Mode = Literal["wait", "raise", "timeout"]

ALGORITHMS = ("leaky_bucket", "token_bucket", "gcra", "gcra_leaky_bucket")
"""The algorithms a simulation can use (one bucket class each)."""

_BUCKETS: dict[str, type[Any]] = {
    "leaky_bucket": SyncLeakyBucket,
    "token_bucket": SyncTokenBucket,
    "gcra": SyncVirtualSchedulingGCRA,
    "gcra_leaky_bucket": SyncLeakyBucketGCRA,
}


class SimulateKeywords(TypedDict, total=False):
    """The keywords of :func:`limitor.simulation.simulate` (each documented there)."""

    capacity: float | None
    seconds: float
    burst: float | None
    requests_per_minute: float | None
    tokens_per_minute: float | None
    requests_per_day: float | None
    tokens_per_day: float | None
    total: str | BucketConfig | None
    total_burst: float | None
    total_requests_per_minute: float | None
    total_tokens_per_minute: float | None
    fair: bool
    weight: Callable[[Hashable], float] | None
    algorithm: str
    mode: Mode
    timeout: float | None
    per_key: bool
    max_keys: int
    window: float
    record: bool
    levels: float | None
    max_arrivals: int
    progress: Callable[[int], None] | None


SIMULATE = Keywords(
    SimulateKeywords,
    {
        "seconds": 1.0,
        "fair": False,
        "algorithm": "leaky_bucket",
        "mode": "wait",
        "per_key": False,
        "max_keys": 10_000,
        "window": 1.0,
        "record": False,
        "max_arrivals": MAX_ARRIVALS,
    },
)
"""The keywords of :func:`limitor.simulation.simulate` with their defaults."""

Bound = tuple[str, float, float]
"""A limit as ``(unit, rate, burst)``: ``"units"``, ``"requests"`` or ``"tokens"``."""


@dataclass(frozen=True)
class Settings:
    """How the replay asks and what it measures, checked."""

    mode: str
    """``"wait"``, ``"raise"`` or ``"timeout"``."""
    timeout: float | None
    """The longest wait in ``"timeout"`` mode."""
    window: float
    """The length of the busiest window, in seconds."""
    levels: float | None
    """Seconds between samples of the bucket's level, or ``None``."""
    max_arrivals: int
    """The most calls (and level samples) the replay takes."""


@dataclass(frozen=True)
class Limit:
    """The limiter a simulation asks, and its limits in numbers and words."""

    limiter: Any
    """The real limiter (a bucket, a ``PerUserLimiter`` or an ``LLMLimiter``)."""
    clock: FakeClock
    """The virtual clock the replay moves to each arrival."""
    is_llm: bool
    """True for LLM limits (each call is one request of ``amount`` tokens)."""
    per_key: bool
    """True when each key has a limit of its own."""
    fair: bool
    """True when waiting keys take turns at the total."""
    algorithm: str
    """The algorithm's name."""
    bounds: tuple[Bound, ...]
    """Each limit (per key, for per-key limits)."""
    total_bounds: tuple[Bound, ...]
    """Each total shared by every key."""
    words: str
    """The limits in words."""
    total_words: str | None
    """The totals in words, or ``None``."""
    largest: float
    """The largest amount a call can ask and ever be admitted."""


def limit_and_settings(
    rate: str | BucketConfig | None, given: SimulateKeywords
) -> tuple[Limit, Settings]:
    """The limit a simulation replays through, and its settings: each checked.

    ``given`` holds every keyword of :func:`limitor.simulation.simulate` (the defaults
    filled in).

    Raises:
        ConfigError: a bad limit, mode or setting, or limits of both kinds.
    """
    llm_limits = {
        "requests_per_minute": given["requests_per_minute"],
        "tokens_per_minute": given["tokens_per_minute"],
        "requests_per_day": given["requests_per_day"],
        "tokens_per_day": given["tokens_per_day"],
    }
    llm_totals = {
        "total_requests_per_minute": given["total_requests_per_minute"],
        "total_tokens_per_minute": given["total_tokens_per_minute"],
    }
    is_llm = any(value is not None for value in llm_limits.values())
    per_key, fair, max_keys = given["per_key"], given["fair"], given["max_keys"]
    settings = check_settings(
        given["mode"],
        given["timeout"],
        given["window"],
        given["levels"],
        given["max_arrivals"],
        given["algorithm"],
        per_key=per_key,
    )
    check_totals(is_llm, per_key, given["total"], llm_totals, fair, levels=settings.levels)
    turns = {"fair": fair, "weight": given["weight"]}
    capacity, burst = given["capacity"], given["burst"]
    if is_llm:
        if rate is not None or capacity is not None or burst is not None:
            raise ConfigError("give either LLM limits or rate/capacity/burst, not both")
        limit = llm_limit(llm_limits, llm_totals, max_keys=max_keys, per_key=per_key, turns=turns)
    else:
        limit = bucket_limit(
            config_of(rate, capacity, given["seconds"], burst),
            algorithm=given["algorithm"],
            per_key=per_key,
            max_keys=max_keys,
            total=given["total"],
            total_burst=given["total_burst"],
            turns=turns,
        )
    return limit, settings


def check_settings(
    mode: object,
    timeout: object,
    window: object,
    levels: object,
    max_arrivals: object,
    algorithm: object,
    *,
    per_key: bool,
) -> Settings:
    """The replay's settings, checked in the order :func:`~limitor.simulate` lists them.

    Raises:
        ConfigError: a bad value or combination (the message names it).
    """
    if mode not in ("wait", "raise", "timeout"):
        raise ConfigError(f"mode must be 'wait', 'raise' or 'timeout', got {mode!r}")
    seconds: float | None = None
    if timeout is not None:
        seconds = check_not_negative("timeout", timeout)
        if mode == "raise":
            raise ConfigError("timeout applies to waiting calls, not to mode 'raise'")
        mode = "timeout"
    elif mode == "timeout":
        raise ConfigError("mode 'timeout' needs timeout= (seconds)")
    width = check_positive("window", window)
    every: float | None = None
    if levels is not None:
        every = check_positive("levels", levels)
        if per_key:
            raise ConfigError("levels are sampled for one limit, not per key")
    most = check_count("max_arrivals", max_arrivals)
    if not isinstance(algorithm, str) or algorithm not in _BUCKETS:
        raise ConfigError(f"algorithm must be one of {sorted(_BUCKETS)}, got {algorithm!r}")
    return Settings(str(mode), seconds, width, every, most)


def check_totals(
    is_llm: bool,
    per_key: bool,
    total: object,
    llm_totals: Mapping[str, object],
    fair: object,
    *,
    levels: float | None,
) -> None:
    """Refuse a total without per-key limits, of the wrong kind, or a bad ``fair``.

    Raises:
        ConfigError: the message says what goes with what.
    """
    has_llm_total = any(value is not None for value in llm_totals.values())
    if (total is not None or has_llm_total) and not per_key:
        raise ConfigError("a total is shared by per-key limits: give per_key=True as well")
    if is_llm and total is not None:
        raise ConfigError("LLM limits take total_requests_per_minute= or total_tokens_per_minute=")
    if not is_llm and has_llm_total:
        raise ConfigError("total_requests/tokens_per_minute= go with LLM limits; use total=")
    if not isinstance(fair, bool):
        raise ConfigTypeError(f"fair must be True or False, got {fair!r}")
    if fair and levels is not None:
        raise ConfigError("levels are not sampled with fair=True")


def limiter_clock(fair: bool, clock: FakeClock) -> Any:
    """The clock the limiter reads: the replay's, or trio's virtual clock for fair turns."""
    if not fair:
        return clock
    from limitor.clock import AnyioClock  # the tasks wait on trio's virtual clock

    return AnyioClock()


def llm_limit(
    llm_limits: Mapping[str, Any],
    llm_totals: Mapping[str, Any],
    *,
    max_keys: int,
    per_key: bool,
    turns: Mapping[str, Any],
) -> Limit:
    """An ``LLMLimiter`` with these limits (and totals), on a virtual clock."""
    clock = FakeClock()
    limiter = LLMLimiter(
        **llm_limits,
        max_keys=max_keys,
        clock=limiter_clock(turns["fair"], clock),
        **llm_totals,
        **turns,
    )
    bounds = tuple((each.unit, each.rate, each.max_burst) for each in limiter.limits)
    totals = tuple((each.unit, each.rate, each.max_burst) for each in limiter.totals)
    tokens = [burst for unit, _, burst in bounds if unit == "tokens"]
    words = ", ".join(
        f"{each.capacity:g} {each.unit}/{'minute' if each.seconds == 60 else 'day'}"
        for each in limiter.limits
    )
    total_words = (
        ", ".join(f"{each.capacity:g} {each.unit}/minute" for each in limiter.totals)
        if totals
        else None
    )
    described = (bounds, totals, words, total_words, min(tokens) if tokens else math.inf)
    return Limit(limiter, clock, True, per_key, turns["fair"], "gcra", *described)


def bucket_limit(
    config: BucketConfig,
    *,
    algorithm: str,
    per_key: bool,
    max_keys: int,
    total: Any,
    total_burst: float | None,
    turns: Mapping[str, Any],
) -> Limit:
    """A bucket, or a ``PerUserLimiter`` (with its total), of ``config`` on a virtual clock.

    Raises:
        ConfigError: ``total_burst``, ``fair`` or ``weight`` without a total.
    """
    clock = FakeClock()
    totals: tuple[Bound, ...] = ()
    total_words = None
    largest = config.max_burst
    if per_key:
        limiter: Any = PerUserLimiter(
            config,
            algorithm=algorithm,
            max_users=max_keys,
            clock=limiter_clock(turns["fair"], clock),
            total=total,
            total_burst=total_burst,
            **turns,
        )
        if limiter.total is not None:
            totals = (("units", limiter.total.rate, limiter.total.max_burst),)
            total_words = _limit_words(limiter.total)
            largest = min(config.max_burst, limiter.total.max_burst)
    else:
        if total_burst is not None or turns["fair"] or turns["weight"] is not None:
            raise ConfigError("total_burst=, fair= and weight= go with total=")
        limiter = _BUCKETS[algorithm](config, clock=clock)
    bounds: tuple[Bound, ...] = (("units", config.rate, config.max_burst),)
    described = (bounds, totals, _limit_words(config), total_words, largest)
    return Limit(limiter, clock, False, per_key, turns["fair"], algorithm, *described)


def config_of(
    rate: object, capacity: float | None, seconds: float, burst: float | None
) -> BucketConfig:
    """The limit given as a rate, or as ``capacity`` per ``seconds`` (with ``burst``).

    Raises:
        ConfigError: both or neither given, or a bad value.
    """
    if rate is not None and capacity is not None:
        raise ConfigError("give either rate or capacity/seconds, not both")
    if rate is not None:
        return as_rate(rate, burst)
    if capacity is not None:
        return BucketConfig(capacity, seconds, burst=burst)
    raise ConfigError("give the limit: a rate such as '10/s', capacity=, or LLM limits")


def _limit_words(config: BucketConfig) -> str:
    return f"{config.rate:g}/s, burst {config.max_burst:g}"


def arrivals_of(
    arrivals: object, max_arrivals: int, largest: float
) -> Iterator[tuple[float, float, Hashable]]:
    """The arrivals as one stream of ``(time, amount, key)``.

    Raises:
        ConfigError: a pattern expected to make more than ``max_arrivals`` calls, or
            whose amounts exceed ``largest`` (every such call would be refused).
        ConfigTypeError: ``arrivals`` is not something to replay.
    """
    if isinstance(arrivals, Pattern):
        if arrivals.expected > max_arrivals:
            raise ConfigError(
                f"arrivals ({arrivals.kind}) at {arrivals.rate:g}/s for {arrivals.duration:g} s "
                f"make about {arrivals.expected:.4g} calls, more than max_arrivals "
                f"({max_arrivals:,}); shorten the duration or lower the rate"
            )
        if arrivals.largest_amount > largest:
            raise ConfigError(
                f"amount {arrivals.largest_amount:g} is larger than the burst ({largest:g}): "
                "the limiter would refuse every such call"
            )
        return iter(arrivals)
    if isinstance(arrivals, (str, os.PathLike, io.TextIOBase)):
        return read_trace(arrivals)
    if isinstance(arrivals, Iterable):
        return from_iterable(arrivals)
    raise ConfigTypeError(
        "arrivals must be a Pattern, a trace file's path or an iterable of "
        f"(time, amount[, key]), got {arrivals!r}"
    )


def too_many(max_arrivals: int) -> ConfigError:
    """The error for a trace with more than ``max_arrivals`` calls."""
    return ConfigError(
        f"more than max_arrivals ({max_arrivals:,}) calls; "
        "raise max_arrivals or replay a part of the trace"
    )
