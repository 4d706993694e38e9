"""One core for structured turns (issue 15): typed parts reach upstreams unchanged and come back
stored whole; a part a model cannot take is a 400 naming it; stored-chat turns are generations
like any other on /metrics.

The upstream is ``OpenAIRecorder`` (a real HTTP server that records each request and answers as
told); the embedded model is the real one.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any, Iterator

import httpx
import openai
import pytest

from hubbub.core.events import Done
from hubbub.core.types import Conversation, ImagePart, Message, TextPart, ToolCall, ToolResult
from hubbub.core.turns import TurnOptions
from recorders import OpenAIRecorder, Reply
from support import ServerThread, collect_sse, start_server

UP = "rec-model"
EMBEDDED = "smollm2-135m-instruct"
IMAGE = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg=="
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": True}}]
HISTORY = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": [{"type": "text", "text": "What is in this picture, and the weather in Oslo?"},
                                 {"type": "image_url", "image_url": {"url": IMAGE, "detail": "low"}}]},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "Sunny, 21 C"},
]


@pytest.fixture(scope="module")
def recorder() -> Iterator[OpenAIRecorder]:
    rec = OpenAIRecorder().start()
    yield rec
    rec.stop()


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, recorder: OpenAIRecorder) -> Iterator[ServerThread]:
    server = start_server(
        tmp_path_factory.mktemp("typed"),
        providers=[{"name": "rec", "base_url": recorder.url}],
        models=[{"id": UP, "provider": "rec", "context_length": 4096}],
        max_tokens_cap=24,
    )
    yield server
    server.stop()


async def test_tool_calls_results_and_images_reach_an_upstream_unchanged(hub, recorder):
    recorder.requests.clear()
    async with httpx.AsyncClient(base_url=hub.url, timeout=60) as client:
        r = await client.post("/v1/chat/completions", json={
            "model": UP, "messages": HISTORY, "tools": TOOLS, "tool_choice": "auto", "parallel_tool_calls": False})
    assert r.status_code == 200, r.text
    sent = recorder.requests[-1]
    assert sent["messages"] == HISTORY
    assert sent["tools"] == TOOLS
    assert sent["tool_choice"] == "auto" and sent["parallel_tool_calls"] is False


@pytest.mark.parametrize("stream", [False, True])
async def test_an_upstreams_tool_calls_come_back_as_openai_sends_them(hub, recorder, stream):
    args = json.dumps({"city": "Oslo", "unit": "celsius"})
    recorder.replies.append(Reply(text="", tool_calls=[("get_weather", args), ("get_time", "{\"tz\":\"CET\"}")]))
    client = openai.AsyncOpenAI(base_url=hub.url + "/v1", api_key="unused")
    messages = [{"role": "user", "content": "Weather and time in Oslo?"}]
    if not stream:
        done = await client.chat.completions.create(model=UP, messages=messages, tools=TOOLS)
        choice = done.choices[0]
        calls = [(c.id, c.function.name, c.function.arguments) for c in choice.message.tool_calls]
        reason = choice.finish_reason
    else:
        pieces: dict[int, list[Any]] = {}
        reason = None
        async for chunk in await client.chat.completions.create(model=UP, messages=messages, tools=TOOLS, stream=True):
            for choice in chunk.choices:
                for delta in choice.delta.tool_calls or ():
                    if delta.index not in pieces:  # a call's first delta names it
                        assert delta.id and delta.type == "function" and delta.function.name
                        pieces[delta.index] = [delta.id, delta.function.name, ""]
                    else:  # later ones carry only argument fragments
                        assert delta.id is None and delta.function.name is None
                    pieces[delta.index][2] += delta.function.arguments or ""
                reason = choice.finish_reason or reason
        calls = [tuple(pieces[i]) for i in sorted(pieces)]
    assert calls == [("call_0_get_weather", "get_weather", args), ("call_1_get_time", "get_time", "{\"tz\":\"CET\"}")]
    assert reason == "tool_calls"


async def test_the_embedded_model_answers_an_image_part_with_a_400_naming_it(hub):
    client = openai.AsyncOpenAI(base_url=hub.url + "/v1", api_key="unused")
    with pytest.raises(openai.BadRequestError) as info:
        await client.chat.completions.create(model=EMBEDDED, messages=[HISTORY[1]], max_tokens=4)
    error = info.value.body
    assert error["param"] == "messages.0.content"
    assert "image" in error["message"] and EMBEDDED in error["message"]


async def test_a_stored_turn_keeps_every_part(hub, recorder):
    """Parts the client sent and the tool call the model made are stored whole (issue 15)."""
    recorder.replies.append(Reply(text="Checking.", tool_calls=[("get_weather", "{\"city\":\"Oslo\"}")]))
    container = hub.container
    sent = [
        Message("user", [TextPart("Weather here?"), ImagePart(IMAGE, "low")]),
        Message("assistant", [ToolCall("call_9", "get_weather", "{\"city\":\"Bergen\"}")]),
        Message("tool", [ToolResult("call_9", (TextPart("Rain"),))]),
        Message("user", "And in Oslo?"),
    ]

    async def run() -> list[Any]:
        conv = await container.conversations.create(Conversation(id="conv_typed", kind="conversation"))
        turn = await container.turns.start(conv, sent, TurnOptions(model=UP))
        async for _, event in container.turns.follow(conv.id, generation=turn.message_id):
            if isinstance(event, Done):
                break
        return await container.conversations.messages(conv.id)

    stored = hub.call(run(), timeout=60)
    assert [m.as_message() for m in stored[:4]] == sent
    answer = stored[4].as_message()
    assert answer.role == "assistant" and stored[4].status == "complete"
    assert answer.parts == (TextPart("Checking."), ToolCall("call_0_get_weather", "get_weather", "{\"city\":\"Oslo\"}"))
    assert stored[4].content == "Checking."


def _samples(text: str, name: str, model: str) -> float:
    total = 0.0
    pattern = re.compile(rf'^{name}\{{[^}}]*model="{re.escape(model)}"[^}}]*\}} (\S+)$')
    for line in text.splitlines():
        match = pattern.match(line)
        if match:
            total += float(match.group(1))
    return total


async def test_builder_and_conversations_turns_are_generations_on_metrics(hub):
    """Before issue 15 a stored-chat turn never reached these: it had its own pipeline."""
    async with httpx.AsyncClient(base_url=hub.url, timeout=120) as client:
        async def scrape() -> tuple[float, float, float]:
            text = (await client.get("/metrics")).text
            return (_samples(text, "hubbub_generations_total", EMBEDDED),
                    _samples(text, "hubbub_time_to_first_token_seconds_count", EMBEDDED),
                    _samples(text, "hubbub_tokens_per_second_count", EMBEDDED))

        before = await scrape()
        r, events = await collect_sse(client, "POST", "/api/chat", json={
            "messages": [{"role": "user", "content": "Say hello in five words."}], "enableDSL": False})
        assert r.status_code == 200 and events[-1].json()["type"] == "done"
        r = await client.post("/api/chat", json={"message": "Say hello in five words.", "userId": "metrics"})
        assert r.status_code == 200 and r.json()["success"] is True
        for _ in range(100):  # the usage row and the observation follow the answer closely
            after = await scrape()
            if after[0] >= before[0] + 2:
                break
            await asyncio.sleep(0.1)
    assert after[0] == before[0] + 2
    assert after[1] == before[1] + 2
    assert after[2] == before[2] + 2
