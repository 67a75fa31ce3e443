"""Hostile traffic and hostile input (issue 17): bounded memory under key rotation, keys
that cannot collide or grow, and no admission above ``burst + rate * w`` on the way.

The memory figures are measured with ``tracemalloc``; docs/per-user.md states them.
"""

from __future__ import annotations

import gc
import io
import logging
import threading
import tracemalloc
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from limitor import BucketConfig, PerUserLimiter
from limitor.backends._keys import MAX_KEY_BYTES, HashedKey, bounded_key
from limitor.errors import AcquireTimeout
from limitor.testing import FakeClock

ALGORITHMS = ["leaky_bucket", "token_bucket", "gcra", "gcra_leaky_bucket"]

BYTES_PER_KEY = 500
"""The documented upper bound of memory per held key (docs/per-user.md), long keys included."""


@pytest.fixture(autouse=True)
def _quiet(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="limitor")


def _never_above(times: dict[Any, list[float]], rate: float, burst: float) -> None:
    """No key had more than ``burst + rate * w`` admissions in any window of ``w`` seconds."""
    for key, admitted in times.items():
        admitted.sort()
        for i, start in enumerate(admitted):
            for j in range(i, len(admitted)):
                allowed = burst + rate * (admitted[j] - start) + 1e-6
                assert j - i + 1 <= allowed, (key, admitted[i : j + 1])


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_rotating_keys_hold_bounded_memory_and_never_over_admit(algorithm: str) -> None:
    """24,000 requests over 8,000 rotating keys (each seen three times) at max_keys=1000:
    the cache never holds more than 1000 states, the traced memory stays within
    1000 x 500 bytes + 10%, and no key ever gets more than burst + rate * w."""
    clock = FakeClock()
    rate, burst = 5 / 60, 5  # 5/minute
    limiter = PerUserLimiter(
        BucketConfig(capacity=5, seconds=60), max_users=1000, algorithm=algorithm, clock=clock
    )
    limiter.try_acquire("warm-up")
    limiter.reset()
    times: dict[str, list[float]] = defaultdict(list)
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for i in range(24_000):
            key = f"10.0.{i % 8000 >> 8}.{i % 8000 & 255}"
            if limiter.try_acquire(key):
                times[key].append(clock.now())
            clock.advance(0.001)
            assert len(limiter) <= 1000
        gc.collect()
        used = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    # `times` is the test's own bookkeeping: measure without it.
    assert used - _size_of(times) <= 1000 * BYTES_PER_KEY * 1.1, used
    assert limiter.stats.overflows > 0
    _never_above(times, rate, burst)


def _size_of(times: dict[str, list[float]]) -> int:
    import sys

    return (
        sys.getsizeof(times)
        + sum(sys.getsizeof(k) + sys.getsizeof(v) + 24 * len(v) for k, v in times.items())
        + 100_000
    )


def test_long_rotating_keys_cost_no_more_than_short_ones() -> None:
    """Rotating 1 KiB keys: each is kept as a 16-byte digest, within the same bound."""
    clock = FakeClock()
    limiter = PerUserLimiter(BucketConfig(capacity=5, seconds=60), max_users=1000, clock=clock)
    limiter.try_acquire("warm-up")
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for i in range(5000):
            limiter.try_acquire(f"{i:08d}" + "k" * 1024)
            clock.advance(0.001)
        gc.collect()
        used = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert len(limiter) == 1000
    assert used <= 1000 * BYTES_PER_KEY * 1.1, used


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_shaping_through_the_overflow_never_over_admits(algorithm: str) -> None:
    """Waiting callers (reserve, as acquire does) whose keys rotate through a full cache:
    every key's admissions, at the times they were scheduled, stay within the limit."""
    clock = FakeClock()
    rate, burst = 2.0, 3.0
    limiter = PerUserLimiter(
        BucketConfig(capacity=3, seconds=1.5), max_users=8, algorithm=algorithm, clock=clock
    )
    times: dict[int, list[float]] = defaultdict(list)
    for i in range(3000):
        key = (i * 7) % 40
        try:
            reservation = limiter.reserve(key, 1, timeout=5.0)
        except AcquireTimeout:
            pass
        else:
            times[key].append(clock.now() + reservation.delay)
        clock.advance(0.01)
        assert len(limiter) <= 8
    assert limiter.stats.overflows > 0
    _never_above(times, rate, burst)


def test_a_key_leaving_the_overflow_gets_no_fresh_burst() -> None:
    clock = FakeClock()
    limiter = PerUserLimiter(BucketConfig(capacity=2, seconds=2), max_users=2, clock=clock)
    assert limiter.try_acquire("a", 2)
    assert limiter.try_acquire("b", 1)  # b is full again 1 s from now, a 2 s from now
    assert limiter.try_acquire("k", 2)  # no room: the overflow bucket, now empty
    assert "k" not in limiter
    assert not limiter.try_acquire("k")
    assert not limiter.try_acquire("new")  # the overflow is shared by every new key
    clock.advance(1.0)  # b is full again: room for k, but the overflow still refills
    assert limiter.try_acquire("k")  # its own bucket starts where the overflow was
    assert "k" in limiter
    assert not limiter.try_acquire("k")  # not the fresh burst of 2
    assert limiter.stats.users == 2


