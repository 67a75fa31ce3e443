"""Issue 15 on Redis: every unit given back is usable again, as in memory.

The scripts transliterate ``limitor/engines/schedule.py`` into Lua (``schedule.lua``);
these tests run the shared give-back table against them, compare their decisions with
the memory store's on random sequences, and check the free pieces key (cap, slot,
expiry). Decisions are made at fixed server times (the scripts' test-only override,
``RedisStore._now_us``) so they can be compared exactly.
"""

from __future__ import annotations

import math
import random
import time
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from limitor.backends.base import LimitSpec, Part, Ticket
from limitor.backends.memory import MemoryStore
from limitor.testing import FakeClock

from ..engines.cases import GIVE_BACK_CASES, INF, GiveBackCase

BASE = 96_000_000_000_000.0  # microseconds since the scripts' epoch: late 2026, about 2^46
US = 1e6


@pytest.fixture(params=["standalone", "cluster"])
def any_backend(request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue(
        "backend" if request.param == "standalone" else "cluster_backend"
    )


def store_for(backend: Any, parts: list[tuple[float, float]], *, keyed: bool = False) -> Any:
    spec = LimitSpec(
        tuple(Part(rate, burst) for rate, burst in parts),
        name=f"sched-{uuid.uuid4().hex}",
        keyed=keyed,
    )
    return backend.bind(spec, FakeClock())


def at(store: Any, seconds: float) -> Any:
    store._now_us = BASE + seconds * US
    return store


def decided(grant: Any) -> float:
    return grant.delay if grant.admitted else -grant.retry_after


def holes_of(backend: Any, store: Any, key: Any = None) -> dict[int, list[tuple[float, float]]]:
    """The free pieces key, parsed: part -> pieces (microseconds)."""
    raw = backend.client.get(store.holes_key(key))
    out: dict[int, list[tuple[float, float]]] = {}
    if raw is None:
        return out
    anchor, *rest = raw.split()  # "@anchor", then pieces in microseconds after it
    assert anchor.startswith(b"@")
    values = [float(x) for x in rest]
    i = 0
    while i < len(values):
        part, count = int(values[i]), int(values[i + 1])
        flat = [float(anchor[1:]) + x for x in values[i + 2 : i + 2 + 2 * count]]
        out[part] = list(zip(flat[::2], flat[1::2], strict=True))
        i += 2 + 2 * count
    return out


# -- the shared case table -------------------------------------------------------------


@pytest.mark.parametrize("case", GIVE_BACK_CASES, ids=lambda case: case.name)
def test_give_back_table_through_the_scripts(
    any_backend: Any, case: GiveBackCase, monkeypatch: pytest.MonkeyPatch
) -> None:
    from limitor.backends.redis import RedisStore

    cap = RedisStore.piece_cap
    if case.cap is not None:
        monkeypatch.setattr(RedisStore, "piece_cap", case.cap)
        cap = case.cap
    store = store_for(any_backend, case.parts)
    tickets: dict[int, Ticket | None] = {}
    for index, step in enumerate(case.steps):
        kind, when = step[0], float(step[1])  # type: ignore[arg-type]
        at(store, when)
        if kind == "reserve":
            amounts: Any = step[2]
            grant = store.reserve(None, tuple(map(float, amounts)), step[3])
            assert decided(grant) == pytest.approx(step[4], abs=1e-6), f"step {index}"
            tickets[index] = grant.ticket
        elif kind == "cancel":
            target: Any = step[2]
            held = tuple(float(burst) for _, burst in case.parts)
            given_back, tickets[target] = store.give_back(None, held, tickets[target], cancel=True)
            assert given_back == pytest.approx(step[3], abs=1e-6), f"step {index}"
        elif kind == "refund":
            target = step[2]
            back = tuple(map(float, step[3]))  # type: ignore[call-overload]
            given_back, tickets[target] = store.give_back(None, back, tickets[target], cancel=False)
            assert given_back == pytest.approx(step[4], abs=1e-6), f"step {index}"
        else:
            ticket = tickets[step[3]] if len(step) > 3 else None  # type: ignore[index]
            store.charge(None, tuple(map(float, step[2])), ticket)  # type: ignore[call-overload]
        assert all(len(pieces) <= cap for pieces in holes_of(any_backend, store).values())


# -- the issue's figures on Redis ------------------------------------------------------


def test_the_issue_snippet_on_redis(backend: Any) -> None:
    from limitor.llm import LLMLimiter

    limiter = LLMLimiter(
        tokens_per_minute=600, backend=backend, name=f"snippet-{uuid.uuid4().hex}"
    )  # 10 tokens/s, a burst of 600
    store = limiter._store
    at(store, 0.0)
    calls = [limiter.reserve(120) for _ in range(5)]  # five overlapping calls spend the minute
    assert [call.delay for call in calls] == [0.0] * 5
    at(store, 1.0)
    for call in calls:
        call.reconcile(20)  # each used 20: 100 of 600 tokens
    assert limiter.reserve(400).delay == 0.0
    assert limiter.reserve(110).delay == 0.0  # 500 in use, 10 refilled in 1 s
    assert limiter.reserve(1).delay == pytest.approx(0.1, abs=1e-6)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_refunds_of_30_overlapping_grants_in_any_order_free_exactly_what_was_unused(
    any_backend: Any, seed: int
) -> None:
    rate, burst = 100.0, 3000.0
    store = store_for(any_backend, [(rate, burst)])
    rng = random.Random(seed)
    at(store, 0.0)
    amounts = [float(rng.randint(50, 100)) for _ in range(30)]  # at most the burst: all at once
    grants = [store.reserve(None, (amount,), INF) for amount in amounts]
    used = [float(rng.randint(1, int(amount))) for amount in amounts]
    order = list(range(30))
    rng.shuffle(order)
    for i in order:
        given_back, _ = store.give_back(
            None, (amounts[i] - used[i],), grants[i].ticket, cancel=False
        )
        assert given_back == pytest.approx(amounts[i] - used[i], abs=1e-6)
    assert all(grant.delay == 0.0 for grant in grants)
    free = burst - sum(used)  # what was used stays taken, every other unit is free
    status = store.peek(None, (0.0,))[0]
    assert status.remaining == pytest.approx(free, abs=1e-3)
    assert store.reserve(None, (free,), 0.0).admitted
    assert not store.reserve(None, (1.0,), 0.0).admitted


def test_a_reserve_behind_two_cancelled_waiters_goes_at_6_seconds(any_backend: Any) -> None:
    store = store_for(any_backend, [(1, 8)])
    at(store, 0.0)
    assert store.reserve(None, (8,), INF).delay == 0.0
    first = store.reserve(None, (2,), INF)
    assert first.delay == pytest.approx(2.0)
    assert store.reserve(None, (2,), INF).delay == pytest.approx(4.0)
    third = store.reserve(None, (2,), INF)
    assert store.reserve(None, (4,), INF).delay == pytest.approx(10.0)
    assert store.give_back(None, (2,), first.ticket, cancel=True)[0] == pytest.approx(2.0)
    assert store.give_back(None, (2,), third.ticket, cancel=True)[0] == pytest.approx(2.0)
    late = store.reserve(None, (4,), INF)
    assert late.delay == pytest.approx(6.0, abs=1e-6)
    assert len(late.ticket.pieces[0]) == 2  # in the two freed pieces
    assert store.reserve(None, (1,), INF).delay == pytest.approx(11.0, abs=1e-6)


def test_a_cancelled_sliver_is_lent_again_whatever_the_float_rounding(
    any_backend: Any,
) -> None:
    store = at(store_for(any_backend, [(0.5, 5)]), 0.0)
    for amount in (5, 5, 5, 2.5, 2.574, 0.782):
        store.reserve(None, (amount,), INF)
    sliver = store.reserve(None, (0.05,), INF)
    assert sliver.delay == pytest.approx(31.812, abs=1e-5)
    for _ in range(5):
        store.reserve(None, (5,), INF)
    assert store.give_back(None, (0.05,), sliver.ticket, cancel=True)[0] == pytest.approx(0.05)
    assert store.reserve(None, (0.05,), INF).delay == pytest.approx(31.812, abs=1e-5)
    assert store.reserve(None, (0.05,), INF).delay == pytest.approx(81.912, abs=1e-5)


@pytest.mark.parametrize(("rate", "burst"), [(15.0, 15), (33.3, 100), (7.0, 30), (1000 / 60, 60)])
def test_a_burst_of_single_units_at_one_instant_admits_exactly_the_burst(
    any_backend: Any, rate: float, burst: int
) -> None:
    """Each admission adds an interval to the schedule's end; at the epoch's magnitudes
    (2^46.5 us, doubles 1/64 us apart) those sums drifted past the tolerance and refused
    the last unit of a burst of fifteen at 15/s. The scripts now add in their call's frame."""
    store = at(store_for(any_backend, [(rate, burst)]), 0.0)
    admitted = 0
    while admitted <= burst and store.reserve(None, (1.0,), 0.0).admitted:
        admitted += 1
    assert admitted == burst
    assert store.peek(None, (1.0,))[0].retry_after == pytest.approx(1 / rate, rel=1e-6)


# -- the free pieces key ---------------------------------------------------------------


def test_the_pieces_key_shares_the_slot_and_expires_with_the_state(
    cluster_backend: Any,
) -> None:
    store = store_for(cluster_backend, [(1, 4)], keyed=True)
    client = cluster_backend.client
    for user in ("ann", "bob", ("eve", 3)):
        at(store, 0.0)
        began = time.monotonic()
        store.reserve(user, (4,), INF)
        waiter = store.reserve(user, (2,), INF)
        store.reserve(user, (2,), INF)
        store.give_back(user, (2,), waiter.ticket, cancel=True)
        state, pieces = store.redis_key(user), store.holes_key(user)
        assert client.keyslot(state) == client.keyslot(pieces)
        assert holes_of(cluster_backend, store, user) == {1: [(BASE + 4 * US, BASE + 6 * US)]}
        ttl_state, ttl_pieces = client.pttl(state), client.pttl(pieces)
        # full at 8 s of the scripts' time: neither key lives longer; the pieces key, set
        # by a later call, may have counted its 8 s from a later millisecond of real time
        late = math.ceil((time.monotonic() - began) * 1000)
        assert 0 < ttl_pieces <= ttl_state + late
        assert ttl_state <= 8000
        assert ttl_pieces <= 8000
        at(store, 0.0).reset(user)  # forgets both
        assert client.exists(pieces) == 0


def test_the_pieces_key_goes_when_its_pieces_are_used_up(backend: Any) -> None:
    store = store_for(backend, [(1, 4)])
    at(store, 0.0)
    store.reserve(None, (4,), INF)
    waiter = store.reserve(None, (2,), INF)
    store.reserve(None, (2,), INF)
    store.give_back(None, (2,), waiter.ticket, cancel=True)
    assert backend.client.exists(store.holes_key(None)) == 1
    assert store.reserve(None, (2,), INF).delay == pytest.approx(2.0)  # takes the piece
    assert backend.client.exists(store.holes_key(None)) == 0
    # one part, no pieces: the state is one number again
    anchor, offset = backend.client.get(store.redis_key(None)).split(b"~")
    assert float(anchor) + float(offset) == BASE + 8 * US


def test_the_pieces_key_never_holds_more_than_the_cap(
    backend: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from limitor.backends.redis import RedisStore

    monkeypatch.setattr(RedisStore, "piece_cap", 5)
    store = store_for(backend, [(1, 10), (10, 100)])
    at(store, 0.0)
    store.reserve(None, (10, 100), INF)
    grants = [store.reserve(None, (1, 10), INF) for _ in range(40)]
    for grant in grants[::2]:  # every other one: 20 separate pieces per part
        store.give_back(None, (1, 10), grant.ticket, cancel=True)
    pieces = holes_of(backend, store)
    assert sorted(pieces) == [1, 2]
    assert all(len(part) == 5 for part in pieces.values())
    # the latest kept: the earliest were dropped (that admits less, never more)
    assert pieces[1][-1] == (BASE + 48 * US, BASE + 49 * US)


# -- memory and Redis decide alike -----------------------------------------------------

# Rates and times are powers of two apart (dyadic), so both stores compute exactly and
# the comparison is of the rule, not of float residue (memory keeps seconds, Redis
# microseconds near 2^46: their residues differ).
PART_SETS = [
    [(1.0, 3.0)],
    [(8.0, 600.0)],
    [(2.0, 5.0), (8.0, 40.0)],
    [(1.0, 1.0), (4.0, 8.0)],
]

steps_strategy = st.lists(
    st.tuples(
        st.sampled_from(
            ["reserve", "reserve", "reserve", "cancel", "cancel", "reconcile", "charge"]
        ),
        st.sampled_from([0, 0, 0, 125, 250, 500, 1000, 3000]),  # ms since the last step
        st.tuples(st.integers(0, 8), st.integers(0, 8)),  # amounts, in eighths of the burst
        st.sampled_from([0.0, INF, INF]),  # max_wait
        st.integers(0, 1000),  # which grant
        st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.5]),  # share used on reconcile
    ),
    min_size=1,
    max_size=60,
)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(parts=st.sampled_from(PART_SETS), steps=steps_strategy, cap=st.sampled_from([1, 2, 256]))
def test_random_give_back_sequences_decide_as_the_memory_store(
    backend: Any, parts: list[tuple[float, float]], steps: Any, cap: int
) -> None:
    """Same admission times within the microsecond rounding, same units given back; what
    grants hold never exceeds ``burst + rate*w`` in any window of admission times; the
    pieces key never holds more than the cap."""
    from limitor.backends.redis import RedisStore

    saved = (MemoryStore.piece_cap, RedisStore.piece_cap)
    MemoryStore.piece_cap = RedisStore.piece_cap = cap
    try:
        store = store_for(backend, parts)
        clock = FakeClock()
        memory = MemoryStore(LimitSpec(tuple(Part(r, b) for r, b in parts)), clock)
        grants: list[dict[str, Any]] = []
        now = 0.0
        for number, (kind, ms, eighths, max_wait, pick, used) in enumerate(steps):
            now += ms / 1000
            clock.advance(now - clock.now())
            at(store, now)
            where = f"step {number}: {kind}"
            amounts = tuple(
                float(burst * share // 8) for (_, burst), share in zip(parts, eighths, strict=False)
            )
            if not amounts[0]:
                amounts = (1.0, *amounts[1:])
            if kind == "reserve":
                got = store.reserve(None, amounts, max_wait)
                want = memory.reserve(None, amounts, max_wait)
                assert decided(got) == pytest.approx(decided(want), abs=1e-6), where
                if got.admitted and want.admitted:
                    grants.append(
                        {
                            "amounts": amounts,
                            "redis": got.ticket,
                            "memory": want.ticket,
                            "at": now + got.delay,
                        }
                    )
            elif kind == "charge":
                store.charge(None, amounts)
                memory.charge(None, amounts)
            elif grants:
                grant = grants[pick % len(grants)]
                if kind == "cancel":
                    back, cancel = grant["amounts"], True
                else:
                    back = tuple(a * (1 - used) for a in grant["amounts"])
                    cancel = False
                    if used > 1.0:  # above the estimate: debt
                        extra = tuple(a * (used - 1) for a in grant["amounts"])
                        store.charge(None, extra)
                        memory.charge(None, extra)
                        continue
                got_back, grant["redis"] = store.give_back(
                    None, back, grant["redis"], cancel=cancel
                )
                want_back, grant["memory"] = memory.give_back(
                    None, back, grant["memory"], cancel=cancel
                )
                assert got_back == pytest.approx(want_back, abs=1e-6), where
                if got_back:
                    grant["amounts"] = tuple(
                        a - b for a, b in zip(grant["amounts"], back, strict=True)
                    )
            for part in holes_of(backend, store).values():
                assert len(part) <= cap, where
        # the window bound on what grants hold (their actual use), on Redis
        for p, (rate, burst) in enumerate(parts):
            units = sorted(
                (g["at"], sum(e - s for s, e in g["redis"].pieces[p]) / US * rate) for g in grants
            )
            for i, (start, _) in enumerate(units):
                total = 0.0
                for end, amount in units[i:]:
                    total += amount
                    assert total <= burst + rate * (end - start) + 1e-4
    finally:
        MemoryStore.piece_cap, RedisStore.piece_cap = saved


@pytest.mark.parametrize("rate", [1e9, 1e8, 1e7, 1e6])
def test_a_huge_rate_with_burst_one_never_admits_two_units_at_once(
    backend: Any, rate: float
) -> None:
    from limitor.backends.redis._scripts import SCRIPTS

    amounts = [(1.0,), (1.0,), (0.5,)]

    def three_at_once() -> list[bool]:
        store = store_for(backend, [(rate, 1)])
        at(store, 0.0)
        keys = (store.redis_key(None), store.holes_key(None))
        # one transaction, so that the key (full again within a microsecond of the
        # scripts' fixed time, so its expiry is 1 ms of real time) rarely expires between
        # the calls; Redis 7.0 does not freeze the clock across EXEC, so a server paused
        # for a millisecond mid-transaction lets it expire (the bucket is then full)
        pipe = backend.client.pipeline(transaction=True)
        for amount in amounts:
            pipe.execute_command(
                "EVAL", SCRIPTS["reserve"].source, 2, *keys, *store._reserve_args(amount, 0.0)
            )
        replies = pipe.execute()
        return [store._grant(r, a).admitted for r, a in zip(replies, amounts, strict=True)]

    # the decision is deterministic (fixed time): a precision bug admits twice in every
    # attempt, a key expired by the real clock in one attempt now and then
    outcomes = [three_at_once() for _ in range(3)]
    assert [True, False, False] in outcomes, outcomes


def test_a_refund_without_a_ticket_comes_off_the_end(backend: Any) -> None:
    store = store_for(backend, [(1, 10)])
    at(store, 0.0)
    store.reserve(None, (10,), INF)
    assert store.give_back(None, (4,), None, cancel=True) == (0.0, None)
    assert store.give_back(None, (4,), None, cancel=False) == (4.0, None)
    assert store.reserve(None, (4,), 0.0).admitted
    assert not store.reserve(None, (1,), 0.0).admitted


@pytest.mark.anyio
async def test_the_async_verbs_lend_freed_pieces_too(backend: Any) -> None:
    """The cancelled-waiters case through areserve / agive_back / apeek / acharge."""
    store = store_for(backend, [(1, 8), (10, 80)])
    at(store, 0.0)
    assert (await store.areserve(None, (8, 80), INF)).delay == 0.0
    first = await store.areserve(None, (2, 20), INF)
    await store.areserve(None, (2, 20), INF)
    third = await store.areserve(None, (2, 20), INF)
    await store.areserve(None, (4, 40), INF)
    for grant in (first, third):
        given_back, left = await store.agive_back(None, (2, 20), grant.ticket, cancel=True)
        assert given_back == pytest.approx(22.0)
        assert left.pieces == ((), ())
    status = await store.apeek(None, (4, 40))
    assert status[0].retry_after == pytest.approx(6.0)
    late = await store.areserve(None, (4, 40), INF)
    assert late.delay == pytest.approx(6.0, abs=1e-6)
    assert [len(pieces) for pieces in late.ticket.pieces] == [2, 2]
    given_back, left = await store.agive_back(None, (1, 10), late.ticket, cancel=False)
    assert given_back == pytest.approx(11.0)  # its latest unit of each part
    await store.acharge(None, (1, 10))  # debt takes that piece again
    assert (await store.areserve(None, (1, 10), INF)).delay == pytest.approx(11.0, abs=1e-6)
