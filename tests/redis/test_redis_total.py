"""Issue 19 on Redis: per-key limits under a shared total, decided in one script.

The store (``RedisTotalStore``) runs each verb as one script over the key's state and
pieces and the totals' (four keys in the limit's hash tag). These tests compare its
decisions with the memory ``TotalStore`` on random sequences (at fixed server times, the
scripts' test-only override), check the bound of every key and of the total across four
processes in real time, on a cluster, from async code, with holds and resets of the
total, and with the server down.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import time
import uuid
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from limitor import PerUserLimiter
from limitor.backends.base import ALL_KEYS, TOTAL, LimitSpec, Part
from limitor.backends.memory import MemoryStore, TotalStore
from limitor.errors import BackendError, RateLimitExceeded
from limitor.testing import FakeClock

from .test_redis_processes import most_in_window

BASE = 96_000_000_000_000.0  # microseconds since the scripts' epoch (as test_redis_schedule)
US = 1e6
INF = float("inf")


def spec_for(
    parts: list[tuple[float, float]], totals: list[tuple[float, float]], name: str | None = None
) -> LimitSpec:
    return LimitSpec(
        tuple(Part(rate, burst) for rate, burst in parts),
        name=name or f"total-{uuid.uuid4().hex}",
        keyed=True,
        totals=tuple(Part(rate, burst) for rate, burst in totals),
    )


def at(store: Any, seconds: float) -> Any:
    store._now_us = BASE + seconds * US
    return store


def decided(grant: Any) -> float:
    return grant.delay if grant.admitted else -grant.retry_after


# -- memory and Redis decide alike -----------------------------------------------------

# Rates and times are powers of two apart (dyadic): both stores compute exactly, so the
# comparison is of the rule, not of float residue. The last set is an LLM limit: requests
# and tokens per key, one total per part.
SETS = [
    ([(2.0, 4.0)], [(4.0, 6.0)]),
    ([(8.0, 8.0)], [(4.0, 16.0)]),
    ([(2.0, 2.0), (64.0, 256.0)], [(4.0, 4.0), (128.0, 256.0)]),
]
KEYS = [None, "a", "b", "c"]

steps_strategy = st.lists(
    st.tuples(
        st.sampled_from(
            ["reserve"] * 4 + ["cancel", "cancel", "reconcile", "charge", "peek", "hold", "total"]
        ),
        st.sampled_from([0, 0, 0, 125, 250, 500, 1000, 3000]),  # ms since the last step
        st.integers(0, len(KEYS) - 1),
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
@given(which=st.sampled_from(range(len(SETS))), steps=steps_strategy, cap=st.sampled_from([1, 256]))
def test_random_sequences_with_a_total_decide_as_the_memory_store(
    backend: Any, which: int, steps: Any, cap: int
) -> None:
    """Same admission times (within the microsecond rounding), same units given back,
    same statuses; what grants hold never exceeds ``burst + rate*w`` in any window of
    admission times, for each key and for the total."""
    from limitor.backends.redis import RedisStore

    parts, totals = SETS[which]
    saved = (MemoryStore.piece_cap, RedisStore.piece_cap)
    MemoryStore.piece_cap = RedisStore.piece_cap = cap
    try:
        spec = spec_for(parts, totals)
        store = backend.bind(spec, FakeClock())
        clock = FakeClock()
        memory = TotalStore(spec, clock)
        grants: list[dict[str, Any]] = []
        now = 0.0
        held_until = 0.0
        for number, (kind, ms, k, eighths, max_wait, pick, used) in enumerate(steps):
            now += ms / 1000
            clock.advance(now - clock.now())
            at(store, now)
            key = KEYS[k]
            where = f"step {number}: {kind} {key!r}"
            amounts = tuple(
                float(min(b, tb) * share // 8)
                for (_, b), (_, tb), share in zip(parts, totals, eighths, strict=False)
            )
            if not amounts[0]:
                amounts = (1.0, *amounts[1:])
            if kind == "reserve":
                got = store.reserve(key, amounts, max_wait)
                want = memory.reserve(key, amounts, max_wait)
                assert decided(got) == pytest.approx(decided(want), abs=1e-6), where
                if got.admitted and want.admitted:
                    grants.append(
                        {
                            "key": key,
                            "amounts": amounts,
                            "redis": got.ticket,
                            "memory": want.ticket,
                            "at": now + got.delay,
                        }
                    )
            elif kind == "charge":
                store.charge(key, amounts)
                memory.charge(key, amounts)
            elif kind == "peek":
                # every part positive: for 0 units on a line in debt past its burst the
                # memory engines report a wait and peek.lua none (noted, not issue 19's)
                amounts = tuple(max(a, 1.0) for a in amounts)
                got_parts = store.peek(key, amounts)
                want_parts = memory.peek(key, amounts)
                assert len(got_parts) == len(want_parts) == 2 * len(parts), where
                for got_part, want_part in zip(got_parts, want_parts, strict=True):
                    assert got_part.retry_after == pytest.approx(want_part.retry_after, abs=1e-6)
                    assert got_part.reset_after == pytest.approx(want_part.reset_after, abs=1e-6)
                    if now >= held_until:  # a hold: memory says 0 remaining, Redis the line
                        assert got_part.remaining == pytest.approx(want_part.remaining, abs=1e-5)
            elif kind in ("hold", "total"):
                target = TOTAL if kind == "total" else key
                seconds = 0.25 * (1 + pick % 4)
                store.hold(target, seconds)
                memory.hold(target, seconds)
                held_until = max(held_until, now + seconds)
            elif grants:
                grant = grants[pick % len(grants)]
                if kind == "cancel":
                    back, cancel = grant["amounts"], True
                else:
                    back = tuple(a * (1 - used) for a in grant["amounts"])
                    cancel = False
                    if used > 1.0:  # above the estimate: debt, on the key and the total
                        extra = tuple(a * (used - 1) for a in grant["amounts"])
                        store.charge(grant["key"], extra, grant["redis"])  # as reconcile does
                        memory.charge(grant["key"], extra, grant["memory"])
                        continue
                got_back, grant["redis"] = store.give_back(
                    grant["key"], back, grant["redis"], cancel=cancel
                )
                want_back, grant["memory"] = memory.give_back(
                    grant["key"], back, grant["memory"], cancel=cancel
                )
                assert got_back == pytest.approx(want_back, abs=1e-6), where
                if got_back:
                    grant["amounts"] = tuple(
                        a - b for a, b in zip(grant["amounts"], back, strict=True)
                    )
        # the window bound on what grants hold, on Redis: each key's lines, the totals'
        lines = len(parts)
        for p, (rate, burst) in enumerate([*parts, *totals]):
            for key in KEYS if p < lines else [ALL_KEYS]:
                units = sorted(
                    (g["at"], sum(e - s for s, e in g["redis"].pieces[p]) / US * rate)
                    for g in grants
                    if key is ALL_KEYS or g["key"] == key
                )
                for i, (start, _) in enumerate(units):
                    total = 0.0
                    for end, amount in units[i:]:
                        total += amount
                        assert total <= burst + rate * (end - start) + 1e-4, (p, key)
    finally:
        MemoryStore.piece_cap, RedisStore.piece_cap = saved


# -- the verbs, one at a time ----------------------------------------------------------


def test_the_docs_example_on_redis(backend: Any) -> None:
    """Dyadic rates: a rate such as 15/s loses a unit of its burst to rounding on Redis."""
    limiter = PerUserLimiter(
        "8/s", total="16/s", total_burst=12, backend=backend, name=f"t-{uuid.uuid4().hex}"
    )
    store = limiter.store
    at(store, 0.0)
    assert sum(limiter.try_acquire("alice") for _ in range(20)) == 8
    assert sum(limiter.try_acquire("bob") for _ in range(20)) == 4  # what the total has left
    reservation = limiter.reserve("carol")  # carol's own bucket is full; the total is not
    assert reservation.delay == pytest.approx(1 / 16, abs=1e-6)
    key_status, total_status = limiter.status_both("dave")
    assert key_status.remaining == pytest.approx(8)
    assert total_status.remaining == pytest.approx(0)
    assert limiter.status("dave").limit == 12.0  # the total binds dave now
    assert total_status.retry_after == pytest.approx(2 / 16, abs=1e-6)  # behind carol
    reservation.cancel()  # carol's unit comes back to the total
    assert limiter.status_both("dave")[1].retry_after == pytest.approx(1 / 16, abs=1e-6)


def test_keys_share_the_totals_hash_tag_and_reset_forgets_what_it_says(backend: Any) -> None:
    name = f"tag-{uuid.uuid4().hex}"
    store = backend.bind(spec_for([(2.0, 4.0)], [(4.0, 6.0)], name), FakeClock())
    at(store, 0.0)
    for key in ("a", "b", None, 7):
        assert store.reserve(key, (1.0,), 0.0).admitted
    found = sorted(k.decode() for k in backend.client.keys(f"{backend.prefix}*{name}*"))
    assert all(k.startswith(f"{backend.prefix}{{{name}}}") for k in found), found
    assert store.redis_key(TOTAL) in found
    store.reset("a")  # the key's bucket is full again; the total keeps what "a" used
    assert store.peek("a", (1.0,))[0].remaining == pytest.approx(4)
    assert store.peek("a", (1.0,))[1].remaining == pytest.approx(2)
    store.reset(TOTAL)  # the totals only
    assert store.peek("b", (1.0,))[1].remaining == pytest.approx(6)
    assert store.peek("b", (1.0,))[0].remaining == pytest.approx(3)
    store.reset(ALL_KEYS)
    assert backend.client.keys(f"{backend.prefix}*{name}*") == []


def test_hold_of_the_total_holds_every_key_and_a_keys_hold_only_that_key(backend: Any) -> None:
    store = backend.bind(spec_for([(2.0, 4.0)], [(4.0, 6.0)]), FakeClock())
    at(store, 0.0)
    store.hold("a", 1.0)
    assert not store.reserve("a", (1.0,), 0.0).admitted
    assert store.reserve("b", (1.0,), 0.0).admitted
    store.hold(TOTAL, 2.0)
    refused = store.reserve("c", (1.0,), 0.0)
    assert not refused.admitted
    assert refused.retry_after == pytest.approx(2.0)
    statuses = store.peek("c", (1.0,))
    assert statuses[0].retry_after == 0.0
    assert statuses[1].retry_after == pytest.approx(2.0)
    waited = store.reserve("a", (1.0,), INF)  # the later of the two holds
    assert waited.delay == pytest.approx(2.0)
    at(store, 2.0)
    assert store.reserve("c", (1.0,), 0.0).admitted
    store.hold(TOTAL, 0.5)
    store.reset(TOTAL)  # forgets the totals' hold too
    assert store.reserve("d", (1.0,), 0.0).admitted


def test_an_llm_limit_of_requests_and_tokens_under_two_totals(backend: Any) -> None:
    """Several parts: the key's requests and tokens, then one total per part."""
    store = backend.bind(
        spec_for([(1.0, 2.0), (100.0, 1000.0)], [(2.0, 3.0), (100.0, 1500.0)]), FakeClock()
    )
    at(store, 0.0)
    first = store.reserve("a", (1.0, 900.0), 0.0)
    assert first.admitted
    assert len(first.ticket.pieces) == 4
    assert not store.reserve("b", (1.0, 700.0), 0.0).admitted  # the tokens' total
    assert store.reserve("b", (1.0, 600.0), 0.0).admitted
    assert store.reserve("c", (1.0, 100.0), INF).delay == pytest.approx(1.0)  # tokens' total
    store.reset(TOTAL)
    store.reset("c")
    store.charge("x", (3.0, 1500.0))  # the totals full again, by a key of its own
    at(store, 1.0)  # two requests and 100 tokens of the totals free again
    assert store.reserve("c", (1.0, 0.0), INF).delay == 0.0
    assert store.reserve("d", (1.0, 0.0), INF).delay == 0.0
    late = store.reserve("c", (1.0, 0.0), INF)
    assert late.delay == pytest.approx(0.5)  # one request of the total, 1/2 s
    given, left = store.give_back("c", (1.0, 0.0), late.ticket, cancel=True)
    assert given == pytest.approx(1.0)  # the key's units (the totals' come back too)
    assert left is not None
    assert all(p == () for p in left.pieces)
    statuses = store.peek("e", (1.0, 1.0))
    assert [round(s.remaining, 6) for s in statuses] == [2.0, 1000.0, 0.0, 100.0]
    used = store.reserve("f", (0.0, 100.0), 0.0)
    assert store.peek("e", (1.0, 1.0))[3].remaining == pytest.approx(0.0)
    given, _ = store.give_back("f", (0.0, 60.0), used.ticket, cancel=False)  # a refund
    assert given == pytest.approx(60.0)
    assert store.peek("e", (1.0, 1.0))[3].remaining == pytest.approx(60.0)
    assert store.peek("f", (1.0, 1.0))[1].remaining == pytest.approx(960.0)
    store.charge("e", (0.0, 50.0))  # debt, on the key's tokens and the total's
    statuses = store.peek("e", (1.0, 1.0))
    assert statuses[1].remaining == pytest.approx(950.0)
    assert statuses[3].remaining == pytest.approx(10.0)


