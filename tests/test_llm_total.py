"""The LLM limiter in the gateway's shape: per-key LLM limits under an organisation's totals."""

from __future__ import annotations

import asyncio
import math
import random
import threading
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from limitor import AcquireTimeout, ConfigError, RateLimitExceeded, llm_rate_limit
from limitor.clock import AnyioClock
from limitor.llm import Cost, Limit, LLMLimiter
from limitor.testing import FakeClock
from tests.test_total import worst_window

Events = dict[Any, list[tuple[float, float, float]]]
"""Per key: (time, requests, tokens) admitted."""


def run_virtual(main: Callable[[], Awaitable[Any]]) -> Any:
    """Run ``main`` on trio with a MockClock (virtual time; AnyioClock reads it)."""
    return anyio.run(
        main,
        backend="trio",
        backend_options={"clock": trio.testing.MockClock(autojump_threshold=0)},
    )


def check_lines(
    events: Events,
    own: dict[int, tuple[float, float]],
    totals: dict[int, tuple[float, float]],
    slack: float = 0.0,
) -> None:
    """Every key within ``own`` and all keys together within ``totals``.

    ``own`` and ``totals`` map a unit (1: requests, 2: tokens) to ``(rate, burst)``;
    ``slack`` is added to each burst (one call's debt).
    """
    for unit, (rate, burst) in own.items():
        for key, mine in events.items():
            worst = worst_window([(e[0], e[unit]) for e in mine], rate, burst + slack)
            assert worst <= 1e-6 * burst, (key, unit, worst)
    everything = [event for mine in events.values() for event in mine]
    for unit, (rate, burst) in totals.items():
        worst = worst_window([(e[0], e[unit]) for e in everything], rate, burst + slack)
        assert worst <= 1e-6 * burst, ("total", unit, worst)


# -- settings ---------------------------------------------------------------------------


def test_bad_settings_are_refused_at_construction() -> None:
    with pytest.raises(ConfigError, match="total"):
        LLMLimiter(requests_per_minute=10, fair=True)
    with pytest.raises(ConfigError, match="fair=True"):
        LLMLimiter(requests_per_minute=10, total_requests_per_minute=20, weight=lambda k: 1)
    with pytest.raises(ConfigError, match="weight"):
        LLMLimiter(
            requests_per_minute=10, total_requests_per_minute=20, fair=True,
            weight=3,  # type: ignore[arg-type]
        )  # fmt: skip
    with pytest.raises(ConfigError, match="fair"):
        LLMLimiter(requests_per_minute=10, total_requests_per_minute=20, fair=1)  # type: ignore[arg-type]
    for bad in (0, -5, math.nan, math.inf, True, "lots"):
        with pytest.raises(ConfigError, match="total"):
            LLMLimiter(tokens_per_minute=10, total_tokens_per_minute=bad)
    with pytest.raises(ConfigError, match="twice"):
        LLMLimiter(
            tokens_per_minute=10, total_tokens_per_minute=100,
            total_limits=(Limit("tokens", 200),),
        )  # fmt: skip
    with pytest.raises(ConfigError, match="Limit"):
        LLMLimiter(tokens_per_minute=10, total_limits=("100/minute",))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="at least 1 request"):
        LLMLimiter(total_limits=(Limit("requests", 0.5, 60),))
    with pytest.raises(ConfigError, match="total"):
        llm_rate_limit(requests_per_minute=10, fair=True)
    limiter = LLMLimiter(requests_per_minute=10)
    for verb in (
        lambda: limiter.status_both("a"),
        lambda: limiter.hold(1.0, total=True),
        limiter.reset_total,
    ):
        with pytest.raises(ConfigError, match="total"):
            verb()


def test_a_total_alone_gives_each_key_that_limit(clock: FakeClock) -> None:
    limiter = LLMLimiter(total_tokens_per_minute=600, clock=clock)
    assert [limit.name for limit in limiter.limits] == ["tokens_per_minute"]
    assert [total.name for total in limiter.totals] == ["tokens_per_minute"]
    assert limiter.try_acquire(400, key="a")
    assert not limiter.try_acquire(400, key="b")  # the total has 200 left
    assert limiter.try_acquire(200, key="b")
    assert "totals: tokens_per_minute=600" in repr(limiter)


