"""Tool calling on the embedded model (issue 16): the protocol is exact whatever a 135M model
chooses. Through the official ``openai`` SDK: with ``tool_choice="required"`` on 20 different
tool schemas, every call names a declared tool and its arguments validate against that tool's
schema, streamed and not; streamed deltas joined equal the whole call for the same seed; the
tool result sent back gets a text answer. Plus the parser that turns decoded text into calls.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import openai
import pytest

from hubbub.core.events import TextDelta, ToolCallDelta
from hubbub.providers.tool_calls import ToolCallParser

MODEL = "smollm2-135m-instruct"


def _tool(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "description": description, "parameters": {
        "type": "object", "properties": properties, "required": required}}}


S = {"type": "string"}
CASES: list[tuple[str, dict[str, Any]]] = [
    ("What's the weather in Oslo?", _tool("get_weather", "Current weather in a city", {"city": S}, ["city"])),
    ("Weather in Paris in fahrenheit please", _tool("get_weather", "Weather in a city", {
        "city": S, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, ["city", "unit"])),
    ("Book a table for 4 people", _tool("book_table", "Book a restaurant table", {
        "people": {"type": "integer", "minimum": 1, "maximum": 12}}, ["people"])),
    ("Convert 100 euros to dollars", _tool("convert", "Convert money", {
        "amount": {"type": "number"}, "source": S, "target": S}, ["amount", "source", "target"])),
    ("Remind me to call mum tomorrow", _tool("add_reminder", "Add a reminder", {
        "text": S, "when": {"type": "object", "properties": {
            "day": {"type": "string", "enum": ["today", "tomorrow", "next week"]},
            "hour": {"type": "integer", "minimum": 0, "maximum": 23}}, "required": ["day"]}}, ["text", "when"])),
    ("Add milk and eggs to my shopping list", _tool("add_items", "Add items to the shopping list", {
        "items": {"type": "array", "items": S, "minItems": 1, "maxItems": 5}}, ["items"])),
    ("Turn the living room lights off", _tool("set_light", "Switch a light", {
        "room": S, "on": {"type": "boolean"}}, ["room", "on"])),
    ("Search the web for llama recipes", _tool("search", "Web search", {
        "query": S, "limit": {"type": "integer", "minimum": 1, "maximum": 10}}, ["query"])),
    ("Send an email to bob@example.com saying hi", _tool("send_email", "Send an email", {
        "to": S, "subject": S, "body": S}, ["to", "body"])),
    ("Set the thermostat to 21 degrees", _tool("set_temperature", "Set the thermostat", {
        "degrees": {"type": "integer", "minimum": 5, "maximum": 30}}, ["degrees"])),
    ("Create a user named Ann, age 31, admin", _tool("create_user", "Create a user", {
        "user": {"type": "object", "properties": {
            "name": S, "age": {"type": "integer", "minimum": 0, "maximum": 150},
            "role": {"type": "string", "enum": ["admin", "editor", "viewer"]}}, "required": ["name", "role"]}},
        ["user"])),
    ("Play some jazz", _tool("play_music", "Play music", {
        "genre": {"type": "string", "enum": ["jazz", "rock", "classical", "pop"]},
        "volume": {"type": "integer", "minimum": 0, "maximum": 100}}, ["genre"])),
    ("What time is it in Tokyo?", _tool("get_time", "Current time in a time zone", {"timezone": S}, ["timezone"])),
    ("Translate 'good morning' to Spanish", _tool("translate", "Translate text", {
        "text": S, "language": {"type": "string", "enum": ["es", "fr", "de", "it"]}}, ["text", "language"])),
    ("Schedule a meeting with Ann and Bob", _tool("schedule", "Schedule a meeting", {
        "attendees": {"type": "array", "items": {"type": "object", "properties": {"name": S}, "required": ["name"]},
                      "maxItems": 4},
        "minutes": {"type": "integer", "minimum": 15, "maximum": 120}}, ["attendees"])),
    ("Rate this movie 4 stars", _tool("rate", "Rate a movie", {
        "stars": {"type": "integer", "minimum": 1, "maximum": 5}, "comment": S}, ["stars"])),
    ("Order a large pepperoni pizza", _tool("order_pizza", "Order a pizza", {
        "size": {"type": "string", "enum": ["small", "medium", "large"]},
        "toppings": {"type": "array", "items": {"type": "string", "enum": ["pepperoni", "cheese", "ham"]},
                     "maxItems": 3}}, ["size", "toppings"])),
    ("Move the file report.txt to the archive folder", _tool("move_file", "Move a file", {
        "source": S, "destination": S, "overwrite": {"type": "boolean"}}, ["source", "destination"])),
    ("Find flights from Oslo to Rome on 2027-03-01", _tool("find_flights", "Search flights", {
        "route": {"type": "object", "properties": {"from": S, "to": S}, "required": ["from", "to"]},
        "date": S, "passengers": {"type": "integer", "minimum": 1, "maximum": 9}}, ["route", "date"])),
    ("Log 30 minutes of running", _tool("log_workout", "Log a workout", {
        "activity": {"type": "string", "enum": ["running", "cycling", "swimming"]},
        "minutes": {"type": "integer", "minimum": 1, "maximum": 600},
        "notes": {"type": ["string", "null"]}}, ["activity", "minutes"])),
]


@pytest.fixture
def sdk(server) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="unused", timeout=300, max_retries=0)


def _check(call_name: str, arguments: str, tool: dict[str, Any]) -> None:
    assert call_name == tool["function"]["name"]
    jsonschema.validate(json.loads(arguments), tool["function"]["parameters"])


async def test_required_calls_on_twenty_schemas_are_exact_streamed_and_not(sdk):
    for prompt, tool in CASES:
        messages = [{"role": "user", "content": prompt}]
        args = {"model": MODEL, "messages": messages, "tools": [tool], "tool_choice": "required", "seed": 11,
                "max_tokens": 200}
        whole = await sdk.chat.completions.create(**args)
        choice = whole.choices[0]
        assert choice.finish_reason == "tool_calls", (prompt, choice)
        calls = choice.message.tool_calls
        assert calls and all(c.type == "function" and c.id.startswith("call_") for c in calls)
        for call in calls:
            _check(call.function.name, call.function.arguments, tool)
        streamed: dict[int, list[str]] = {}
        finish = None
        async for chunk in await sdk.chat.completions.create(**args, stream=True):
            for c in chunk.choices:
                for delta in c.delta.tool_calls or ():
                    if delta.index not in streamed:
                        assert delta.id and delta.function.name  # a call's first delta names it
                        streamed[delta.index] = [delta.function.name, ""]
                    streamed[delta.index][1] += delta.function.arguments or ""
                finish = c.finish_reason or finish
        assert finish == "tool_calls"
        assert [tuple(streamed[i]) for i in sorted(streamed)] == [(c.function.name, c.function.arguments)
                                                                  for c in calls], prompt


async def test_a_named_tool_is_called_and_the_result_gets_a_text_answer(sdk):
    weather, time_tool = CASES[0][1], CASES[12][1]
    messages: list[dict[str, Any]] = [{"role": "user", "content": "What's the weather in Oslo?"}]
    first = await sdk.chat.completions.create(
        model=MODEL, messages=messages, tools=[weather, time_tool], max_tokens=120,
        tool_choice={"type": "function", "function": {"name": "get_weather"}})
    call = first.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather" and first.choices[0].finish_reason == "tool_calls"
    _check(call.function.name, call.function.arguments, weather)
    messages += [first.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 21 degrees Celsius."}]
    second = await sdk.chat.completions.create(model=MODEL, messages=messages, tools=[weather, time_tool],
                                               tool_choice="none", temperature=0, max_tokens=40)
    assert second.choices[0].message.content and not second.choices[0].message.tool_calls


async def test_one_call_when_parallel_calls_are_off_and_none_when_tool_choice_is_none(sdk):
    tools = [CASES[0][1], CASES[12][1]]
    messages = [{"role": "user", "content": "Weather in Oslo and the time in Tokyo?"}]
    one = await sdk.chat.completions.create(model=MODEL, messages=messages, tools=tools, tool_choice="required",
                                            parallel_tool_calls=False, max_tokens=150, temperature=0)
    assert len(one.choices[0].message.tool_calls) == 1
    none = await sdk.chat.completions.create(model=MODEL, messages=messages, tools=tools, tool_choice="none",
                                             max_tokens=20, temperature=0)
    assert none.choices[0].message.tool_calls is None and none.choices[0].finish_reason in ("stop", "length")


async def test_bad_tool_requests_are_400s_naming_the_field(sdk):
    tool = CASES[0][1]
    with pytest.raises(openai.BadRequestError) as info:
        await sdk.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], tools=[tool],
                                          tool_choice={"type": "function", "function": {"name": "nope"}})
    assert info.value.body["param"] == "tool_choice"
    with pytest.raises(openai.BadRequestError) as info:
        await sdk.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}],
                                          tool_choice="required")
    assert info.value.body["param"] == "tool_choice"
    with pytest.raises(openai.BadRequestError) as info:
        await sdk.chat.completions.create(model=MODEL, messages=[{"role": "tool", "content": "x"}])
    assert info.value.body["param"] == "messages.0.tool_call_id"


# -- the parser ------------------------------------------------------------------------------

ANSWER = ('Sure. <tool_call>[{"name": "get_weather", "arguments": {"city": "Oslo", "days": [1, 2]}}, '
          '{"name": "get_time", "arguments": {"tz": "a \\"quoted\\" }"}}]</tool_call>')


def _calls(events: list[Any]) -> tuple[str, list[tuple[str | None, str]]]:
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    calls: dict[int, list[Any]] = {}
    for e in events:
        if isinstance(e, ToolCallDelta):
            call = calls.setdefault(e.index, [e.name, ""])
            call[1] += e.arguments
    return text, [tuple(calls[i]) for i in sorted(calls)]  # type: ignore[misc]


@pytest.mark.parametrize("size", [1, 2, 3, 7, len(ANSWER)])
def test_the_parser_reads_calls_however_the_text_is_split(size):
    parser = ToolCallParser()
    events = []
    for i in range(0, len(ANSWER), size):
        events += parser.feed(ANSWER[i:i + size])
    events += parser.finish()
    text, calls = _calls(events)
    assert text == "Sure. "
    assert calls == [("get_weather", '{"city": "Oslo", "days": [1, 2]}'), ("get_time", '{"tz": "a \\"quoted\\" }"}')]
    assert parser.complete and parser.calls == 2
    ids = [e.id for e in events if isinstance(e, ToolCallDelta) and e.id]
    assert len(ids) == 2 and len(set(ids)) == 2


def test_text_that_only_looks_like_a_call_start_is_text():
    parser = ToolCallParser()
    events = parser.feed("a <tool") + parser.feed("_cal") + parser.feed("m> b <t") + parser.finish()
    assert _calls(events) == ("a <tool_calm> b <t", [])
    assert not parser.in_calls


def test_a_call_list_cut_short_is_not_complete():
    parser = ToolCallParser()
    parser.feed('<tool_call>[{"name": "f", "arguments": {"a": "unfini')
    assert parser.in_calls and not parser.complete
