"""Buckets as context managers, the limitor 0.6 way: ``with``, ``acquire_ctx`` and ``reconcile``.

* ``with bucket:`` / ``async with bucket:`` takes one unit on entry.
* ``with bucket.acquire_ctx(amount=estimate):`` takes an estimated amount (LLM tokens,
  bytes, rows...); inside the block, ``bucket.reconcile(actual=..., estimated=...)``
  corrects it once the real amount is known: unused units go back, extra ones become
  debt that delays later callers (it never raises after the work was done).
* An async bucket's ``max_concurrent`` bounds how many ``async with`` bodies run at once.

The ``with``, ``acquire_ctx`` and ``reconcile`` lines are the limitor 0.6 pattern and
work unchanged; ``status()``, used here to show what is left, is new in 1.x.

Run it with::

    python examples/context_managers.py

It takes about half a second.
"""

from __future__ import annotations

import anyio

from limitor.configs import BucketConfig
from limitor.leaky_bucket.core import AsyncLeakyBucket
from limitor.token_bucket.core import AsyncTokenBucket, SyncTokenBucket


def sync_tokens() -> None:
    print("sync: 10,000 tokens per hour")
    bucket = SyncTokenBucket(BucketConfig(capacity=10_000, seconds=3600))

    with bucket:  # one unit
        pass

    estimated_tokens = 500
    with bucket.acquire_ctx(amount=estimated_tokens):
        actual_tokens = 450  # e.g. response.usage.total_tokens
        bucket.reconcile(actual=actual_tokens, estimated=estimated_tokens)
    print(f"  1 + 450 used: about {bucket.status().remaining:,.0f} tokens left")

    with bucket.acquire_ctx(amount=500):
        bucket.reconcile(actual=1_200, estimated=500)  # more than estimated: debt, no error
    print(f"  + 1,200 used: about {bucket.status().remaining:,.0f} tokens left")


async def async_tokens() -> None:
    print("async: the same with async with and await")
    bucket = AsyncTokenBucket(BucketConfig(capacity=10_000, seconds=3600))
    async with bucket:
        pass
    async with bucket.acquire_ctx(amount=500):
        await bucket.reconcile(actual=120, estimated=500)
    print(f"  1 + 120 used: about {bucket.status().remaining:,.0f} tokens left")


async def bounded_bodies() -> None:
    print("async: at most 2 bodies at once (max_concurrent=2), 100 per second")
    bucket = AsyncLeakyBucket(BucketConfig(capacity=100, seconds=1), max_concurrent=2)
    running = peak = 0

    async def job(number: int) -> None:
        nonlocal running, peak
        async with bucket:
            running += 1
            peak = max(peak, running)
            print(f"  job {number} runs ({running} running)")
            await anyio.sleep(0.1)
            running -= 1

    async with anyio.create_task_group() as tg:
        for number in range(1, 7):
            tg.start_soon(job, number)
    print(f"  6 jobs done, never more than {peak} at once")


if __name__ == "__main__":
    sync_tokens()
    anyio.run(async_tokens)
    anyio.run(bounded_bodies)
