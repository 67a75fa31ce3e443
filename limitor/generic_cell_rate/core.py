"""GCRA rate limiters (limitor 0.6 import path), in both of the algorithm's forms.

Virtual scheduling keeps one number per limit (the theoretical arrival time); the
continuous-state leaky bucket keeps the content and the last conformance time. Both admit
exactly the same calls. See :mod:`limitor.engines.gcra`.
"""

from __future__ import annotations

from limitor.base import AsyncBucket, SyncBucket
from limitor.engines import GcraLeakyBucket, GcraVirtualScheduling
from limitor.leaky_bucket.core import LeakRate

__all__ = (
    "AsyncLeakyBucketGCRA",
    "AsyncVirtualSchedulingGCRA",
    "SyncLeakyBucketGCRA",
    "SyncVirtualSchedulingGCRA",
)


class EmissionInterval(LeakRate):
    """``T`` and ``leak_rate``, as limitor 0.6's GCRAs called them."""

    __slots__ = ()

    @property
    def T(self) -> float:
        """The emission interval: seconds per unit (``1 / rate``)."""
        return self.engine.interval


class SyncVirtualSchedulingGCRA(EmissionInterval, SyncBucket, engine=GcraVirtualScheduling):
    """GCRA (virtual scheduling) for threads."""


class SyncLeakyBucketGCRA(EmissionInterval, SyncBucket, engine=GcraLeakyBucket):
    """GCRA (continuous-state leaky bucket) for threads."""


class AsyncVirtualSchedulingGCRA(EmissionInterval, AsyncBucket, engine=GcraVirtualScheduling):
    """GCRA (virtual scheduling) for asyncio and trio tasks."""


class AsyncLeakyBucketGCRA(EmissionInterval, AsyncBucket, engine=GcraLeakyBucket):
    """GCRA (continuous-state leaky bucket) for asyncio and trio tasks."""
