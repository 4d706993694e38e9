"""The Anthropic provider's event mapping (issue 4).

No real Messages API can be reached from the tests, so the official SDK is pointed at a
scripted server the test owns: a Starlette app under uvicorn on a loopback port that
replays Anthropic's SSE format byte for byte and records what it was sent.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from hubbub.core.events import Finish, TextDelta, UsageReport
from hubbub.core.types import Message, ModelInfo, ProviderRequest, SamplingParams, Usage
from hubbub.errors import ContextTooLong, InvalidRequest
from hubbub.providers.anthropic import AnthropicProvider
from hubbub.providers.channels import ChannelRouter, make_channel
from hubbub.providers.faults import UpstreamUnavailable
from hubbub.settings import FailoverConfig, ProviderConfig

from support import collect_sse, free_port

KEY_ENV = "TEST_ANTHROPIC_KEY_FOR_HUBBUB"
KEY = "sk-ant-test-never-shown"


def sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def answer(*texts: str, stop: str = "end_turn", input_tokens: int = 25, output_tokens: int = 9,
           finish: bool = True) -> list[bytes]:
    """The events of one streamed Messages API answer, as Anthropic sends them."""
    events = [
        sse("message_start", {"type": "message_start", "message": {
            "id": "msg_1", "type": "message", "role": "assistant", "content": [], "model": "claude-test",
            "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": 1, "cache_read_input_tokens": 5}}}),
        sse("content_block_start", {"type": "content_block_start", "index": 0,
                                    "content_block": {"type": "text", "text": ""}}),
        sse("ping", {"type": "ping"}),
    ]
    events += [sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                           "delta": {"type": "text_delta", "text": t}}) for t in texts]
    if finish:
        events += [
            sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
            sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                                  "usage": {"output_tokens": output_tokens}}),
            sse("message_stop", {"type": "message_stop"}),
        ]
    return events


@dataclass
class Reply:
    status: int = 200
    events: list[bytes] = field(default_factory=list)
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # between events


class FakeAnthropic:
    """``POST /v1/messages`` answering from ``script`` (one reply per request)."""

    def __init__(self) -> None:
        self.script: list[Reply] = []
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.closed_at: float | None = None
        self.port = free_port()
        app = Starlette(routes=[Route("/v1/messages", self.messages, methods=["POST"])])
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "FakeAnthropic":
        self._thread.start()
        while not self._server.started:
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)

    async def messages(self, request: Request) -> Response:
        self.requests.append((dict(request.headers), await request.json()))
        reply = self.script.pop(0)
        if reply.status != 200:
            return JSONResponse(reply.body, status_code=reply.status, headers=reply.headers)

        async def events() -> Any:
            try:
                for event in reply.events:
                    if reply.delay:
                        await asyncio.sleep(reply.delay)
                    yield event
            finally:
                self.closed_at = time.monotonic()

        return StreamingResponse(events(), media_type="text/event-stream")


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAnthropic]:
    server = FakeAnthropic().start()
    yield server
    server.stop()


@pytest.fixture
def provider(fake: FakeAnthropic, upstream_hub) -> Iterator[AnthropicProvider]:  # noqa: ANN001
    """A provider living on the hubbub server's loop (where providers live)."""
    fake.script, fake.requests, fake.closed_at = [], [], None
    os.environ[KEY_ENV] = KEY
    made = AnthropicProvider(ProviderConfig(name="claude", type="anthropic", base_url=fake.url,
                                            api_key_env=KEY_ENV, headers={"X-Extra": "1"}), KEY)
    yield made


def _run(hub, provider: AnthropicProvider, request: ProviderRequest) -> tuple[list, Exception | None]:  # noqa: ANN001
    async def go() -> tuple[list, Exception | None]:
        got: list = []
        try:
            async for event in provider.stream(request):
                got.append(event)
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            return got, exc
        return got, None

    return hub.call(go())


def _request(prefix: str = "", **params: Any) -> ProviderRequest:
    messages = [Message("system", "Be brief."), Message("system", "Be kind."), Message("user", "Hi"),
                Message("assistant", "Hello!"), Message("user", "Tell me more")]
    return ProviderRequest("claude-test", messages, SamplingParams(**{"max_tokens": 50, **params}), prefix)


def test_events_map_to_text_usage_and_finish(fake, provider, upstream_hub):  # noqa: ANN001
    fake.script = [Reply(events=answer("Hello", " there", stop="max_tokens", input_tokens=20, output_tokens=7))]
    events, error = _run(upstream_hub, provider, _request(temperature=1.7, top_p=0.9, stop=["\n\n"]))
    assert error is None
    assert events == [TextDelta("Hello"), TextDelta(" there"), UsageReport(Usage(25, 7)), Finish("length")]
    headers, body = fake.requests[0]
    # The SDK chooses the header (x-api-key, or a bearer token in recent versions): the key is sent.
    assert KEY in (headers.get("x-api-key"), headers.get("authorization", "").removeprefix("Bearer "))
    assert headers["x-extra"] == "1" and "anthropic-version" in headers
    assert body["system"] == "Be brief.\n\nBe kind."
    assert body["messages"] == [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
                                {"role": "user", "content": "Tell me more"}]
    assert body["stream"] is True and body["model"] == "claude-test" and body["max_tokens"] == 50
    assert body["temperature"] == 1.0  # Anthropic's range ends at 1
    assert body["top_p"] == 0.9 and body["stop_sequences"] == ["\n\n"]


