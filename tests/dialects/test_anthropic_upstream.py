"""The Anthropic Messages API with an Anthropic upstream (issue 17) and the Anthropic mapping both
ways from the OpenAI side (issue 16).

The upstream is ``recorders.AnthropicRecorder``: a real Messages-API HTTP server the test owns,
recording every request and replaying scripted SSE (thinking blocks with signatures, redacted
thinking, tool_use, mid-stream cuts). hubbub reaches it through its Anthropic provider and its
channel router, configured as an operator would; clients are the official SDKs.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, Iterator

import anthropic
import httpx
import openai
import pytest

from recorders import AnthropicRecorder, AnthropicReply
from support import ServerThread, start_server

KEY_ENV = "TEST_ANTHROPIC_UPSTREAM_KEY"
KEY = "sk-ant-upstream-key"
MODEL = "claude-rec"  # one channel: recorder A
TWO = "claude-two"  # two channels: recorder A, then recorder B
UPSTREAM = "claude-sonnet-test"
SIG = "ErUBCkYIBhgCIkCzRtX+8R/w0b9yM2k0SLpp7ZaPq0Jm7gXG3i5wE0d3Y+Qq9k1kGdBc4eJmPw5lT+sig/=="
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg=="
WEATHER = {"name": "get_weather", "description": "The weather in a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
THINKING = [
    {"type": "thinking", "thinking": "The user wants Oslo's weather — I'll call the tool. 🌦", "signature": SIG},
    {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP"},
    {"type": "text", "text": "Let me look that up."},
    {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "get_weather", "input": {"city": "Oslo"}},
]


@pytest.fixture(scope="module")
def recorders() -> Iterator[tuple[AnthropicRecorder, AnthropicRecorder]]:
    a, b = AnthropicRecorder().start(), AnthropicRecorder().start()
    yield a, b
    a.stop()
    b.stop()


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, recorders) -> Iterator[ServerThread]:  # noqa: ANN001
    a, b = recorders
    os.environ[KEY_ENV] = KEY
    server = start_server(
        tmp_path_factory.mktemp("anthropic-upstream"),
        providers=[{"name": "claude-a", "type": "anthropic", "base_url": a.url, "api_key_env": KEY_ENV},
                   {"name": "claude-b", "type": "anthropic", "base_url": b.url, "api_key_env": KEY_ENV}],
        models=[{"id": MODEL, "provider": "claude-a", "upstream_model": UPSTREAM, "context_length": 200000},
                {"id": TWO, "upstream_model": UPSTREAM, "context_length": 200000}],
        channels=[{"name": "first", "model": TWO, "provider": "claude-a", "priority": 1},
                  {"name": "second", "model": TWO, "provider": "claude-b", "priority": 0}],
        failover={"failure_threshold": 1000},  # the cuts below must not set a channel aside
    )
    yield server
    server.stop()
    os.environ.pop(KEY_ENV, None)


@pytest.fixture
def rec(recorders) -> AnthropicRecorder:  # noqa: ANN001
    for r in recorders:
        r.script, r.requests, r.closed_at = [], [], None
    return recorders[0]


def _sdk(hub: ServerThread) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=hub.url, api_key="client-key-not-forwarded", max_retries=0)


def _frames(raw: bytes) -> list[bytes]:
    frames = raw.split(b"\n\n")
    assert frames[-1] == b""
    return [f + b"\n\n" for f in frames[:-1]]


def _name(frame: bytes) -> str:
    return frame.split(b"\n", 1)[0].removeprefix(b"event: ").decode()


async def _raw_stream(hub: ServerThread, body: dict[str, Any]) -> tuple[httpx.Response, bytes]:
    async with httpx.AsyncClient(base_url=hub.url, timeout=60) as client:
        async with client.stream("POST", "/v1/messages", json={**body, "stream": True}) as r:
            return r, b"".join([chunk async for chunk in r.aiter_raw()])


# -- passed through ------------------------------------------------------------------------------

CONVERSATION = [
    {"role": "user", "content": [
        {"type": "text", "text": "What is in this picture, and the weather in Oslo?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/sky.jpg"}}]},
    {"role": "assistant", "content": THINKING},
    {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_01A09q90qw90lq917835lq9", "content": "Sunny, 21 C"},
        {"type": "tool_result", "tool_use_id": "toolu_other", "is_error": True,
         "content": [{"type": "text", "text": "timeout; the last map:"},
                     {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}]},
        {"type": "text", "text": "And tomorrow?"}]},
]


async def test_the_request_reaches_the_upstream_as_sent(hub, rec):
    client = _sdk(hub)
    system = [{"type": "text", "text": "You are a weather bot."}, {"type": "text", "text": "Be brief."}]
    done = await client.messages.create(
        model=MODEL, max_tokens=1000, system=system, messages=CONVERSATION, tools=[WEATHER],
        tool_choice={"type": "auto", "disable_parallel_tool_use": True}, stop_sequences=["END"],
        thinking={"type": "enabled", "budget_tokens": 1024}, metadata={"user_id": "user-42"},
        extra_body={"temperature": 0.5, "top_p": 0.9, "top_k": 7})
    assert done.content[0].text == "Hello from Claude."
    headers, sent = rec.requests[-1]
    # The conversation (thinking signatures, redacted data and tool ids included), the system
    # blocks, tools and settings arrive exactly as the client wrote them.
    assert sent["messages"] == CONVERSATION
    assert sent["system"] == system
    assert sent["tools"] == [WEATHER]
    assert sent["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert (sent["stop_sequences"], sent["max_tokens"]) == (["END"], 1000)
    assert (sent["temperature"], sent["top_p"], sent["top_k"]) == (0.5, 0.9, 7)
    # Translated: the model name the channel knows; hubbub's key, never the client's; and
    # metadata.user_id stays with hubbub (quotas, usage rows).
    assert sent["model"] == UPSTREAM and "metadata" not in sent
    # (The SDK chooses the header: x-api-key, or a bearer token in recent versions.)
    assert KEY in (headers.get("x-api-key"), headers.get("authorization", "").removeprefix("Bearer "))
    assert "client-key" not in json.dumps(headers)
    await client.close()


async def test_the_answer_comes_back_as_the_upstream_gave_it(hub, rec):
    """Thinking text and its signature, redacted thinking and tool ids, byte for byte."""
    rec.script = [AnthropicReply(blocks=THINKING, input_tokens=120, output_tokens=48),
                  AnthropicReply(blocks=THINKING, input_tokens=120, output_tokens=48)]
    client = _sdk(hub)
    request = {"model": MODEL, "max_tokens": 1000, "tools": [WEATHER],
               "messages": [{"role": "user", "content": "Weather in Oslo?"}]}
    done = await client.messages.create(**request)
    async with client.messages.stream(**request) as stream:
        final = await stream.get_final_message()
    for message in (done, final):
        assert [b.model_dump(exclude_none=True) for b in message.content] == THINKING
        assert message.stop_reason == "tool_use"
        assert (message.usage.input_tokens, message.usage.output_tokens) == (120, 48)
    await client.close()


async def test_streamed_blocks_are_the_upstreams_bytes(hub, rec):
    """Every content_block_* and ping frame hubbub sends is the upstream's frame, byte for byte
    (thinking_delta, signature_delta, redacted_thinking, text_delta, input_json_delta)."""
    reply = AnthropicReply(blocks=THINKING, fragment=5)
    rec.script = [reply]
    r, raw = await _raw_stream(hub, {"model": MODEL, "max_tokens": 1000, "messages": [
        {"role": "user", "content": "Weather in Oslo?"}], "tools": [WEATHER]})
    assert r.status_code == 200
    ours, theirs = _frames(raw), reply.stream(UPSTREAM)
    assert [_name(f) for f in ours] == [_name(f) for f in theirs]
    assert ours[1:-2] == theirs[1:-2]  # all but message_start, message_delta, message_stop
    assert ours[-1] == theirs[-1] == b'event: message_stop\ndata: {"type":"message_stop"}\n\n'


async def test_event_order_byte_level(hub, rec):
    """The whole stream, byte for byte, in Anthropic's documented order."""
    rec.script = [AnthropicReply(blocks=[
        {"type": "thinking", "thinking": "Hmm.", "signature": "c2ln"},
        {"type": "text", "text": "Hi!"},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}},
    ], input_tokens=30, output_tokens=12, fragment=100)]
    r, raw = await _raw_stream(hub, {"model": MODEL, "max_tokens": 100, "tools": [WEATHER],
                                     "messages": [{"role": "user", "content": "Hi"}]})
    message_id = re.search(rb'"id":"(msg_[0-9a-f]{24})"', raw).group(1).decode()
    prompt = json.loads(_frames(raw)[0].split(b"data: ")[1])["message"]["usage"]["input_tokens"]
    expected = (
        'event: message_start\ndata: {"type":"message_start","message":{"id":"%s","type":"message",'
        '"role":"assistant","model":"claude-rec","content":[],"stop_reason":null,"stop_sequence":null,'
        '"usage":{"input_tokens":%d,"output_tokens":0}}}\n\n'
        'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
        '"content_block":{"type":"thinking","thinking":"","signature":""}}\n\n'
        'event: ping\ndata: {"type": "ping"}\n\n'
        'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
        '"delta":{"type":"thinking_delta","thinking":"Hmm."}}\n\n'
        'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
        '"delta":{"type":"signature_delta","signature":"c2ln"}}\n\n'
        'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
        'event: content_block_start\ndata: {"type":"content_block_start","index":1,'
        '"content_block":{"type":"text","text":""}}\n\n'
        'event: content_block_delta\ndata: {"type":"content_block_delta","index":1,'
        '"delta":{"type":"text_delta","text":"Hi!"}}\n\n'
        'event: content_block_stop\ndata: {"type":"content_block_stop","index":1}\n\n'
        'event: content_block_start\ndata: {"type":"content_block_start","index":2,'
        '"content_block":{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{}}}\n\n'
        'event: content_block_delta\ndata: {"type":"content_block_delta","index":2,'
        '"delta":{"type":"input_json_delta","partial_json":"{\\"city\\":\\"Oslo\\"}"}}\n\n'
        'event: content_block_stop\ndata: {"type":"content_block_stop","index":2}\n\n'
        'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"tool_use",'
        '"stop_sequence":null},"usage":{"input_tokens":30,"output_tokens":12}}\n\n'
        'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    ) % (message_id, prompt)
    assert raw == expected.encode()
    assert r.headers["request-id"] == r.headers["x-request-id"]


async def test_stop_sequence_comes_back(hub, rec):
    rec.script = [AnthropicReply(stop_reason="stop_sequence", stop_sequence="END")]
    client = _sdk(hub)
    done = await client.messages.create(model=MODEL, max_tokens=50, stop_sequences=["END"],
                                        messages=[{"role": "user", "content": "Hi"}])
    assert (done.stop_reason, done.stop_sequence) == ("stop_sequence", "END")
    await client.close()


async def test_a_prefill_reaches_the_upstream_as_the_last_turn(hub, rec):
    rec.script = [AnthropicReply(blocks=[{"type": "text", "text": '"sunny"}'}])]
    client = _sdk(hub)
    done = await client.messages.create(model=MODEL, max_tokens=50, messages=[
        {"role": "user", "content": "Weather as JSON?"}, {"role": "assistant", "content": '{"weather":'}])
    assert done.content[0].text == '"sunny"}'
    assert rec.requests[-1][1]["messages"][-1] == {"role": "assistant", "content": '{"weather":'}
    await client.close()


# -- a cut mid-stream is handled like any other stream -------------------------------------------


async def test_a_cut_after_thinking_ends_with_an_error_event(hub, rec):
    """Reasoning went out, so no channel can continue: an ``error`` event, no message_stop, and
    the SDK raises — after it saw the thinking block whole, its signature intact."""
    reply = AnthropicReply(blocks=[THINKING[0], {"type": "text", "text": "It is sunny in Oslo today."}], fragment=4)
    cut = len(reply.stream(UPSTREAM)) - 5  # in the middle of the text
    rec.script = [AnthropicReply(blocks=reply.blocks, fragment=4, cut_after=cut)]
    client = _sdk(hub)
    seen: list[Any] = []
    with pytest.raises(anthropic.APIStatusError) as info:
        async with client.messages.stream(model=MODEL, max_tokens=100,
                                          messages=[{"role": "user", "content": "Weather?"}]) as stream:
            async for event in stream:
                seen.append(event)
    assert info.value.body["error"]["type"] == "api_error"
    thinking = [e.content_block for e in seen if e.type == "content_block_stop" and e.index == 0]
    assert thinking and thinking[0].thinking == THINKING[0]["thinking"] and thinking[0].signature == SIG
    text = "".join(e.text for e in seen if e.type == "text")
    assert text and "It is sunny in Oslo today.".startswith(text) and text != "It is sunny in Oslo today."
    rec.script = [AnthropicReply(blocks=reply.blocks, fragment=4, cut_after=cut)]
    _, raw = await _raw_stream(hub, {"model": MODEL, "max_tokens": 100,
                                     "messages": [{"role": "user", "content": "Weather?"}]})
    frames = _frames(raw)
    assert _name(frames[-1]) == "error" and "message_stop" not in [_name(f) for f in frames]
    assert json.loads(frames[-1].split(b"data: ")[1])["error"]["type"] == "api_error"
    await client.close()


async def test_a_cut_in_the_text_continues_on_the_next_channel(hub, rec, recorders):
    a, b = recorders
    a.script = [AnthropicReply(blocks=[{"type": "text", "text": "The quick brown fox."}], fragment=6, cut_after=5)]
    b.script = [AnthropicReply(blocks=[{"type": "text", "text": "own fox."}], output_tokens=3)]
    client = _sdk(hub)
    async with client.messages.stream(model=TWO, max_tokens=100,
                                      messages=[{"role": "user", "content": "A pangram?"}]) as stream:
        text = "".join([piece async for piece in stream.text_stream])
        final = await stream.get_final_message()
    assert text == "The quick brown fox." and final.content[0].text == text
    assert final.stop_reason == "end_turn"
    # The second channel was asked to continue what the client already had (Anthropic's prefill).
    assert b.requests[-1][1]["messages"][-1] == {"role": "assistant", "content": "The quick br"}
    await client.close()


# -- tools through the Anthropic SDK and through the OpenAI SDK ----------------------------------


async def test_a_tool_round_trip_through_the_anthropic_sdk(hub, rec):
    calls = [{"type": "tool_use", "id": "toolu_X", "name": "get_weather", "input": {"city": "Oslo"}},
             {"type": "tool_use", "id": "toolu_Y", "name": "get_weather", "input": {"city": "Bergen"}}]
    rec.script = [AnthropicReply(blocks=calls), AnthropicReply(blocks=[{"type": "text", "text": "Sunny; rain."}])]
    client = _sdk(hub)
    question = {"role": "user", "content": "Weather in Oslo and Bergen?"}
    first = await client.messages.create(model=MODEL, max_tokens=200, tools=[WEATHER], messages=[question])
    assert first.stop_reason == "tool_use"
    assert [b.model_dump(exclude_none=True) for b in first.content] == calls
    turn = {"role": "assistant", "content": calls}
    results = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_X", "content": "Sunny"},
                                           {"type": "tool_result", "tool_use_id": "toolu_Y", "content": "Rain"}]}
    answer = await client.messages.create(model=MODEL, max_tokens=200, tools=[WEATHER],
                                          messages=[question, turn, results])
    assert answer.content[0].text == "Sunny; rain." and answer.stop_reason == "end_turn"
    assert rec.requests[-1][1]["messages"] == [question, turn, results]
    await client.close()


