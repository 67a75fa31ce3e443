"""LLM rate limits: requests and tokens per minute together, estimated then reconciled.

Most code needs only :func:`llm_rate_limit`::

    from limitor import llm_rate_limit
    from limitor.llm import usage_tokens

    @llm_rate_limit(requests_per_minute=500, tokens_per_minute=200_000,
                    token_reconcile=usage_tokens)
    async def chat(messages, max_tokens=512): ...

The estimate defaults to :func:`estimate_tokens` (characters / 4 plus ``max_tokens``).
"""

from __future__ import annotations

from limitor.llm.decorator import llm_rate_limit
from limitor.llm.headers import (
    HeaderError,
    ProviderReport,
    parse_duration,
    parse_rate_limit_headers,
)
from limitor.llm.limits import SAFETY_MARGIN, UNITS, Cost, Limit, LLMLimiter
from limitor.llm.raw import parsed_response, response_headers
from limitor.llm.streams import is_stream, wrap_stream
from limitor.llm.tokens import TiktokenCounter, chars_estimator, estimate_tokens
from limitor.llm.usage import UsageError, usage_tokens, usage_tokens_async

__all__ = (
    "SAFETY_MARGIN",
    "UNITS",
    "Cost",
    "HeaderError",
    "LLMLimiter",
    "Limit",
    "ProviderReport",
    "TiktokenCounter",
    "UsageError",
    "chars_estimator",
    "estimate_tokens",
    "is_stream",
    "llm_rate_limit",
    "parse_duration",
    "parse_rate_limit_headers",
    "parsed_response",
    "response_headers",
    "usage_tokens",
    "usage_tokens_async",
    "wrap_stream",
)
