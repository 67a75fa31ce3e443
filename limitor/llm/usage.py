"""Reading token usage from LLM responses, for ``token_reconcile``.

Works with response objects and with plain dicts, OpenAI-style (``usage.prompt_tokens``,
``usage.completion_tokens``, ``usage.total_tokens``, or the Responses API's
``input_tokens``/``output_tokens``) and Anthropic-style (``usage.input_tokens``,
``usage.output_tokens`` and the prompt-cache counts), from the SDKs' raw responses
(``with_raw_response``: their ``.parse()``) and from LangChain's ``AIMessage``
(``usage_metadata``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from limitor._checks import as_float, show
from limitor.errors import LimitorError
from limitor.llm.limits import Cost
from limitor.llm.raw import is_raw_response

__all__ = ("UsageError", "usage_tokens", "usage_tokens_async")


class UsageError(LimitorError, ValueError):
    """A response carries no token usage that limitor can read, or an impossible count."""


def _get(obj: Any, name: str) -> Any:
    if type(obj) is dict or isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _count(usage: Any, *names: str) -> float | None:
    """The first of the fields ``names`` that holds a number, as a float (None: none does).

    Raises:
        UsageError: that number is negative, NaN, infinite or too large for a float.
    """
    for name in names:
        value = _get(usage, name)
        kind = type(value)
        if (
            kind is int
            or kind is float
            or (isinstance(value, (int, float)) and not isinstance(value, bool))
        ):
            number = as_float(value)
            if number is None or not 0.0 <= number < math.inf:
                raise UsageError(f"usage.{name} is not a count of tokens: {show(value)}")
            return number
    return None


def usage_tokens(response: Any) -> Cost:
    """The tokens a response reports having used, as a :class:`~limitor.llm.Cost`.

    Input tokens include Anthropic's ``cache_creation_input_tokens`` (they count against
    input-token limits) but not ``cache_read_input_tokens`` (which, for most models, do
    not).

    An SDK raw response (``client.chat.completions.with_raw_response.create(...)``) is
    read through its ``.parse()``; an async client's raw response, whose ``parse()`` is a
    coroutine, needs :func:`usage_tokens_async` (which ``token_reconcile=usage_tokens``
    on an ``async`` function uses by itself). A LangChain ``AIMessage`` is read through
    its ``usage_metadata``.

    Raises:
        UsageError: the response has no usage field with token counts, or a count is
            negative, NaN, infinite or too large for a float; or it is a raw response
            whose ``parse()`` must be awaited.

    Example:
        >>> usage_tokens({"usage": {"prompt_tokens": 12, "completion_tokens": 30}})
        Cost(input_tokens=12.0, output_tokens=30.0, tokens=42.0, requests=1.0)
    """
    if is_raw_response(response):
        parsed = response.parse()
        if hasattr(type(parsed), "__await__"):
            close = getattr(parsed, "close", None)
            if callable(close):
                close()
            raise UsageError(
                f"{type(response).__name__}.parse() is a coroutine: use "
                "await usage_tokens_async(response)"
            )
        response = parsed
    usage = _get(response, "usage")
    if usage is None:
        usage = _get(response, "usage_metadata")  # LangChain's AIMessage
    if usage is None:
        usage = response  # perhaps the usage itself
    input_tokens = _count(usage, "prompt_tokens", "input_tokens")
    output_tokens = _count(usage, "completion_tokens", "output_tokens")
    total = _count(usage, "total_tokens")
    if input_tokens is None and output_tokens is None and total is None:
        raise UsageError(f"no token usage found in {type(response).__name__}")
    cache_creation = _count(usage, "cache_creation_input_tokens") or 0.0
    input_count = (input_tokens or 0.0) + cache_creation
    output_count = output_tokens or 0.0
    if total is None or cache_creation:
        total = input_count + output_count
    return Cost(input_tokens=input_count, output_tokens=output_count, tokens=total)


async def usage_tokens_async(response: Any) -> Cost:
    """:func:`usage_tokens`, awaiting an async raw response's ``parse()``.

    Raises:
        UsageError: as :func:`usage_tokens`.
    """
    if is_raw_response(response):
        parsed = response.parse()
        if hasattr(type(parsed), "__await__"):
            parsed = await parsed
        response = parsed
    return usage_tokens(response)


usage_tokens.limitor_async = usage_tokens_async  # type: ignore[attr-defined]
"""What an async decorated function's ``token_reconcile=usage_tokens`` calls (a
``token_reconcile`` may name its async twin as ``limitor_async``)."""
