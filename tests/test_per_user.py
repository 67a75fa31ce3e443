"""Per-user limits: @rate_limit_per_user and PerUserLimiter, with cachetools caches."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest

from limitor import (
    AcquireTimeout,
    BucketConfig,
    ConfigError,
    PerUserLimiter,
    RateLimitExceeded,
    SyncTokenBucket,
    rate_limit_per_user,
)
from limitor.testing import FakeClock


def test_the_seed_pattern_gives_each_user_its_own_burst_and_rate(clock: FakeClock) -> None:
    seen: list[tuple[int, float]] = []

    @rate_limit_per_user(capacity=2, seconds=1, max_users=3, ttl=600, clock=clock)
    def something_user(user_id: int) -> None:
        seen.append((user_id, clock.now()))

    for i in range(8):
        something_user(user_id=i % 2)
    per_user = {u: [t for v, t in seen if v == u] for u in (0, 1)}
    # Each user: a burst of 2 at once, then one call every 0.5 s, independently.
    assert per_user[0] == pytest.approx([0, 0, 0.5, 1.0])
    assert per_user[1] == pytest.approx([0, 0, 0.5, 1.0])
    stats = something_user.limiter.stats  # type: ignore[attr-defined]
    assert (stats.users, stats.admitted) == (2, 8)


def test_user_id_reaches_the_function_as_it_was_passed(clock: FakeClock) -> None:
    @rate_limit_per_user(capacity=1, seconds=1, clock=clock)
    def handler(request: str, *, user_id: str | None = None) -> tuple[str, str | None]:
        return request, user_id

    assert handler("r", user_id="ann") == ("r", "ann")
    assert handler("r", user_id="bob") == ("r", "bob")
    assert clock.now() == 0.0  # two users, two buckets
    assert handler("r") == ("r", None)  # the shared bucket
    assert handler("r", user_id=None) == ("r", None)  # the shared bucket again: waits
    assert clock.now() == pytest.approx(1.0)


def test_user_id_by_position(clock: FakeClock) -> None:
    @rate_limit_per_user(capacity=1, seconds=1, clock=clock)
    def handler(user_id: str, payload: int) -> int:
        return payload

    handler("ann", 1)
    handler(user_id="bob", payload=2)
    assert clock.now() == 0.0
    handler("ann", 3)  # ann by position again: her bucket
    assert clock.now() == pytest.approx(1.0)
    assert "ann" in handler.limiter  # type: ignore[attr-defined]
    assert "bob" in handler.limiter  # type: ignore[attr-defined]


def test_custom_key_is_bound_to_the_signature(clock: FakeClock) -> None:
    class Request:
        def __init__(self, ip: str) -> None:
            self.client_ip = ip

    keys: list[str] = []

    def key(request: Request, **kw: Any) -> str:
        keys.append(request.client_ip)
        return request.client_ip

    @rate_limit_per_user(capacity=1, seconds=1, key=key, clock=clock)
    def endpoint(request: Request, verbose: bool = False) -> str:
        return request.client_ip

    endpoint(Request("1.1.1.1"))
    endpoint(request=Request("2.2.2.2"), verbose=True)
    endpoint(Request("3.3.3.3"), True)
    assert keys == ["1.1.1.1", "2.2.2.2", "3.3.3.3"]
    assert clock.now() == 0.0
    endpoint(request=Request("1.1.1.1"))  # same key, by keyword this time
    assert clock.now() == pytest.approx(1.0)


def test_key_from_self_on_a_method(clock: FakeClock) -> None:
    class TenantClient:
        def __init__(self, tenant: str) -> None:
            self.tenant = tenant

        @rate_limit_per_user(
            capacity=1, seconds=1, key=lambda self, *a, **k: self.tenant, clock=clock
        )
        def call(self, x: int) -> int:
            return x

    a, b = TenantClient("a"), TenantClient("b")
    a.call(1)
    b.call(2)
    assert clock.now() == 0.0
    TenantClient("a").call(3)  # another object, same tenant: same bucket
    assert clock.now() == pytest.approx(1.0)


@pytest.mark.anyio
async def test_async_per_user(clock: FakeClock) -> None:
    @rate_limit_per_user(capacity=1, seconds=1, clock=clock)
    async def handler(user_id: str) -> str:
        return user_id

    assert [await handler(u) for u in ("a", "b", "a")] == ["a", "b", "a"]
    assert clock.now() == pytest.approx(1.0)


def test_police_and_timeout_per_user(clock: FakeClock) -> None:
    @rate_limit_per_user(capacity=1, seconds=1, on_limit="raise", clock=clock)
    def police(user_id: str) -> None:
        pass

    @rate_limit_per_user(capacity=1, seconds=1, timeout=0.5, clock=clock)
    def shaped(user_id: str) -> None:
        pass

    police("a")
    police("b")
    with pytest.raises(RateLimitExceeded) as refused:
        police("a")
    assert refused.value.retry_after == pytest.approx(1.0)
    shaped("a")
    with pytest.raises(AcquireTimeout):
        shaped("a")
    assert clock.sleeps == []


def test_bucket_cls_names_the_algorithm(clock: FakeClock) -> None:
    @rate_limit_per_user(capacity=2, seconds=1, bucket_cls=SyncTokenBucket, clock=clock)
    def handler(user_id: int) -> None:
        pass

    assert handler.limiter.engine.name == "token_bucket"  # type: ignore[attr-defined]


def test_per_user_estimate_and_reconcile(clock: FakeClock) -> None:
    @rate_limit_per_user(
        capacity=100,
        seconds=10,
        token_estimate=lambda user_id, n: n,
        token_reconcile=lambda used: used,
        clock=clock,
    )
    def call(user_id: str, n: int) -> int:
        return 10

    call("a", 90)  # holds 90, uses 10
    call("a", 90)  # fits at once only because 80 came back
    assert clock.sleeps == []
    assert call.limiter.status("a").remaining == pytest.approx(80)  # type: ignore[attr-defined]


def test_a_shared_per_user_limiter(clock: FakeClock) -> None:
    limiter = PerUserLimiter(BucketConfig(capacity=1, seconds=1), clock=clock)

    @rate_limit_per_user(limiter=limiter)
    def a(user_id: str) -> None:
        pass

    @rate_limit_per_user(limiter=limiter)
    def b(user_id: str) -> None:
        pass

    a("x")
    b("x")
    assert clock.now() == pytest.approx(1.0)
    with pytest.raises(ConfigError):
        rate_limit_per_user(limiter=object())  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        rate_limit_per_user(limiter=limiter, ttl=5)


# -- the cache: expiry, eviction, never forgetting debt ----------------------------------


def test_ttl_expiry_follows_the_limiters_clock(clock: FakeClock) -> None:
    limiter = PerUserLimiter(BucketConfig(capacity=2, seconds=1), ttl=10, clock=clock)
    limiter.acquire("a")
    limiter.acquire("b")
    assert len(limiter) == 2
    clock.advance(9.5)
    limiter.acquire("c")
    assert {"a", "b", "c"} == {k for k in "abc" if k in limiter}  # within the ttl
    clock.advance(1)
    limiter.acquire("c")  # a and b are full and were stored 10.5 s ago: dropped
    assert "a" not in limiter
    assert "b" not in limiter
    assert limiter.stats.evictions == 2
    assert limiter.status("a").remaining == 2  # dropping a full bucket changes nothing


def test_a_bucket_with_debt_outlives_its_ttl(clock: FakeClock) -> None:
    limiter = PerUserLimiter(BucketConfig(capacity=10, seconds=10), ttl=5, clock=clock)  # 1/s
    reservation = limiter.reserve("a", 10)
    reservation.reconcile(60)  # 50 units of debt: full again only 60 s from now
    clock.advance(30)
    limiter.acquire("other")  # gives the cache a chance to expire things
    assert "a" in limiter
    assert limiter.status("a").reset_after == pytest.approx(30)
    assert limiter.reserve("a").delay == pytest.approx(21)  # 20 s of debt left, then 1 s
    clock.advance(100)
    limiter.acquire("other")
    assert "a" not in limiter


@pytest.mark.parametrize("ttl", [None, 600])
def test_max_users_drops_full_buckets_first_and_never_one_still_refilling(
    clock: FakeClock, ttl: float | None
) -> None:
    limiter = PerUserLimiter(BucketConfig(capacity=1, seconds=1), max_users=2, ttl=ttl, clock=clock)
    limiter.acquire("a")
    limiter.acquire("b")
    limiter.acquire("c")  # a and b are still refilling: neither is forgotten
    assert {k for k in ("a", "b", "c") if k in limiter} == {"a", "b"}  # c: the overflow
    assert limiter.stats.overflows == 1
    assert limiter.reserve("a").delay == pytest.approx(1.0)  # a's use is remembered
    assert limiter.reserve("c").delay == pytest.approx(1.0)  # so is c's, in the overflow
    assert limiter.reserve("x").delay == pytest.approx(2.0)  # a new key shares it too
    assert len(limiter) == 2
    clock.advance(10)  # everyone is full again
    limiter.acquire("d")
    assert len(limiter) <= 2
    assert limiter.stats.evictions >= 1


def test_status_reset_and_repr(clock: FakeClock) -> None:
    limiter = PerUserLimiter(BucketConfig(capacity=4, seconds=1), clock=clock)
    limiter.acquire("a", 3)
    assert limiter.status("a").remaining == pytest.approx(1)
    assert limiter.status("new").remaining == 4  # an unknown key is a full bucket
    assert "new" not in limiter  # status() did not create it
    limiter.reset("a")
    assert limiter.status("a").remaining == 4
    limiter.acquire(None)
    limiter.reset()
    assert limiter.stats.admitted == 0
    assert "users=0" in repr(limiter)


@pytest.mark.parametrize(
    "kwargs",
    [{"max_users": 0}, {"max_users": 1.5}, {"ttl": 0}, {"ttl": "1"}, {"algorithm": "nope"}],
)
def test_bad_settings(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        PerUserLimiter(BucketConfig(), **kwargs)


@pytest.mark.parametrize("max_users", [10_000, 500])
def test_ten_thousand_users_on_threads_never_over_admit(max_users: int) -> None:
    """8 threads, 10,000 users, 3 tries each against a burst of 2 that will not refill
    within the test: every user gets exactly 2, even when the cache is far too small."""
    limiter = PerUserLimiter(
        BucketConfig(capacity=2, seconds=100_000), max_users=max_users, ttl=None
    )
    admitted: Counter[int] = Counter()
    lock = threading.Lock()

    def worker(offset: int) -> None:
        mine: Counter[int] = Counter()
        for attempt in range(3):
            for user in range(offset, 10_000, 8):
                if limiter.try_acquire(user):
                    mine[user] += 1
            del attempt
        with lock:
            admitted.update(mine)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = limiter.stats
    assert max(admitted.values()) == 2  # nobody ever gets more than the burst
    if max_users >= 10_000:
        assert len(admitted) == 10_000
        assert set(admitted.values()) == {2}
        assert stats.admitted == 20_000
        assert stats.rejected == 10_000
        assert stats.users == 10_000  # nothing still refilling was forgotten
    else:
        # The cache never grows past max_users: the keys that found no room shared one
        # overflow bucket of the same burst (2), which admitted 2 in all.
        assert stats.users == max_users
        assert stats.overflows > 0
        assert stats.admitted == 2 * max_users + 2
        assert sum(admitted.values()) == stats.admitted
        assert stats.admitted + stats.rejected == 30_000


@pytest.mark.parametrize("max_users", [8, 4])
def test_users_contend_from_many_threads_on_shared_keys(max_users: int) -> None:
    """Many threads hitting the same few users at once: each user gets exactly its burst
    (with room for 4 only, the 4 others share one overflow bucket of the same burst)."""
    limiter = PerUserLimiter(BucketConfig(capacity=5, seconds=100_000), max_users=max_users)
    admitted: Counter[str] = Counter()
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(50):
            for user in "abcdefgh":
                if limiter.try_acquire(user):
                    with lock:
                        admitted[user] += 1

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if max_users == 8:
        assert dict(admitted) == dict.fromkeys("abcdefgh", 5)
    else:
        assert len(limiter) == 4
        assert max(admitted.values()) <= 5
        assert sum(admitted.values()) == 5 * 4 + 5  # 4 own buckets and the overflow


@pytest.mark.parametrize(
    "kwargs",
    [{"token_estimate": 3}, {"token_reconcile": "x"}, {"key": 1}, {"on_limit": "drop"}],
)
def test_bad_decorator_options_fail_at_decoration_time(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        rate_limit_per_user(**kwargs)
