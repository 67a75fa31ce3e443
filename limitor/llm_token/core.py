"""LLM token buckets: requests and tokens per minute as one limit, sync and async.

A bucket counts one request and some tokens per call, against every limit at once::

    bucket = SyncLLMTokenBucket(requests_per_minute=500, tokens_per_minute=200_000)
    with bucket.acquire_ctx(Cost(input_tokens=900, output_tokens=512)):
        response = client.chat(...)
        bucket.reconcile(usage_tokens(response), Cost(input_tokens=900, output_tokens=512))

For a decorator, see :func:`limitor.llm_rate_limit`; for limits per user or per model,
:class:`limitor.llm.LLMLimiter`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from limitor._checks import check_count
from limitor._gate import ConcurrencyGate
from limitor.base import gated_enter
from limitor.limiter import async_reservation_scope, reservation_scope
from limitor.llm.limits import MultiLimitBase, MultiLimitKeywords
from limitor.results import Reservation

__all__ = ("AsyncLLMTokenBucket", "SyncLLMTokenBucket")

if TYPE_CHECKING:
    from typing_extensions import Unpack

SB = TypeVar("SB", bound="SyncLLMTokenBucket")
AB = TypeVar("AB", bound="AsyncLLMTokenBucket")


class _SingleBucket(MultiLimitBase):
    """One set of limits (the shared key ``None``), with the 0.6-style ``reconcile``."""

    __slots__ = ()

    def __init__(
        self,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        **options: Unpack[MultiLimitKeywords],
    ) -> None:
        options["max_keys"] = 1  # one set of limits: the shared key None
        super().__init__(requests_per_minute, tokens_per_minute, **options)

    # -- the async twins (never block an event loop, on any backend) ------------------

    async def acquire_async(self, amount: object = 0, timeout: float | None = None) -> Reservation:
        """Wait, without blocking the event loop, until the call may go."""
        return await self._acquire_async(None, amount, timeout)

    async def try_acquire_async(self, amount: object = 0) -> bool:
        """Take the call's cost if every limit has room right now; never blocks."""
        return await self._police_or_raise_async(None, amount)

    async def reserve_async(self, amount: object = 0, timeout: float | None = None) -> Reservation:
        """Commit the call's cost at the earliest time all limits allow; return at once."""
        return await self._reserve_for_async(None, amount, timeout)

    async def reconcile_async(self, actual: object, estimated: object) -> None:
        """The 0.6 ``reconcile(actual, estimated)`` for tasks (never blocks)."""
        await self._reconcile_estimate_async(actual, estimated)


class SyncLLMTokenBucket(_SingleBucket):
    """Requests and tokens per minute for threads: ``acquire`` blocks until allowed.

    ``amount`` is a call's tokens: a number, or a :class:`~limitor.llm.Cost` with input and
    output tokens (needed when input and output are limited separately). Every call also
    counts one request.
    """

    __slots__ = ()

    def acquire(self, amount: object = 0, timeout: float | None = None) -> Reservation:
        """Block until the call may go; returns its reservation (to reconcile later).

        Raises:
            AmountError: an amount that a limit could never admit.
            AcquireTimeout: the wait would exceed ``timeout``; raised at once.
        """
        return self._acquire_sync(None, amount, timeout)

    def try_acquire(self, amount: object = 0) -> bool:
        """Take the call's cost if every limit has room now; never waits."""
        return self._police_or_raise(None, amount)

    def reserve(self, amount: object = 0, timeout: float | None = None) -> Reservation:
        """Commit the call's cost at the earliest time every limit allows; return at once."""
        return self._reserve_for(None, amount, timeout)

    def reconcile(self, actual: object, estimated: object) -> None:
        """Correct an estimate once the usage is known; never waits or raises for debt."""
        self._reconcile_estimate(actual, estimated)

    @contextmanager
    def acquire_ctx(
        self, amount: object = 0, timeout: float | None = None
    ) -> Iterator[SyncLLMTokenBucket]:
        """Acquire on entry; ``reconcile`` inside the block corrects that reservation."""
        with reservation_scope(self, amount, timeout):
            yield self

    def __enter__(self: SB) -> SB:
        self._acquire_sync(None, 0, None)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        return None


class AsyncLLMTokenBucket(_SingleBucket):
    """Requests and tokens per minute for asyncio and trio tasks.

    ``max_concurrent`` bounds how many ``async with`` bodies run at once.
    """

    __slots__ = ("_gate",)

    def __init__(
        self,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        *,
        max_concurrent: int | None = None,
        **limits: Any,
    ) -> None:
        super().__init__(requests_per_minute, tokens_per_minute, **limits)
        self._gate = (
            None
            if max_concurrent is None
            else ConcurrencyGate(check_count("max_concurrent", max_concurrent))
        )

    async def acquire(self, amount: object = 0, timeout: float | None = None) -> Reservation:
        """Wait, without blocking the event loop, until the call may go."""
        return await self._acquire_async(None, amount, timeout)

    async def try_acquire(self, amount: object = 0) -> bool:
        """Take the call's cost if every limit has room now; never waits."""
        return await self._police_or_raise_async(None, amount)

    async def reserve(self, amount: object = 0, timeout: float | None = None) -> Reservation:
        """Commit the call's cost at the earliest time every limit allows; return at once."""
        return await self._reserve_for_async(None, amount, timeout)

    async def reconcile(self, actual: object, estimated: object) -> None:
        """Correct an estimate once the usage is known; never waits or raises for debt."""
        await self._reconcile_estimate_async(actual, estimated)

    @asynccontextmanager
    async def acquire_ctx(
        self, amount: object = 0, timeout: float | None = None
    ) -> AsyncIterator[AsyncLLMTokenBucket]:
        """Acquire on entry, and a ``max_concurrent`` place.

        ``reconcile`` inside the block corrects that block's reservation.
        """
        async with async_reservation_scope(self, self._gate, amount, timeout):
            yield self

    async def __aenter__(self: AB) -> AB:
        await gated_enter(self._gate, self.acquire)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        if self._gate is not None:
            self._gate.release()
