"""The Anthropic provider's event mapping (issue 4) and its translation of typed parts, tools and
reasoning both ways (issue 16).

No real Messages API can be reached from the tests, so the official SDK is pointed at a
scripted server the test owns (``recorders.AnthropicRecorder``): a Starlette app under uvicorn
on a loopback port that replays Anthropic's SSE format byte for byte and records what it was sent.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, AsyncIterator, Iterator

import pytest

from hubbub.core.events import Finish, ReasoningDelta, TextDelta, ToolCallDelta, UsageReport
from hubbub.core.types import (
    ImagePart,
    Message,
    ModelInfo,
    ProviderRequest,
    Reasoning,
    ReasoningPart,
    SamplingParams,
    TextPart,
    ToolCall,
    ToolChoice,
    ToolResult,
    Tools,
    ToolSpec,
    Usage,
)
from hubbub.errors import ContextTooLong, InvalidRequest
from hubbub.providers.anthropic import AnthropicProvider
from hubbub.providers.channels import ChannelRouter, make_channel
from hubbub.providers.faults import UpstreamUnavailable
from hubbub.settings import FailoverConfig, ProviderConfig

from recorders import AnthropicRecorder, AnthropicReply, answer, sse
from support import collect_sse

KEY_ENV = "TEST_ANTHROPIC_KEY_FOR_HUBBUB"
KEY = "sk-ant-test-never-shown"


# The scripted Messages API server lives in tests/recorders.py (the dialect's tests use it too).
FakeAnthropic = AnthropicRecorder
Reply = AnthropicReply


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
    # Anthropic's range ends at 1, which is also its default: nothing to send.
    assert "temperature" not in body
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


# -- translation both ways (issue 16): parts, tools, reasoning ----------------------------------------

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg=="
SIG = "EqQBCkgIBhABGAIiQL3+/sig=="  # opaque: must come back byte for byte
WEATHER = ToolSpec("get_weather", "The weather in a city",
                   {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
TIME = ToolSpec("get_time", "", {"type": "object", "properties": {"tz": {"type": "string"}}}, strict=True)


@pytest.fixture
async def claude(fake: FakeAnthropic) -> AsyncIterator[AnthropicProvider]:
    """A provider on the test's own loop (these tests need no hubbub)."""
    fake.script, fake.requests, fake.closed_at = [], [], None
    made = AnthropicProvider(ProviderConfig(name="claude", type="anthropic", base_url=fake.url), KEY)
    yield made
    await made.aclose()


async def _events(provider: AnthropicProvider, request: ProviderRequest) -> list:
    return [event async for event in provider.stream(request)]


async def test_parts_tools_and_reasoning_become_messages_api_blocks(fake, claude):  # noqa: ANN001
    history = [
        Message("system", "Be brief."),
        Message("user", [TextPart("What is here, and the weather?"), ImagePart(f"data:image/png;base64,{PNG}"),
                         ImagePart("https://example.com/cat.jpg")]),
        Message("assistant", [ReasoningPart("Two calls.", signature=SIG), ReasoningPart(redacted="opaque=="),
                              TextPart("Checking."), ToolCall("toolu_1", "get_weather", '{"city":"Oslo"}'),
                              ToolCall("toolu_2", "get_time", '{"tz":"CET"}')]),
        Message("tool", [ToolResult("toolu_1", (TextPart("Sunny"),))]),
        Message("tool", [ToolResult("toolu_2", (TextPart("12:00"), ImagePart(f"data:image/png;base64,{PNG}")),
                                    is_error=True)]),
        Message("user", "Thanks. And tomorrow?"),
        # Reasoning another provider produced has no signature: the API would refuse it, so it is left out.
        Message("assistant", [ReasoningPart("unsigned thoughts"), TextPart("Tomorrow: rain.")]),
        Message("user", "Sure?"),
    ]
    tools = Tools((WEATHER, TIME), ToolChoice("named", "get_weather"), parallel=False)
    params = SamplingParams(max_tokens=64, temperature=0.5, top_k=5, stop=["END"],
                            reasoning=Reasoning("enabled", 2048, "summarized"))
    events = await _events(claude, ProviderRequest("claude-test", history, params, tools=tools))
    assert isinstance(events[-1], Finish)
    _, body = fake.requests[0]
    assert body["system"] == "Be brief."
    assert body["messages"] == [
        {"role": "user", "content": [
            {"type": "text", "text": "What is here, and the weather?"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}]},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "Two calls.", "signature": SIG},
            {"type": "redacted_thinking", "data": "opaque=="},
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}},
            {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {"tz": "CET"}}]},
        # Consecutive tool results, and the user's words right after them, are one user message.
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "Sunny"},
            {"type": "tool_result", "tool_use_id": "toolu_2", "is_error": True, "content": [
                {"type": "text", "text": "12:00"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}]},
            {"type": "text", "text": "Thanks. And tomorrow?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Tomorrow: rain."}]},
        {"role": "user", "content": "Sure?"},
    ]
    assert body["tools"] == [
        {"name": "get_weather", "description": "The weather in a city", "input_schema": WEATHER.parameters},
        {"name": "get_time", "input_schema": TIME.parameters, "strict": True},
    ]
    assert body["tool_choice"] == {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True}
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048, "display": "summarized"}
    assert (body["temperature"], body["top_k"], body["stop_sequences"], body["max_tokens"]) == (0.5, 5, ["END"], 64)


