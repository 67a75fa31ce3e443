"""The Redis store through the backend contract, on a real server.

Decisions are made at fixed server times (the scripts' test-only time override) so they
can be compared with the Python engines exactly; a few tests use the server's own clock.
"""

from __future__ import annotations

import math
import random
import uuid
from typing import Any

import pytest

from limitor.backends.base import ALL_KEYS, LimitSpec, Part, Store
from limitor.engines import ENGINES
from limitor.errors import BackendError, ConfigError, ConfigTypeError
from limitor.testing import FakeClock

from ..engines.cases import CASES, INF, Case

BASE = 96_000_000_000_000.0  # microseconds since the scripts' epoch: late 2026, about 2^46
US = 1e6


def store_for(backend: Any, *parts: tuple[float, float], keyed: bool = False) -> Any:
    spec = LimitSpec(
        tuple(Part(rate, burst) for rate, burst in parts),
        name=f"test-{uuid.uuid4().hex}",
        keyed=keyed,
    )
    return backend.bind(spec, FakeClock())


def at(store: Any, seconds: float) -> Any:
    """Make the store's next calls happen at ``seconds`` after BASE on the server."""
    store._now_us = BASE + seconds * US
    return store


def decided(grant: Any) -> float:
    """A grant as the case tables write it: the delay, or minus retry_after."""
    return grant.delay if grant.admitted else -grant.retry_after


def test_the_store_implements_the_contract(backend: Any) -> None:
    store = store_for(backend, (1, 1))
    assert isinstance(store, Store)
    assert store.does_io is True
    assert store.spec.parts == (Part(1, 1),)
    for verb in ("reserve", "give_back", "charge", "peek", "hold", "reset"):
        assert callable(getattr(store, "a" + verb)), verb


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_case_tables_give_the_engines_decisions(backend: Any, case: Case) -> None:
    store = store_for(backend, (case.rate, case.burst))
    client = backend.client
    key = store.redis_key(None)
    engines = {name: cls(case.rate, case.burst) for name, cls in ENGINES.items()}
    states = {name: engine.new_state() for name, engine in engines.items()}
    for step, (now, amount, max_wait, expected) in enumerate(case.steps):
        before = client.get(key)
        got = decided(at(store, now).reserve(None, (amount,), max_wait))
        assert got == pytest.approx(expected, abs=1e-6), f"step {step}"
        for name, engine in engines.items():
            assert got == pytest.approx(
                engine.reserve(states[name], now, amount, max_wait), abs=1e-6
            ), f"step {step}: {name}"
        if got < 0:
            assert client.get(key) == before, "a refusal must not change the state"


def test_random_multi_part_decisions_equal_the_memory_store(backend: Any) -> None:
    """The scripts and the memory store (engines/schedule.py) decide alike on several
    parts: a part that could go sooner than the others keeps the line before the common
    time free (a hole), holds and debt included."""
    from limitor.backends.memory import MemoryStore

    rng = random.Random(9)
    for _ in range(6):
        parts = [(rng.choice([1, 5, 100]), rng.choice([1, 3, 100])) for _ in range(2)]
        store = store_for(backend, *parts)
        clock = FakeClock()
        model = MemoryStore(LimitSpec(tuple(Part(r, b) for r, b in parts)), clock)
        now = 0.0
        for step in range(80):
            now += rng.choice([0.0, 0.0, rng.uniform(0, 0.5)])
            clock.advance(now - clock.now())
            amount = tuple(float(rng.randint(0, int(b))) for _, b in parts)
            verb = rng.choice(["reserve"] * 8 + ["charge", "hold"])
            if verb == "charge":  # debt, then both must agree on what follows
                at(store, now).charge(None, amount)
                model.charge(None, amount)
                continue
            if verb == "hold":
                seconds = rng.uniform(0, 2)
                at(store, now).hold(None, seconds)
                model.hold(None, seconds)
                continue
            max_wait = rng.choice([0.0, INF, rng.uniform(0, 3)])
            got = decided(at(store, now).reserve(None, amount, max_wait))
            want = decided(model.reserve(None, amount, max_wait))
            assert got == pytest.approx(want, abs=1e-6), f"{parts} step {step}"


