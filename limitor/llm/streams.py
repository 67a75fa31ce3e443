"""Streamed LLM calls, reconciled when the stream ends.

A call made with ``stream=True`` returns before a single token is generated, so its cost
is known only at the end. :func:`wrap_stream` (which ``@llm_rate_limit`` applies to every
result) recognises the SDKs' streams, without importing them:

- OpenAI ``Stream`` / ``AsyncStream`` of chat completion chunks (the final chunk carries
  ``usage`` when the call asks for ``stream_options={"include_usage": True}``) and of
  Responses API events (``response.completed`` carries the response's ``usage``);
- Anthropic ``Stream`` / ``AsyncStream`` of message events (``message_start`` carries the
  input tokens, ``message_delta`` the output tokens so far);
- the ``.stream()`` helpers' managers (``with client.messages.stream(...) as stream:``)
  and the streams they enter.

It returns a proxy of the stream: the caller iterates it as before (the same items, and
``isinstance`` still sees the SDK's class), and when the stream ends (exhausted, closed,
its ``with`` block left, or an error raised while reading it) the call's reservation is
reconciled once:

- from the usage the stream reported, when it reported its final usage;
- otherwise from the tokens actually seen: the input the provider reported (or the
  estimate's input) plus the text received, at four characters per token (as
  :func:`~limitor.llm.estimate_tokens` counts).

A stream dropped without being closed or read to its end is reconciled when the proxy is
garbage collected (CPython: as soon as the last reference goes), from what was seen. An
estimate that is a plain number (no input/output split) is kept as it is unless the
stream reports its usage.
"""

from __future__ import annotations

import math
import threading
import warnings
import weakref
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import wrapt

from limitor.llm.limits import Cost

__all__ = ("is_stream", "wrap_stream")

CHARS_PER_TOKEN = 4.0
"""Characters of streamed text counted as one token when the stream reports no usage."""

if TYPE_CHECKING:  # wrapt's classes are generic in its stubs, not at runtime (before 2.2)
    _Proxy = wrapt.ObjectProxy[Any]
else:
    _Proxy = wrapt.ObjectProxy


