"""The official openai and anthropic SDKs, limited by requests and tokens per minute.

``LLMTransport`` goes under the SDK's HTTP client (an ``httpx2.Client``); every call of
that client then waits for both limits, with no other change to the code. It estimates
each call's tokens from the request's JSON body, reconciles them from the usage in the
response (streams included: it reads the usage events as the bytes pass by), and reads
the providers' rate-limit headers.

A pretend provider stands in for the real APIs (so the example runs offline, on a
virtual clock): it allows 30 requests and 2,500 tokens a minute and answers ``429`` when
a call does not fit. 40 calls (chat completions, streamed chat, Anthropic messages,
streamed messages) go through one transport per SDK sharing one limit: none meets a
429, and the minutes pass instantly.

Run it with::

    python examples/llm_transport.py
"""

from __future__ import annotations

import json
import math

import anthropic
import httpx2
import openai

from limitor.contrib.llm_transport import LLMTransport
from limitor.llm import LLMLimiter
from limitor.testing import FakeClock

clock = FakeClock()
RPM, TPM, OUTPUT = 30, 2_500, 40


class PretendProvider:
    """Token and request buckets that refill continuously, like the providers' own."""

    def __init__(self) -> None:
        self.requests, self.tokens, self.updated = float(RPM), float(TPM), 0.0
        self.refused = 0

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        now, body = clock.now(), json.loads(request.content)
        self.requests = min(RPM, self.requests + (now - self.updated) * RPM / 60)
        self.tokens = min(TPM, self.tokens + (now - self.updated) * TPM / 60)
        self.updated = now
        prompt = math.ceil(sum(len(m["content"]) for m in body["messages"]) / 4)
        if self.requests < 1 - 1e-9 or self.tokens < prompt + body["max_tokens"] - 1e-6:
            self.refused += 1
            return httpx2.Response(429, headers={"retry-after": "1"}, json={"error": {}})
        self.requests -= 1
        self.tokens -= prompt + OUTPUT  # the call's real usage
        anthropic_api = request.url.path.endswith("/messages")
        return answer(anthropic_api, body, prompt, bool(body.get("stream")))


def answer(anthropic_api: bool, body: dict, prompt: int, stream: bool) -> httpx2.Response:
    text = "word " * OUTPUT
    if anthropic_api:
        usage = {"input_tokens": prompt, "output_tokens": OUTPUT}
        message = {"id": "m", "type": "message", "role": "assistant", "model": body["model"],
                   "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
                   "stop_sequence": None, "usage": usage}  # fmt: skip
        if not stream:
            return httpx2.Response(200, json=message)
        events = [
            ("message_start", {"type": "message_start", "message": {**message, "content": []}}),
            ("content_block_start", {"type": "content_block_start", "index": 0,
                                     "content_block": {"type": "text", "text": ""}}),
            ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                     "delta": {"type": "text_delta", "text": text}}),
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            ("message_delta", {"type": "message_delta", "usage": {"output_tokens": OUTPUT},
                               "delta": {"stop_reason": "end_turn", "stop_sequence": None}}),
            ("message_stop", {"type": "message_stop"}),
        ]  # fmt: skip
        sse = "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events)
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, text=sse)
    usage = {"prompt_tokens": prompt, "completion_tokens": OUTPUT,
             "total_tokens": prompt + OUTPUT}  # fmt: skip
    base = {"id": "c", "created": 0, "model": body["model"]}
    if not stream:
        choice = {"index": 0, "finish_reason": "stop",
                  "message": {"role": "assistant", "content": text}}  # fmt: skip
        return httpx2.Response(
            200, json={**base, "object": "chat.completion", "choices": [choice], "usage": usage}
        )
    chunks = [
        {**base, "object": "chat.completion.chunk",
         "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": "stop"}]},
        {**base, "object": "chat.completion.chunk", "choices": [], "usage": usage},
    ]  # fmt: skip
    sse = "".join(f"data: {json.dumps(chunk)}\n\n" for chunk in chunks) + "data: [DONE]\n\n"
    return httpx2.Response(200, headers={"content-type": "text/event-stream"}, text=sse)


def main() -> None:
    provider = PretendProvider()
    # one limit for both SDKs (key=None: every host shares it), as the pretend provider has
    limiter = LLMLimiter(requests_per_minute=RPM, tokens_per_minute=TPM, clock=clock)

    def http_client() -> httpx2.Client:
        transport = LLMTransport(
            httpx2.MockTransport(provider), limiter=limiter, key=lambda request: None
        )
        return httpx2.Client(transport=transport)

    gpt = openai.OpenAI(api_key="sk-...", http_client=http_client(), max_retries=0)
    claude = anthropic.Anthropic(api_key="sk-ant-...", http_client=http_client(), max_retries=0)
    question = [{"role": "user", "content": "Why is the sky blue? " * 10}]  # 53 tokens
    for call in range(40):
        kind = call % 4
        if kind == 0:
            gpt.chat.completions.create(model="gpt-4o-mini", messages=question, max_tokens=100)
        elif kind == 1:
            stream = gpt.chat.completions.create(
                model="gpt-4o-mini",
                messages=question,
                max_tokens=100,
                stream=True,
                stream_options={"include_usage": True},
            )
            for _chunk in stream:
                pass
        elif kind == 2:
            claude.messages.create(model="claude-haiku-4-5", messages=question, max_tokens=100)
        else:
            with claude.messages.stream(
                model="claude-haiku-4-5", messages=question, max_tokens=100
            ) as events:
                events.get_final_message()
        if call % 10 == 9:
            left = limiter.status()["tokens_per_minute"].remaining
            print(f"t={clock.now():6.1f}s  {call + 1} calls, {left:5.0f} tokens left")
    used = 40 * (53 + OUTPUT)
    print(f"40 calls, {used} tokens in {clock.now():.1f} virtual seconds")
    print(f"429s met: {provider.refused}")


if __name__ == "__main__":
    main()