def test_a_total_for_some_parts_leaves_the_others_per_key(clock: FakeClock) -> None:
    limiter = LLMLimiter(
        requests_per_minute=2, tokens_per_minute=1_000, total_tokens_per_minute=1_500,
        clock=clock,
    )  # fmt: skip
    # requests: each key has its own 2 (no total); tokens: 1,500 for everyone
    assert [limiter.try_acquire(100, key=key) for key in "aaabbbcccddd"] == [
        True, True, False, True, True, False, True, True, False, True, True, False,
    ]  # fmt: skip
    assert limiter.try_acquire(200, key="e")  # 1,000 used of 1,500
    assert not limiter.try_acquire(800, key="f")  # the total binds
    own, total = limiter.status_both("f", 800)
    assert own["tokens_per_minute"].remaining == pytest.approx(1_000)
    assert total["tokens_per_minute"].remaining == pytest.approx(500)
    assert total["tokens_per_minute"].retry_after == pytest.approx(300 / 25)
    assert set(total) == {"tokens_per_minute"}
    # status reports the binding line for each limit
    status = limiter.status("f", 800)
    assert status["tokens_per_minute"].limit == 1_500
    assert status["tokens_per_minute"].retry_after == pytest.approx(12.0)
    assert status["requests_per_minute"].remaining == pytest.approx(2)


@pytest.mark.parametrize("fair", [False, True])
def test_an_amount_no_total_could_admit_is_refused_at_once(clock: FakeClock, fair: bool) -> None:
    limiter = LLMLimiter(
        tokens_per_minute=1_000, total_tokens_per_minute=500, fair=fair, clock=clock
    )
    with pytest.raises(ValueError, match="tokens"):
        limiter.acquire(1_001, key="a")  # above the key's own burst
    for verb in (limiter.acquire, limiter.reserve, limiter.try_acquire):
        with pytest.raises(ValueError, match="total"):
            verb(501, key="a")  # the key's, but above the total's
    assert limiter.stats.waiting == 0
    assert limiter.status_both("a")[1]["tokens_per_minute"].remaining == pytest.approx(500)
    assert limiter.try_acquire(500, key="a")
    assert clock.now() == 0.0


def test_one_decision_over_both_lines_all_or_nothing(clock: FakeClock) -> None:
    limiter = LLMLimiter(
        requests_per_minute=3, tokens_per_minute=600,
        total_requests_per_minute=4, total_tokens_per_minute=900, clock=clock,
    )  # fmt: skip
    assert limiter.try_acquire(500, key="a")
    assert not limiter.try_acquire(500, key="b")  # tokens total: 400 left
    own, total = limiter.status_both("b")
    assert own["requests_per_minute"].remaining == pytest.approx(3)  # nothing taken
    assert total["requests_per_minute"].remaining == pytest.approx(3)
    reservation = limiter.reserve(500, key="b")  # 100 tokens short: 100 / 15 per s
    assert reservation.delay == pytest.approx(100 / 15)
    reservation.cancel()
    assert limiter.status_both("b")[1]["tokens_per_minute"].remaining == pytest.approx(400)
    with pytest.raises(AcquireTimeout):
        limiter.acquire(500, key="b", timeout=1.0)
    assert limiter.status_both("b")[1]["tokens_per_minute"].remaining == pytest.approx(400)


def test_refunds_and_debt_reach_both_lines(clock: FakeClock) -> None:
    limiter = LLMLimiter(
        requests_per_minute=10, tokens_per_minute=1_000, total_tokens_per_minute=2_000,
        clock=clock,
    )  # fmt: skip
    reservation = limiter.reserve(Cost(input_tokens=200, output_tokens=600), key="a")
    reservation.reconcile(Cost(input_tokens=200, output_tokens=100))  # 500 back on both
    own, total = limiter.status_both("a")
    assert own["tokens_per_minute"].remaining == pytest.approx(700)
    assert total["tokens_per_minute"].remaining == pytest.approx(1_700)
    reservation.reconcile(1_000)  # 700 more: debt on both
    own, total = limiter.status_both("a")
    assert own["tokens_per_minute"].remaining == pytest.approx(0, abs=1e-6)
    assert total["tokens_per_minute"].remaining == pytest.approx(1_000)
    limiter.charge(500, key="b")
    assert limiter.status_both("b")[1]["tokens_per_minute"].remaining == pytest.approx(500)


