"""Estimating a call's tokens before it runs, for ``token_estimate``.

:func:`estimate_tokens` is the cheap default: about four characters per token, counted
over the call's text (strings, OpenAI/Anthropic-style ``messages``, LangChain message
objects), plus the output the call allows (``max_tokens``, ``max_completion_tokens`` or
``max_output_tokens``).
:class:`TiktokenCounter` counts exactly with OpenAI's tokenizer; it needs the optional
``tiktoken`` package (``pip install "limitor[tiktoken]"``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from limitor._checks import as_float, check_quantity, show
from limitor.configs import check_positive
from limitor.errors import AmountError, ConfigError, ConfigTypeError
from limitor.llm.limits import Cost

__all__ = ("OUTPUT_LIMIT_NAMES", "TiktokenCounter", "chars_estimator", "estimate_tokens")

OUTPUT_LIMIT_NAMES = ("max_tokens", "max_completion_tokens", "max_output_tokens")
"""Keyword arguments read as the most output a call may produce."""

_TEXT_KEYS = ("content", "text", "input", "prompt", "system", "instructions", "messages")


def _texts(value: Any, depth: int = 0) -> Iterable[str]:
    """The strings of a call's arguments: plain strings and the text in messages."""
    if depth > 8:
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _texts(item, depth + 1)
    elif isinstance(value, (dict, Mapping)):
        for key in _TEXT_KEYS:
            if key in value:
                yield from _texts(value[key], depth + 1)
    else:
        content = _message_content(value)
        if content is not None:
            yield from _texts(content, depth + 1)


def _characters(value: Any, depth: int = 0) -> int:
    """Characters of text in a call's argument (as :func:`_texts` finds it), quickly."""
    if type(value) is str:
        return len(value)
    if depth > 8:
        return 0
    total = 0
    if isinstance(value, (list, tuple)):
        for item in value:
            total += _characters(item, depth + 1)
    elif isinstance(value, str):
        total = len(value)
    elif isinstance(value, (dict, Mapping)):
        for key in _TEXT_KEYS:
            if key in value:
                total += _characters(value[key], depth + 1)
    else:
        content = _message_content(value)
        if content is not None:
            total = _characters(content, depth + 1)
    return total


def _message_content(value: Any) -> Any:
    """The ``content`` of a message object (LangChain's ``BaseMessage``), else None.

    Duck-typed (an object with a string ``type`` and a ``content``), so nothing is
    imported: ``HumanMessage("...")`` counts as ``{"role": "user", "content": "..."}``.
    """
    if isinstance(getattr(value, "type", None), str):
        return getattr(value, "content", None)
    return None


def _output_limit(kwargs: Mapping[str, Any], default: float) -> float:
    """The call's ``max_tokens``-like argument as a float, else ``default``.

    Raises:
        AmountError: the argument is a number too large for a float (``10**400``).
    """
    for name in OUTPUT_LIMIT_NAMES:
        value = kwargs.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
            number = as_float(value)
            if number is None:
                raise AmountError(f"{name} must be a number of tokens, got {show(value)}")
            return number
    return default


def chars_estimator(
    chars_per_token: float = 4.0, default_output_tokens: float = 0.0
) -> Callable[..., Cost]:
    """An estimator counting ``chars_per_token`` characters per input token.

    Args:
        chars_per_token: characters per token (about 4 for English text).
        default_output_tokens: output tokens assumed when the call gives no
            ``max_tokens``-like argument.

    Raises:
        ConfigError: ``chars_per_token`` is not a finite number above zero, or
            ``default_output_tokens`` not a finite number of zero or more.
    """
    chars_per_token = check_positive("chars_per_token", chars_per_token)
    try:
        default_output_tokens = check_quantity("default_output_tokens", default_output_tokens)
    except AmountError as error:
        kind = ConfigTypeError if isinstance(error, TypeError) else ConfigError
        raise kind(str(error)) from None

    def estimate(*args: Any, **kwargs: Any) -> Cost:
        characters = _characters(args) + _characters(tuple(kwargs.values()))
        return Cost(
            input_tokens=float(math.ceil(characters / chars_per_token)),
            output_tokens=_output_limit(kwargs, default_output_tokens),
        )

    return estimate


estimate_tokens = chars_estimator()
"""The default estimate: characters / 4 over the call's text, plus its ``max_tokens``."""


class TiktokenCounter:
    """Exact token counts for OpenAI-style chat calls, with ``tiktoken``.

    Called with a call's arguments, it counts the ``messages`` (or a ``prompt`` string)
    the way OpenAI bills chat input (a few tokens of framing per message) and adds the
    call's ``max_tokens`` as output.

    Args:
        model: the model name, to pick its encoding (``tiktoken.encoding_for_model``).
        encoding: an encoding object or name instead of ``model``.
        default_output_tokens: output assumed when the call gives no ``max_tokens``.

    ``tiktoken`` downloads an encoding's data once, on first use, and caches it (set
    ``TIKTOKEN_CACHE_DIR`` to ship it with an application that runs offline).
    """

    tokens_per_message = 3
    tokens_per_name = 1
    reply_priming = 3

    def __init__(
        self,
        model: str | None = None,
        *,
        encoding: Any = None,
        default_output_tokens: float = 0.0,
    ) -> None:
        if encoding is None or isinstance(encoding, str):
            try:
                import tiktoken
            except ImportError:  # pragma: no cover - depends on the environment
                raise ConfigError(
                    'TiktokenCounter needs tiktoken: pip install "limitor[tiktoken]"'
                ) from None
            if isinstance(encoding, str):
                encoding = tiktoken.get_encoding(encoding)
            elif model is not None:
                encoding = tiktoken.encoding_for_model(model)
            else:
                raise ConfigError("give model= or encoding=")
        self.encoding = encoding
        self.default_output_tokens = default_output_tokens

    def count_text(self, text: str) -> int:
        """Tokens in ``text``."""
        return len(self.encoding.encode(text))

    def count_messages(self, messages: Iterable[Mapping[str, Any]]) -> int:
        """Input tokens of a chat ``messages`` list, framing included."""
        total = self.reply_priming
        for message in messages:
            total += self.tokens_per_message
            for key, value in message.items():
                total += sum(self.count_text(text) for text in _texts(value))
                if key == "name":
                    total += self.tokens_per_name
        return total

    def __call__(self, *args: Any, **kwargs: Any) -> Cost:
        """The cost of a call made with these arguments."""
        messages = kwargs.get("messages")
        if messages is None:
            messages = next((a for a in args if isinstance(a, list)), None)
        if messages is not None:
            input_tokens = self.count_messages(messages)
        else:
            input_tokens = sum(self.count_text(text) for text in _texts([*args, *kwargs.values()]))
        return Cost(
            input_tokens=float(input_tokens),
            output_tokens=_output_limit(kwargs, self.default_output_tokens),
        )
