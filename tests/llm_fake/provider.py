"""The fake provider: the three dialects, SSE, headers, its own buckets, 429s (see the package)."""

from __future__ import annotations

import json
import math
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

OPENAI_HOST = "api.openai.com"
ANTHROPIC_HOST = "api.anthropic.com"

_TEXT_KEYS = ("content", "text", "input", "prompt", "system", "instructions", "messages")
_OUTPUT_KEYS = ("max_tokens", "max_completion_tokens", "max_output_tokens")


def _characters(value: Any, depth: int = 0) -> int:
    if isinstance(value, str):
        return len(value)
    if depth > 8:
        return 0
    if isinstance(value, list):
        return sum(_characters(item, depth + 1) for item in value)
    if isinstance(value, dict):
        return sum(_characters(value[key], depth + 1) for key in _TEXT_KEYS if key in value)
    return 0


def prompt_tokens(body: dict[str, Any]) -> int:
    """The fake's count of a request's input tokens: characters / 4, rounded up.

    It counts the text of ``messages``, ``input``, ``instructions`` and ``system`` (the
    text of every message's ``content``), as limitor's default estimate does.
    """
    fields = {
        key: body[key]
        for key in ("messages", "input", "instructions", "system", "prompt")
        if key in body
    }
    return math.ceil(_characters(fields) / 4) if fields else 0


def _max_output(body: dict[str, Any]) -> int | None:
    for key in _OUTPUT_KEYS:
        value = body.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return None