def test_hold_reset_and_the_provider_headers(clock: FakeClock) -> None:
    limiter = LLMLimiter(
        requests_per_minute=10, tokens_per_minute=1_000, total_tokens_per_minute=2_000,
        clock=clock,
    )  # fmt: skip
    limiter.hold(2.0, total=True)
    assert not limiter.try_acquire(1, key="a")
    assert limiter.status("b")["tokens_per_minute"].retry_after == pytest.approx(2.0)
    limiter.hold(5.0, key="c")  # one key only
    clock.advance(2.0)
    assert limiter.try_acquire(600, key="a")
    assert not limiter.try_acquire(1, key="c")
    limiter.reset("a")  # a is full again; what it used still counts on the total
    assert limiter.status_both("a")[1]["tokens_per_minute"].remaining == pytest.approx(1_400)
    limiter.reset_total()
    assert limiter.status_both("a")[1]["tokens_per_minute"].remaining == pytest.approx(2_000)
    # the provider's headers describe the totals (one provider key for every key)
    limiter.update_from_headers(
        {"x-ratelimit-remaining-tokens": "500", "retry-after": "1"}, key="a"
    )
    own, total = limiter.status_both("z")
    assert total["tokens_per_minute"].remaining == pytest.approx(0.0, abs=1e-6)  # held
    assert own["tokens_per_minute"].remaining == pytest.approx(1_000)  # z untouched
    clock.advance(1.0)
    assert limiter.status_both("z")[1]["tokens_per_minute"].remaining == pytest.approx(533.33, 1e-3)
    limiter.reset()
    assert limiter.status_both("a")[1]["tokens_per_minute"].remaining == pytest.approx(2_000)


@pytest.mark.anyio
async def test_async_twins(clock: FakeClock) -> None:
    limiter = LLMLimiter(
        requests_per_minute=10, tokens_per_minute=1_000, total_tokens_per_minute=1_500,
        clock=clock,
    )  # fmt: skip
    assert await limiter.try_acquire_async(1_000, key="a")
    assert not await limiter.try_acquire_async(1_000, key="b")
    reservation = await limiter.reserve_async(1_000, key="b")
    assert reservation.delay == pytest.approx(500 / 25)
    await reservation.cancel_async()
    own, total = await limiter.status_both_async("b", 1_000)
    assert total["tokens_per_minute"].retry_after == pytest.approx(20.0)
    assert own["tokens_per_minute"].retry_after == 0.0
    await limiter.hold_async(1.0, total=True)
    assert (await limiter.status_async("b"))["tokens_per_minute"].retry_after == 1.0
    await limiter.reset_total_async()
    await limiter.charge_async(100, key="b")
    await limiter.update_from_headers_async({"x-ratelimit-remaining-tokens": "1000"}, key="b")
    assert (await limiter.status_both_async("b"))[1]["tokens_per_minute"].remaining == (
        pytest.approx(1_000)
    )
    await limiter.acquire_async(500, key="b")
    assert clock.now() == 0.0
    await limiter.reset_async()
    assert await limiter.try_acquire_async(1_000, key="c")


# -- the bounds -------------------------------------------------------------------------

OPS = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", None]),
        st.sampled_from([0, 50, 200, 400]),
        st.sampled_from(["keep", "cancel", "below", "above", "try"]),
        st.sampled_from([0.0, 0.0, 0.05, 0.3, 1.0]),
    ),
    max_size=50,
)

OWN = {1: (2.0, 3.0), 2: (200.0, 500.0)}  # each key: 2 requests/s (3), 200 tokens/s (500)
TOTALS = {1: (3.0, 4.0), 2: (300.0, 600.0)}  # every key: 3 requests/s (4), 300 tokens/s (600)


def bounded_limiter(clock: Any, *, tokens_only: bool = False, fair: bool = False) -> LLMLimiter:
    totals = [Limit("tokens", 600, 2)]
    if not tokens_only:
        totals.append(Limit("requests", 4, 4 / 3))
    return LLMLimiter(
        limits=(Limit("requests", 3, 1.5), Limit("tokens", 500, 2.5)),
        total_limits=totals,
        clock=clock,
        fair=fair,
        weight=(lambda key: 3 if key == "a" else 1) if fair else None,
    )