# -- a cluster ---------------------------------------------------------------------------


def test_on_a_cluster_every_key_of_the_limit_is_in_the_totals_slot(cluster_backend: Any) -> None:
    client = cluster_backend.client
    limiter = PerUserLimiter(
        "5/s", total="8/s", backend=cluster_backend, name=f"cl-{uuid.uuid4().hex}"
    )
    store = limiter.store
    keys = [f"user-{i}" for i in range(12)]
    slots = {client.keyslot(k) for key in keys for k in store._keys(key)}
    slots |= {client.keyslot(k) for k in store._keys(None)}
    assert len(slots) == 1  # one slot: no CROSSSLOT, one primary for the whole limit
    admitted = sum(limiter.try_acquire(key) for key in keys for _ in range(2))
    assert admitted == 8  # the total, not 12 keys' worth
    with pytest.raises(RateLimitExceeded):
        limiter.reserve("user-0", timeout=0.0)
    assert limiter.status_both("user-11")[1].remaining < 1
    limiter.reset_total()
    assert limiter.try_acquire("user-11")
    limiter.reset()
    assert limiter.status_both("user-0")[1].remaining == pytest.approx(8, abs=0.5)


# -- async ---------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_every_async_verb_decides_the_key_and_the_total(backend: Any) -> None:
    store = backend.bind(spec_for([(10.0, 10.0)], [(10.0, 12.0)]), FakeClock())
    grant = await store.areserve("a", (8.0,), INF)
    assert grant.admitted
    assert grant.delay == 0.0
    assert store.peek("b", (1.0,))[1].remaining == pytest.approx(4, abs=0.3)  # seen by sync
    await store.acharge("b", (4.0,))
    statuses = await store.apeek("b", (1.0,))
    assert statuses[0].remaining == pytest.approx(6, abs=0.3)
    assert statuses[1].remaining < 0.5
    waiting = await store.areserve("c", (2.0,), INF)
    assert waiting.delay == pytest.approx(0.2, abs=0.05)
    given, _ = await store.agive_back("c", (2.0,), waiting.ticket, cancel=True)
    assert given == pytest.approx(2)
    await store.ahold(TOTAL, 30)
    assert (await store.areserve("d", (1.0,), 0.0)).retry_after > 29
    await store.areset(TOTAL)
    assert (await store.areserve("d", (10.0,), 0.0)).admitted
    await store.areset(ALL_KEYS)
    assert (await store.areserve("a", (10.0,), 0.0)).admitted