def test_several_parts_commit_at_the_common_time_and_refuse_all_or_nothing(
    backend: Any,
) -> None:
    store = store_for(backend, (1, 1), (0.1, 1))
    assert at(store, 0).reserve(None, (1, 1), INF).delay == 0.0
    held = store.reserve(None, (1, 1), INF)
    assert held.delay == pytest.approx(10.0)
    # at 10 the first part's unit is taken by the held call: the next one waits 1 s
    assert at(store, 10).reserve(None, (1, 0), INF).delay == pytest.approx(1.0)
    refused = at(store, 10).reserve(None, (0, 1), 0.5)
    assert not refused.admitted
    assert refused.retry_after == pytest.approx(10.0)
    assert at(store, 10).peek(None, (0, 1))[1].retry_after == pytest.approx(10.0)


def test_precision_at_the_real_clock_value_keeps_fractions(backend: Any) -> None:
    # 10/s: an interval of 100,000 us; 1/3 of a token is 33,333.33 us, a fraction of a
    # microsecond that rounding to whole microseconds would lose (30 x 1/3 us = 10 us
    # over the run, ten times the tolerance below). The key lives a second of real time
    # (its PEXPIRE), long enough for the test on a loaded machine.
    store = store_for(backend, (10, 10))
    at(store, 0)
    for _ in range(30):
        store.reserve(None, (1 / 3,), INF)
    # Doubles near 2^46 us are 1/64 us apart: thirty additions stay well inside the
    # server clock's resolution.
    status = store.peek(None, (1,))[0]
    assert status.remaining == pytest.approx(0.0, abs=0.01)
    assert status.reset_after == pytest.approx(1.0, abs=1e-6)
    assert store.reserve(None, (1,), 0.0).retry_after == pytest.approx(0.1, abs=1e-6)
    assert store.reserve(None, (1,), 0.101).admitted


def test_a_crowd_cancelled_in_any_order_leaves_the_limit_as_if_it_never_came(
    backend: Any,
) -> None:
    store = store_for(backend, (1, 10))
    at(store, 0)
    for _ in range(10):
        store.reserve(None, (1,), INF)
    grants = [store.reserve(None, (1,), INF) for _ in range(20)]
    order = list(range(20))
    random.Random(3).shuffle(order)
    given = sum(store.give_back(None, (1,), grants[i].ticket, cancel=True)[0] for i in order)
    assert given == pytest.approx(20.0, abs=1e-9)
    assert store.reserve(None, (1,), INF).delay == pytest.approx(1.0, abs=1e-6)
    assert backend.client.exists(store.holes_key(None)) == 0  # no hole left


def test_cancelling_a_waiter_that_others_stand_behind_moves_none_of_them(backend: Any) -> None:
    store = store_for(backend, (1, 1))
    at(store, 0)
    store.reserve(None, (1,), INF)
    first = store.reserve(None, (1,), INF)  # at 1
    second = store.reserve(None, (1,), INF)  # at 2
    given, left = store.give_back(None, (1,), first.ticket, cancel=True)
    assert given == 1.0  # its piece is free (a hole) for the next request
    assert left.pieces == ((),)
    assert store.peek(None, (1,))[0].reset_after == pytest.approx(3.0)  # second keeps its time
    given, _ = store.give_back(None, (1,), second.ticket, cancel=True)
    assert given == pytest.approx(1.0)  # its own unit: the end rolls back past the hole
    assert store.reserve(None, (1,), INF).delay == pytest.approx(1.0)


def test_cancel_after_the_grants_time_gives_nothing_back(backend: Any) -> None:
    store = store_for(backend, (1, 1))
    at(store, 0).reserve(None, (1,), INF)
    late = store.reserve(None, (1,), INF)
    given, left = at(store, 1.0).give_back(None, (1,), late.ticket, cancel=True)
    assert given == 0.0
    assert left == late.ticket
    assert store.reserve(None, (1,), INF).delay == pytest.approx(1.0)


def test_refund_of_the_latest_admission_makes_room_at_once(backend: Any) -> None:
    store = store_for(backend, (1000 / 60, 1000))  # 1000 tokens per minute
    grant = at(store, 0).reserve(None, (1000,), INF)
    given, left = at(store, 3).give_back(None, (600,), grant.ticket, cancel=False)
    assert given == pytest.approx(600)
    ((start, end),) = left.pieces[0]
    assert (end - start) / US == pytest.approx(400 * 60 / 1000)  # what the grant still holds
    assert store.reserve(None, (640,), 0.0).admitted  # 650 are free: 50 refilled + 600
    assert not store.reserve(None, (11,), 0.0).admitted


