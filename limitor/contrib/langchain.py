"""A LangChain rate limiter backed by limitor: ``ChatModel(rate_limiter=...)``.

LangChain's chat models take a ``rate_limiter=`` (a ``langchain_core`` ``BaseRateLimiter``)
that each request acquires before it is sent. :class:`LimitorRateLimiter` is one whose
requests are counted by a limitor limiter: a bucket, a per-user limiter (one key) or an
:class:`~limitor.llm.LLMLimiter` (its requests limit; tokens are not known before the
call here: decorate the calls with ``llm_rate_limit`` for those), shared with the rest
of the application and, with ``backend=``, with other processes::

    from langchain_openai import ChatOpenAI
    from limitor.contrib.langchain import LimitorRateLimiter

    model = ChatOpenAI(model="gpt-4o-mini", rate_limiter=LimitorRateLimiter("500/minute"))

Needs ``langchain-core`` (``pip install "limitor[langchain]"``, Python 3.11+).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from limitor.configs import BucketConfig, as_rate
from limitor.contrib._common import missing
from limitor.errors import ConfigError, ConfigTypeError
from limitor.limiter import Limiter

try:
    from langchain_core.rate_limiters import BaseRateLimiter
except ImportError as error:  # pragma: no cover - depends on the environment
    problem = missing("limitor.contrib.langchain", "langchain", error)
    raise ModuleNotFoundError(str(problem), name=error.name) from error

__all__ = ("LimitorRateLimiter",)


class LimitorRateLimiter(BaseRateLimiter):
    """A LangChain ``BaseRateLimiter`` taking one unit per request from a limitor limiter.

    Args:
        rate: a rate string (``"500/minute"``) for a new limiter; or give ``limiter``.
        limiter: an existing limitor limiter to share (a bucket, ``PerUserLimiter`` or
            ``LLMLimiter``).
        key: the key requests count under, for a keyed limiter (default ``None``).
        clock: for a new limiter, the time source (tests).

    Raises:
        ConfigError: neither or both of ``rate`` and ``limiter``, or a bad rate.
    """

    def __init__(
        self,
        rate: str | BucketConfig | None = None,
        *,
        limiter: Any = None,
        key: Hashable = None,
        clock: Any = None,
    ) -> None:
        if (rate is None) == (limiter is None):
            raise ConfigError("give a rate (such as '500/minute') or limiter=, not both")
        if limiter is None:
            from limitor.per_user import PerUserLimiter

            limiter = PerUserLimiter(as_rate(rate), algorithm="gcra", clock=clock)
        if not isinstance(limiter, Limiter):
            raise ConfigTypeError(f"limiter must be a limitor limiter, got {limiter!r}")
        self.limiter = limiter
        self.key = key
        self._unit: Any = 0.0 if _counts_tokens(limiter) else 1.0

    def acquire(self, *, blocking: bool = True) -> bool:
        """Take one request: wait for it (``blocking``) or take it only if free now."""
        if blocking:
            self.limiter.verbs.acquire(self._unit, key=self.key)
            return True
        return self.limiter.verbs.try_acquire(self._unit, key=self.key)

    async def aacquire(self, *, blocking: bool = True) -> bool:
        """As :meth:`acquire`, awaiting (never blocking the event loop)."""
        if blocking:
            await self.limiter.verbs.acquire_async(self._unit, key=self.key)
            return True
        return await self.limiter.verbs.try_acquire_async(self._unit, key=self.key)


def _counts_tokens(limiter: Any) -> bool:
    """An LLM limiter's amount is tokens (one request each): a request is zero tokens."""
    from limitor.llm.limits import MultiLimitBase

    return isinstance(limiter, MultiLimitBase)