@pytest.mark.anyio
async def test_async_waiters_of_several_keys_keep_the_totals_bound(backend: Any) -> None:
    limiter = PerUserLimiter(
        "10/s", burst=2, total="20/s", total_burst=2, backend=backend, name=f"aw-{uuid.uuid4().hex}"
    )
    stamps: list[tuple[float, str]] = []

    async def call(key: str) -> None:
        await limiter.acquire_async(key)
        stamps.append((time.monotonic(), key))

    async with anyio.create_task_group() as group:
        for i in range(12):
            group.start_soon(call, "abc"[i % 3])
    assert len(stamps) == 12
    for key in (None, "a", "b", "c"):
        events = [(t * US, 1.0) for t, k in stamps if key is None or k == key]
        rate, burst = (20.0, 2.0) if key is None else (10.0, 2.0)
        for window in (0.0, 0.1, 0.25):
            # real time: a caller runs a little after its slot, so 1 unit of slack
            assert most_in_window(events, window * US) <= burst + rate * window + 1, (key, window)


def test_a_cancelled_asyncio_waiter_gives_back_to_the_key_and_the_total(backend: Any) -> None:
    limiter = PerUserLimiter(
        "10/s", burst=2, total="4/s", total_burst=2, backend=backend, name=f"ac-{uuid.uuid4().hex}"
    )

    async def main() -> None:
        assert limiter.try_acquire("a")
        assert limiter.try_acquire("b")
        with pytest.raises(asyncio.TimeoutError):  # waits 1/4 s: cancelled at 0.05
            await asyncio.wait_for(limiter.acquire_async("c", 1), 0.05)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(limiter.acquire_async("c", 1), 0.05)

    asyncio.run(main())
    deadline = time.monotonic() + 2.0  # an abandoned call's undo runs in the background
    while time.monotonic() < deadline:
        key, total = limiter.status_both("c")
        if key.remaining > 1.95:
            break
        time.sleep(0.01)
    assert key.remaining == pytest.approx(2, abs=0.05)  # nothing left taken on "c"
    assert total.retry_after < 0.3  # only "a" and "b" hold the total (a 1/4 s wait at most)


