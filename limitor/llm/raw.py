"""The SDKs' raw responses: their headers and their parsed body.

``client.chat.completions.with_raw_response.create(...)`` (OpenAI) and
``client.messages.with_raw_response.create(...)`` (Anthropic) return a raw response
object: ``.headers`` (the HTTP headers, where the provider's rate-limit headers are) and
``.parse()`` (the usual response object; a coroutine on some async clients). The
functions here read both without importing either SDK:

- :func:`response_headers`: the headers of a raw response, an HTTP response, an SDK
  stream or an SDK error (``openai.RateLimitError`` carries the 429's response), for
  ``rate_limit_headers=`` and :meth:`~limitor.llm.LLMLimiter.update_from_headers`;
- :func:`parsed_response`: the parsed body of a raw response (``usage_tokens`` uses it).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

__all__ = ("is_raw_response", "parsed_response", "response_headers")


def is_raw_response(value: Any) -> bool:
    """Whether ``value`` looks like an SDK raw response: ``.parse()`` and ``.headers``."""
    if isinstance(value, Mapping):
        return False
    try:
        parse = inspect.getattr_static(value, "parse", None)
        headers = inspect.getattr_static(value, "headers", None)
    except Exception:
        return False
    return parse is not None and headers is not None and callable(getattr(value, "parse", None))


def parsed_response(value: Any) -> Any:
    """The parsed body of a raw response (``value.parse()``); anything else as it is.

    On a raw response whose ``parse()`` is a coroutine (the async clients), this returns
    that awaitable: await it (``usage_tokens`` cannot, use ``await`` or let an async
    decorated function's ``token_reconcile`` be ``async``).
    """
    if not is_raw_response(value):
        return value
    return value.parse()


def response_headers(value: Any) -> Any:
    """The HTTP headers behind ``value``, for the rate-limit header reader.

    ``value`` may be headers already (a mapping or ``(name, value)`` pairs, returned as
    they are), an HTTP response (``httpx``/``httpx2``: ``.headers``), an SDK raw response
    (``.headers``), an SDK stream (``.response.headers``) or an SDK error
    (``.response.headers``, as ``openai.RateLimitError``). ``None`` when nothing holds
    headers: the decorator then leaves the limits alone.

    Example:
        >>> from types import SimpleNamespace
        >>> error = SimpleNamespace(response=SimpleNamespace(headers={"retry-after": "2"}))
        >>> response_headers(error)
        {'retry-after': '2'}
    """
    if value is None or isinstance(value, Mapping):
        return value
    if isinstance(value, (list, tuple)):
        return value
    for path in (("headers",), ("response", "headers"), ("http_response", "headers")):
        found: Any = value
        for name in path:
            try:
                found = getattr(found, name, None)
            except Exception:
                found = None
            if found is None:
                break
        if found is not None and not callable(found):
            return found
    return None