@pytest.mark.parametrize("choice,parallel,wire", [
    (ToolChoice("auto"), True, None),  # Anthropic's default: not sent
    (ToolChoice("auto"), False, {"type": "auto", "disable_parallel_tool_use": True}),
    (ToolChoice("required"), True, {"type": "any"}),
    (ToolChoice("required"), False, {"type": "any", "disable_parallel_tool_use": True}),
    (ToolChoice("named", "get_time"), True, {"type": "tool", "name": "get_time"}),
    (ToolChoice("none"), True, {"type": "none"}),
])
async def test_tool_choice_as_anthropic_names_it(fake, claude, choice, parallel, wire):  # noqa: ANN001
    request = ProviderRequest("claude-test", [Message("user", "Hi")], SamplingParams(max_tokens=8),
                              tools=Tools((WEATHER, TIME), choice, parallel))
    await _events(claude, request)
    _, body = fake.requests[0]
    assert body.get("tool_choice") == wire
    assert [t["name"] for t in body["tools"]] == ["get_weather", "get_time"]


async def test_thinking_tool_use_blocks_come_back_as_typed_deltas(fake, claude):  # noqa: ANN001
    fake.script = [AnthropicReply(blocks=[
        {"type": "thinking", "thinking": "I need the weather, twice.", "signature": SIG},
        {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va=="},
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "toolu_A", "name": "get_weather", "input": {"city": "Oslo"}},
        {"type": "tool_use", "id": "toolu_B", "name": "get_weather", "input": {"city": "Bergen", "days": [1, 2]}},
    ], input_tokens=40, output_tokens=33, fragment=8)]
    events = await _events(claude, ProviderRequest("claude-test", [Message("user", "Weather?")],
                                                   SamplingParams(max_tokens=64), tools=Tools((WEATHER,))))
    assert events == [
        ReasoningDelta("I need t"), ReasoningDelta("he weath"), ReasoningDelta("er, twic"), ReasoningDelta("e."),
        ReasoningDelta(signature=SIG),
        ReasoningDelta(redacted="EmwKAhgBEgy3va=="),
        TextDelta("Let me c"), TextDelta("heck."),
        ToolCallDelta(0, id="toolu_A", name="get_weather"),
        ToolCallDelta(0, arguments='{"city":'), ToolCallDelta(0, arguments='"Oslo"}'),
        ToolCallDelta(1, id="toolu_B", name="get_weather"),
        ToolCallDelta(1, arguments='{"city":'), ToolCallDelta(1, arguments='"Bergen"'),
        ToolCallDelta(1, arguments=',"days":'), ToolCallDelta(1, arguments="[1,2]}"),
        UsageReport(Usage(40, 33)),
        Finish("tool_calls"),
    ]


@pytest.mark.parametrize("upstream,reason,sequence", [
    ("end_turn", "stop", None), ("stop_sequence", "stop", "\n\nHuman:"), ("max_tokens", "length", None),
    ("refusal", "content_filter", None), ("pause_turn", "stop", None),
])
async def test_stop_reasons_map_with_the_stop_sequence(fake, claude, upstream, reason, sequence):  # noqa: ANN001
    fake.script = [AnthropicReply(stop_reason=upstream, stop_sequence=sequence)]
    events = await _events(claude, ProviderRequest("claude-test", [Message("user", "Hi")],
                                                   SamplingParams(max_tokens=8, stop=["\n\nHuman:"])))
    assert events[-1] == Finish(reason, sequence)