@settings(max_examples=150, deadline=None)
@given(ops=OPS, tokens_only=st.booleans())
def test_no_line_is_ever_exceeded(ops: list[Any], tokens_only: bool) -> None:
    clock = FakeClock()
    limiter = bounded_limiter(clock, tokens_only=tokens_only)
    used: Events = defaultdict(list)
    for key, tokens, what, step in ops:
        clock.advance(step)
        if what == "try":
            if limiter.try_acquire(tokens, key=key):
                used[key].append((clock.now(), 1.0, tokens))
            continue
        reservation = limiter.reserve(tokens, key=key)
        if what == "cancel" and reservation.delay > 0:
            reservation.cancel()
            continue
        actual = tokens
        if what == "below":
            actual = tokens / 4
            reservation.reconcile(actual)
        elif what == "above" and tokens:  # the overrun is learnt once the call ran
            # (an estimate of 0 tokens waits for no token line: its overrun would add to
            # the last one's, so only estimates above 0 run over here)
            clock.advance(max(0.0, reservation.time_to_act - clock.now()))
            actual = tokens + 100
            reservation.reconcile(actual)
        used[key].append((reservation.time_to_act, 1.0, actual))
    totals = {2: TOTALS[2]} if tokens_only else TOTALS
    check_lines(dict(used), OWN, totals, slack=0.0 if not any(
        what == "above" for *_, what, _ in ops
    ) else 100.0)  # fmt: skip


ARRIVALS = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", None]),
        st.sampled_from([0, 100, 300]),
        st.sampled_from([0.0, 0.0, 0.05, 0.3, 1.0]),  # the gap before it
        st.sampled_from(["wait", "timeout", "cancel", "below", "try"]),
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=40, deadline=None)
@given(arrivals=ARRIVALS, fair=st.booleans())
def test_tasks_keep_the_bounds_and_lose_nothing(arrivals: list[Any], fair: bool) -> None:
    async def main() -> tuple[Events, float]:
        limiter = bounded_limiter(AnyioClock(), fair=fair)
        events: Events = defaultdict(list)

        async def one(key: Any, tokens: float, what: str) -> None:
            if what == "try":
                if await limiter.try_acquire_async(tokens, key=key):
                    events[key].append((anyio.current_time(), 1.0, tokens))
                return
            try:
                with anyio.move_on_after(0.3 if what == "cancel" else math.inf):
                    timeout = 0.5 if what == "timeout" else None
                    reservation = await limiter.acquire_async(tokens, key=key, timeout=timeout)
                    used = tokens / 2 if what == "below" else tokens
                    events[key].append((anyio.current_time(), 1.0, used))
                    if what == "below":
                        await reservation.reconcile_async(used)
            except AcquireTimeout:
                pass

        async with anyio.create_task_group() as group:
            for key, tokens, gap, what in arrivals:
                await anyio.sleep(gap)
                group.start_soon(one, key, tokens, what)
        assert limiter.stats.waiting == 0  # no waiter left behind
        await anyio.sleep(10.0)  # every line full again: the limiter admits at once
        start = anyio.current_time()
        await limiter.acquire_async(500, key="z")
        return events, anyio.current_time() - start

    events, wait = run_virtual(main)
    assert wait == 0.0
    check_lines(events, OWN, TOTALS)


@pytest.mark.parametrize("fair", [False, True])
def test_real_threads_keep_every_bound(fair: bool) -> None:
    limiter = LLMLimiter(
        limits=(Limit("requests", 40, 1, burst=4), Limit("tokens", 4_000, 1, burst=400)),
        total_limits=(Limit("requests", 100, 1, burst=10), Limit("tokens", 6_000, 1, burst=800)),
        fair=fair,
    )  # fmt: skip
    events: Events = defaultdict(list)
    lock = threading.Lock()
    deadline = time.monotonic() + 0.6

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        while time.monotonic() < deadline:
            key = rng.choice(["a", "b", "c", "d", None])
            tokens = rng.choice([10, 100, 300])
            try:
                reservation = limiter.acquire(tokens, key=key, timeout=0.2)
            except AcquireTimeout:
                continue
            at = time.monotonic()
            if rng.random() < 0.3:
                tokens //= 2
                reservation.reconcile(tokens)
            with lock:
                events[key].append((at, 1.0, tokens))

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # a thread reads the time just after its grant: allow 50 ms of refill for that
    check_lines(
        events,
        {1: (40, 4 + 40 * 0.05), 2: (4_000, 400 + 4_000 * 0.05)},
        {1: (100, 10 + 100 * 0.05), 2: (6_000, 800 + 6_000 * 0.05)},
    )
    assert sum(len(mine) for mine in events.values()) > 20
    assert limiter.stats.waiting == 0


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
@pytest.mark.anyio
async def test_tasks_with_cancellation_storms_keep_every_bound(anyio_backend: str) -> None:
    limiter = LLMLimiter(
        limits=(Limit("requests", 40, 1, burst=4), Limit("tokens", 4_000, 1, burst=400)),
        total_limits=(Limit("tokens", 6_000, 1, burst=800),),
    )
    events: Events = defaultdict(list)
    rng = random.Random(7)

    async def caller(key: Any) -> None:
        reservation = await limiter.reserve_async(100, key=key)
        tokens = 100.0
        if rng.random() < 0.3:
            tokens = 25.0
            await reservation.reconcile_async(tokens)
        record = (reservation.time_to_act, 1.0, tokens)
        try:
            await reservation.wait_async()
        except anyio.get_cancelled_exc_class():
            await reservation.cancel_async()
            raise
        events[key].append(record)

    async def acquirer(key: Any) -> None:
        reservation = await limiter.acquire_async(100, key=key)
        events[key].append((reservation.time_to_act, 1.0, 100.0))

    for _ in range(3):
        async with anyio.create_task_group() as group:
            for i in range(60):
                key = ("a", "b", "c", None)[i % 4]
                group.start_soon(caller if i % 2 else acquirer, key)
            await anyio.sleep(0.05)
            group.cancel_scope.cancel()
    check_lines(events, {1: (40, 4), 2: (4_000, 400)}, {2: (6_000, 800)})
    assert sum(len(mine) for mine in events.values()) >= 10


