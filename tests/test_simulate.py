"""limitor.simulate: the real limiters replayed on a virtual clock."""

from __future__ import annotations

import gc
import itertools
import math
import random
import tracemalloc
from collections.abc import Hashable

import pytest

import limitor
from limitor import simulation
from limitor.configs import BucketConfig
from limitor.errors import AcquireTimeout, ConfigError
from limitor.generic_cell_rate.core import SyncLeakyBucketGCRA, SyncVirtualSchedulingGCRA
from limitor.leaky_bucket.core import SyncLeakyBucket
from limitor.llm import LLMLimiter
from limitor.per_user import PerUserLimiter
from limitor.simulation import Pattern, TraceError, parse_limit, simulate
from limitor.testing import FakeClock
from limitor.token_bucket.core import SyncTokenBucket

BUCKETS = {
    "leaky_bucket": SyncLeakyBucket,
    "token_bucket": SyncTokenBucket,
    "gcra": SyncVirtualSchedulingGCRA,
    "gcra_leaky_bucket": SyncLeakyBucketGCRA,
}


def _mixed_arrivals(seed: int, count: int = 400) -> list[tuple[float, float, Hashable]]:
    """Bursty arrivals of mixed amounts: clumps, gaps, and calls as large as the burst."""
    rng = random.Random(seed)
    now, out = 0.0, []  # from 0: simulate's clock reads the time since the first arrival
    for _ in range(count):
        out.append((now, rng.choice([0, 1, 1, 2, 5]), None))
        now += rng.choice([0.0, 0.0, 0.01, 0.05, 0.3, 2.0])
    return out


def _drive(bucket: object, clock: FakeClock, arrivals: list, mode: str, timeout=None) -> list:
    """The reference: the bucket driven by hand on a FakeClock, one public verb per call."""
    waits: list[float | None] = []
    for moment, amount, _key in arrivals:
        clock.advance(moment - clock.now())
        if mode == "raise":
            waits.append(0.0 if bucket.try_acquire(amount) else None)  # type: ignore[attr-defined]
            continue
        try:
            waits.append(bucket.reserve(amount, timeout).delay)  # type: ignore[attr-defined]
        except AcquireTimeout:
            waits.append(None)
    return waits


@pytest.mark.parametrize("algorithm", sorted(BUCKETS))
@pytest.mark.parametrize(("mode", "timeout"), [("wait", None), ("raise", None), ("timeout", 0.4)])
def test_simulate_matches_the_real_bucket_call_by_call(
    algorithm: str, mode: str, timeout: float | None
) -> None:
    arrivals = _mixed_arrivals(seed=len(algorithm) + len(mode))
    config = BucketConfig(capacity=8, seconds=1, burst=5)
    clock = FakeClock()
    expected = _drive(BUCKETS[algorithm](config, clock=clock), clock, arrivals, mode, timeout)
    result = simulate(
        arrivals, config, algorithm=algorithm, mode=mode, timeout=timeout, record=True
    )
    assert result.calls_log is not None
    got = [call.wait for call in result.calls_log]
    assert len(got) == len(expected) == 400
    for index, (mine, theirs) in enumerate(zip(got, expected, strict=True)):
        if theirs is None:
            assert mine is None, index
        else:
            assert mine is not None, index
            # the one difference allowed: a float residue below 1e-9 s is reported as 0
            assert mine == (0.0 if theirs <= 1e-9 else theirs), index
    assert result.rejected == sum(wait is None for wait in expected)
    assert result.delayed == sum(1 for wait in expected if wait is not None and wait > 1e-9)
    assert 0 < result.admitted < 400 or mode == "wait"


def _gcra_schedule(arrivals: list[float], rate: float, burst: float) -> list[float]:
    """Admission times of unit calls that all wait, from the textbook GCRA rule."""
    tat = -math.inf
    out = []
    for moment in arrivals:
        go = max(moment, tat - burst / rate + 1 / rate)
        tat = max(tat, go) + 1 / rate
        out.append(go)
    return out


def test_wait_mode_keeps_the_textbook_schedule_and_its_window_bound() -> None:
    pattern = Pattern("poisson", rate=30, duration=20, seed=3)
    times = [moment for moment, _amount, _key in pattern]
    result = simulate(pattern, "20/s", burst=4, record=True)
    assert result.calls_log is not None
    expected = _gcra_schedule(times, 20.0, 4.0)
    got = [call.admitted_at for call in result.calls_log]
    assert got == pytest.approx(expected, abs=1e-9)
    (report,) = result.limits
    assert report.bound == 4 + 20 * 1.0
    assert report.most <= report.bound + 1e-9
    assert report.most >= report.bound - 1  # saturated: the bound is reached, but for rounding
    assert result.achieved_rate == pytest.approx(20.0, rel=0.02)


