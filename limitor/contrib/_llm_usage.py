"""What the LLM transports read: a request's dialect and estimate, a response's usage.

:func:`dialect_of` and :func:`default_estimate` read a request; :class:`UsageReader`
reads a response's token usage from its bytes as they pass (a JSON body's ``usage``, an
SSE stream's usage events, else the text a stream carried); :func:`observed` wraps a
response so that its body, passed on unchanged, settles the call's reservation
(:class:`Call`) when it ends. Re-exported by :mod:`limitor.contrib.llm_transport`.
"""

from __future__ import annotations

import codecs
import json
import logging
import math
import threading
import zlib
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal

from limitor.contrib._transport import library_of
from limitor.llm.limits import Cost
from limitor.llm.tokens import estimate_tokens
from limitor.results import Reservation

if TYPE_CHECKING:
    from limitor.contrib._transport import Request

__all__ = (
    "Call",
    "Dialect",
    "UsageReader",
    "default_estimate",
    "dialect_of",
    "observed",
    "request_body",
)

log = logging.getLogger("limitor")

Dialect = Literal["openai", "anthropic"]

_TEXT_FIELDS = ("messages", "input", "instructions", "system", "prompt")
_OUTPUT_FIELDS = ("max_tokens", "max_completion_tokens", "max_output_tokens")
_MAX_BODY = 16 * 1024 * 1024
"""A JSON body longer than this is not kept for its usage (the estimate stands)."""
_MAX_EVENT = 1024 * 1024
"""An SSE event longer than this is skipped."""


def dialect_of(request: Request) -> Dialect:
    """``"anthropic"`` for Anthropic's host or its ``/messages`` path, else ``"openai"``."""
    host = request.url.host
    if "anthropic" in host or request.url.path.rstrip("/").endswith("/messages"):
        return "anthropic"
    return "openai"


def request_body(request: Request) -> dict[str, Any] | None:
    """The request's JSON object body, if it has one that can be read without consuming it."""
    if not isinstance(request.stream, library_of(request).ByteStream):
        return None
    content = request.content
    if not content or content[:1] != b"{":
        return None
    try:
        body = json.loads(content)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def default_estimate(body: Mapping[str, Any]) -> Cost:
    """A request body's cost: its text's characters / 4, plus its ``max_tokens``-like field."""
    fields = {name: body[name] for name in (*_TEXT_FIELDS, *_OUTPUT_FIELDS) if name in body}
    return estimate_tokens(**fields)


def _number(value: object) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
        if 0.0 <= number < math.inf:
            return number
    return None


class UsageReader:
    """Reads a response's token usage from its bytes, as they pass, in bounded memory.

    ``feed`` every chunk of the raw body; :meth:`cost` then says what the call used:
    the usage the body reported (a JSON body's ``usage``, or the usage events of an SSE
    stream in either dialect), else, for a stream, the input estimate plus the output
    text seen (characters / 4), else ``None`` (nothing known: keep the estimate).

    Args:
        content_type: the response's ``content-type``.
        content_encoding: its ``content-encoding`` (gzip and deflate are read; others
            are not, and the estimate stands).
        estimate: the call's estimated cost (its input part fills in what a stream
            does not report).
    """

    __slots__ = (
        "_body",
        "_decoder",
        "_estimate",
        "_event",
        "_input",
        "_kind",
        "_line",
        "_output",
        "_overflow",
        "_text",
        "_unzip",
    )

    def __init__(self, content_type: str, content_encoding: str, estimate: Cost) -> None:
        kind = content_type.split(";")[0].strip().lower()
        self._kind = (
            "sse" if kind == "text/event-stream" else "json" if kind.endswith("json") else None
        )
        encoding = content_encoding.strip().lower()
        self._unzip: Any = None
        if encoding in ("gzip", "x-gzip", "deflate"):
            self._unzip = zlib.decompressobj(zlib.MAX_WBITS | 32)
        elif encoding not in ("", "identity"):
            self._kind = None
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._estimate = estimate
        self._body: list[bytes] = []
        self._overflow = 0
        self._line = ""
        self._event: list[str] = []
        self._input: float | None = None
        self._output: float | None = None
        self._text = 0

    def feed(self, chunk: bytes) -> None:
        """Read one chunk of the raw (possibly compressed) body."""
        if self._kind is None or not chunk:
            return
        try:
            data = self._unzip.decompress(chunk) if self._unzip is not None else chunk
        except zlib.error:
            self._kind = None
            return
        if self._kind == "json":
            self._overflow += len(data)
            if self._overflow > _MAX_BODY:
                self._kind, self._body = None, []
            else:
                self._body.append(data)
            return
        text = self._line + self._decoder.decode(data)
        lines = text.split("\n")
        self._line = lines.pop()
        if len(self._line) > _MAX_EVENT:
            self._line = ""
        for line in lines:
            self._sse_line(line.rstrip("\r"))

    def _sse_line(self, line: str) -> None:
        if not line:
            if self._event:
                self._payload("\n".join(self._event))
                self._event = []
            return
        if line.startswith("data:"):
            data = line[5:]
            self._event.append(data[1:] if data.startswith(" ") else data)
            if sum(len(part) for part in self._event) > _MAX_EVENT:
                self._event = []

    def _payload(self, data: str) -> None:
        if not data.startswith("{"):
            return  # [DONE] and other plain data
        try:
            event = json.loads(data)
        except ValueError:
            return
        if not isinstance(event, dict):
            return
        for holder in (event, event.get("message"), event.get("response")):
            if isinstance(holder, dict) and isinstance(holder.get("usage"), dict):
                self._usage(holder["usage"])
        self._text += self._delta_characters(event)

    def _usage(self, usage: Mapping[str, Any]) -> None:
        """Take the counts a usage object gives (a stream's later events give the latest)."""
        for name in ("prompt_tokens", "input_tokens"):
            number = _number(usage.get(name))
            if number is not None:
                cache = _number(usage.get("cache_creation_input_tokens")) or 0.0
                self._input = number + cache
                break
        for name in ("completion_tokens", "output_tokens"):
            number = _number(usage.get(name))
            if number is not None:
                self._output = number
                break

    @staticmethod
    def _delta_characters(event: Mapping[str, Any]) -> int:
        """Characters of generated text in one stream event, in either dialect."""
        total = 0
        choices = event.get("choices")
        if isinstance(choices, list):  # OpenAI chat completions
            for choice in choices:
                delta = choice.get("delta") if isinstance(choice, dict) else None
                if isinstance(delta, dict):
                    for name in ("content", "refusal"):
                        if isinstance(delta.get(name), str):
                            total += len(delta[name])
                    for call in delta.get("tool_calls") or ():
                        function = call.get("function") if isinstance(call, dict) else None
                        if isinstance(function, dict):
                            total += len(str(function.get("arguments") or ""))
        delta = event.get("delta")
        if isinstance(delta, str):  # the Responses API's *.delta events
            total += len(delta)
        elif isinstance(delta, dict):  # Anthropic's content_block_delta
            for name in ("text", "partial_json", "thinking"):
                if isinstance(delta.get(name), str):
                    total += len(delta[name])
        return total

    def cost(self, stream_ended: bool = True) -> Cost | None:
        """What the call used, as far as the body said (``None``: the estimate stands)."""
        if self._kind == "json":
            try:
                body = json.loads(b"".join(self._body))
            except ValueError:
                return None
            if isinstance(body, dict) and isinstance(body.get("usage"), dict):
                self._usage(body["usage"])
        elif self._kind == "sse" and self._line:
            self._sse_line(self._line)
            self._line = ""
            self._sse_line("")
        if self._input is None and self._output is None:
            if self._kind != "sse":
                return None
            return Cost(
                input_tokens=self._estimate.input_tokens,
                output_tokens=float(math.ceil(self._text / 4)),
            )
        input_tokens = self._estimate.input_tokens if self._input is None else self._input
        output = self._output if self._output is not None else math.ceil(self._text / 4)
        return Cost(input_tokens=input_tokens, output_tokens=float(output))