def test_an_overflowed_reservation_is_given_back_to_the_overflow() -> None:
    clock = FakeClock()
    limiter = PerUserLimiter(BucketConfig(capacity=1, seconds=1), max_users=1, clock=clock)
    limiter.acquire("a")
    first = limiter.reserve("k", 1)  # the overflow: at once
    second = limiter.reserve("k", 1)  # the overflow again: 1 s from now
    assert first.delay == 0.0
    assert second.delay == pytest.approx(1.0)
    second.cancel()
    assert limiter.reserve("z", 1).delay == pytest.approx(1.0)  # the slot is free again


def test_the_overflow_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="limitor")
    limiter = PerUserLimiter(
        BucketConfig(capacity=1, seconds=10), max_users=2, name="login", clock=FakeClock()
    )
    for key in range(50):
        limiter.try_acquire(key)
    warnings = [r for r in caplog.records if "overflow" in r.getMessage()]
    assert len(warnings) == 1
    assert "'login'" in warnings[0].getMessage()
    assert limiter.stats.overflows == 48  # one per new key that found no room
    limiter.reset()
    assert limiter.stats.overflows == 0
    assert limiter.try_acquire(1000)  # the overflow went with the reset


def test_threads_rotating_keys_never_grow_the_cache_nor_over_admit() -> None:
    limiter = PerUserLimiter(BucketConfig(capacity=3, seconds=100_000), max_users=64)
    admitted: dict[int, int] = defaultdict(int)
    lock = threading.Lock()
    sizes: list[int] = []

    def worker(offset: int) -> None:
        mine: dict[int, int] = defaultdict(int)
        for i in range(4000):
            key = (offset * 4000 + i) % 1500
            if limiter.try_acquire(key):
                mine[key] += 1
            if i % 100 == 0:
                sizes.append(len(limiter))
        with lock:
            for key, count in mine.items():
                admitted[key] += count

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert max(sizes) <= 64
    assert max(admitted.values()) <= 3
    assert sum(admitted.values()) == 64 * 3 + 3  # 64 own buckets and the overflow's burst


@pytest.mark.anyio
async def test_async_waiters_through_the_overflow(anyio_backend: str) -> None:
    del anyio_backend
    clock = FakeClock()
    limiter = PerUserLimiter(BucketConfig(capacity=1, seconds=1), max_users=1, clock=clock)
    await limiter.acquire_async("a")
    await limiter.acquire_async("b")  # the overflow
    await limiter.acquire_async("c")  # the overflow again: waits its turn
    assert clock.now() == pytest.approx(1.0)
    assert len(limiter) == 1


# -- keys of bounded size, and keys that do not collide --------------------------------


def test_long_keys_are_digests_and_short_ones_themselves() -> None:
    short = "x" * MAX_KEY_BYTES
    assert bounded_key(short) is short
    assert bounded_key(b"y" * MAX_KEY_BYTES) == b"y" * MAX_KEY_BYTES
    assert bounded_key(42) == 42
    long = "x" * (MAX_KEY_BYTES + 1)
    hashed = bounded_key(long)
    assert isinstance(hashed, HashedKey)
    assert len(hashed.digest) == 16
    assert bounded_key("x" * (MAX_KEY_BYTES + 1)) == hashed
    assert bounded_key(long.encode()) != hashed  # str and bytes stay apart
    assert bounded_key("é" * 40) != "é" * 40  # 80 bytes in UTF-8
    assert bounded_key(hashed.digest) == hashed.digest  # a caller's bytes are never a digest
    assert bounded_key(("a", long)) == ("a", hashed)
    assert bounded_key("\ud800" * 30) != bounded_key("\ud801" * 30)  # lone surrogates too


def test_long_keys_are_limited_apart_and_consistently() -> None:
    clock = FakeClock()
    limiter = PerUserLimiter(BucketConfig(capacity=1, seconds=60), clock=clock)
    one, two = "a" * 1000, "a" * 999 + "b"
    assert limiter.try_acquire(one)
    assert not limiter.try_acquire("a" * 1000)  # the same key, made again
    assert limiter.try_acquire(two)
    assert one in limiter
    assert limiter.status(one).remaining == 0
    limiter.reset(one)
    assert limiter.try_acquire(one)
    # The digest's bytes passed as a key are another key, not the long one.
    assert limiter.try_acquire(limiter_key_digest(two))