# -- fairness on virtual time --------------------------------------------------------------


async def heavy_and_light(fair: bool, tokens: bool = False) -> tuple[float, list[float]]:
    """A heavy key queues 100 calls at t=0 under a total of 10 calls/s; a light one at t=1."""
    if tokens:  # the total binds on tokens: 1,000 per s, each call 100 tokens
        limiter = LLMLimiter(
            tokens_per_minute=60_000, total_limits=(Limit("tokens", 1_000, 1),),
            fair=fair, clock=AnyioClock(),
        )  # fmt: skip
        amount = 100
    else:
        limiter = LLMLimiter(
            limits=(Limit("requests", 100, 1),), total_limits=(Limit("requests", 10, 1),),
            fair=fair, clock=AnyioClock(),
        )  # fmt: skip
        amount = 0
    heavy: list[float] = []
    start = anyio.current_time()

    async def one(key: str, times: list[float]) -> None:
        await limiter.acquire_async(amount, key=key)
        times.append(anyio.current_time() - start)

    light: list[float] = []
    async with anyio.create_task_group() as group:
        for _ in range(100):
            group.start_soon(one, "heavy", heavy)
        await anyio.sleep(1.0)
        group.start_soon(one, "light", light)
    return light[0], sorted(heavy)


@pytest.mark.parametrize("tokens", [False, True])
def test_a_light_key_goes_in_turn_not_behind_a_heavy_queue(tokens: bool) -> None:
    light, heavy = run_virtual(lambda: heavy_and_light(True, tokens))
    assert 1.0 <= light <= 1.25
    # the heavy key alone used the whole total before: 10 at once, then 10 per second
    assert sum(t < 1.0 - 1e-9 for t in heavy) == 19
    assert heavy[-1] == pytest.approx(9.1)


@pytest.mark.parametrize("tokens", [False, True])
def test_fifo_makes_the_light_key_wait_behind_the_queue(tokens: bool) -> None:
    light, _ = run_virtual(lambda: heavy_and_light(False, tokens))
    assert light == pytest.approx(9.1, abs=0.15)


def test_weights_share_the_tokens_total_while_both_keys_wait() -> None:
    async def main() -> dict[str, list[float]]:
        limiter = LLMLimiter(
            tokens_per_minute=600_000, total_limits=(Limit("tokens", 1_000, 1),),
            fair=True, clock=AnyioClock(), weight=lambda key: 3 if key == "a" else 1,
        )  # fmt: skip
        times: dict[str, list[float]] = defaultdict(list)
        start = anyio.current_time()

        async def one(key: str) -> None:
            await limiter.acquire_async(100, key=key)
            times[key].append(anyio.current_time() - start)

        async with anyio.create_task_group() as group:
            for _ in range(150):
                group.start_soon(one, "a")
                group.start_soon(one, "b")
        return times

    times = run_virtual(main)
    a = sum(2.0 <= t < 12.0 for t in times["a"])
    b = sum(2.0 <= t < 12.0 for t in times["b"])
    assert a + b == pytest.approx(100, abs=2)  # the whole total
    assert a / b == pytest.approx(3.0, rel=0.15)