def test_refund_is_reduced_by_what_later_admissions_used(backend: Any) -> None:
    store = store_for(backend, (1, 1))
    grant = at(store, 0).reserve(None, (1,), INF)
    assert at(store, 1).reserve(None, (1,), INF).delay == 0.0
    given, _ = at(store, 1.5).give_back(None, (1,), grant.ticket, cancel=False)
    assert given == 1.0  # the grant's units, as the memory store counts them
    assert store.reserve(None, (1,), INF).delay == pytest.approx(0.5)


def test_charge_is_debt_that_delays_the_next_request(backend: Any) -> None:
    store = store_for(backend, (10, 10))
    assert at(store, 0).reserve(None, (10,), INF).delay == 0.0
    store.charge(None, (50,))
    assert store.reserve(None, (1,), INF).delay == pytest.approx(5.1)
    fresh = store_for(backend, (10, 10))
    at(fresh, 7).charge(None, (15,))
    assert fresh.reserve(None, (1,), INF).delay == pytest.approx(0.6)


def test_hold_admits_nothing_until_it_ends_and_changes_nothing_else(backend: Any) -> None:
    store = store_for(backend, (1, 2), (10, 10))
    at(store, 0).reserve(None, (1, 1), INF)
    store.hold(None, 5.0)
    store.hold(None, 1.0)  # shorter: ignored
    assert store.reserve(None, (1, 1), 0.0).retry_after == pytest.approx(5.0)
    statuses = store.peek(None, (1, 1))
    assert statuses[0].remaining == pytest.approx(1.0)  # the hold is not consumption
    assert statuses[0].retry_after == pytest.approx(5.0)
    late = at(store, 5).reserve(None, (2, 10), 0.0)
    assert late.admitted  # after it, as if there had been no hold
    assert late.delay == 0.0


def test_peek_reports_remaining_retry_after_and_reset_after(backend: Any) -> None:
    store = store_for(backend, (10, 10))
    assert at(store, 0).peek(None, (1,))[0].remaining == pytest.approx(10.0)
    store.reserve(None, (4,), INF)
    status = store.peek(None, (7,))[0]
    assert status.remaining == pytest.approx(6.0)
    assert status.retry_after == pytest.approx(0.1)
    assert status.reset_after == pytest.approx(0.4)
    store.reserve(None, (10,), INF)  # queued: nothing remains, never below zero
    assert store.peek(None, (1,))[0].remaining == 0.0


def test_reset_forgets_one_key_or_every_key(backend: Any) -> None:
    store = store_for(backend, (1, 1), keyed=True)
    for user in ("ann", "bob", 7, None):
        store.reserve(user, (1,), INF)
    client = backend.client
    store.reset("ann")
    assert store.reserve("ann", (1,), 0.0).admitted
    assert not store.reserve("bob", (1,), 0.0).admitted
    other = store_for(backend, (1, 1))
    other.reserve(None, (1,), INF)
    store.reset(ALL_KEYS)
    for user in ("ann", "bob", 7, None):
        assert client.exists(store.redis_key(user)) == 0
    assert client.exists(other.redis_key(None)) == 1  # another limit is left alone


def test_keys_carry_a_prefix_and_one_hash_tag_per_limit_identity(redis_server: Any) -> None:
    from limitor.backends.redis import RedisBackend

    backend = RedisBackend.from_url(redis_server.url, prefix="app:")
    try:
        store = backend.bind(LimitSpec((Part(1, 1),), name="api", keyed=True), FakeClock())
        assert store.redis_key(None) == "app:{api}"
        assert store.redis_key("ann") == "app:{api:ann}"
        assert store.redis_key(42) == "app:{api:%i42}"  # never the str "42"
        assert store.redis_key(("a", 1)) == "app:{api:%r('a', 1)}"  # never its repr str
        store.reset(ALL_KEYS)
        store.reserve("ann", (1,), INF)
        assert backend.client.exists("app:{api:ann}") == 1
        store.reset(ALL_KEYS)
    finally:
        backend.close()