def limiter_key_digest(key: str) -> bytes:
    hashed = bounded_key(key)
    assert isinstance(hashed, HashedKey)
    return hashed.digest


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("a", "b:c"), ("a:b", "c")),
        (("a", 1), "('a', 1)"),
        (42, "42"),
        (b"k", "k"),
        (("x" * 100,), "x" * 100),
    ],
)
def test_distinct_keys_never_share_a_bucket_in_memory(first: Any, second: Any) -> None:
    limiter = PerUserLimiter(BucketConfig(capacity=1, seconds=60), clock=FakeClock())
    assert limiter.try_acquire(first)
    assert limiter.try_acquire(second)
    assert not limiter.try_acquire(first)
    assert not limiter.try_acquire(second)


# -- the command line: hostile traces ----------------------------------------------------


def _simulate(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    from limitor.__main__ import main

    status = main(["simulate", "--trace", str(path), "--rate", "2/s"], io.StringIO())
    return status, capsys.readouterr().err


def _one_line(err: str, message: str) -> None:
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    assert message in err, err


@pytest.mark.parametrize("opening", ["[", '{"a":', '[{"t":'])
def test_a_deeply_nested_json_line_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], opening: str
) -> None:
    path = tmp_path / "deep.jsonl"
    path.write_text('{"time": 0}\n' + opening * 100_000 + "\n", encoding="utf-8")
    status, err = _simulate(path, capsys)
    assert status == 2
    _one_line(err, "line 2: malformed line: nested deeper than 32 levels")


def test_brackets_inside_strings_are_not_nesting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "keys.jsonl"
    path.write_text('{"time": 0, "key": "' + "[" * 100 + '"}\n', encoding="utf-8")
    status, err = _simulate(path, capsys)
    assert (status, err) == (0, "")


def test_a_line_over_1_mib_is_refused_without_reading_it_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "long.jsonl"
    with path.open("wb") as handle:
        handle.write(b'{"time": 0}\n{"time": 1}\n')
        chunk = b" " * (1 << 20)
        for _ in range(64):  # a 64 MiB third line
            handle.write(chunk)
        handle.write(b"\n")
    tracemalloc.start()
    try:
        status, err = _simulate(path, capsys)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert status == 2
    _one_line(err, "line 3: line longer than 1 MiB")
    assert peak < 8 * (1 << 20), peak  # a few copies of one allowed line, never 64 MiB


def test_a_long_line_of_a_csv_trace_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "long.csv"
    path.write_bytes(b"time\n0\n" + b"1" * (2 << 20) + b"\n")
    status, err = _simulate(path, capsys)
    assert status == 2
    _one_line(err, "line 3: line longer than 1 MiB")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"time\n0\n\x00\x01\x02\n", "line 3: trace.csv is binary data"),
        (b"time\n0\n1\n\xff\xfe\n", "line 4: trace.csv is not UTF-8 text"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "line 1: trace.csv is not UTF-8 text"),
    ],
)
def test_binary_input_is_refused_with_its_line_number(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data: bytes, message: str
) -> None:
    path = tmp_path / "trace.csv"
    path.write_bytes(data)
    status, err = _simulate(path, capsys)
    assert status == 2
    _one_line(err, message)


def test_read_trace_bounds_the_lines_of_an_open_text_file() -> None:
    from limitor.simulation import TraceError, read_trace

    source = io.StringIO('{"time": 0}\n' + "[" * (2 << 20) + "\n")
    with pytest.raises(TraceError, match="line 2: line longer than 1 MiB"):
        list(read_trace(source, format="jsonl"))


def test_llm_limits_per_key_are_bounded_too() -> None:
    """Several parts per key (requests and tokens): new keys beyond max_keys share one
    overflow set of limits, and leaving it never hands out a fresh budget."""
    from limitor import LLMLimiter

    clock = FakeClock()
    limiter = LLMLimiter(requests_per_minute=2, tokens_per_minute=100, max_keys=3, clock=clock)
    for user in ("a", "b", "c"):
        assert limiter.try_acquire(60, key=user)
    assert limiter.try_acquire(60, key="d")  # the overflow set
    assert not limiter.try_acquire(60, key="e")  # shares d's tokens
    assert not limiter.try_acquire(60, key="d")
    assert limiter.stats.users == 3
    assert limiter.stats.overflows >= 2
    assert not limiter.try_acquire(60, key="a")  # a's own use is remembered


def test_an_unhashable_key_is_a_key_type_error_everywhere() -> None:
    from limitor import KeyTypeError, LimitorError

    limiter = PerUserLimiter(BucketConfig(capacity=1, seconds=1), clock=FakeClock())
    for verb in (
        lambda: limiter.try_acquire([1]),
        lambda: limiter.acquire({"a": 1}),
        lambda: limiter.reserve({1}),
        lambda: limiter.status([1]),
        lambda: limiter.reset([1]),
        lambda: limiter.try_acquire(("a", [1])),
    ):
        with pytest.raises(KeyTypeError, match="hashable") as caught:
            verb()
        assert isinstance(caught.value, LimitorError)
        assert isinstance(caught.value, TypeError)