def test_fair_reserve_books_no_future_slot(clock: FakeClock) -> None:
    limiter = LLMLimiter(
        requests_per_minute=10, tokens_per_minute=1_000, total_tokens_per_minute=1_000,
        fair=True, clock=clock,
    )  # fmt: skip
    assert limiter.reserve(1_000, key="a").delay == 0.0
    with pytest.raises(RateLimitExceeded) as caught:
        limiter.reserve(500, key="b")
    assert caught.value.retry_after == pytest.approx(500 / (1_000 / 60))
    with pytest.raises(AcquireTimeout):  # the estimate exceeds the timeout: at once
        limiter.acquire(500, key="b", timeout=1.0)
    assert clock.now() == 0.0


# -- the decorator ----------------------------------------------------------------------


def test_the_decorator_takes_the_key_from_a_parameter(clock: FakeClock) -> None:
    @llm_rate_limit(
        requests_per_minute=2, key="user", total_requests_per_minute=3,
        token_estimate=lambda *args, **kwargs: 10, on_limit="raise", clock=clock,
    )  # fmt: skip
    def answer(prompt: str, user: str = "anonymous") -> str:
        return prompt

    assert answer("x", "alice") == "x"
    assert answer("x", user="alice") == "x"
    with pytest.raises(RateLimitExceeded):
        answer("x", "alice")  # alice's own 2
    assert answer("x") == "x"  # the default: "anonymous"
    with pytest.raises(RateLimitExceeded):
        answer("x", "bob")  # the total's 3
    limiter = answer.limiter  # type: ignore[attr-defined]
    assert isinstance(limiter, LLMLimiter)
    own, total = limiter.status_both("anonymous")
    assert own["requests_per_minute"].remaining == pytest.approx(1)
    assert total["requests_per_minute"].remaining == pytest.approx(0, abs=1e-9)


def test_the_decorator_refuses_a_key_it_cannot_find() -> None:
    with pytest.raises(ConfigError, match="no user parameter"):

        @llm_rate_limit(requests_per_minute=2, key="user")
        def answer(prompt: str) -> str:
            return prompt

    with pytest.raises(ConfigError, match="key"):
        llm_rate_limit(requests_per_minute=2, key="not a name")
    with pytest.raises(ConfigError, match="limiter= brings"):
        llm_rate_limit(limiter=LLMLimiter(requests_per_minute=2), total_tokens_per_minute=5)
    with pytest.raises(ConfigError, match="limiter= brings"):
        llm_rate_limit(limiter=LLMLimiter(requests_per_minute=2), fair=True)


def test_the_async_decorator_with_a_callable_key_and_fair_turns() -> None:
    async def main() -> list[tuple[str, float]]:
        @llm_rate_limit(
            limits=(Limit("requests", 100, 1),), total_limits=(Limit("requests", 10, 1),),
            key=lambda prompt, tenant: tenant, fair=True, clock=AnyioClock(),
            token_estimate=lambda *args, **kwargs: 0,
        )  # fmt: skip
        async def answer(prompt: str, tenant: str) -> str:
            return prompt

        done: list[tuple[str, float]] = []
        start = anyio.current_time()

        async def one(tenant: str) -> None:
            await answer("x", tenant)
            done.append((tenant, anyio.current_time() - start))

        async with anyio.create_task_group() as group:
            for _ in range(60):
                group.start_soon(one, "batch")
            await anyio.sleep(1.0)
            group.start_soon(one, "chat")
        return done

    done = run_virtual(main)
    assert len(done) == 61
    chat = next(t for tenant, t in done if tenant == "chat")
    assert 1.0 <= chat <= 1.25


def test_the_decorator_on_asyncio_keeps_the_total() -> None:
    clock = FakeClock()

    @llm_rate_limit(
        tokens_per_minute=600, key="user", total_tokens_per_minute=900,
        token_estimate=lambda prompt, user: len(prompt), clock=clock,
    )  # fmt: skip
    async def answer(prompt: str, user: str) -> str:
        return prompt

    async def main() -> None:
        await answer("x" * 600, "a")
        await answer("x" * 300, "b")  # the total is empty now
        assert clock.now() == 0.0
        await answer("x" * 300, "c")  # waits 300 / 15 per s on the total
        assert clock.now() == pytest.approx(20.0)

    asyncio.run(main())