async def test_openai_tools_map_to_anthropics_and_back(hub, rec):
    """Issue 16: an OpenAI client's tools, parallel calls and tool results through an Anthropic
    upstream; its tool_use blocks come back as OpenAI tool calls, several in one turn."""
    calls = [{"type": "tool_use", "id": "toolu_X", "name": "get_weather", "input": {"city": "Oslo"}},
             {"type": "tool_use", "id": "toolu_Y", "name": "get_weather", "input": {"city": "Bergen"}}]
    rec.script = [AnthropicReply(blocks=[{"type": "text", "text": "Checking."}, *calls], fragment=5),
                  AnthropicReply(blocks=calls)]
    client = openai.AsyncOpenAI(base_url=hub.url + "/v1", api_key="unused", max_retries=0)
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "The weather in a city",
                                               "parameters": WEATHER["input_schema"]}}]
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Weather in Oslo and Bergen?"}]
    pieces: dict[int, list[str]] = {}
    text, reason = "", None
    async for chunk in await client.chat.completions.create(model=MODEL, messages=messages, tools=tools,
                                                            tool_choice="required", stream=True):
        for choice in chunk.choices:
            text += choice.delta.content or ""
            for delta in choice.delta.tool_calls or ():
                if delta.index not in pieces:
                    assert delta.id and delta.function.name == "get_weather"
                    pieces[delta.index] = [delta.id, ""]
                pieces[delta.index][1] += delta.function.arguments or ""
            reason = choice.finish_reason or reason
    assert text == "Checking." and reason == "tool_calls"
    assert [(pieces[i][0], json.loads(pieces[i][1])) for i in sorted(pieces)] == [
        ("toolu_X", {"city": "Oslo"}), ("toolu_Y", {"city": "Bergen"})]
    sent = rec.requests[-1][1]
    assert sent["tools"] == [WEATHER] and sent["tool_choice"] == {"type": "any"}
    done = await client.chat.completions.create(model=MODEL, messages=messages, tools=tools,
                                                parallel_tool_calls=False)
    assert [(c.id, c.function.name) for c in done.choices[0].message.tool_calls] == [
        ("toolu_X", "get_weather"), ("toolu_Y", "get_weather")]
    assert rec.requests[-1][1]["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    history = [*messages, {"role": "assistant", "content": "Checking.", "tool_calls": [
        {"id": "toolu_X", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}},
        {"id": "toolu_Y", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Bergen"}'}}]},
        {"role": "tool", "tool_call_id": "toolu_X", "content": "Sunny"},
        {"role": "tool", "tool_call_id": "toolu_Y", "content": "Rain"}]
    await client.chat.completions.create(model=MODEL, messages=history, tools=tools)
    assert rec.requests[-1][1]["messages"][1:] == [
        {"role": "assistant", "content": [{"type": "text", "text": "Checking."}, *calls]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_X", "content": "Sunny"},
                                     {"type": "tool_result", "tool_use_id": "toolu_Y", "content": "Rain"}]}]
    await client.close()
