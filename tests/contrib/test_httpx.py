"""The httpx transports against httpx's MockTransport, in virtual time (FakeClock)."""

from __future__ import annotations

import email.utils
import importlib
import itertools
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from limitor import PerUserLimiter, RateLimitExceeded
from limitor.configs import BucketConfig
from limitor.contrib._headers import read_feedback
from limitor.contrib.httpx import AsyncRateLimitedTransport, RateLimitedTransport
from limitor.errors import AcquireTimeout, ConfigError, ConfigTypeError
from limitor.testing import FakeClock


class Server:
    """A fake server: records when each request arrived, answers from a script."""

    def __init__(self, clock: FakeClock, answer: Callable[[httpx.Request, int], httpx.Response]):
        self.clock = clock
        self.answer = answer
        self.seen: list[tuple[str, float]] = []
        self.transport: Any = None

    def __call__(self, request: Any) -> Any:
        self.seen.append((request.url.host, self.clock.now()))
        answer = self.answer(request, len(self.seen))
        library = importlib.import_module(type(request).__module__.partition(".")[0])
        if isinstance(answer, library.Response):
            return answer
        # the scripts answer with httpx responses; a client of httpx2 gets the same in its own
        return library.Response(
            answer.status_code, headers=answer.headers.multi_items(), content=answer.content
        )

    def times(self, host: str) -> list[float]:
        return [at for seen_host, at in self.seen if seen_host == host]


def ok(request: httpx.Request, count: int) -> httpx.Response:
    return httpx.Response(200, text="ok")


LIBRARY: Any = httpx
"""The library of the clients and transports of the test running (httpx or httpx2)."""