def test_the_docstring_example_and_the_public_name() -> None:
    result = limitor.simulate([(0.0, 1)] * 20, "10/s", burst=5)
    assert (result.admitted, result.delayed, result.rejected) == (20, 15, 0)
    # 5 at once, then one every 0.1 s: waits 0.1 .. 1.5
    assert result.wait_max == pytest.approx(1.5)
    assert result.wait_p50 == pytest.approx(0.5)  # the 10th of 20 sorted waits
    assert result.limits[0].most == 15  # in [0, 1]: 5 + 10
    assert result.calls_log is None  # summary mode keeps no per-call list


def test_a_float_residue_is_not_a_delay() -> None:
    # 100 calls at once on GCRA, 10/s with bursts of 20: the 20 of the burst go at once
    # (one of them with a 4.4e-16 s residue on this engine), the other 80 wait
    result = simulate(
        Pattern("bursts", rate=100, duration=1, every=1), "600/minute", burst=20, algorithm="gcra"
    )
    assert (result.admitted, result.delayed) == (100, 80)
    assert result.wait_max == pytest.approx(8.0)


def test_timeout_mode_refuses_what_would_wait_too_long() -> None:
    result = simulate([(0.0, 1)] * 20, "10/s", burst=5, timeout=0.5, record=True)
    assert (result.admitted, result.rejected) == (10, 10)  # waits 0 (x5), 0.1 .. 0.5
    assert result.wait_max == pytest.approx(0.5)
    assert result.mode == "timeout"
    assert result.calls_log is not None
    assert [call.wait is None for call in result.calls_log] == [False] * 10 + [True] * 10


def test_raise_mode_polices() -> None:
    result = simulate(
        [(0.0, 1)] * 20 + [(1.0, 1)] * 20, capacity=10, seconds=1, burst=5, mode="raise"
    )
    # 5 at once; by t = 1 the bucket has drained 10 units but holds at most its burst of 5
    assert (result.admitted, result.rejected, result.delayed) == (10, 30, 0)
    assert result.wait_max == 0.0


def test_per_key_limits_are_independent() -> None:
    pattern = Pattern("poisson", rate=15, duration=30, keys=3, seed=11)
    arrivals = list(pattern)
    together = simulate(arrivals, "2/s", burst=3, per_key=True, record=True)
    assert set(together.keys) == {"user0", "user1", "user2"}
    assert together.calls_log is not None
    for key in ("user0", "user1", "user2"):
        alone = simulate([a for a in arrivals if a[2] == key], "2/s", burst=3, record=True)
        summary = together.keys[key]
        assert (summary.calls, summary.admitted, summary.delayed) == (
            alone.calls,
            alone.admitted,
            alone.delayed,
        )
        assert alone.calls_log is not None
        mine = [c.wait for c in together.calls_log if c.key == key]
        # the same waits, but for float rounding (the clocks start at different times)
        assert mine == pytest.approx([c.wait for c in alone.calls_log], abs=1e-9)
        assert summary.wait_max == pytest.approx(alone.wait_max)
    (report,) = together.limits
    assert report.bound == 3 + 2 * 1.0
    assert report.most == 5  # each key saturated: burst + rate*w in some window
    assert report.key in {"user0", "user1", "user2"}
    shared = simulate(arrivals, "2/s", burst=3)
    assert shared.keys.keys() == together.keys.keys()  # keys summarised either way
    assert shared.wait_max > together.wait_max  # one shared limit: a longer queue


def test_per_key_matches_the_per_user_limiter() -> None:
    arrivals = list(Pattern("poisson", rate=40, duration=5, keys=4, seed=2))
    clock = FakeClock()
    limiter = PerUserLimiter(BucketConfig(5, 1, burst=2), clock=clock)
    expected = []
    for moment, amount, key in arrivals:
        clock.advance(moment - clock.now())
        expected.append(0.0 if limiter.try_acquire(key, amount) else None)
    result = simulate(
        arrivals, BucketConfig(5, 1, burst=2), per_key=True, mode="raise", record=True
    )
    assert result.calls_log is not None
    assert [c.wait for c in result.calls_log] == expected