def _get(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    try:
        return getattr(obj, name, None)
    except Exception:
        return None


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        number = float(value)
        return number if math.isfinite(number) else None
    return None


class _Tally:
    """What one stream has shown so far, and the reconcile made once at its end."""

    __slots__ = (
        "_done",
        "_lock",
        "chars",
        "complete",
        "estimate",
        "input",
        "output",
        "settle",
        "settle_async",
        "source",
    )

    def __init__(
        self,
        estimate: Any,
        settle: Callable[[Any], None],
        settle_async: Callable[[Any], Awaitable[None]],
    ) -> None:
        self.estimate = estimate
        self.settle = settle
        self.settle_async = settle_async
        self.input: float | None = None
        self.output: float | None = None
        self.complete = False
        self.chars = 0
        self.source: Any = None  # a helper stream whose snapshot may hold the usage
        self._done = False
        self._lock = threading.Lock()

    # -- reading items -------------------------------------------------------------

    def _usage(self, usage: Any, *, final: bool) -> None:
        if usage is None:
            return
        input_tokens = _number(_get(usage, "prompt_tokens"))
        if input_tokens is None:
            input_tokens = _number(_get(usage, "input_tokens"))
        if input_tokens is not None:
            cache = _number(_get(usage, "cache_creation_input_tokens")) or 0.0
            self.input = input_tokens + cache
        output = _number(_get(usage, "completion_tokens"))
        if output is None:
            output = _number(_get(usage, "output_tokens"))
        if output is not None:
            self.output = output
            self.complete = self.complete or final

    def _text(self, value: Any) -> None:
        if isinstance(value, str):
            self.chars += len(value)

    def see(self, item: Any) -> None:
        """Take note of one streamed item (a chunk or an event)."""
        kind = _get(item, "type")
        if kind == "message_start":  # Anthropic: the input, and a first output count
            self._usage(_get(_get(item, "message"), "usage"), final=False)
            return
        if kind == "content_block_delta":  # Anthropic text, tool input, thinking
            delta = _get(item, "delta")
            for name in ("text", "partial_json", "thinking"):
                self._text(_get(delta, name))
            return
        usage = _get(item, "usage")
        if usage is not None:  # an OpenAI chunk's final usage; Anthropic message_delta
            self._usage(usage, final=True)
        response = _get(item, "response")
        if kind is not None and response is not None:  # Responses API events
            self._usage(_get(response, "usage"), final=True)
        chunk = _get(item, "chunk")  # the chat .stream() helper's chunk events
        if chunk is not None:
            self._usage(_get(chunk, "usage"), final=True)
        choices = _get(item, "choices")
        if isinstance(choices, (list, tuple)):
            for choice in choices:
                delta = _get(choice, "delta")
                self._text(_get(delta, "content"))
                self._text(_get(delta, "refusal"))
                for call in _get(delta, "tool_calls") or ():
                    self._text(_get(_get(call, "function"), "arguments"))
        if kind is not None and isinstance(_get(item, "delta"), str):
            self._text(_get(item, "delta"))  # Responses API (and helper) text deltas

    # -- the end -------------------------------------------------------------------

    def actual(self) -> Any:
        """The call's cost as seen, or None to keep the estimate."""
        if not self.complete and self.source is not None:
            for name in ("current_message_snapshot", "current_completion_snapshot"):
                self._usage(_get(_get(self.source, name), "usage"), final=True)
        estimate = self.estimate
        if self.complete:
            input_tokens = self.input
            if input_tokens is None:
                input_tokens = estimate.input_tokens if isinstance(estimate, Cost) else 0.0
            return Cost(input_tokens=input_tokens, output_tokens=self.output or 0.0)
        seen = float(math.ceil(self.chars / CHARS_PER_TOKEN))
        output = max(seen, self.output or 0.0)
        if self.input is not None:
            return Cost(input_tokens=self.input, output_tokens=output)
        if isinstance(estimate, Cost):
            return Cost(input_tokens=estimate.input_tokens, output_tokens=output)
        return None  # a plain number: the input's share is unknown

    def _claim(self) -> bool:
        with self._lock:
            if self._done:
                return False
            self._done = True
            return True

    def finish(self) -> None:
        """Reconcile once (the first call wins)."""
        if self._claim():
            actual = self.actual()
            if actual is not None:
                self.settle(actual)

    async def finish_async(self) -> None:
        """As :meth:`finish`, for async code."""
        if self._claim():
            actual = self.actual()
            if actual is not None:
                await self.settle_async(actual)


def _watch(proxy: Any, tally: _Tally) -> None:
    """Reconcile ``tally`` when ``proxy`` is garbage collected (if nothing did before)."""
    finalizer = weakref.finalize(proxy, tally.finish)
    finalizer.atexit = False


class _Watched(_Proxy):
    """A proxy whose tally is reconciled at the end of what it wraps, or when collected."""

    def __init__(self, wrapped: Any, tally: _Tally) -> None:
        super().__init__(wrapped)
        self._self_tally = tally
        _watch(self, tally)


class _SyncWatched(_Watched):
    """A sync proxy: leaving its ``with`` block is an end."""

    def __exit__(self, *exc_info: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(*exc_info)
        finally:
            self._self_tally.finish()


class _AsyncWatched(_Watched):
    """An async proxy: leaving its ``async with`` block is an end."""

    async def __aexit__(self, *exc_info: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(*exc_info)
        finally:
            await self._self_tally.finish_async()


class _SyncStream(_SyncWatched):
    """A sync SDK stream, reconciled at its end; iterating it is iterating the stream."""

    def __iter__(self) -> Any:
        return self

    def __next__(self) -> Any:
        try:
            item = self.__wrapped__.__next__()
        except BaseException:  # StopIteration, or the stream broke: what was seen counts
            self._self_tally.finish()
            raise
        self._self_tally.see(item)
        return item

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_tally.finish()

    def __enter__(self) -> Any:
        self.__wrapped__.__enter__()
        return self


class _AsyncStream(_AsyncWatched):
    """An async SDK stream, reconciled at its end."""

    def __aiter__(self) -> Any:
        return self

    async def __anext__(self) -> Any:
        try:
            item = await self.__wrapped__.__anext__()
        except BaseException:
            await self._self_tally.finish_async()
            raise
        self._self_tally.see(item)
        return item

    async def close(self) -> None:
        try:
            await self.__wrapped__.close()
        finally:
            await self._self_tally.finish_async()

    async def __aenter__(self) -> Any:
        await self.__wrapped__.__aenter__()
        return self


class _SyncManager(_SyncWatched):
    """A ``.stream()`` helper's manager: ``with`` it gives the reconciled stream."""

    def __enter__(self) -> Any:
        stream = self.__wrapped__.__enter__()
        self._self_tally.source = stream
        return _SyncStream(stream, self._self_tally)


class _AsyncManager(_AsyncWatched):
    """An async ``.stream()`` helper's manager: ``async with`` gives the reconciled stream."""

    async def __aenter__(self) -> Any:
        stream = await self.__wrapped__.__aenter__()
        self._self_tally.source = stream
        return _AsyncStream(stream, self._self_tally)


_KINDS: dict[type, str | None] = {}
"""What :func:`_kind` found per type (at most :data:`_KINDS_KEPT`): every call's result
is asked, and the answer depends on its class only."""
_KINDS_KEPT = 256


def _kind(value: Any) -> str | None:
    """``"sync"``/``"async"`` stream, ``"sync-manager"``/``"async-manager"``, or None."""
    if value is None:
        return None
    cls = type(value)
    try:
        return _KINDS[cls]
    except KeyError:
        pass
    kind = _kind_of(cls)
    if len(_KINDS) < _KINDS_KEPT:
        _KINDS[cls] = kind
    return kind


def _kind_of(cls: type) -> str | None:
    """:func:`_kind` for a class."""
    if issubclass(cls, (str, bytes, Mapping, list, tuple)):
        return None
    names = [klass.__name__ for klass in cls.__mro__]
    if any(name.endswith("StreamManager") for name in names):
        if hasattr(cls, "__aenter__"):
            return "async-manager"
        if hasattr(cls, "__enter__"):
            return "sync-manager"
        return None
    if not any(name.endswith("Stream") for name in names):
        return None
    if hasattr(cls, "__anext__"):
        return "async"
    if hasattr(cls, "__next__"):
        return "sync"
    return None


def is_stream(value: Any) -> bool:
    """Whether ``value`` is an SDK stream (or a ``.stream()`` manager) limitor reconciles."""
    return _kind(value) is not None


_warned_types: set[type] = set()


def wrap_stream(
    value: Any,
    estimate: Any,
    settle: Callable[[Any], None],
    settle_async: Callable[[Any], Awaitable[None]],
    *,
    blocking: bool = False,
) -> Any:
    """``value`` as a proxy reconciling at the stream's end; None if it is no stream.

    Args:
        value: a decorated call's result.
        estimate: what the call reserved (a :class:`~limitor.llm.Cost` or a number).
        settle: reconciles the call's reservation with the actual cost (sync code).
        settle_async: the same for async code.
        blocking: the call waited for its limit with ``time.sleep`` (a plain function):
            an async stream then warns once per type that the wait blocked the event
            loop (the async clients' ``.stream()`` helpers are plain methods).
    """
    kind = _kind(value)
    if kind is None:
        return None
    if blocking and kind.startswith("async") and type(value) not in _warned_types:
        _warned_types.add(type(value))
        warnings.warn(
            f"{type(value).__name__} is async but the function returning it is not, so "
            "limitor waited for the limit with time.sleep (blocking the event loop): "
            "decorate create(..., stream=True), or an async def returning the stream",
            RuntimeWarning,
            stacklevel=4,
        )
    tally = _Tally(estimate, settle, settle_async)
    if kind == "sync":
        tally.source = value
        return _SyncStream(value, tally)
    if kind == "async":
        tally.source = value
        return _AsyncStream(value, tally)
    if kind == "sync-manager":
        return _SyncManager(value, tally)
    return _AsyncManager(value, tally)
