"""The limiter's side of the backend contract: failures, fail-open, and any backend."""

from __future__ import annotations

import logging
from collections.abc import Hashable
from typing import Any

import pytest

from limitor.backends.base import LimitSpec, PartStatus, StoreCounts, Ticket
from limitor.backends.memory import MemoryBackend
from limitor.clock import Clock
from limitor.configs import BucketConfig
from limitor.errors import BackendError, ConfigError, ConfigTypeError
from limitor.leaky_bucket.core import AsyncLeakyBucket, SyncLeakyBucket
from limitor.llm import LLMLimiter
from limitor.per_user import PerUserLimiter
from limitor.testing import FakeClock


class BrokenStore:
    """A store whose every decision fails, as an unreachable server's would."""

    does_io = False

    def __init__(self, spec: LimitSpec) -> None:
        self.spec = spec
        self.calls = 0

    def _fail(self) -> Any:
        self.calls += 1
        raise BackendError("broken: connection refused")

    def reserve(self, key: Hashable, amount: tuple[float, ...], max_wait: float) -> Any:
        return self._fail()

    def give_back(self, key: Hashable, amount: Any, ticket: Ticket | None, *, cancel: bool) -> Any:
        return self._fail()

    def charge(self, key: Hashable, amount: Any) -> None:
        self._fail()

    def peek(self, key: Hashable, amount: Any) -> tuple[PartStatus, ...]:
        return self._fail()  # type: ignore[no-any-return]

    def hold(self, key: Hashable, seconds: float) -> None:
        self._fail()

    def reset(self, key: object) -> None:
        self._fail()

    def counts(self) -> StoreCounts:
        return StoreCounts()


class BrokenBackend:
    def __init__(self) -> None:
        self.stores: list[BrokenStore] = []

    def bind(self, spec: LimitSpec, clock: Clock) -> BrokenStore:
        store = BrokenStore(spec)
        self.stores.append(store)
        return store


def test_a_backend_failure_is_raised_as_backend_error_by_default() -> None:
    bucket = SyncLeakyBucket(BucketConfig(10, 1), backend=BrokenBackend(), name="api")
    with pytest.raises(BackendError, match="connection refused"):
        bucket.acquire()
    with pytest.raises(BackendError):
        bucket.try_acquire()
    with pytest.raises(BackendError):
        bucket.reserve()


def test_fail_open_admits_counts_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    bucket = SyncLeakyBucket(
        BucketConfig(1, 1), backend=BrokenBackend(), on_backend_error="allow", clock=clock
    )
    with caplog.at_level(logging.WARNING, logger="limitor"):
        for _ in range(5):
            bucket.acquire()  # far beyond the limit, but the backend cannot say so
        assert bucket.try_acquire()
        assert bucket.reserve().delay == 0.0
    assert clock.now() == 0.0  # nothing waited
    assert bucket.stats.backend_errors == 7
    assert len([r for r in caplog.records if "backend failed" in r.message]) == 1


@pytest.mark.anyio
async def test_fail_open_for_async_callers_and_per_user_and_llm_limiters() -> None:
    backend = BrokenBackend()
    bucket = AsyncLeakyBucket(BucketConfig(1, 1), backend=backend, on_backend_error="allow")
    await bucket.acquire()
    assert await bucket.try_acquire()
    users = PerUserLimiter(BucketConfig(1, 1), backend=backend, on_backend_error="allow")
    users.acquire("alice")
    await users.acquire_async("bob")
    llm = LLMLimiter(tokens_per_minute=10, backend=backend, on_backend_error="allow")
    assert llm.acquire(5).delay == 0.0
    assert (await llm.acquire_async(5)).delay == 0.0
    assert sum(store.calls for store in backend.stores) == 6


def test_bad_backend_options_fail_at_construction() -> None:
    with pytest.raises(ConfigError, match="on_backend_error"):
        SyncLeakyBucket(on_backend_error="ignore")  # type: ignore[arg-type]
    with pytest.raises(ConfigTypeError, match="backend"):
        SyncLeakyBucket(backend="redis://localhost")  # type: ignore[arg-type]
    with pytest.raises(ConfigTypeError, match="name"):
        SyncLeakyBucket(name=42)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="name"):
        PerUserLimiter(name="")


def test_a_memory_backend_object_given_explicitly_works_like_the_default() -> None:
    clock = FakeClock()
    bucket = SyncLeakyBucket(BucketConfig(2, 1), backend=MemoryBackend(), name="x", clock=clock)
    bucket.acquire(2)
    bucket.acquire()
    assert clock.now() == pytest.approx(0.5)
    assert bucket.name == "x"


def test_hold_and_charge_on_buckets_and_per_user_limiters() -> None:
    clock = FakeClock()
    bucket = SyncLeakyBucket(BucketConfig(10, 1), clock=clock)
    bucket.hold(2.0)
    assert not bucket.try_acquire()
    assert bucket.status().retry_after == pytest.approx(2.0)
    bucket.acquire()
    assert clock.now() == pytest.approx(2.0)
    bucket.charge(20)  # debt: 2 s of the rate on top of the unit just taken
    assert bucket.reserve().delay == pytest.approx(1.2)  # 2.1 + 2.0 + 0.1 - 1.0 (burst)
    users = PerUserLimiter(BucketConfig(1, 1), clock=clock)
    users.hold(5, key="alice")
    assert not users.try_acquire("alice")
    assert users.try_acquire("bob")
    users.charge(3, key="bob")
    assert users.status("bob").retry_after == pytest.approx(4.0)
    with pytest.raises(ValueError, match="seconds"):
        bucket.hold(float("nan"))
    with pytest.raises(ValueError, match="actual"):
        bucket.charge(-1)