@pytest.fixture(params=["httpx", "httpx2"])
def library(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Each test that takes a clock runs with httpx and again with httpx2."""
    global LIBRARY
    LIBRARY = importlib.import_module(request.param)
    try:
        yield LIBRARY
    finally:
        LIBRARY = httpx


@pytest.fixture
def clock(library: Any) -> FakeClock:
    return FakeClock()


def client_for(server: Server, **options: Any) -> Any:
    server.transport = RateLimitedTransport(
        LIBRARY.MockTransport(server), clock=server.clock, **options
    )
    return LIBRARY.Client(transport=server.transport)


def test_one_host_is_shaped_to_the_limit_another_is_not_slowed(clock: FakeClock) -> None:
    server = Server(clock, ok)
    with client_for(server, rate="2/s", burst=1) as client:
        for _ in range(5):
            client.get("https://slow.test/")
            sleeps = len(clock.sleeps)
            client.get("https://other.test/")  # its own bucket: admitted at once
            assert len(clock.sleeps) == sleeps
    assert server.times("slow.test") == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0])
    # other.test went each time right after slow.test, never waiting for itself
    assert server.times("other.test") == pytest.approx(server.times("slow.test"))


def test_a_429_with_retry_after_2_is_waited_for_and_retried_once(clock: FakeClock) -> None:
    def answer(request: httpx.Request, count: int) -> httpx.Response:
        if count == 1:
            return httpx.Response(429, headers={"Retry-After": "2"})
        return httpx.Response(200, text="ok")

    server = Server(clock, answer)
    with client_for(server, rate="10/s", retries=1) as client:
        response = client.get("https://api.test/")
    assert response.status_code == 200
    first, retry = server.times("api.test")
    # held for exactly the 2 s asked (afterwards the bucket is as it would have been)
    assert retry - first == pytest.approx(2.0)


def test_retries_are_bounded_and_the_last_429_is_returned(clock: FakeClock) -> None:
    server = Server(clock, lambda request, count: httpx.Response(429, headers={"Retry-After": "1"}))
    with client_for(server, rate="10/s", retries=2) as client:
        response = client.get("https://api.test/")
    assert response.status_code == 429
    assert len(server.seen) == 3  # the request and two retries
    times = server.times("api.test")
    assert all(b - a >= 1.0 for a, b in itertools.pairwise(times))


def test_a_429_without_retry_after_backs_off_exponentially(clock: FakeClock) -> None:
    server = Server(clock, lambda request, count: httpx.Response(503))
    with client_for(server, rate="10/s", retries=3, retry_backoff=0.5) as client:
        assert client.get("https://api.test/").status_code == 503
    times = server.times("api.test")
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps == pytest.approx([0.5, 1.0, 2.0])  # held 0.5, 1 and 2 s


def test_without_retries_the_429_is_returned_and_the_host_is_held(clock: FakeClock) -> None:
    def answer(request: httpx.Request, count: int) -> httpx.Response:
        if count == 1:
            return httpx.Response(429, headers={"Retry-After": "3"})
        return httpx.Response(200)

    server = Server(clock, answer)
    with client_for(server, rate="10/s") as client:
        assert client.get("https://api.test/").status_code == 429
        assert client.get("https://api.test/").status_code == 200
        assert client.get("https://elsewhere.test/").status_code == 200
    api = server.times("api.test")
    assert api[1] - api[0] >= 3.0
    assert server.times("elsewhere.test")[0] == pytest.approx(api[1])  # not held itself


def test_retry_after_as_an_http_date(clock: FakeClock) -> None:
    def answer(request: httpx.Request, count: int) -> httpx.Response:
        if count == 1:
            when = email.utils.formatdate(time.time() + 5, usegmt=True)
            return httpx.Response(503, headers={"Retry-After": when})
        return httpx.Response(200)

    server = Server(clock, answer)
    with client_for(server, rate="10/s", retries=1) as client:
        assert client.get("https://api.test/").status_code == 200
    first, retry = server.times("api.test")
    assert 3.5 <= retry - first <= 5.2  # the date has whole seconds


def test_a_retry_after_beyond_max_retry_after_is_not_waited_for(clock: FakeClock) -> None:
    server = Server(
        clock, lambda request, count: httpx.Response(429, headers={"Retry-After": "120"})
    )
    with client_for(server, rate="10/s", retries=3, max_retry_after=30) as client:
        assert client.get("https://api.test/").status_code == 429
        # the host is held, but never longer than max_retry_after (issue 17)
        assert server.transport.limiter.status("api.test").retry_after == pytest.approx(30)
    assert len(server.seen) == 1
    assert clock.now() == 0.0


def test_a_streamed_body_is_not_replayed(clock: FakeClock) -> None:
    server = Server(clock, lambda request, count: httpx.Response(429, headers={"Retry-After": "1"}))

    def body() -> Iterator[bytes]:
        yield b"once"

    with client_for(server, rate="10/s", retries=2) as client:
        assert client.post("https://api.test/", content=body()).status_code == 429
        assert len(server.seen) == 1
        assert client.post("https://api.test/", content=b"bytes").status_code == 429
        assert len(server.seen) == 4  # bytes are sent again


def test_ietf_ratelimit_header_tightens_the_bucket(clock: FakeClock) -> None:
    def answer(request: httpx.Request, count: int) -> httpx.Response:
        return httpx.Response(200, headers={"RateLimit": '"default";r=0;t=1'})

    server = Server(clock, answer)
    with client_for(server, rate="10/s") as client:  # burst 10
        client.get("https://api.test/")
        limiter = server.transport.limiter
        assert limiter.status("api.test").remaining == 0  # we believed 9
        client.get("https://api.test/")
    first, second = server.times("api.test")
    assert second - first == pytest.approx(0.1)  # waits for a unit to refill


@pytest.mark.parametrize(
    ("headers", "left"),
    [
        ({"RateLimit": '"a";r=5;t=10, "b";r=3;t=60'}, 3),
        ({"RateLimit-Policy": '"default";q=4;w=1'}, 4),
        ({"RateLimit-Remaining": "2", "RateLimit-Reset": "1"}, 2),
        ({"X-RateLimit-Remaining": "6"}, 6),
        ({"x-ratelimit-remaining-requests": "1", "x-ratelimit-reset-requests": "1s"}, 1),
        ({"RateLimit": '"default";r=50;t=1'}, 9),  # more than we believe: never loosens
        ({"RateLimit": "not a structured field;;"}, 9),  # malformed: ignored
        ({"RateLimit": '"default";t=1'}, 9),  # no r: ignored
    ],
)
def test_each_kind_of_header_caps_what_is_left(
    clock: FakeClock, headers: dict[str, str], left: float
) -> None:
    server = Server(clock, lambda request, count: httpx.Response(200, headers=headers))
    with client_for(server, rate="10/s") as client:
        client.get("https://api.test/")
        limiter = server.transport.limiter
        assert limiter.status("api.test").remaining == pytest.approx(left)


def test_tightening_accounts_for_debt_instead_of_compounding(clock: FakeClock) -> None:
    # the server keeps saying "0 left": the bucket is capped at 0 once per response, not
    # charged a little more each time
    server = Server(clock, lambda r, c: httpx.Response(200, headers={"RateLimit": '"d";r=0'}))
    with client_for(server, rate="10/s", burst=1) as client:
        for _ in range(6):
            client.get("https://api.test/")
    times = server.times("api.test")
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps == pytest.approx([0.1] * 5)


def test_retry_after_is_ignored_on_other_statuses(clock: FakeClock) -> None:
    assert read_feedback([("Retry-After", "5")], 301).retry_after is None
    assert read_feedback([("Retry-After", "5")], 503).retry_after == 5.0
    assert read_feedback([("retry-after-ms", "250")], 429).retry_after == 0.25


def test_policing_raises_without_sending(clock: FakeClock) -> None:
    server = Server(clock, ok)
    with client_for(server, rate="1/s", on_limit="raise") as client:
        client.get("https://api.test/")
        with pytest.raises(RateLimitExceeded) as caught:
            client.get("https://api.test/")
    assert caught.value.retry_after == pytest.approx(1.0)
    assert len(server.seen) == 1


def test_a_timeout_that_cannot_be_met_raises_at_once(clock: FakeClock) -> None:
    server = Server(clock, ok)
    with client_for(server, rate="1/s", timeout=0.5) as client:
        client.get("https://api.test/")
        with pytest.raises(AcquireTimeout):
            client.get("https://api.test/")
    assert clock.now() == 0.0


def test_a_key_function_and_a_shared_limiter(clock: FakeClock) -> None:
    shared = PerUserLimiter(BucketConfig(2, 1), clock=clock)
    server = Server(clock, ok)
    with client_for(server, limiter=shared, key=lambda request: None) as client:
        for host in ("a.test", "b.test", "c.test", "d.test"):
            client.get(f"https://{host}/")
    assert [at for _, at in server.seen] == pytest.approx([0.0, 0.0, 0.5, 1.0])
    assert shared.stats.admitted == 4


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({}, ConfigError, "rate="),
        ({"rate": "10/s", "limiter": PerUserLimiter()}, ConfigError, "either"),
        ({"rate": 10}, ConfigTypeError, "10"),
        ({"rate": "ten per second"}, ConfigError, "ten per second"),
        ({"rate": "10/s", "on_limit": "drop"}, ConfigError, "drop"),
        ({"rate": "10/s", "retries": -1}, ConfigError, "-1"),
        ({"rate": "10/s", "retries": 1.5}, ConfigError, "1.5"),
        ({"rate": "10/s", "retry_statuses": [404]}, ConfigError, "404"),
        ({"rate": "10/s", "max_retry_after": 0}, ConfigError, "max_retry_after"),
        ({"rate": "10/s", "retry_backoff": -1}, ConfigError, "retry_backoff"),
        ({"rate": "10/s", "key": "host"}, ConfigTypeError, "host"),
        ({"limiter": object()}, ConfigTypeError, "PerUserLimiter"),
    ],
)
def test_bad_options_are_refused_at_once(options: dict[str, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        RateLimitedTransport(httpx.MockTransport(Server(FakeClock(), ok)), **options)
    with pytest.raises(error, match=match):
        AsyncRateLimitedTransport(httpx.MockTransport(Server(FakeClock(), ok)), **options)


def test_the_wrapped_transport_must_be_of_the_right_kind() -> None:
    with pytest.raises(ConfigTypeError, match="BaseTransport"):
        RateLimitedTransport(object(), rate="1/s")  # type: ignore[arg-type]
    with pytest.raises(ConfigTypeError, match="AsyncBaseTransport"):
        AsyncRateLimitedTransport(httpx.HTTPTransport(), rate="1/s")  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_async_transport_shapes_and_retries(clock: FakeClock) -> None:
    def answer(request: httpx.Request, count: int) -> httpx.Response:
        if request.url.host == "busy.test" and count == 4:
            return httpx.Response(429, headers={"Retry-After": "2"})
        return httpx.Response(200)

    server = Server(clock, answer)
    transport = AsyncRateLimitedTransport(
        LIBRARY.MockTransport(server), rate="2/s", burst=1, retries=1, clock=clock
    )
    async with LIBRARY.AsyncClient(transport=transport) as client:
        for _ in range(3):
            assert (await client.get("https://api.test/")).status_code == 200
        assert (await client.get("https://busy.test/")).status_code == 200
    assert server.times("api.test") == pytest.approx([0.0, 0.5, 1.0])
    first, retry = server.times("busy.test")
    assert first == pytest.approx(1.0)  # its own bucket: not slowed by api.test
    assert retry - first == pytest.approx(2.0)  # held exactly the 2 s asked


@pytest.mark.anyio
async def test_async_transport_polices(clock: FakeClock) -> None:
    transport = AsyncRateLimitedTransport(
        LIBRARY.MockTransport(Server(clock, ok)), rate="1/s", on_limit="raise", clock=clock
    )
    async with LIBRARY.AsyncClient(transport=transport) as client:
        await client.get("https://api.test/")
        with pytest.raises(RateLimitExceeded):
            await client.get("https://api.test/")


@pytest.mark.parametrize(
    ("module", "blocked", "extra"),
    [
        ("limitor.contrib.httpx", "httpx,httpx2", "limitor[httpx]"),
        ("limitor.contrib.httpx", "httpx,httpx2", "limitor[httpx2]"),
        ("limitor.contrib.httpx", "http_sf", "limitor[httpx]"),
        ("limitor.contrib.asgi", "http_sf", "limitor[asgi]"),
        ("limitor.contrib.otel", "opentelemetry", "limitor[otel]"),
    ],
)
def test_a_missing_extra_is_named(module: str, blocked: str, extra: str) -> None:
    code = (
        f"import sys; sys.modules.update(dict.fromkeys({blocked!r}.split(','), None))\n"
        f"try:\n    import {module}\nexcept ImportError as error:\n    print(error)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert extra in result.stdout


def test_httpx2_transports_are_accepted_and_httpx_ones_still_are() -> None:
    import httpx2

    for transport in (httpx2.HTTPTransport(), httpx.HTTPTransport(), httpx2.MockTransport(ok)):
        RateLimitedTransport(transport, rate="1/s")
    for transport in (httpx2.AsyncHTTPTransport(), httpx.AsyncHTTPTransport()):
        AsyncRateLimitedTransport(transport, rate="1/s")
    with pytest.raises(ConfigTypeError, match=r"httpx2\.AsyncBaseTransport"):
        AsyncRateLimitedTransport(httpx2.HTTPTransport(), rate="1/s")  # type: ignore[arg-type]


def test_without_a_transport_each_request_goes_by_its_own_library(clock: FakeClock) -> None:
    # the default inner transport is made on first use, of the client's library
    transport = RateLimitedTransport(rate="10/s", clock=clock)
    with LIBRARY.Client(transport=transport) as client, pytest.raises(LIBRARY.ConnectError):
        client.get("http://127.0.0.1:9/")  # the discard port: nobody listens
    (inner,) = transport._inner.all()
    assert isinstance(inner, LIBRARY.HTTPTransport)


def test_the_official_sdks_accept_a_client_with_the_transport() -> None:
    # both SDKs take an httpx2.Client only (anthropic refuses httpx objects)
    import anthropic
    import httpx2
    import openai

    from tests.llm_fake import FakeProvider

    provider = FakeProvider(clock=FakeClock())
    for sdk in (openai.OpenAI, anthropic.Anthropic):
        transport = RateLimitedTransport(httpx2.MockTransport(provider.handle), rate="10/s")
        sdk(api_key="k", http_client=httpx2.Client(transport=transport))
    transport = RateLimitedTransport(httpx2.MockTransport(provider.handle), rate="10/s")
    claude = anthropic.Anthropic(api_key="k", http_client=httpx2.Client(transport=transport))
    message = claude.messages.create(
        model="m", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
    )
    assert message.usage.output_tokens == 5
    assert transport.limiter.stats.admitted == 1