def test_an_answer_begun_elsewhere_is_continued_as_a_prefill(fake, provider, upstream_hub):  # noqa: ANN001
    fake.script = [Reply(events=answer(" sat", " down."))]
    events, error = _run(upstream_hub, provider, _request(prefix="The cat "))
    assert error is None
    # No trailing whitespace in the prefill (the API refuses it), so the continuation's leading
    # space is dropped: the client already has it.
    assert fake.requests[0][1]["messages"][-1] == {"role": "assistant", "content": "The cat"}
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["sat", " down."]


@pytest.mark.parametrize("reply,kind,retry_after", [
    (Reply(429, body={"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}},
           headers={"retry-after": "7"}), "rate_limited", 7.0),
    (Reply(529, body={"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
     "server_error", None),
    (Reply(500, body={"type": "error", "error": {"type": "api_error", "message": "boom"}}), "server_error", None),
    (Reply(401, body={"type": "error", "error": {"type": "authentication_error", "message": f"bad key {KEY}"}}),
     "rejected", None),
])
def test_retryable_failures(fake, provider, upstream_hub, reply, kind, retry_after):  # noqa: ANN001
    fake.script = [reply]
    events, error = _run(upstream_hub, provider, _request())
    assert events == [] and isinstance(error, UpstreamUnavailable)
    assert error.kind == kind and error.retry_after == retry_after
    assert KEY not in error.details


def test_request_faults_are_not_retryable(fake, provider, upstream_hub):  # noqa: ANN001
    too_long = {"type": "error", "error": {"type": "invalid_request_error",
                                           "message": "prompt is too long: 208000 tokens > 200000 maximum"}}
    bad = {"type": "error", "error": {"type": "invalid_request_error", "message": "messages: roles must alternate"}}
    fake.script = [Reply(400, body=too_long), Reply(400, body=bad)]
    _, error = _run(upstream_hub, provider, _request())
    assert isinstance(error, ContextTooLong) and (error.max_length, error.request_length) == (200000, 208000)
    _, error = _run(upstream_hub, provider, _request())
    assert isinstance(error, InvalidRequest) and "alternate" in error.message


def test_broken_streams_are_retryable_after_the_text(fake, provider, upstream_hub):  # noqa: ANN001
    overloaded = sse("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    fake.script = [Reply(events=[*answer("Part", finish=False), overloaded]),
                   Reply(events=answer("Cut", finish=False))]
    events, error = _run(upstream_hub, provider, _request())
    assert events == [TextDelta("Part")]
    assert isinstance(error, UpstreamUnavailable) and error.kind == "stream_broken"
    events, error = _run(upstream_hub, provider, _request())  # the body ended without message_stop
    assert events == [TextDelta("Cut")] and isinstance(error, UpstreamUnavailable)


def test_closing_the_stream_closes_the_connection_at_once(fake, provider, upstream_hub):  # noqa: ANN001
    fake.script = [Reply(events=answer(*[f" w{i}" for i in range(200)]), delay=0.02)]

    async def go() -> float:
        stream = provider.stream(_request())
        n = 0
        async for _ in stream:
            n += 1
            if n == 3:
                break
        closed = time.monotonic()
        await stream.aclose()
        return closed

    closed = upstream_hub.call(go())
    for _ in range(100):
        if fake.closed_at is not None:
            break
        time.sleep(0.005)
    assert fake.closed_at is not None and fake.closed_at - closed < 0.1


async def test_through_hubbub_as_a_channel(fake, provider, upstream_hub, hub):  # noqa: ANN001
    policy = FailoverConfig()
    router = ChannelRouter("claude-fake", [make_channel("claude", provider, "claude-test", policy)], policy)
    upstream_hub.container.registry.register(ModelInfo(id="claude-fake", name="Claude (fake)", context_length=200000,
                                                       pricing_prompt=3.0, pricing_completion=15.0), router)
    fake.script = [Reply(events=answer("Hi", " from", " Claude", output_tokens=3))]
    r, events = await collect_sse(hub, "POST", "/v1/chat/completions",
                                  json={"model": "claude-fake", "messages": [{"role": "user", "content": "Hi"}],
                                        "stream": True, "stream_options": {"include_usage": True}})
    assert r.status_code == 200
    chunks = [e.json() for e in events[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == "Hi from Claude"
    assert chunks[-1]["usage"] == {"prompt_tokens": 30, "completion_tokens": 3, "total_tokens": 33}
