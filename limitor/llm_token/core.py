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
from typing import TYPE_CHECKING, Any

from limitor.base import AsyncFace, SyncFace, gate_for
from limitor.limiter import async_reservation_scope, reservation_scope
from limitor.llm.limits import MultiLimitBase, MultiLimitKeywords
from limitor.results import Reservation

__all__ = ("AsyncLLMTokenBucket", "SyncLLMTokenBucket")

if TYPE_CHECKING:
    from typing_extensions import Unpack


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

    # -- the async twins (never block an event loop, on any backend); an
    # -- AsyncLLMTokenBucket's acquire, try_acquire, reserve and reconcile are these ------

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
        """Correct an estimate once the usage is known; never blocks, waits or raises for debt."""
        await self._reconcile_estimate_async(actual, estimated)


class SyncLLMTokenBucket(_SingleBucket, SyncFace):
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


class AsyncLLMTokenBucket(_SingleBucket, AsyncFace):
    """Requests and tokens per minute for asyncio and trio tasks.

    ``max_concurrent`` bounds how many ``async with`` bodies run at once. Its ``acquire``,
    ``try_acquire``, ``reserve`` and ``reconcile`` are the async twins every LLM token
    bucket has (``acquire_async``, ...).
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
        self._gate = gate_for(max_concurrent)

    acquire = _SingleBucket.acquire_async
    try_acquire = _SingleBucket.try_acquire_async
    reserve = _SingleBucket.reserve_async
    reconcile = _SingleBucket.reconcile_async

    @asynccontextmanager
    async def acquire_ctx(
        self, amount: object = 0, timeout: float | None = None
    ) -> AsyncIterator[AsyncLLMTokenBucket]:
        """Acquire on entry, and a ``max_concurrent`` place.

        ``reconcile`` inside the block corrects that block's reservation.
        """
        async with async_reservation_scope(self, self._gate, amount, timeout):
            yield self