def test_llm_limits_match_the_llm_limiter_and_hold_both_bounds() -> None:
    pattern = Pattern("poisson", rate=2, duration=300, amount=(200, 4000), seed=5)
    arrivals = list(pattern)
    clock = FakeClock()
    limiter = LLMLimiter(requests_per_minute=60, tokens_per_minute=40_000, clock=clock)
    expected = []
    start = arrivals[0][0]  # simulate's clock reads the time since the first arrival
    for moment, amount, _key in arrivals:
        clock.advance(moment - start - clock.now())
        expected.append(limiter.reserve(amount).delay)
    result = simulate(pattern, requests_per_minute=60, tokens_per_minute=40_000, record=True)
    assert result.calls_log is not None
    assert [c.wait for c in result.calls_log] == [0.0 if w <= 1e-9 else w for w in expected]
    requests, tokens = result.limits
    assert (requests.unit, tokens.unit) == ("requests", "tokens")
    assert requests.bound == 60 + 1.0
    assert tokens.bound == 40_000 + 40_000 / 60
    assert requests.most <= requests.bound
    assert tokens.most <= tokens.bound + 1e-6
    # about 2 calls/s of 2100 tokens: the token limit (667/s) binds, not the requests one
    assert tokens.achieved == pytest.approx(40_000 / 60, rel=0.1)
    assert requests.achieved < 1.0
    assert result.delayed > result.calls // 2


def test_an_amount_above_the_burst_is_refused_up_front_or_counted() -> None:
    with pytest.raises(ConfigError, match="larger than the burst"):
        simulate(Pattern("uniform", rate=1, duration=5, amount=2), "10/s", burst=0.5)
    result = simulate([(0, 1), (0, 50), (1, 1)], "10/s", burst=5)
    assert (result.admitted, result.rejected, result.too_large) == (2, 1, 1)


def test_patterns_are_exact_where_they_can_be_and_seeded_where_random() -> None:
    assert [t for t, _, _ in Pattern("uniform", rate=4, duration=1)] == [0, 0.25, 0.5, 0.75]
    bursts = [t for t, _, _ in Pattern("bursts", rate=3, duration=10, every=5)]
    assert bursts == [0.0] * 15 + [5.0] * 15
    first = list(Pattern("poisson", rate=50, duration=10, seed=9, keys=3, amount=(1, 9)))
    assert first == list(Pattern("poisson", rate=50, duration=10, seed=9, keys=3, amount=(1, 9)))
    assert first != list(Pattern("poisson", rate=50, duration=10, seed=8, keys=3, amount=(1, 9)))
    assert 400 < len(first) < 600
    assert {amount for _, amount, _ in first} <= set(map(float, range(1, 10)))
    assert all(a <= b for (a, _, _), (b, _, _) in itertools.pairwise(first))