class Call:
    """One admitted request: its reservation, settled once when its response ends."""

    __slots__ = ("_lock", "_settled", "reader", "reservation")

    def __init__(self, reservation: Reservation, reader: UsageReader) -> None:
        self.reservation = reservation
        self.reader = reader
        self._settled = False
        self._lock = threading.Lock()

    def take(self) -> Cost | None:
        """The cost to reconcile to, the first time it is asked (else ``None``)."""
        with self._lock:
            if self._settled:
                return None
            self._settled = True
        try:
            return self.reader.cost()
        except Exception:  # never raise after the call; the estimate stands
            log.exception("could not read the usage of an LLM response")
            return None

    def settle(self) -> None:
        cost = self.take()
        if cost is not None:
            try:
                self.reservation.reconcile(cost)  # type: ignore[arg-type]
            except Exception:
                log.exception("could not reconcile an LLM call's tokens")

    async def settle_async(self) -> None:
        cost = self.take()
        if cost is not None:
            try:
                await self.reservation.reconcile_async(cost)  # type: ignore[arg-type]
            except Exception:
                log.exception("could not reconcile an LLM call's tokens")


class _ObservedStream:
    """A response body that passes every chunk on unchanged, reading its usage on the way."""

    def __init__(self, inner: Any, call: Call) -> None:
        self._inner = inner
        self._call = call

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._inner:
            self._call.reader.feed(chunk)
            yield chunk
        self._call.settle()

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            self._call.settle()

    def __aiter__(self) -> AsyncIterator[bytes]:
        # an iterator object, not an async generator: one left unfinished (a caller that
        # stops reading) must not wait for the garbage collector to finalize it
        return _ObservedAsyncIterator(self._inner.__aiter__(), self._call)

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            await self._call.settle_async()


class _ObservedAsyncIterator:
    """The async iteration of an :class:`_ObservedStream`."""

    __slots__ = ("_call", "_inner")

    def __init__(self, inner: AsyncIterator[bytes], call: Call) -> None:
        self._inner = inner
        self._call = call

    def __aiter__(self) -> _ObservedAsyncIterator:
        return self

    async def __anext__(self) -> bytes:
        try:
            chunk = await self._inner.__anext__()
        except StopAsyncIteration:
            await self._call.settle_async()
            raise
        self._call.reader.feed(chunk)
        return chunk


_STREAMS: dict[str, type] = {}


def observed(request: Request, response: Any, call: Call) -> Any:
    """``response`` with its body observed by ``call`` (a new response of its library)."""
    library = library_of(request)
    cls = _STREAMS.get(library.__name__)
    if cls is None:
        bases = (_ObservedStream, library.SyncByteStream, library.AsyncByteStream)
        cls = _STREAMS[library.__name__] = type("ObservedStream", bases, {})
    return library.Response(
        response.status_code,
        headers=response.headers,
        stream=cls(response.stream, call),
        request=request,
        extensions=response.extensions,
    )
