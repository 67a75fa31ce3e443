"""Answers in the three dialects for the SDKs' own clients over ``httpx2.MockTransport``.

Chat completions (``/chat/completions``), the Responses API (``/responses``) and Anthropic
messages (``/messages``), plain or streamed as server-sent events, each with its usage.
"""

from __future__ import annotations

import json
from typing import Any

import httpx2

INPUT = 20
OUTPUT = 35
TEXT = "hello there, this is a streamed answer"


def _sse(events: list[tuple[str | None, dict[str, Any] | str]]) -> bytes:
    lines = []
    for name, data in events:
        if name is not None:
            lines.append(f"event: {name}")
        lines.append("data: " + (data if isinstance(data, str) else json.dumps(data)))
        lines.append("")
    return ("\n".join(lines) + "\n").encode()


def _chat(body: dict[str, Any]) -> httpx2.Response:
    usage = {"prompt_tokens": INPUT, "completion_tokens": OUTPUT, "total_tokens": INPUT + OUTPUT}
    if not body.get("stream"):
        return httpx2.Response(
            200,
            json={
                "id": "c",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": TEXT},
                    }
                ],
                "usage": usage,
            },
            headers={"x-ratelimit-remaining-requests": "42"},
        )
    base = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": body["model"]}
    events: list[tuple[str | None, dict[str, Any] | str]] = []
    for word in TEXT.split(" "):
        delta = {"index": 0, "delta": {"content": word + " "}, "finish_reason": None}
        events.append((None, {**base, "choices": [delta]}))
    if (body.get("stream_options") or {}).get("include_usage"):
        events.append((None, {**base, "choices": [], "usage": usage}))
    events.append((None, "[DONE]"))
    return httpx2.Response(200, content=_sse(events), headers={"content-type": "text/event-stream"})


def _response_object(body: dict[str, Any], status: str, usage: bool) -> dict[str, Any]:
    return {
        "id": "r",
        "object": "response",
        "created_at": 0,
        "model": body["model"],
        "status": status,
        "output": [],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": (
            {
                "input_tokens": INPUT,
                "output_tokens": OUTPUT,
                "total_tokens": INPUT + OUTPUT,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens_details": {"reasoning_tokens": 0},
            }
            if usage
            else None
        ),
    }


def _responses(body: dict[str, Any]) -> httpx2.Response:
    if not body.get("stream"):
        return httpx2.Response(200, json=_response_object(body, "completed", True))
    events: list[tuple[str | None, dict[str, Any] | str]] = [
        (
            "response.created",
            {
                "type": "response.created",
                "sequence_number": 0,
                "response": _response_object(body, "in_progress", False),
            },
        )
    ]
    for n, word in enumerate(TEXT.split(" ")):
        events.append(
            (
                "response.output_text.delta",
                {
                    "type": "response.output_text.delta",
                    "sequence_number": n + 1,
                    "item_id": "m",
                    "output_index": 0,
                    "content_index": 0,
                    "delta": word + " ",
                    "logprobs": [],
                },
            )
        )
    events.append(
        (
            "response.completed",
            {
                "type": "response.completed",
                "sequence_number": 99,
                "response": _response_object(body, "completed", True),
            },
        )
    )
    return httpx2.Response(200, content=_sse(events), headers={"content-type": "text/event-stream"})


def _messages(body: dict[str, Any]) -> httpx2.Response:
    message = {
        "id": "m",
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": [{"type": "text", "text": TEXT}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": INPUT, "output_tokens": OUTPUT},
    }
    headers = {"anthropic-ratelimit-requests-remaining": "4"}
    if not body.get("stream"):
        return httpx2.Response(200, json=message, headers=headers)
    start = {**message, "content": [], "stop_reason": None}
    start["usage"] = {"input_tokens": INPUT, "output_tokens": 1}
    events: list[tuple[str | None, dict[str, Any] | str]] = [
        ("message_start", {"type": "message_start", "message": start}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
    ]
    for word in TEXT.split(" "):
        events.append(
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": word + " "},
                },
            )
        )
    events += [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": OUTPUT},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    headers["content-type"] = "text/event-stream"
    return httpx2.Response(200, content=_sse(events), headers=headers)


def handler(request: httpx2.Request) -> httpx2.Response:
    """One answer for any of the three dialects, by path."""
    body = json.loads(request.content or b"{}")
    path = request.url.path
    if path.endswith("/chat/completions"):
        return _chat(body)
    if path.endswith("/responses"):
        return _responses(body)
    if path.endswith("/messages"):
        return _messages(body)
    return httpx2.Response(404, json={"error": {"message": path}})


def openai_client(*, asynchronous: bool = False) -> Any:
    import openai

    if asynchronous:
        return openai.AsyncOpenAI(
            api_key="k",
            base_url="http://llm.test/v1",
            max_retries=0,
            http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(handler)),
        )
    return openai.OpenAI(
        api_key="k",
        base_url="http://llm.test/v1",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
    )


def anthropic_client(*, asynchronous: bool = False) -> Any:
    import anthropic

    if asynchronous:
        return anthropic.AsyncAnthropic(
            api_key="k",
            base_url="http://llm.test",
            max_retries=0,
            http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(handler)),
        )
    return anthropic.Anthropic(
        api_key="k",
        base_url="http://llm.test",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
    )
