"""A fake LLM provider for tests: OpenAI chat completions, the Responses API and Anthropic
messages, streamed or not, with the providers' rate-limit headers and their own limits.

:class:`FakeProvider` is usable three ways:

* as an httpx or httpx2 ``MockTransport`` handler: ``httpx2.MockTransport(provider.handle)``
  (it answers with the request's own library's ``Response``);
* as an ASGI app under uvicorn (``provider`` itself is the app);
* directly: ``provider.respond(method, path, body)``.

It keeps requests-per-minute and tokens-per-minute buckets, refilling continuously, on an
injectable clock (anything with ``now()``; ``limitor.testing.FakeClock`` or
``limitor.AnyioClock`` under trio's MockClock). A call is admitted when one request and
its estimate (prompt characters / 4, rounded up, plus ``max_tokens``) fit; the tokens are
then reconciled to the usage it reports (unused ones given back at once), as the real
providers do. Over either limit it answers 429 with ``retry-after``; ``rejected`` counts
them.
"""

from tests.llm_fake.provider import ANTHROPIC_HOST, OPENAI_HOST, Call, FakeProvider, prompt_tokens

__all__ = ("ANTHROPIC_HOST", "OPENAI_HOST", "Call", "FakeProvider", "prompt_tokens")
