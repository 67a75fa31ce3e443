"""token-throttle: multi-resource (requests and tokens) limits with reservations and refunds.

Only the LLM row: acquire one request and 100 tokens, call, refund to 80 tokens, as its
documentation shows (``acquire_capacity`` then ``refund_capacity``, memory backend). It
has no decorator, so the "decorated" call is the three lines a user writes around it.
"""

from __future__ import annotations

from typing import Any

from benchmarks.libraries.base import BARE_ASYNC, LLM_CALL, Case, Timed, bare_namespace

LIBRARY = "token-throttle"
DISTRIBUTIONS = ("token-throttle",)
HUGE = 10**12


def timed_cases() -> list[Case]:
    def setup() -> dict[str, Any]:
        from token_throttle import (
            MemoryBackendBuilder,
            PerModelConfig,
            Quota,
            RateLimiter,
            UsageQuotas,
        )

        quotas = UsageQuotas(
            [
                Quota(metric="requests", limit=HUGE, per_seconds=60),
                Quota(metric="tokens", limit=HUGE, per_seconds=60),
            ]
        )
        limiter = RateLimiter(PerModelConfig(quotas=quotas), backend=MemoryBackendBuilder())

        async def call(x: int) -> int:
            reservation = await limiter.acquire_capacity(
                {"requests": 1, "tokens": 100}, model="bench"
            )
            result = x
            await limiter.refund_capacity({"requests": 1, "tokens": 80}, reservation)
            return result

        return {"function": call}

    return [
        Timed(
            LLM_CALL,
            "token bucket",
            stmt=BARE_ASYNC,
            setup=setup,
            is_async=True,
            bare=BARE_ASYNC,
            bare_setup=lambda: bare_namespace(True),
            note="acquire_capacity + refund_capacity around the call",
        )
    ]