# -- fair=True on Redis -----------------------------------------------------------------


def test_fair_waiting_on_redis_lets_a_light_key_pass_a_heavy_queue(backend: Any) -> None:
    """The fair queue is per process; the decisions are the store's (real time, short)."""
    limiter = PerUserLimiter(
        "100/s",
        total="20/s",
        total_burst=1,
        fair=True,
        backend=backend,
        name=f"fair-{uuid.uuid4().hex}",
    )
    threads = [threading.Thread(target=limiter.acquire, args=("heavy",)) for _ in range(30)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    asked = time.monotonic()
    limiter.acquire("light")
    waited = time.monotonic() - asked
    for thread in threads:
        thread.join(10)
    assert waited < 0.5, waited  # FIFO: behind ~24 heavy calls, over a second


# -- four processes ----------------------------------------------------------------------

PROCESSES = 4
SECONDS = 2.0


def test_four_processes_keep_each_key_and_the_total_within_their_bounds(
    redis_server: Any,
) -> None:
    from ._workers import new_gate, open_gate, police_total_into

    key_rate, key_burst, total_rate, total_burst = 10.0, 5.0, 20.0, 8.0
    name = f"procs-{uuid.uuid4().hex}"
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    gate = new_gate(context)  # opened once every process is spawned and connected
    args = (redis_server.url, name, key_rate, key_burst, total_rate, total_burst, gate)
    workers = [
        context.Process(target=police_total_into, args=(queue, i, *args, SECONDS, i))
        for i in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    try:
        open_gate(gate, PROCESSES)
        runs = dict(queue.get(timeout=60) for _ in workers)
    finally:
        for worker in workers:
            worker.join(10)
    assert all(worker.exitcode == 0 for worker in workers)
    calls = [call for run in runs.values() for call in run]
    for key in (None, "a", "b", "c"):
        events = [(t, 1.0) for t, k in calls if key is None or k == key]
        rate, burst = (total_rate, total_burst) if key is None else (key_rate, key_burst)
        for window in (0.0, 0.05, 0.25, 0.5, 1.0, SECONDS):
            most = most_in_window(events, window * US)
            assert most <= burst + rate * window + 1e-6, (key, window, most)
    assert len(calls) >= (total_burst + total_rate * SECONDS) * 0.8  # the total is used
    assert all(len(run) >= 1 for run in runs.values())


# -- the server down ----------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["raise", "allow"])
def test_a_server_down_raises_or_allows_as_configured(own_server: Any, policy: str) -> None:
    from limitor.backends.redis import RedisBackend

    backend = RedisBackend.from_url(own_server.url)
    limiter = PerUserLimiter(
        "1/s",
        total="1/s",
        backend=backend,
        name=f"down-{uuid.uuid4().hex}",
        on_backend_error=policy,
    )
    assert limiter.try_acquire("a")
    own_server.stop()
    try:
        if policy == "raise":
            with pytest.raises(BackendError):
                limiter.try_acquire("b")
            with pytest.raises(BackendError):
                limiter.hold(1.0, total=True)
        else:
            assert limiter.try_acquire("b")  # fail open
            limiter.acquire("b")
            assert limiter.reserve("c").delay == 0.0
        assert limiter.stats.backend_errors >= 1
    finally:
        own_server.start()
    assert limiter.try_acquire("b")  # a fresh server: the total is full again
    assert not limiter.try_acquire("c")  # and in force
    backend.close()


@pytest.mark.parametrize("policy", ["raise", "allow"])
def test_fair_waiters_with_the_server_down_raise_or_go_and_none_is_stuck(
    own_server: Any, policy: str
) -> None:
    """A fair waiter whose turn's decision fails gets the error (or fails open), and the
    waiters behind it are not left queued: each gets its own outcome."""
    from limitor.backends.redis import RedisBackend

    backend = RedisBackend.from_url(own_server.url, timeout=0.2)
    limiter = PerUserLimiter(
        "100/s",
        total="5/s",
        total_burst=1,
        fair=True,
        backend=backend,
        name=f"fdown-{uuid.uuid4().hex}",
        on_backend_error=policy,
    )
    assert limiter.try_acquire("heavy")  # the total is used up for 1/5 s
    outcomes: list[str] = []

    def call(key: str) -> None:
        try:
            limiter.acquire(key)  # no timeout: a stuck waiter would never return
        except BackendError:
            outcomes.append("error")
        else:
            outcomes.append("admitted")

    threads = [
        threading.Thread(target=call, args=("heavy" if i % 2 else "light",)) for i in range(6)
    ]
    for thread in threads:
        thread.start()
    time.sleep(0.05)
    own_server.stop()
    try:
        for thread in threads:
            thread.join(10)
        assert not any(thread.is_alive() for thread in threads)
        assert len(outcomes) == 6
        if policy == "allow":
            assert "error" not in outcomes
        else:
            assert "error" in outcomes
        assert limiter._fair is not None
        assert limiter._fair.waiting == 0
    finally:
        own_server.start()
    backend.close()


def test_a_fair_waiter_refused_by_a_server_down_leaves_no_ghost_in_the_queue(
    own_server: Any,
) -> None:
    from limitor.backends.redis import RedisBackend

    backend = RedisBackend.from_url(own_server.url, timeout=0.2)
    limiter = PerUserLimiter(
        "100/s", total="5/s", fair=True, backend=backend, name=f"ghost-{uuid.uuid4().hex}"
    )
    own_server.stop()
    try:
        with pytest.raises(BackendError):
            limiter.acquire("a")
        with pytest.raises(BackendError):
            anyio.run(limiter.acquire_async, "b")
    finally:
        own_server.start()
    assert limiter._fair is not None
    assert limiter._fair.waiting == 0
    for _ in range(5):
        limiter.acquire("c")  # served at once: nobody queued ahead
    assert limiter.status_both("c")[1].remaining < 0.5  # 5 taken, no ghost's grant
    backend.close()


def test_the_decorator_with_a_total_on_redis_shares_it_between_users(backend: Any) -> None:
    from limitor import rate_limit_per_user

    @rate_limit_per_user(
        "8/s", total="4/s", total_burst=3, backend=backend, name=f"deco-{uuid.uuid4().hex}"
    )
    def handler(request: str, *, user_id: str | None = None) -> str:
        return request

    started = time.monotonic()
    for user in ("alice", "bob", "carol", "dave", "erin"):
        assert handler("ping", user_id=user) == "ping"
    # 3 at once (the total's burst), then 2 more at the total's 4/s: about 0.5 s
    assert 0.4 < time.monotonic() - started < 2.0


@pytest.mark.anyio
async def test_a_cancelled_waiter_gives_back_to_the_key_and_the_total_on_any_loop(
    backend: Any,
) -> None:
    limiter = PerUserLimiter(
        "10/s", burst=2, total="4/s", total_burst=2, backend=backend, name=f"ax-{uuid.uuid4().hex}"
    )
    assert await limiter.try_acquire_async("a")
    assert await limiter.try_acquire_async("b")
    for _ in range(3):
        with anyio.move_on_after(0.05) as scope:  # each would wait 1/4 s or more
            await limiter.acquire_async("c")
        assert scope.cancelled_caught
    deadline = anyio.current_time() + 2.0  # asyncio: an abandoned call's undo runs later
    while True:
        key, total = await limiter.status_both_async("c")
        if key.remaining > 1.95 or anyio.current_time() > deadline:
            break
        await anyio.sleep(0.01)
    assert key.remaining == pytest.approx(2, abs=0.05)  # nothing left taken on "c"
    assert total.retry_after < 0.3  # only "a" and "b" hold the total
