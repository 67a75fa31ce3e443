"""The queue-flavoured async leaky bucket (limitor 0.6 import path).

In limitor 0.6 this class ran a worker task that served a queue of waiters; a full queue
blocked its callers. Here waiters are served in order by the same reservation mechanism
as every other bucket (no worker task, no event loop bound at construction), and
``max_size`` bounds how many callers may be waiting at once: one more raises
:class:`~limitor.errors.QueueFull` at once, with ``retry_after``.
"""

from __future__ import annotations

from limitor._checks import check_count
from limitor.base import AsyncBucket
from limitor.clock import Clock
from limitor.configs import BucketConfig
from limitor.engines import LeakyBucket
from limitor.leaky_bucket.core import LeakRate

__all__ = ("AsyncLeakyBucket",)


class AsyncLeakyBucket(LeakRate, AsyncBucket):
    """Async leaky bucket with a bounded number of waiters.

    Args:
        bucket_config: the limit.
        max_size: the most callers waiting at once; 0 (the default) means no bound.
        max_concurrent: the most ``async with`` bodies running at once.
        clock: the time source (tests pass a ``FakeClock``).
    """

    __slots__ = ()
    engine_type = LeakyBucket

    def __init__(
        self,
        bucket_config: BucketConfig | str | None = None,
        max_size: int = 0,
        *,
        max_concurrent: int | None = None,
        rate: str | None = None,
        burst: float | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(bucket_config, max_concurrent, rate=rate, burst=burst, clock=clock)
        self._max_waiting = check_count("max_size", max_size, minimum=0) or None

    @property
    def max_size(self) -> int:
        """The most callers waiting at once, or 0 for no bound."""
        return self._max_waiting or 0

    async def shutdown(self) -> None:
        """Kept for limitor 0.6 code; there is no worker task to stop."""