def test_every_key_expires_no_later_than_its_bucket_is_full(backend: Any) -> None:
    store = store_for(backend, (2, 4), (100, 100), keyed=True)
    client = backend.client
    rng = random.Random(1)
    for step in range(40):
        user = rng.choice(["a", "b", "c"])
        verb = rng.choice(["reserve", "reserve", "charge", "hold"])
        if verb == "reserve":
            store.reserve(user, (rng.choice([0, 1, 4]), rng.choice([0, 50])), rng.choice([0, INF]))
        elif verb == "charge":
            store.charge(user, (1, 10))
        else:
            store.hold(user, rng.uniform(0, 3))
        for name in ("a", "b", "c"):
            # the refill time first: the TTL read after it can only be shorter
            full = max(s.reset_after for s in store.peek(name, (0, 0)))
            ttl = client.pttl(store.redis_key(name))
            if ttl == -2:  # no key: full
                continue
            assert ttl > 0, f"step {step}: a key without a TTL"
            assert ttl <= math.ceil(full * 1000) + 1, f"step {step}"


def test_an_idle_key_vanishes_once_full(backend: Any) -> None:
    store = store_for(backend, (2, 1))  # full again 0.5 s later (not 20 ms: a busy machine)
    store.reserve(None, (1,), INF)
    ttl = backend.client.pttl(store.redis_key(None))
    assert 0 < ttl <= 501


def test_script_cache_flushed_mid_run_calls_go_on(backend: Any) -> None:
    store = store_for(backend, (1000, 1000))
    admitted = 0
    for i in range(50):
        if i % 10 == 5:
            backend.client.script_flush()
        admitted += store.reserve(None, (1,), 0.0).admitted
        store.peek(None, (1,))
    assert admitted == 50


def test_a_limit_without_a_name_is_refused_at_bind(backend: Any) -> None:
    with pytest.raises(ConfigError, match="name"):
        backend.bind(LimitSpec((Part(1, 1),)), FakeClock())


def test_bad_clients_and_urls_are_refused_at_once() -> None:
    pytest.importorskip("redis")
    from limitor.backends.redis import RedisBackend

    with pytest.raises(ConfigTypeError, match="client must be"):
        RedisBackend(object())
    with pytest.raises(ConfigTypeError, match="url"):
        RedisBackend.from_url(6379)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="timeout"):
        RedisBackend.from_url("redis://localhost", timeout=0)
    with pytest.raises(ConfigError, match="prefix"):
        RedisBackend.from_url("redis://localhost", prefix=3)  # type: ignore[arg-type]


def test_without_the_redis_package_the_error_names_the_extra(monkeypatch: Any) -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['redis'] = None\n"
        "try:\n    import limitor.backends.redis\n"
        "except ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "limitor[redis]" in out.stdout


def test_a_script_error_is_a_backend_error_naming_the_backend(backend: Any) -> None:
    store = store_for(backend, (1, 1))
    backend.client.hset(store.redis_key(None), "field", "not a string")
    with pytest.raises(BackendError, match=r"redis 127\.0\.0\.1:\d+: .*WRONGTYPE"):
        store.reserve(None, (1,), INF)


def test_counts_say_what_this_process_decided(backend: Any) -> None:
    store = store_for(backend, (1, 1))
    at(store, 0).reserve(None, (1,), INF)
    waiting = store.reserve(None, (1,), INF)
    store.reserve(None, (1,), 0.0)
    store.give_back(None, (1,), waiting.ticket, cancel=True)
    counts = store.counts()
    assert (counts.admitted, counts.waited, counts.rejected, counts.cancelled) == (2, 1, 1, 1)
    assert counts.total_wait == pytest.approx(1.0)


def test_a_crowd_on_two_parts_cancelled_in_any_order_restores_both_exactly(
    backend: Any,
) -> None:
    store = store_for(backend, (1, 3), (100, 1000))  # requests, tokens
    at(store, 0).reserve(None, (3, 900), INF)
    before = store.peek(None, (1, 100))
    grants = [store.reserve(None, (1, 50 + 10 * i), INF) for i in range(12)]
    assert grants[-1].delay > 0
    order = list(range(12))
    random.Random(5).shuffle(order)
    for i in order:
        store.give_back(None, (1, 50 + 10 * i), grants[i].ticket, cancel=True)
    assert store.peek(None, (1, 100)) == before
    assert store.reserve(None, (1, 100), INF).delay == pytest.approx(1.0)  # as if none came