def _go_duration(seconds: float) -> str:
    """``6m0s``, ``1.5s``, ``120ms``: OpenAI's reset format."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    minutes, rest = divmod(seconds, 60)
    rest = round(rest, 3)
    text = f"{rest:g}s"
    return f"{int(minutes)}m{text}" if minutes else text


def _rfc3339(wall: float) -> str:
    return datetime.fromtimestamp(wall, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Bucket:
    """``capacity`` units per ``seconds``, refilling continuously, full at the start."""

    def __init__(self, capacity: float, seconds: float = 60.0) -> None:
        self.capacity = float(capacity)
        self.rate = self.capacity / seconds
        self.level = self.capacity
        self.updated: float | None = None

    def refill(self, now: float) -> None:
        if self.updated is not None and now > self.updated:
            self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
        if self.updated is None or now > self.updated:
            self.updated = now

    def wait_for(self, amount: float) -> float:
        # a client in step with this bucket may arrive a float's rounding early
        missing = amount - self.level
        return 0.0 if missing <= 1e-9 * max(1.0, self.capacity) else missing / self.rate

    def until_full(self) -> float:
        return max(0.0, (self.capacity - self.level) / self.rate)


@dataclass
class Call:
    """One request the provider answered."""

    time: float
    path: str
    status: int
    stream: bool
    input_tokens: int = 0
    output_tokens: int = 0
    reserved_tokens: int = 0


class _Monotonic:
    @staticmethod
    def now() -> float:
        return time.monotonic()


class FakeProvider:
    """A pretend OpenAI/Anthropic API with its own per-minute limits.

    Args:
        rpm: requests per minute (the bucket's burst is the whole minute's amount).
        tpm: tokens (input plus output) per minute.
        output_tokens: the output tokens of every answer (at most the call's max).
        clock: the time source (anything with ``now()``; default: real monotonic time).
        wall_start: the Unix time of the first request, for Anthropic's reset dates
            (default: the time the provider was made).

    Attributes:
        calls: every request answered, in order (429s included).
        rejected: how many 429s it answered.
    """

    def __init__(
        self,
        *,
        rpm: float = 60,
        tpm: float = 100_000,
        output_tokens: int = 20,
        clock: Any = None,
        wall_start: float | None = None,
    ) -> None:
        self.requests = _Bucket(rpm)
        self.tokens = _Bucket(tpm)
        self.output_tokens = output_tokens
        self.clock = _Monotonic() if clock is None else clock
        self._wall_start = time.time() if wall_start is None else wall_start
        self._wall_offset: float | None = None  # wall time - clock time, set on first use
        self._lock = threading.Lock()
        self._held_until = -math.inf
        self.calls: list[Call] = []
        self.rejected = 0

    # -- what tests read ---------------------------------------------------------------

    @property
    def admitted(self) -> list[Call]:
        """The calls answered with 200."""
        return [call for call in self.calls if call.status == 200]

    @property
    def used_tokens(self) -> int:
        """Input plus output tokens of every admitted call."""
        return sum(call.input_tokens + call.output_tokens for call in self.admitted)

    def hold(self, seconds: float) -> None:
        """Refuse every request for the next ``seconds`` (429 with that retry-after)."""
        with self._lock:
            self._held_until = self.clock.now() + seconds

    # -- the protocol ------------------------------------------------------------------

    def respond(
        self, method: str, path: str, body: bytes
    ) -> tuple[int, list[tuple[str, str]], list[bytes]]:
        """Answer one request: status, headers and the body's chunks."""
        anthropic = path.startswith("/v1/messages")
        if method != "POST" or path not in (
            "/v1/chat/completions",
            "/v1/responses",
            "/v1/messages",
        ):
            return 404, [("content-type", "application/json")], [b'{"error": "not found"}']
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return 400, [("content-type", "application/json")], [b'{"error": "bad json"}']
        stream = bool(request.get("stream"))
        prompt = prompt_tokens(request)
        most = _max_output(request)
        reserve = prompt + (most or 0)
        output = self.output_tokens if most is None else min(self.output_tokens, most)
        with self._lock:
            now = self.clock.now()
            self.requests.refill(now)
            self.tokens.refill(now)
            wait = max(
                self._held_until - now, self.requests.wait_for(1), self.tokens.wait_for(reserve)
            )
            if reserve > self.tokens.capacity:
                wait = math.inf
            if wait > 0:
                self.rejected += 1
                self.calls.append(Call(now, path, 429, stream))
                headers = self._headers(anthropic, now)
                if math.isfinite(wait):
                    headers.append(("retry-after", str(max(1, math.ceil(wait)))))
                    if not anthropic:
                        headers.append(("retry-after-ms", str(math.ceil(wait * 1000))))
                return 429, headers, [self._error(anthropic)]
            self.requests.level -= 1
            self.tokens.level -= reserve
            self.tokens.level += reserve - (prompt + output)  # reconciled to the usage
            self.calls.append(Call(now, path, 200, stream, prompt, output, reserve))
            headers = self._headers(anthropic, now)
        model = str(request.get("model", "fake-model"))
        if path == "/v1/chat/completions":
            include = bool((request.get("stream_options") or {}).get("include_usage"))
            chunks = self._chat(model, prompt, output, stream, include)
        elif path == "/v1/responses":
            chunks = self._responses(model, prompt, output, stream)
        else:
            chunks = self._messages(model, prompt, output, stream)
        kind = "text/event-stream; charset=utf-8" if stream else "application/json"
        return 200, [("content-type", kind), *headers], chunks

    def _headers(self, anthropic: bool, now: float) -> list[tuple[str, str]]:
        requests, tokens = self.requests, self.tokens
        if anthropic:
            if self._wall_offset is None:
                self._wall_offset = self._wall_start - now
            wall = self._wall_offset + now
            return [
                ("anthropic-ratelimit-requests-limit", f"{requests.capacity:g}"),
                ("anthropic-ratelimit-requests-remaining", str(max(0, math.floor(requests.level)))),
                ("anthropic-ratelimit-requests-reset", _rfc3339(wall + requests.until_full())),
                ("anthropic-ratelimit-tokens-limit", f"{tokens.capacity:g}"),
                ("anthropic-ratelimit-tokens-remaining", str(max(0, math.floor(tokens.level)))),
                ("anthropic-ratelimit-tokens-reset", _rfc3339(wall + tokens.until_full())),
            ]
        return [
            ("x-ratelimit-limit-requests", f"{requests.capacity:g}"),
            ("x-ratelimit-limit-tokens", f"{tokens.capacity:g}"),
            ("x-ratelimit-remaining-requests", str(max(0, math.floor(requests.level)))),
            ("x-ratelimit-remaining-tokens", str(max(0, math.floor(tokens.level)))),
            ("x-ratelimit-reset-requests", _go_duration(requests.until_full())),
            ("x-ratelimit-reset-tokens", _go_duration(tokens.until_full())),
        ]

    @staticmethod
    def _error(anthropic: bool) -> bytes:
        if anthropic:
            error: dict[str, Any] = {
                "type": "error",
                "error": {"type": "rate_limit_error", "message": "rate limit exceeded"},
            }
        else:
            error = {
                "error": {
                    "message": "Rate limit reached",
                    "type": "tokens",
                    "param": None,
                    "code": "rate_limit_exceeded",
                }
            }
        return json.dumps(error).encode()

    # -- the dialects ------------------------------------------------------------------

    @staticmethod
    def _sse(data: Any, event: str | None = None) -> bytes:
        text = data if isinstance(data, str) else json.dumps(data)
        head = f"event: {event}\n" if event else ""
        return f"{head}data: {text}\n\n".encode()

    def _chat(
        self, model: str, prompt: int, output: int, stream: bool, include: bool
    ) -> list[bytes]:
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": output,
            "total_tokens": prompt + output,
        }
        base = {"id": "chatcmpl-fake", "created": 1_700_000_000, "model": model}
        if not stream:
            message = {"role": "assistant", "content": " tok" * output, "refusal": None}
            choice = {"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}
            body = {**base, "object": "chat.completion", "choices": [choice], "usage": usage}
            return [json.dumps(body).encode()]
        chunk = {**base, "object": "chat.completion.chunk"}
        chunks = [
            self._sse(
                {
                    **chunk,
                    "choices": [
                        {
                            "index": 0,
                            "delta": {"role": "assistant", "content": ""},
                            "finish_reason": None,
                        }
                    ],
                }
            )
        ]
        for _ in range(output):
            delta = {"index": 0, "delta": {"content": " tok"}, "finish_reason": None}
            chunks.append(self._sse({**chunk, "choices": [delta]}))
        chunks.append(self._sse({**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))  # fmt: skip
        if include:
            chunks.append(self._sse({**chunk, "choices": [], "usage": usage}))
        chunks.append(self._sse("[DONE]"))
        return chunks

    def _responses(self, model: str, prompt: int, output: int, stream: bool) -> list[bytes]:
        usage = {
            "input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": output,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt + output,
        }
        text = " tok" * output
        item = {
            "type": "message",
            "id": "msg_fake",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        }
        response: dict[str, Any] = {
            "id": "resp_fake",
            "object": "response",
            "created_at": 1_700_000_000,
            "status": "completed",
            "model": model,
            "output": [item],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": usage,
        }
        if not stream:
            return [json.dumps(response).encode()]
        started = {**response, "status": "in_progress", "output": [], "usage": None}
        events: list[dict[str, Any]] = [
            {"type": "response.created", "response": started},
            {"type": "response.in_progress", "response": started},
            {
                "type": "response.output_item.added",
                "output_index": 0,
                "item": {**item, "status": "in_progress", "content": []},
            },
            {
                "type": "response.content_part.added",
                "item_id": "msg_fake",
                "output_index": 0,
                "content_index": 0,
                "part": {"type": "output_text", "text": "", "annotations": []},
            },
        ]
        for _ in range(output):
            events.append(
                {
                    "type": "response.output_text.delta",
                    "item_id": "msg_fake",
                    "output_index": 0,
                    "content_index": 0,
                    "delta": " tok",
                    "logprobs": [],
                }
            )
        events += [
            {
                "type": "response.output_text.done",
                "item_id": "msg_fake",
                "output_index": 0,
                "content_index": 0,
                "text": text,
                "logprobs": [],
            },
            {
                "type": "response.content_part.done",
                "item_id": "msg_fake",
                "output_index": 0,
                "content_index": 0,
                "part": item["content"][0],
            },
            {"type": "response.output_item.done", "output_index": 0, "item": item},
            {"type": "response.completed", "response": response},
        ]
        return [
            self._sse({**event, "sequence_number": number}, event["type"])
            for number, event in enumerate(events)
        ]

    def _messages(self, model: str, prompt: int, output: int, stream: bool) -> list[bytes]:
        text = " tok" * output
        message: dict[str, Any] = {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": prompt, "output_tokens": output},
        }
        if not stream:
            return [json.dumps(message).encode()]
        start = {
            **message,
            "content": [],
            "stop_reason": None,
            "usage": {"input_tokens": prompt, "output_tokens": 1},
        }
        chunks = [
            self._sse({"type": "message_start", "message": start}, "message_start"),
            self._sse(
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
                "content_block_start",
            ),
            self._sse({"type": "ping"}, "ping"),
        ]
        for _ in range(output):
            delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " tok"}}  # fmt: skip
            chunks.append(self._sse(delta, "content_block_delta"))
        chunks += [
            self._sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
            self._sse(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": output},
                },
                "message_delta",
            ),
            self._sse({"type": "message_stop"}, "message_stop"),
        ]
        return chunks

    # -- as an httpx / httpx2 MockTransport handler --------------------------------------

    def handle(self, request: Any) -> Any:
        """A ``MockTransport`` handler: answers with the request's library's ``Response``."""
        library = sys.modules[type(request).__module__.partition(".")[0]]
        status, headers, chunks = self.respond(request.method, request.url.path, request.read())
        return library.Response(status, headers=headers, stream=_chunks(library, chunks))

    # -- as an ASGI app ------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """The provider as an ASGI app (HTTP only), for uvicorn."""
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        status, headers, chunks = self.respond(scope["method"], scope["path"], body)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.encode(), v.encode()) for k, v in headers],
            }
        )
        for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


_STREAM_CLASSES: dict[str, type] = {}


def _chunks(library: Any, chunks: list[bytes]) -> Any:
    """A byte stream of ``library`` (httpx or httpx2) giving ``chunks`` one by one."""
    cls = _STREAM_CLASSES.get(library.__name__)
    if cls is None:

        def iterate(self: Any) -> Iterator[bytes]:
            yield from self.chunks

        def aiterate(self: Any) -> AsyncIterator[bytes]:
            return _AsyncChunks(self.chunks)

        def init(self: Any, chunks: list[bytes]) -> None:
            self.chunks = chunks

        cls = type(
            "Chunks",
            (library.SyncByteStream, library.AsyncByteStream),
            {"__init__": init, "__iter__": iterate, "__aiter__": aiterate},
        )
        _STREAM_CLASSES[library.__name__] = cls
    return cls(chunks)


class _AsyncChunks:
    """Async iteration over chunks (an object, not an async generator: nothing to finalize)."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = iter(chunks)

    def __aiter__(self) -> _AsyncChunks:
        return self

    async def __anext__(self) -> bytes:
        try:
            return next(self._chunks)
        except StopIteration:
            raise StopAsyncIteration from None
