"""The async half of the backend contract, and every verb's async twin over it.

Memory serves the async verbs without I/O; the limiter's verbs each make one store call
(sync or async) under the fail-open policy. Redis-specific behaviour (a paused or absent
server) is in ``tests/redis/test_redis_async_seam.py``.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Hashable
from typing import Any, ClassVar

import anyio
import anyio.lowlevel
import pytest

from limitor import (
    AsyncLeakyBucket,
    PerUserLimiter,
    SyncLeakyBucket,
    llm_rate_limit,
    rate_limit,
)
from limitor.backends.base import ALL_KEYS, LimitSpec, Part, Store, SyncStoreAsyncTwins
from limitor.backends.memory import MEMORY, MemoryStore
from limitor.errors import BackendError, RateLimitExceeded
from limitor.llm import Cost, LLMLimiter
from limitor.testing import FakeClock

INF = float("inf")

ASYNC_VERBS = ("areserve", "agive_back", "acharge", "apeek", "ahold", "areset")


def test_the_contract_declares_its_async_half() -> None:
    for verb in ASYNC_VERBS:
        assert inspect.iscoroutinefunction(getattr(Store, verb)), verb
        assert inspect.iscoroutinefunction(getattr(SyncStoreAsyncTwins, verb)), verb


def test_the_memory_store_keeps_the_whole_contract() -> None:
    store = MEMORY.bind(LimitSpec((Part(10, 10),)), FakeClock())
    assert isinstance(store, MemoryStore)
    assert isinstance(store, Store)
    assert not store.does_io


@pytest.mark.anyio
async def test_memory_async_twins_act_on_the_same_state() -> None:
    clock = FakeClock()
    store = MEMORY.bind(LimitSpec((Part(10, 10),), keyed=True), clock)
    grant = await store.areserve("a", (4.0,), INF)
    assert grant.admitted
    assert grant.delay == 0.0
    assert store.peek("a", (1.0,))[0].remaining == pytest.approx(6)
    await store.acharge("a", (6.0,))
    assert (await store.apeek("a", (1.0,)))[0].retry_after == pytest.approx(0.1)
    waiting = await store.areserve("a", (2.0,), INF)
    assert waiting.delay == pytest.approx(0.2)
    given, _ = await store.agive_back("a", (2.0,), waiting.ticket, cancel=True)
    assert given == pytest.approx(2)
    refunded, _ = await store.agive_back("a", (3.0,), None, cancel=False)
    assert refunded == pytest.approx(3)
    assert store.peek("a", (0.0,))[0].remaining == pytest.approx(3)
    await store.ahold("a", 30)
    assert (await store.areserve("a", (1.0,), 0.0)).retry_after > 29
    await store.areset("a")
    assert (await store.areserve("a", (10.0,), 0.0)).admitted
    await store.areset(ALL_KEYS)
    assert store.peek("a", (0.0,))[0].remaining == pytest.approx(10)


# -- instrumented stores: a backend that fails, and one that forbids blocking calls -------


SYNC_VERBS = ("reserve", "give_back", "charge", "peek", "hold", "reset")


class Instrumented:
    """A memory store that does "I/O": each verb may fail, or refuse to be called blocking.

    ``down``: every verb raises BackendError. ``async_only``: a sync verb raises
    AssertionError (async code made a blocking backend call). ``fail_give_back``: only
    giving back fails.
    """

    does_io = True

    def __init__(self, inner: MemoryStore, mode: str) -> None:
        self.inner = inner
        self.mode = mode
        self.calls: list[str] = []

    @property
    def spec(self) -> LimitSpec:
        return self.inner.spec

    def counts(self) -> Any:
        return self.inner.counts()

    def _enter(self, verb: str) -> None:
        self.calls.append(verb)
        failing = self.mode.removeprefix("fail_")
        if self.mode == "down" or (self.mode.startswith("fail_") and failing in verb):
            raise BackendError("connection refused", "test backend")
        if self.mode == "async_only" and not verb.startswith("a"):
            raise AssertionError(f"blocking {verb}() from async code")

    def reserve(self, key: Hashable, amount: Any, max_wait: float) -> Any:
        self._enter("reserve")
        return self.inner.reserve(key, amount, max_wait)

    def give_back(self, key: Hashable, amount: Any, ticket: Any, *, cancel: bool) -> Any:
        self._enter("give_back")
        return self.inner.give_back(key, amount, ticket, cancel=cancel)

    def charge(self, key: Hashable, amount: Any) -> None:
        self._enter("charge")
        self.inner.charge(key, amount)

    def peek(self, key: Hashable, amount: Any) -> Any:
        self._enter("peek")
        return self.inner.peek(key, amount)

    def hold(self, key: Hashable, seconds: float) -> None:
        self._enter("hold")
        self.inner.hold(key, seconds)

    def reset(self, key: object) -> None:
        self._enter("reset")
        self.inner.reset(key)

    async def areserve(self, key: Hashable, amount: Any, max_wait: float) -> Any:
        self._enter("areserve")
        await anyio.lowlevel.checkpoint()
        return self.inner.reserve(key, amount, max_wait)

    async def agive_back(self, key: Hashable, amount: Any, ticket: Any, *, cancel: bool) -> Any:
        self._enter("agive_back")
        await anyio.lowlevel.checkpoint()
        return self.inner.give_back(key, amount, ticket, cancel=cancel)

    async def acharge(self, key: Hashable, amount: Any) -> None:
        self._enter("acharge")
        await anyio.lowlevel.checkpoint()
        self.inner.charge(key, amount)

    async def apeek(self, key: Hashable, amount: Any) -> Any:
        self._enter("apeek")
        await anyio.lowlevel.checkpoint()
        return self.inner.peek(key, amount)

    async def ahold(self, key: Hashable, seconds: float) -> None:
        self._enter("ahold")
        await anyio.lowlevel.checkpoint()
        self.inner.hold(key, seconds)

    async def areset(self, key: object) -> None:
        self._enter("areset")
        await anyio.lowlevel.checkpoint()
        self.inner.reset(key)


class InstrumentedBackend:
    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.stores: list[Instrumented] = []

    def bind(self, spec: LimitSpec, clock: Any) -> Instrumented:
        store = Instrumented(MEMORY.bind(spec, clock), self.mode)
        self.stores.append(store)
        return store

    def calls(self) -> list[str]:
        return [call for store in self.stores for call in store.calls]


def _limiters(backend: Any, clock: FakeClock, policy: str) -> dict[str, Any]:
    common = {"clock": clock, "backend": backend, "name": "n", "on_backend_error": policy}
    return {
        "sync": SyncLeakyBucket(rate="10/s", **common),
        "async": AsyncLeakyBucket(rate="10/s", **common),
        "per_user": PerUserLimiter(rate="10/s", **common),
        "llm": LLMLimiter(requests_per_minute=60, tokens_per_minute=600, **common),
    }


def _sync_verbs(limiters: dict[str, Any]) -> list[tuple[str, Any]]:
    sync, per_user, llm = limiters["sync"], limiters["per_user"], limiters["llm"]
    return [
        ("bucket.acquire", lambda: sync.acquire(3)),
        ("bucket.try_acquire", lambda: sync.try_acquire(3)),
        ("bucket.reserve", lambda: sync.reserve(3)),
        ("bucket.reconcile", lambda: sync.reconcile(1, 3)),
        ("bucket.status", lambda: sync.status()),
        ("bucket.capacity_info", lambda: sync.capacity_info()),
        ("bucket.hold", lambda: sync.hold(1)),
        ("bucket.charge", lambda: sync.charge(1)),
        ("bucket.reset", lambda: sync.reset()),
        ("per_user.acquire", lambda: per_user.acquire("a", 3)),
        ("per_user.try_acquire", lambda: per_user.try_acquire("a", 3)),
        ("per_user.status", lambda: per_user.status("a")),
        ("per_user.hold", lambda: per_user.hold(1, key="a")),
        ("per_user.charge", lambda: per_user.charge(1, key="a")),
        ("per_user.reset", lambda: per_user.reset("a")),
        ("llm.acquire", lambda: llm.acquire(100)),
        ("llm.status", lambda: llm.status()),
        ("llm.update_from_headers", lambda: llm.update_from_headers(_HEADERS)),
    ]


def _async_verbs(limiters: dict[str, Any]) -> list[tuple[str, Any]]:
    sync, bucket = limiters["sync"], limiters["async"]
    per_user, llm = limiters["per_user"], limiters["llm"]
    return [
        ("async.acquire", lambda: bucket.acquire(3)),
        ("async.try_acquire", lambda: bucket.try_acquire(3)),
        ("async.reserve", lambda: bucket.reserve(3)),
        ("async.reconcile", lambda: bucket.reconcile(1, 3)),
        ("sync.acquire_async", lambda: sync.acquire_async(3)),
        ("sync.try_acquire_async", lambda: sync.try_acquire_async(3)),
        ("sync.reserve_async", lambda: sync.reserve_async(3)),
        ("sync.reconcile_async", lambda: sync.reconcile_async(1, 3)),
        ("bucket.status_async", lambda: bucket.status_async()),
        ("bucket.hold_async", lambda: bucket.hold_async(1)),
        ("bucket.charge_async", lambda: bucket.charge_async(1)),
        ("bucket.reset_async", lambda: bucket.reset_async()),
        ("per_user.acquire_async", lambda: per_user.acquire_async("a", 3)),
        ("per_user.try_acquire_async", lambda: per_user.try_acquire_async("a", 3)),
        ("per_user.reserve_async", lambda: per_user.reserve_async("a", 3)),
        ("per_user.status_async", lambda: per_user.status_async("a")),
        ("per_user.hold_async", lambda: per_user.hold_async(1, key="a")),
        ("per_user.charge_async", lambda: per_user.charge_async(1, key="a")),
        ("per_user.reset_async", lambda: per_user.reset_async("a")),
        ("llm.acquire_async", lambda: llm.acquire_async(100)),
        ("llm.try_acquire_async", lambda: llm.try_acquire_async(100)),
        ("llm.reserve_async", lambda: llm.reserve_async(100)),
        ("llm.status_async", lambda: llm.status_async()),
        ("llm.hold_async", lambda: llm.hold_async(1)),
        ("llm.charge_async", lambda: llm.charge_async(100)),
        ("llm.reset_async", lambda: llm.reset_async()),
        ("llm.update_from_headers_async", lambda: llm.update_from_headers_async(_HEADERS)),
    ]


_HEADERS = {"x-ratelimit-remaining-requests": "1", "x-ratelimit-remaining-tokens": "10"}


def test_failing_open_every_sync_verb_admits_and_never_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = InstrumentedBackend("down")
    limiters = _limiters(backend, FakeClock(), "allow")
    with caplog.at_level(logging.WARNING, "limitor"):
        for name, verb in _sync_verbs(limiters):
            result = verb()
            assert result is not False, name
    assert limiters["sync"].try_acquire(10)
    assert limiters["sync"].status().remaining == 10  # permissive: "nothing known"
    assert limiters["sync"].capacity_info(10).has_capacity
    reservation = limiters["sync"].reserve(10)
    assert reservation.delay == 0.0
    assert reservation.cancel() == 0.0
    reservation = limiters["per_user"].reserve("a", 10)
    reservation.reconcile(4)  # holds nothing: refunds nothing, never raises
    reservation.reconcile(12)  # the extra is charged (and fails open)
    assert limiters["sync"].stats.backend_errors > 0
    assert set(backend.calls()) == set(SYNC_VERBS)


@pytest.mark.anyio
async def test_failing_open_every_async_verb_admits_and_never_raises() -> None:
    backend = InstrumentedBackend("down")
    limiters = _limiters(backend, FakeClock(), "allow")
    for name, verb in _async_verbs(limiters):
        result = await verb()
        assert result is not False, name
    reservation = await limiters["async"].reserve(10)
    assert reservation.delay == 0.0
    assert await reservation.cancel_async() == 0.0
    reservation = await limiters["llm"].reserve_async(Cost(input_tokens=10, output_tokens=500))
    await reservation.reconcile_async(Cost(input_tokens=10, output_tokens=20))
    assert (await limiters["per_user"].status_async("a", 10)).remaining == 10
    assert set(backend.calls()) == {"a" + verb for verb in SYNC_VERBS}


def test_failing_closed_every_sync_verb_raises_backend_error() -> None:
    limiters = _limiters(InstrumentedBackend("down"), FakeClock(), "raise")
    for _name, verb in _sync_verbs(limiters):
        with pytest.raises(BackendError):  # the name shows in the traceback
            verb()


@pytest.mark.anyio
async def test_failing_closed_every_async_verb_raises_backend_error() -> None:
    limiters = _limiters(InstrumentedBackend("down"), FakeClock(), "raise")
    for _name, verb in _async_verbs(limiters):
        with pytest.raises(BackendError):  # the name shows in the traceback
            await verb()


@pytest.mark.anyio
async def test_every_async_verb_makes_only_async_store_calls() -> None:
    backend = InstrumentedBackend("async_only")
    clock = FakeClock()
    limiters = _limiters(backend, clock, "raise")
    for _, verb in _async_verbs(limiters):
        await verb()
        clock.advance(60)
    bucket = limiters["async"]
    reservation = await bucket.reserve(8)
    waiting = await bucket.reserve(8)
    assert waiting.delay > 0
    await reservation.reconcile_async(2)
    await reservation.reconcile_async(9)
    assert await waiting.cancel_async() > 0
    assert set(backend.calls()) == {"a" + verb for verb in SYNC_VERBS}


@pytest.mark.anyio
async def test_a_cancelled_waiter_gives_back_with_an_async_call() -> None:
    backend = InstrumentedBackend("async_only")
    bucket = AsyncLeakyBucket(rate="1/s", burst=1, backend=backend, name="n")
    await bucket.acquire()
    # It waits 1 s and is cancelled after 0.3 s: long after its reservation on a busy machine.
    with anyio.move_on_after(0.3) as scope:
        await bucket.acquire()
    assert scope.cancelled_caught
    assert backend.calls()[-1] == "agive_back"
    assert bucket.stats.cancelled == 1


@pytest.mark.anyio
async def test_the_cancellation_wins_over_a_failing_give_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = InstrumentedBackend("fail_give_back")
    bucket = AsyncLeakyBucket(rate="1/s", burst=1, backend=backend, name="n")
    await bucket.acquire()
    with caplog.at_level(logging.WARNING, "limitor"), anyio.move_on_after(0.3) as scope:
        await bucket.acquire()  # waits 1 s; cancelled; its give-back raises BackendError
    assert scope.cancelled_caught  # the scope swallowed the cancellation: nothing else raised
    assert backend.calls()[-1] == "agive_back"
    assert "could not give back" in caplog.text
    assert bucket.stats.backend_errors == 1


def test_an_interrupted_sync_waiter_raises_its_interruption_not_the_give_back() -> None:
    class Interrupt(BaseException):
        pass

    class Clock(FakeClock):
        def sleep(self, seconds: float) -> None:
            raise Interrupt

    backend = InstrumentedBackend("fail_give_back")
    bucket = SyncLeakyBucket(rate="10/s", burst=1, backend=backend, name="n", clock=Clock())
    bucket.acquire()
    with pytest.raises(Interrupt):
        bucket.acquire()
    assert backend.calls()[-1] == "give_back"


def test_repr_of_a_bucket_on_a_backend_with_io_reads_nothing() -> None:
    backend = InstrumentedBackend("down")
    bucket = SyncLeakyBucket(rate="10/s", backend=backend, name="api")
    assert "name='api'" in repr(bucket)
    assert backend.calls() == []
    assert "remaining=10" in repr(SyncLeakyBucket(rate="10/s"))


@pytest.mark.anyio
async def test_decorated_coroutines_police_and_reconcile_with_async_calls() -> None:
    backend = InstrumentedBackend("async_only")
    clock = FakeClock()

    @rate_limit(rate="2/s", on_limit="raise", backend=backend, name="police", clock=clock)
    async def policed() -> int:
        return 1

    @rate_limit(
        capacity=100,
        seconds=1,
        token_estimate=lambda n: n,
        token_reconcile=lambda result: result,
        backend=backend,
        name="tokens",
        clock=clock,
    )
    async def spend(n: int) -> int:
        return n // 2

    assert await policed() == 1
    assert await policed() == 1
    with pytest.raises(RateLimitExceeded):
        await policed()
    assert await spend(40) == 20
    assert "agive_back" in backend.calls()
    assert not [call for call in backend.calls() if not call.startswith("a")]


@pytest.mark.anyio
async def test_llm_decorator_reads_headers_and_reconciles_with_async_calls() -> None:
    backend = InstrumentedBackend("async_only")

    class Result:
        headers: ClassVar[dict[str, str]] = {
            "x-ratelimit-remaining-tokens": "5",
            "retry-after": "2",
        }

    @llm_rate_limit(
        requests_per_minute=60,
        tokens_per_minute=1000,
        token_estimate=lambda: 100,
        token_reconcile=lambda result: 40,
        rate_limit_headers=lambda outcome: outcome.headers,
        backend=backend,
        name="llm",
        clock=FakeClock(),
    )
    async def chat() -> Result:
        return Result()

    await chat()
    calls = backend.calls()
    assert {"areserve", "agive_back", "apeek", "acharge", "ahold"} <= set(calls)
    assert not [call for call in calls if not call.startswith("a")]


def test_fail_open_token_reconcile_never_raises_out_of_the_call() -> None:
    backend = InstrumentedBackend("down")

    @rate_limit(
        capacity=100,
        seconds=1,
        token_estimate=lambda n: n,
        token_reconcile=lambda result: result,
        backend=backend,
        name="tokens",
        on_backend_error="allow",
    )
    def spend(n: int) -> int:
        return n // 2

    assert spend(40) == 20
    assert spend(10) == 5


def test_a_reset_that_failed_open_forgets_no_counter() -> None:
    bucket = SyncLeakyBucket(
        rate="10/s", backend=InstrumentedBackend("down"), name="n", on_backend_error="allow"
    )
    bucket.acquire()
    bucket.reset()  # fails too: the count of failures stays
    assert bucket.stats.backend_errors == 2


@pytest.mark.anyio
async def test_header_feedback_charges_nothing_when_the_peek_failed_open() -> None:
    backend = InstrumentedBackend("fail_peek")
    clock = FakeClock()
    limiter = LLMLimiter(
        tokens_per_minute=600, backend=backend, name="n", on_backend_error="allow", clock=clock
    )
    headers = {"x-ratelimit-remaining-tokens": "10"}
    limiter.update_from_headers(headers)
    await limiter.update_from_headers_async(headers)
    assert "charge" not in backend.calls()
    assert "acharge" not in backend.calls()
    assert limiter.try_acquire(600)  # nothing was charged on a guess


@pytest.mark.anyio
async def test_verbs_every_verb_once_with_key_a_keyword() -> None:
    clock = FakeClock()
    for limiter in (
        PerUserLimiter(rate="10/s", clock=clock),
        LLMLimiter(tokens_per_minute=600, clock=clock),
        SyncLeakyBucket(rate="10/s", clock=clock),
    ):
        verbs = limiter.verbs
        assert verbs.limiter is limiter
        key = None if isinstance(limiter, SyncLeakyBucket) else "k"
        amount = 100 if isinstance(limiter, LLMLimiter) else 2
        assert verbs.try_acquire(amount, key=key)
        assert await verbs.try_acquire_async(amount, key=key)
        reservation = verbs.acquire(amount, key=key)
        await (await verbs.acquire_async(amount, key=key)).reconcile_async(0)
        reservation.reconcile(0)
        assert verbs.police(amount, key=key, hold=True) is not None
        assert await verbs.police_async(amount, key=key) is None
        assert (await verbs.reserve_async(amount, key=key)).delay == 0.0
        assert verbs.reserve(amount, key=key, timeout=1).delay <= 1
        verbs.reset(key=key)
        before = verbs.status(0, key=key).remaining
        assert before == limiter.burst
        verbs.charge(amount, key=key)
        await verbs.charge_async(amount, key=key)
        assert (await verbs.status_async(0, key=key)).remaining == pytest.approx(
            before - 2 * amount
        )
        verbs.hold(1, key=key)
        await verbs.hold_async(2, key=key)
        assert not verbs.try_acquire(amount, key=key)
        await verbs.reset_async(key=key)
        assert verbs.admit_now(amount, key=key) or verbs.try_acquire(amount, key=key)
        verbs.reset()
        assert verbs.status(0, key=key).remaining == limiter.burst


def test_the_repr_of_a_reservation_of_several_limits() -> None:
    limiter = LLMLimiter(requests_per_minute=60, tokens_per_minute=600, clock=FakeClock())
    reservation = limiter.reserve(100, key="k")
    assert repr(reservation) == "<Reservation amount=(1, 100) key='k' delay=0s>"


def _llm_api(statuses: list[int]) -> Any:
    """A pretend chat-completions API: each request gets the next status (then 200)."""
    import httpx2

    def handle(request: httpx2.Request) -> httpx2.Response:
        status = statuses.pop(0) if statuses else 200
        headers = {
            "x-ratelimit-remaining-tokens": "500",
            "x-ratelimit-remaining-requests": "5",
        }
        if status != 200:
            headers["retry-after"] = "1"
            return httpx2.Response(status, headers=headers, json={"error": "slow down"})
        usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
        return httpx2.Response(200, headers=headers, json={"usage": usage})

    return handle


def _chat_request() -> Any:
    import httpx2

    body = {"model": "m", "messages": [{"role": "user", "content": "x" * 40}], "max_tokens": 50}
    return httpx2.Request("POST", "https://api.openai.com/v1/chat/completions", json=body)


@pytest.mark.anyio
async def test_the_async_llm_transport_makes_only_async_store_calls() -> None:
    import httpx2

    from limitor.contrib.llm_transport import AsyncLLMTransport

    backend = InstrumentedBackend("async_only")
    transport = AsyncLLMTransport(
        httpx2.MockTransport(_llm_api([429])),
        rpm=60,
        tpm=1000,
        retries=1,
        backend=backend,
        name="llm",
        clock=FakeClock(),
    )
    async with httpx2.AsyncClient(transport=transport) as client:
        response = await client.send(_chat_request())
        await response.aread()
    assert response.status_code == 200  # the 429 was held, then retried
    calls = backend.calls()
    assert {"areserve", "agive_back", "apeek", "acharge", "ahold"} <= set(calls)
    assert not [call for call in calls if not call.startswith("a")]


@pytest.mark.anyio
@pytest.mark.parametrize("failing", ["peek", "charge", "hold"])
async def test_the_async_llm_transport_never_raises_a_backend_error_after_the_response(
    failing: str, caplog: pytest.LogCaptureFixture
) -> None:
    import httpx2

    from limitor.contrib.llm_transport import AsyncLLMTransport

    backend = InstrumentedBackend(f"fail_{failing}")
    transport = AsyncLLMTransport(
        httpx2.MockTransport(_llm_api([429])),
        rpm=60,
        tpm=1000,
        backend=backend,
        name="llm",
        clock=FakeClock(),
    )
    with caplog.at_level(logging.WARNING, logger="limitor"):
        async with httpx2.AsyncClient(transport=transport) as client:
            response = await client.send(_chat_request())
    assert response.status_code == 429  # no retries: the SDK's to make
    assert any(f"a{failing}" in call for call in backend.calls())
    assert "could not apply the response's rate-limit headers" in caplog.text