def test_the_daily_curve_is_quiet_at_midnight_and_busy_at_noon() -> None:
    day = [t for t, _, _ in Pattern("daily", rate=0.05, duration=86_400, depth=0.9, seed=4)]
    night = sum(1 for t in day if t < 3 * 3600 or t > 21 * 3600)
    noon = sum(1 for t in day if 9 * 3600 < t < 15 * 3600)
    assert noon > 5 * night
    assert 0.05 * 86_400 * 0.9 < len(day) < 0.05 * 86_400 * 1.1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rate": 0}, "arrival rate"),
        ({"rate": float("nan")}, "arrival rate"),
        ({"duration": -5}, "duration"),
        ({"duration": float("inf")}, "duration"),
        ({"amount": -1}, "amount"),
        ({"amount": float("nan")}, "amount"),
        ({"kind": "bursty"}, "kind"),
        ({"depth": 2}, "depth"),
        ({"keys": -1}, "keys"),
    ],
)
def test_bad_patterns_are_refused_naming_the_value(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Pattern(**kwargs)


def test_absurd_work_is_refused_before_it_starts() -> None:
    with pytest.raises(ConfigError, match="max_arrivals"):
        simulate(Pattern("uniform", rate=1e9, duration=1e3), "10/s")
    with pytest.raises(ConfigError, match="max_arrivals"):
        simulate(Pattern("bursts", rate=1e12, duration=60), "10/s")
    with pytest.raises(ConfigError, match="max_arrivals"):
        simulate(iter([(0, 1)] * 11), "10/s", max_arrivals=10)
    with pytest.raises(ConfigError, match="samples"):
        simulate([(0, 1), (1e6, 1)], "10/s", levels=1e-3)
    with pytest.raises(ConfigError, match="duration"):
        Pattern("poisson", rate=1e-300, duration=1e300)
    with pytest.raises(TraceError, match=r"arrival 2: time 1e\+300 is out of range"):
        simulate([(0, 1), (1e300, 1)], "10/s")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "give the limit"),
        ({"rate": "10/s", "mode": "hurry"}, "mode"),
        ({"rate": "10/s", "mode": "timeout"}, "needs timeout"),
        ({"rate": "10/s", "mode": "raise", "timeout": 1}, "not to mode 'raise'"),
        ({"rate": "10/s", "timeout": float("nan")}, "timeout"),
        ({"rate": "10/s", "algorithm": "fifo"}, "algorithm"),
        ({"rate": "10/s", "algorithm": ["gcra"]}, "algorithm"),
        ({"rate": "10/s", "mode": ["wait"]}, "mode"),
        ({"rate": "10/s", "levels": "often"}, "levels"),
        ({"rate": "10/s", "max_arrivals": 1.5}, "max_arrivals"),
        ({"rate": 10}, "rate must be a string"),
        ({"capacity": 0}, "capacity"),
        ({"rate": "10/s", "capacity": 5}, "not both"),
        ({"tokens_per_minute": float("nan")}, "capacity"),
        ({"rate": "10/s", "window": 0}, "window"),
        ({"rate": "10/s", "tokens_per_minute": 5}, "not both"),
        ({"rate": "10/parsec"}, "10/parsec"),
    ],
)
def test_bad_settings_are_refused_at_once(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        simulate([(0, 1)], **kwargs)


def test_rates_with_exponents() -> None:
    assert parse_limit("1e3/s").rate == 1000.0
    assert parse_limit("1.5e2 per 2 minutes", burst=3).rate == pytest.approx(1.25)
    assert parse_limit("10/s") == BucketConfig(10.0, 1.0)
    with pytest.raises(ConfigError):
        parse_limit("1e400/s")


@pytest.mark.parametrize(
    ("arrivals", "message"),
    [
        ([(0, 1), (-1, 1)], "arrival 2: time goes backwards"),
        ([(0, 1), (1, -1)], "arrival 2: amount -1"),
        ([(0, float("nan"))], "arrival 1: amount nan"),
        ([(float("nan"), 1)], "arrival 1: time nan"),
        ([(0, "x")], "arrival 1: amount 'x' is not a number"),
        ([(0, 1, "k", "extra")], "arrival 1: "),
        (["soon"], "arrival 1: arrival 'soon' is not"),
        ([("soon", 1)], "arrival 1: time 'soon' is neither"),
    ],
)
def test_bad_arrivals_name_their_position(arrivals: list, message: str) -> None:
    with pytest.raises(TraceError, match=message):
        simulate(arrivals, "10/s")


def test_percentiles_are_exact_then_within_a_tenth_of_a_percent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    arrivals = list(Pattern("poisson", rate=14, duration=400, seed=6))
    exact = simulate(arrivals, "10/s")
    assert exact.exact_percentiles
    monkeypatch.setattr(simulation, "EXACT_WAITS", 100)
    approx = simulate(arrivals, "10/s")
    assert not approx.exact_percentiles
    for name in ("wait_p50", "wait_p90", "wait_p99"):
        assert getattr(approx, name) == pytest.approx(getattr(exact, name), rel=1.01e-3)
    assert approx.wait_max == exact.wait_max
    assert approx.admitted == exact.admitted


def test_summary_mode_memory_stays_flat(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(simulation, "EXACT_WAITS", 500)

    def peak(duration: float, **kwargs: object) -> int:
        """The least peak of two runs: an allocation made once per process (a cache, a
        lazy import, a garbage collection that happens to run late) weighs on one run
        only, and not on what grows with the number of calls."""
        peaks = []
        for _ in range(2):
            gc.collect()
            tracemalloc.start()
            try:
                pattern = Pattern("poisson", rate=2000, duration=duration, seed=1)
                simulate(pattern, "500/s", burst=50, **kwargs)
                peaks.append(tracemalloc.get_traced_memory()[1])
            finally:
                tracemalloc.stop()
        return min(peaks)

    for kwargs in ({"timeout": 0.5}, {"mode": "raise"}):
        small, large = peak(2, **kwargs), peak(10, **kwargs)  # 4,000 and 20,000 calls
        assert large < small * 1.1, (kwargs, small, large)
    # waiting without a timeout, the queue grows and so does the range of the waits: the
    # histogram gains bins (a few thousand per tenfold range), not one entry per call
    small, large = peak(2), peak(10)
    assert large < small * 2, (small, large)


def test_levels_show_the_bucket_filling_and_draining() -> None:
    result = simulate([(0.0, 1)] * 8 + [(5.0, 1)], "2/s", burst=4, levels=0.5)
    assert result.levels is not None
    by_time = dict(result.levels)
    assert by_time[0.0] == (0.0,)  # sampled just before the first arrival
    assert by_time[0.5][0] == pytest.approx(7.0)  # 8 units committed, 0.5 s drained at 2/s
    assert by_time[4.0][0] == pytest.approx(0.0)
    assert max(level for _, (level,) in result.levels) <= 8


def test_timeline_counts_every_unit_once() -> None:
    result = simulate(Pattern("poisson", rate=30, duration=100, seed=2), "20/s", burst=5)
    line = result.timeline
    assert sum(line.arrived) == pytest.approx(result.units_arrived)
    assert sum(line.admitted) == pytest.approx(result.units_admitted)
    assert len(line.arrived) <= 128
    merged = line.merged(40)
    assert len(merged.arrived) <= 40
    assert sum(merged.admitted) == pytest.approx(result.units_admitted)
