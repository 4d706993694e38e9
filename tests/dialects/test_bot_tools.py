"""A bot's default tools (issue 16, docs/tool-calling.md): ``/api/bots`` takes and returns them as
OpenAI function tools and refuses bad shapes with a 400 naming the field; they are offered when a
request names no tools — on the OpenAI route with ``model: "@slug"`` (``tool_choice`` then
chooses among them) and in the bots dialect — and a request's own tools replace them.
"""

from __future__ import annotations

import json
from typing import Any, AsyncIterator

import pytest

from hubbub.core.events import Finish, ProviderEvent, TextDelta, ToolCallDelta, UsageReport
from hubbub.core.types import Message, ProviderRequest, Usage
from hubbub.providers.base import Capabilities
from support import ScriptedProvider, register_scripted

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
TIME = {"type": "function", "function": {"name": "get_time", "description": "The time in a zone", "parameters": {
    "type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]}, "strict": True}}


class CallingProvider(ScriptedProvider):
    """Calls the first tool it is offered (``{}``) or, offered none, answers in text; records
    each request so a test sees which tools reached the model."""

    capabilities = Capabilities(tools=True)

    async def count_tokens(self, messages: list[Message], model: str = "", tools: Any = None) -> int:
        return await super().count_tokens(messages, model)

    async def stream(self, request: ProviderRequest) -> AsyncIterator[ProviderEvent]:
        self.requests.append(request)
        if request.tools is None:
            yield TextDelta(self.reply)
            yield UsageReport(Usage(3, 1))
            yield Finish("stop")
            return
        yield ToolCallDelta(0, id="call_scripted1", name=request.tools.specs[0].name)
        yield ToolCallDelta(0, arguments='{"city": ')
        yield ToolCallDelta(0, arguments='"Oslo"}')
        yield UsageReport(Usage(3, 4))
        yield Finish("tool_calls")


@pytest.fixture(scope="module")
def calling(server) -> CallingProvider:
    provider = CallingProvider("No tools here.")
    register_scripted(server, "calling-model", provider)
    return provider


async def _bot(client, slug: str, **fields: Any) -> dict[str, Any]:
    await client.delete(f"/api/bots/{slug}")
    r = await client.post("/api/bots", json={"slug": slug, "name": slug, **fields})
    assert r.status_code == 201, r.text
    return r.json()


async def test_the_admin_api_takes_returns_replaces_and_clears_tools(client):
    made = await _bot(client, "tool-admin", tools=[WEATHER, TIME])
    assert made["tools"] == [{**WEATHER}, TIME]  # description and parameters as sent; strict when given
    assert (await client.get("/api/bots/tool-admin")).json()["tools"] == made["tools"]
    r = await client.patch("/api/bots/tool-admin", json={"tools": [TIME]})
    assert r.status_code == 200 and r.json()["tools"] == [TIME]
    r = await client.patch("/api/bots/tool-admin", json={"name": "renamed"})
    assert r.json()["tools"] == [TIME]  # a PATCH without tools keeps them
    r = await client.patch("/api/bots/tool-admin", json={"tools": None})
    assert r.json()["tools"] is None
    assert (await _bot(client, "tool-none"))["tools"] is None


@pytest.mark.parametrize(("tools", "field"), [
    ({"type": "function"}, "tools"),
    ([{"type": "code_interpreter"}], "tools.0"),
    ([{"type": "function", "function": {"name": "has space"}}], "tools.0.function.name"),
    ([{"type": "function", "function": {"name": "x" * 65}}], "tools.0.function.name"),
    ([{"type": "function", "function": {}}], "tools.0.function.name"),
    ([WEATHER, {"type": "function", "function": {"name": "f", "parameters": {"type": "string"}}}],
     "tools.1.function.parameters"),
    ([{"type": "function", "function": {"name": "f", "strict": "yes"}}], "tools.0.function.strict"),
    ([{"type": "function", "function": {"name": "f", "argh": 1}}], "tools.0.function"),
    ([WEATHER, WEATHER], "tools"),
])
async def test_bad_tool_shapes_are_400s_naming_the_field(client, tools, field):
    await client.delete("/api/bots/tool-bad")
    r = await client.post("/api/bots", json={"slug": "tool-bad", "name": "bad", "tools": tools})
    assert r.status_code == 400, r.text
    assert r.json()["detail"].startswith(field + ":"), r.json()
    made = await _bot(client, "tool-bad")
    r = await client.patch("/api/bots/tool-bad", json={"tools": tools})
    assert r.status_code == 400 and r.json()["detail"].startswith(field + ":")
    assert (await client.get(f"/api/bots/{made['uid']}")).json()["tools"] is None


async def test_the_openai_route_with_a_bot_offers_its_tools_unless_the_request_names_some(client, calling):
    await _bot(client, "tool-openai", model="calling-model", systemPrompt="Use tools.", tools=[WEATHER, TIME])
    question = [{"role": "user", "content": "Weather in Oslo?"}]
    r = await client.post("/v1/chat/completions", json={"model": "@tool-openai", "messages": question})
    assert r.status_code == 200, r.text
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["tool_calls"] == [{"id": "call_scripted1", "type": "function", "function": {
        "name": "get_weather", "arguments": '{"city": "Oslo"}'}}]
    sent = calling.requests[-1]
    assert [t.name for t in sent.tools.specs] == ["get_weather", "get_time"] and sent.tools.choice.mode == "auto"
    assert sent.messages[0].role == "system" and sent.messages[0].text == "Use tools."
    # tool_choice names one of the bot's tools; parallel_tool_calls applies to them too
    r = await client.post("/v1/chat/completions", json={
        "model": "@tool-openai", "messages": question, "parallel_tool_calls": False,
        "tool_choice": {"type": "function", "function": {"name": "get_time"}}})
    assert r.status_code == 200, r.text
    sent = calling.requests[-1]
    assert (sent.tools.choice.mode, sent.tools.choice.name, sent.tools.parallel) == ("named", "get_time", False)
    r = await client.post("/v1/chat/completions", json={
        "model": "@tool-openai", "messages": question, "tool_choice": {"type": "function", "function": {"name": "nope"}}})
    assert r.status_code == 400 and r.json()["error"]["param"] == "tool_choice"
    # the request's own tools replace the bot's
    own = {"type": "function", "function": {"name": "search", "parameters": {"type": "object", "properties": {}}}}
    r = await client.post("/v1/chat/completions", json={"model": "@tool-openai", "messages": question, "tools": [own]})
    assert r.json()["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "search"
    assert [t.name for t in calling.requests[-1].tools.specs] == ["search"]
    # tool_choice none: no tools reach the model's answer
    r = await client.post("/v1/chat/completions", json={"model": "@tool-openai", "messages": question,
                                                        "tool_choice": "none"})
    assert r.status_code == 200 and calling.requests[-1].tools.choice.mode == "none"


async def test_a_bot_without_tools_still_refuses_tool_choice_alone(client, calling):
    await _bot(client, "tool-less", model="calling-model")
    r = await client.post("/v1/chat/completions", json={
        "model": "@tool-less", "messages": [{"role": "user", "content": "hi"}], "tool_choice": "required"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "tool_choice"


@pytest.mark.parametrize("stream", [False, True])
async def test_the_bots_dialect_offers_a_bots_tools_and_returns_its_calls(client, calling, stream):
    await _bot(client, "tool-chat", model="calling-model", tools=[WEATHER])
    r = await client.post("/chat", json={"bot_slug": "tool-chat", "prompt": "Weather in Oslo?", "stream": stream})
    assert r.status_code == 200, r.text
    calls = [{"id": "call_scripted1", "type": "function", "function": {"name": "get_weather",
                                                                       "arguments": '{"city": "Oslo"}'}}]
    if stream:
        frames = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: {")]
        assert frames[-1] == {"content": "", "toolCalls": calls} and r.text.rstrip().endswith("data: [DONE]")
    else:
        assert r.json() == {"content": "", "toolCalls": calls}
    assert [t.name for t in calling.requests[-1].tools.specs] == ["get_weather"]
    assert calling.requests[-1].tools.choice.mode == "auto"
    await _bot(client, "tool-chat-plain", model="calling-model")
    r = await client.post("/chat", json={"bot_slug": "tool-chat-plain", "prompt": "hi", "stream": False})
    assert r.json() == {"content": "No tools here."} and calling.requests[-1].tools is None


async def test_a_bots_tools_on_the_embedded_model_through_the_openai_route(client):
    await _bot(client, "tool-embedded", tools=[WEATHER])
    r = await client.post("/v1/chat/completions", json={
        "model": "@tool-embedded", "messages": [{"role": "user", "content": "Weather in Oslo?"}],
        "tool_choice": "required", "max_tokens": 80, "temperature": 0})
    assert r.status_code == 200, r.text
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]["function"]
    assert call["name"] == "get_weather" and isinstance(json.loads(call["arguments"])["city"], str)


async def test_the_openapi_docs_show_the_tool_fields(client):
    spec = (await client.get("/openapi.json")).json()
    body = json.dumps(spec["paths"]["/v1/chat/completions"]["post"]["requestBody"])
    for field in ("tools", "tool_choice", "parallel_tool_calls"):
        assert f'"{field}"' in body, field
    assert "docs/tool-calling.md" in body  # described, not just listed
    bots = json.dumps(spec["paths"]["/api/bots"]["post"]["requestBody"])
    assert '"tools"' in bots and "function" in bots
