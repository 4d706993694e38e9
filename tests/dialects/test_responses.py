"""The OpenAI Responses API, stateful (issue 18), through the official ``openai`` SDK unchanged
and byte for byte: create, stream, retrieve, delete, input items, previous_response_id chains and
branches, function tools, text formats, truncation, background + cancel, resume with
``starting_after``, ownership, built-in tools refused.

Exact upstream answers (tool calls, what the prompt of a continued chain holds) come from
``OpenAIRecorder``, a real OpenAI-compatible server that records what it is sent; the rest runs
on the real embedded model.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Iterator

import httpx
import openai
import pytest

from hubbub.core.types import Bot
from recorders import OpenAIRecorder, Reply
from support import ServerThread, free_port, start_server

EMBEDDED = "smollm2-135m-instruct"
UP = "rec-model"
SMALL = "rec-small"  # the recorder again, with a small context (truncation)
DEAD = "dead-model"  # an upstream nobody listens to
WEATHER = {"type": "function", "name": "get_weather", "description": "The weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                          "additionalProperties": False}, "strict": True}
LONG = "Write a very long story about a dragon who learns to bake bread, with many chapters."


@pytest.fixture(scope="module")
def recorder() -> Iterator[OpenAIRecorder]:
    rec = OpenAIRecorder().start()
    yield rec
    rec.stop()


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, recorder: OpenAIRecorder) -> Iterator[ServerThread]:
    server = start_server(
        tmp_path_factory.mktemp("responses"),
        providers=[{"name": "rec", "base_url": recorder.url},
                   {"name": "dead", "base_url": f"http://127.0.0.1:{free_port()}/v1", "connect_timeout": 2}],
        models=[{"id": UP, "provider": "rec", "context_length": 4096},
                {"id": SMALL, "provider": "rec", "context_length": 300},
                {"id": DEAD, "provider": "dead", "context_length": 4096}],
        embedded={"max_sequences": 4},
        max_tokens_cap=512,
    )
    keys = server.container.keys

    async def setup() -> tuple[str, str, str]:
        _, admin = await keys.create("admin", admin=True)
        _, alice = await keys.create("alice")
        _, bob = await keys.create("bob")
        await server.container.bots.create(Bot(uid="", slug="terse", name="Terse", system_prompt="One word only.",
                                               model=UP))
        return admin, alice, bob

    server.keys = server.call(setup())
    server.container.auth.forget()
    yield server
    server.stop()


def sdk(hub: ServerThread, key: int = 0) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=hub.url + "/v1", api_key=hub.keys[key], max_retries=0)


def raw(hub: ServerThread, key: int = 0) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=hub.url, headers={"Authorization": f"Bearer {hub.keys[key]}"}, timeout=120)


# -- the event stream, byte for byte ------------------------------------------------------------------


def parse_sse(body: bytes) -> list[tuple[str, dict[str, Any]]]:
    """``event: <type>`` + ``data: <json>`` frames; each frame must have both, nothing else."""
    frames = []
    for block in body.decode().split("\n\n"):
        if not block.strip() or block.startswith(":"):
            continue
        lines = block.split("\n")
        assert len(lines) == 2 and lines[0].startswith("event: ") and lines[1].startswith("data: "), block
        frames.append((lines[0][7:], json.loads(lines[1][6:])))
    return frames


def check_sequence(frames: list[tuple[str, dict[str, Any]]], first_seq: int = 0) -> dict[str, Any]:
    """Sequence numbers strictly increasing (consecutive), every ``.added`` closed by its
    ``.done``, deltas only inside their item and part, the terminal event last; returns it."""
    seqs = [data["sequence_number"] for _, data in frames]
    assert seqs == list(range(first_seq, first_seq + len(frames))), seqs
    assert all(name == data["type"] for name, data in frames)
    open_items: dict[int, dict[str, Any]] = {}
    open_parts: set[tuple[int, int]] = set()
    done_items: dict[int, dict[str, Any]] = {}
    texts: dict[int, str] = {}
    args: dict[int, str] = {}
    for i, (kind, data) in enumerate(frames):
        if kind == "response.output_item.added":
            index = data["output_index"]
            assert index not in open_items and index not in done_items, "an item is added once"
            assert data["item"]["status"] == "in_progress"
            open_items[index] = data["item"]
        elif kind == "response.content_part.added":
            assert data["output_index"] in open_items
            open_parts.add((data["output_index"], data["content_index"]))
        elif kind in ("response.output_text.delta", "response.reasoning_text.delta"):
            assert (data["output_index"], data["content_index"]) in open_parts
            assert data["item_id"] == open_items[data["output_index"]]["id"]
            texts[data["output_index"]] = texts.get(data["output_index"], "") + data["delta"]
        elif kind in ("response.output_text.done", "response.reasoning_text.done"):
            assert (data["output_index"], data["content_index"]) in open_parts
            assert data["text"] == texts.get(data["output_index"], "")
        elif kind == "response.content_part.done":
            open_parts.remove((data["output_index"], data["content_index"]))
        elif kind == "response.function_call_arguments.delta":
            assert open_items[data["output_index"]]["type"] == "function_call"
            args[data["output_index"]] = args.get(data["output_index"], "") + data["delta"]
        elif kind == "response.function_call_arguments.done":
            assert data["arguments"] == (args.get(data["output_index"]) or "{}")
        elif kind == "response.output_item.done":
            index = data["output_index"]
            assert not any(p[0] == index for p in open_parts), "parts close before their item"
            assert open_items.pop(index)["id"] == data["item"]["id"]
            done_items[index] = data["item"]
        elif kind in ("response.completed", "response.incomplete", "response.failed"):
            assert i == len(frames) - 1, "the terminal event is the last"
            assert not open_items and not open_parts, "every .added was closed by its .done"
            assert data["response"]["output"] == [done_items[k] for k in sorted(done_items)]
            return data
    assert not open_items and not open_parts
    return {}


async def post_stream(client: httpx.AsyncClient, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    async with client.stream("POST", "/v1/responses", json={**body, "stream": True}) as r:
        assert r.status_code == 200, await r.aread()
        assert r.headers["content-type"].startswith("text/event-stream")
        return parse_sse(await r.aread())


async def test_a_streamed_text_answer_byte_for_byte(hub):
    async with raw(hub) as client:
        frames = await post_stream(client, {"model": EMBEDDED, "input": "Say hi.", "max_output_tokens": 32,
                                            "temperature": 0})
    kinds = [k for k, _ in frames]
    assert kinds[:5] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added", "response.output_text.delta"]
    assert kinds[-4:-1] == ["response.output_text.done", "response.content_part.done", "response.output_item.done"]
    terminal = check_sequence(frames)
    response = terminal["response"]
    assert response["status"] in ("completed", "incomplete") and response["object"] == "response"
    assert frames[0][1]["response"]["status"] == "in_progress" and frames[0][1]["response"]["output"] == []
    usage = response["usage"]
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"] and usage["output_tokens"] > 0


async def test_text_calls_and_their_arguments_byte_for_byte(hub, recorder):
    calls = [("get_weather", json.dumps({"city": "Oslo"})), ("get_time", json.dumps({"tz": "Europe/Oslo"}))]
    recorder.replies.append(Reply(text="Let me check.", tool_calls=calls, fragment=4))
    async with raw(hub) as client:
        frames = await post_stream(client, {"model": UP, "input": "Weather and time in Oslo?",
                                            "tools": [WEATHER, {**WEATHER, "name": "get_time"}]})
    terminal = check_sequence(frames)
    output = terminal["response"]["output"]
    assert [item["type"] for item in output] == ["message", "function_call", "function_call"]
    assert output[0]["content"][0]["text"] == "Let me check."
    assert [(o["name"], o["arguments"], o["call_id"]) for o in output[1:]] == [
        ("get_weather", calls[0][1], "call_0_get_weather"), ("get_time", calls[1][1], "call_1_get_time")]
    assert sum(k == "response.function_call_arguments.delta" for k, _ in frames) > 2, "arguments stream in pieces"
    async with raw(hub) as client:  # what GET shows is what the stream ended with
        stored = (await client.get(f"/v1/responses/{terminal['response']['id']}")).json()
    assert stored["output"] == output and stored["status"] == "completed"


async def test_create_retrieve_input_items_delete_through_the_sdk(hub):
    client = sdk(hub)
    created = await client.responses.create(model=EMBEDDED, input="Name a colour.", max_output_tokens=16,
                                            instructions="Answer briefly.", metadata={"case": "crud"},
                                            user="user-7", temperature=0.5, top_p=0.9)
    assert created.status in ("completed", "incomplete") and created.output_text
    assert created.instructions == "Answer briefly." and created.metadata == {"case": "crud"}
    assert created.user == "user-7" and created.temperature == 0.5 and created.top_p == 0.9
    assert created.max_output_tokens == 16 and created.usage.output_tokens <= 16
    if created.status == "incomplete":
        assert created.incomplete_details.reason == "max_output_tokens"
    again = await client.responses.retrieve(created.id)
    assert again.model_dump() == created.model_dump()
    items = await client.responses.input_items.list(created.id)
    assert [(i.type, i.role, i.content[0].text) for i in items.data] == [("message", "user", "Name a colour.")]
    deleted = await client.responses.with_raw_response.delete(created.id)
    assert deleted.status_code == 200 and json.loads(deleted.content) == {"id": created.id, "object": "response",
                                                                         "deleted": True}
    for call in (client.responses.retrieve(created.id), client.responses.delete(created.id),
                 client.responses.input_items.list(created.id)):
        with pytest.raises(openai.NotFoundError):
            await call


async def test_input_items_pages_newest_first(hub, recorder):
    client = sdk(hub)
    items = [{"role": "developer", "content": "Be kind."},
             {"role": "user", "content": [{"type": "input_text", "text": "one"}]},
             {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "two"}]},
             {"role": "user", "content": "three"}]
    created = await client.responses.create(model=UP, input=items)
    page = await client.responses.input_items.list(created.id, limit=3)
    assert [i.role for i in page.data] == ["user", "assistant", "user"] and page.has_more
    rest = await client.responses.input_items.list(created.id, after=page.data[-1].id, limit=3)
    assert [i.role for i in rest.data] == ["developer"] and not rest.has_more
    ordered = [i async for i in client.responses.input_items.list(created.id, order="asc", limit=1)]
    assert [i.role for i in ordered] == ["developer", "user", "assistant", "user"]
    sent = recorder.requests[-1]["messages"]
    assert [(m["role"], m["content"]) for m in sent] == [("system", "Be kind."), ("user", "one"),
                                                         ("assistant", "two"), ("user", "three")]


async def test_responses_stream_with_the_sdk_helper(hub):
    client = sdk(hub)
    async with client.responses.stream(model=EMBEDDED, input="Say hi.", max_output_tokens=96,
                                       temperature=0) as stream:
        deltas = [e.delta async for e in stream if e.type == "response.output_text.delta"]
        final = await stream.get_final_response()
    assert final.output_text == "".join(deltas) and deltas
    assert (await client.responses.retrieve(final.id)).output_text == final.output_text


async def test_json_schema_and_json_object_formats(hub):
    client = sdk(hub)
    schema = {"type": "object", "properties": {"city": {"type": "string", "enum": ["Paris", "Oslo", "Lima"]},
                                               "stars": {"type": "integer", "minimum": 1, "maximum": 5}},
              "required": ["city", "stars"], "additionalProperties": False}
    done = await client.responses.create(model=EMBEDDED, input="Pick a city and rate it.", max_output_tokens=64,
                                         text={"format": {"type": "json_schema", "name": "pick", "schema": schema,
                                                          "strict": True}})
    value = json.loads(done.output_text)
    assert value["city"] in ("Paris", "Oslo", "Lima") and 1 <= value["stars"] <= 5
    assert done.text.format.type == "json_schema" and done.text.format.name == "pick"
    obj = await client.responses.create(model=EMBEDDED, input="Give me a JSON object with a key named a.",
                                        max_output_tokens=48, text={"format": {"type": "json_object"}})
    if obj.status == "completed":
        assert isinstance(json.loads(obj.output_text), dict)
    with pytest.raises(openai.BadRequestError) as info:
        await client.responses.create(model=EMBEDDED, input="x", text={"format": {"type": "json_schema",
                                                                                   "name": "n"}})
    assert info.value.body["param"] == "text.format.schema"


async def test_max_output_tokens_cuts_the_answer_as_incomplete(hub):
    client = sdk(hub)
    done = await client.responses.create(model=EMBEDDED, input=LONG, max_output_tokens=16)
    assert done.status == "incomplete" and done.incomplete_details.reason == "max_output_tokens"
    assert done.usage.output_tokens == 16 and done.output[0].status == "incomplete"
    with pytest.raises(openai.BadRequestError) as info:
        await client.responses.create(model=EMBEDDED, input="x", max_output_tokens=100_000)
    assert info.value.body["param"] == "max_output_tokens"


async def test_previous_response_id_continues_and_chains_branch(hub, recorder):
    client = sdk(hub)
    recorder.replies.extend([Reply(text="Hello Ada."), Reply(text="You are Ada."), Reply(text="Paris.")])
    first = await client.responses.create(model=UP, input="I am Ada.", instructions="Be brief.")
    second = await client.responses.create(model=UP, input="Who am I?", previous_response_id=first.id)
    assert second.previous_response_id == first.id and second.output_text == "You are Ada."
    sent = [(m["role"], m["content"]) for m in recorder.requests[-1]["messages"]]
    # The parent's turn, not its instructions (OpenAI carries instructions over to no later turn).
    assert sent == [("user", "I am Ada."), ("assistant", "Hello Ada."), ("user", "Who am I?")]
    branch = await client.responses.create(model=UP, input="Capital of France?", previous_response_id=first.id,
                                           instructions="One word.")
    sent = [(m["role"], m["content"]) for m in recorder.requests[-1]["messages"]]
    assert sent == [("system", "One word."), ("user", "I am Ada."), ("assistant", "Hello Ada."),
                    ("user", "Capital of France?")], "a branch does not see its sibling"
    recorder.replies.append(Reply(text="ok"))
    await client.responses.create(model=UP, input="And now?", previous_response_id=second.id)
    sent = [m["content"] for m in recorder.requests[-1]["messages"]]
    assert sent == ["I am Ada.", "Hello Ada.", "Who am I?", "You are Ada.", "And now?"]
    assert branch.output_text == "Paris."
    with pytest.raises(openai.NotFoundError) as info:
        await client.responses.create(model=UP, input="x", previous_response_id="resp_missing")
    assert info.value.body["code"] == "previous_response_not_found"


async def test_a_function_tool_round_trip_with_function_call_output(hub, recorder):
    client = sdk(hub)
    recorder.replies.append(Reply(text="", tool_calls=[("get_weather", '{"city":"Oslo"}')]))
    asked = await client.responses.create(model=UP, input="Weather in Oslo?", tools=[WEATHER])
    assert recorder.requests[-1]["tools"][0]["function"]["name"] == "get_weather"
    call = asked.output[0]
    assert (call.type, call.name, call.arguments, call.status) == ("function_call", "get_weather",
                                                                   '{"city":"Oslo"}', "completed")
    recorder.replies.append(Reply(text="It is sunny in Oslo."))
    answered = await client.responses.create(
        model=UP, previous_response_id=asked.id, tools=[WEATHER],
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "Sunny, 21 C"}])
    assert answered.output_text == "It is sunny in Oslo."
    sent = recorder.requests[-1]["messages"]
    assert sent[0] == {"role": "user", "content": "Weather in Oslo?"}
    assert sent[1]["role"] == "assistant" and sent[1]["tool_calls"][0]["id"] == call.call_id
    assert sent[1]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city":"Oslo"}'}
    assert sent[2] == {"role": "tool", "tool_call_id": call.call_id, "content": "Sunny, 21 C"}

    # The same turn sent whole (as the Agents SDK does), not stored.
    recorder.replies.append(Reply(text="Still sunny."))
    whole = await client.responses.create(model=UP, store=False, tools=[WEATHER], tool_choice="auto",
                                          parallel_tool_calls=False, input=[
        {"role": "user", "content": "Weather in Oslo?"}, call.model_dump(exclude_none=True),
        {"type": "function_call_output", "call_id": call.call_id, "output": "Sunny, 21 C"}])
    assert whole.output_text == "Still sunny." and recorder.requests[-1]["messages"] == sent
    assert recorder.requests[-1]["parallel_tool_calls"] is False
    with pytest.raises(openai.NotFoundError):
        await client.responses.retrieve(whole.id)  # store: false keeps nothing


async def test_tool_choice_names_a_function(hub, recorder):
    client = sdk(hub)
    recorder.replies.append(Reply(text="", tool_calls=[("get_weather", '{"city":"Lima"}')]))
    done = await client.responses.create(model=UP, input="Lima?", tools=[WEATHER],
                                         tool_choice={"type": "function", "name": "get_weather"})
    assert recorder.requests[-1]["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert done.tool_choice.name == "get_weather" and done.output[0].type == "function_call"
    with pytest.raises(openai.BadRequestError) as info:
        await client.responses.create(model=UP, input="x", tools=[WEATHER],
                                      tool_choice={"type": "function", "name": "nope"})
    assert info.value.body["param"] == "tool_choice.name"


@pytest.mark.parametrize("tool", [{"type": "web_search"}, {"type": "file_search", "vector_store_ids": ["vs"]},
                                  {"type": "code_interpreter", "container": {"type": "auto"}},
                                  {"type": "computer_use_preview", "display_width": 1, "display_height": 1,
                                   "environment": "browser"}])
async def test_built_in_tools_are_refused_by_name(hub, tool):
    client = sdk(hub)
    with pytest.raises(openai.BadRequestError) as info:
        await client.responses.create(model=UP, input="x", tools=[WEATHER, tool])
    body = info.value.body
    assert body["param"] == "tools.1.type" and body["code"] == "unsupported_value"
    assert tool["type"] in body["message"] and "function tools" in body["message"]


async def test_bad_input_is_a_400_in_openais_shape(hub):
    async with raw(hub) as client:
        cases = [
            ({"model": UP}, "input"),
            ({"model": UP, "input": [{"type": "item_reference", "id": "x"}]}, "input.0.type"),
            ({"model": UP, "input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
             "input.0.content.0.type"),
            ({"model": UP, "input": "x", "temperature": 3}, "temperature"),
            ({"model": UP, "input": "x", "metadata": {f"k{i}": "v" for i in range(17)}}, "metadata"),
            ({"model": UP, "input": "x", "store": False, "background": True}, "background"),
            ({"model": UP, "input": "x", "reasoning": {"effort": "high"}}, "reasoning"),
            ({"model": UP, "input": "x", "conversation": "conv_1"}, "conversation"),
            ({"model": UP, "input": "x", "tool_choice": "required"}, "tool_choice"),
        ]
        for body, param in cases:
            r = await client.post("/v1/responses", json=body)
            assert r.status_code == 400, (body, r.text)
            error = r.json()["error"]
            assert error["type"] == "invalid_request_error" and error["param"] == param, (body, error)
        r = await client.post("/v1/responses", json={"model": "nope", "input": "x"})
        assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
        r = await client.post("/v1/responses", content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 400 and "parse the JSON" in r.json()["error"]["message"]


async def test_truncation_auto_trims_and_disabled_refuses(hub, recorder):
    client = sdk(hub)
    words = " ".join(["lorem"] * 100)  # about 200 tokens of the recorder's estimate; the model has 300
    first = await client.responses.create(model=SMALL, input="first " + words)
    with pytest.raises(openai.BadRequestError) as info:
        await client.responses.create(model=SMALL, input="second " + words, previous_response_id=first.id)
    assert info.value.body["code"] == "context_length_exceeded" and info.value.body["param"] == "input"
    assert "truncation" in info.value.body["message"]
    trimmed = await client.responses.create(model=SMALL, input="second " + words, previous_response_id=first.id,
                                            truncation="auto")
    assert trimmed.truncation == "auto" and trimmed.status == "completed"
    sent = recorder.requests[-1]["messages"]
    assert [m["content"][:6] for m in sent] == ["second"], "the oldest turn was dropped"


async def test_a_bot_as_model(hub, recorder):
    client = sdk(hub)
    recorder.replies.append(Reply(text="Paris"))
    done = await client.responses.create(model="@terse", input="Capital of France?")
    assert done.model == "@terse" and done.output_text == "Paris"
    assert recorder.requests[-1]["messages"][0] == {"role": "system", "content": "One word only."}
    with pytest.raises(openai.NotFoundError) as info:
        await client.responses.create(model="@nobody", input="x")
    assert info.value.body["code"] == "model_not_found"


async def test_another_keys_response_is_a_404(hub):
    alice, bob, admin = sdk(hub, 1), sdk(hub, 2), sdk(hub, 0)
    mine = await alice.responses.create(model=UP, input="secret")
    for call in (bob.responses.retrieve(mine.id), bob.responses.delete(mine.id), bob.responses.cancel(mine.id),
                 bob.responses.input_items.list(mine.id),
                 bob.responses.create(model=UP, input="x", previous_response_id=mine.id)):
        with pytest.raises(openai.NotFoundError):
            await call
    assert (await admin.responses.retrieve(mine.id)).id == mine.id
    assert (await alice.responses.retrieve(mine.id)).output_text == mine.output_text


async def test_background_cancel_and_continuing_a_running_parent(hub):
    client = sdk(hub)
    started = await client.responses.create(model=EMBEDDED, input=LONG, background=True, max_output_tokens=512)
    assert started.status == "queued" and started.background
    with pytest.raises(openai.BadRequestError) as info:
        await client.responses.create(model=EMBEDDED, input="x", previous_response_id=started.id)
    assert info.value.body["param"] == "previous_response_id" and "in progress" in info.value.body["message"]
    async with raw(hub) as http:  # wait for some text, then cancel
        async with http.stream("GET", f"/v1/responses/{started.id}", params={"stream": "true"}) as r:
            n = 0
            async for line in r.aiter_lines():
                n += line.startswith("event: response.output_text.delta")
                if n >= 3:
                    break
    cancelled = await client.responses.cancel(started.id)
    assert cancelled.status == "cancelled" and cancelled.output_text
    assert (await client.responses.retrieve(started.id)).status == "cancelled"
    assert (await client.responses.cancel(started.id)).status == "cancelled", "cancelling again is harmless"
    async with raw(hub) as http:  # its stream closes its item and ends (no terminal event for cancellation)
        r = await http.get(f"/v1/responses/{started.id}", params={"stream": "true"})
    frames = parse_sse(r.content)
    check_sequence(frames)
    assert frames[-1][0] == "response.output_item.done" and frames[-1][1]["item"]["status"] == "incomplete"
    done = await client.responses.create(model=EMBEDDED, input="Hi", max_output_tokens=16, background=True)
    for _ in range(600):
        if (await client.responses.retrieve(done.id)).status not in ("queued", "in_progress"):
            break
        await asyncio.sleep(0.1)
    with pytest.raises(openai.BadRequestError) as info:
        await client.responses.cancel(done.id)
    assert "Cannot cancel" in info.value.body["message"]
    plain = await client.responses.create(model=UP, input="x")
    with pytest.raises(openai.BadRequestError):
        await client.responses.cancel(plain.id)


async def test_resume_with_starting_after_yields_every_remaining_event_once(hub):
    client = sdk(hub)
    seen: list[tuple[str, dict[str, Any]]] = []
    async with raw(hub) as http:
        async with http.stream("POST", "/v1/responses", json={"model": EMBEDDED, "input": LONG, "stream": True,
                                                               "background": True, "max_output_tokens": 48}) as r:
            buffer = b""
            async for chunk in r.aiter_bytes():
                buffer += chunk
                whole, _, buffer = buffer.rpartition(b"\n\n")
                if whole:
                    seen += parse_sse(whole + b"\n\n")
                if sum(k == "response.output_text.delta" for k, _ in seen) >= 4:
                    break  # the client drops mid-answer; a background response goes on
    response_id = seen[0][1]["response"]["id"]
    last = seen[-1][1]["sequence_number"]
    rest = [e async for e in await client.responses.retrieve(response_id, stream=True, starting_after=last)]
    assert rest and rest[0].sequence_number == last + 1
    assert [e.sequence_number for e in rest] == list(range(last + 1, last + 1 + len(rest)))
    assert rest[-1].type in ("response.completed", "response.incomplete")
    async with raw(hub) as http:  # the whole stream again: the two parts are it, nothing lost or doubled
        full = parse_sse((await http.get(f"/v1/responses/{response_id}", params={"stream": "true"})).content)
    check_sequence(full)
    assert [d for _, d in seen] + [e.model_dump(exclude_unset=True) for e in rest] == [d for _, d in full]
    async with client.responses.stream(response_id=response_id, starting_after=last) as stream:
        again = [e.sequence_number async for e in stream]
    assert again == [e.sequence_number for e in rest]
    final = await client.responses.retrieve(response_id)
    text = "".join(d["delta"] for k, d in full if k == "response.output_text.delta")
    assert final.output_text == text and text


async def test_streamed_store_false_and_errors_keep_their_shape(hub, recorder):
    recorder.replies.append(Reply(text="Not kept."))
    async with raw(hub) as client:
        frames = await post_stream(client, {"model": UP, "input": "x", "store": False})
        terminal = check_sequence(frames)
        assert terminal["response"]["store"] is False and terminal["response"]["output"][0]["content"][0]["text"] \
            == "Not kept."
        r = await client.get(f"/v1/responses/{terminal['response']['id']}")
        assert r.status_code == 404 and r.json()["error"]["message"].startswith("Response with id")


async def test_a_model_that_fails_makes_a_failed_response(hub):
    async with raw(hub) as client:
        r = await client.post("/v1/responses", json={"model": DEAD, "input": "x"})
        assert r.status_code >= 500 and r.json()["error"]["type"] == "server_error", r.text
        frames = await post_stream(client, {"model": DEAD, "input": "x"})
        terminal = check_sequence(frames)
        assert [k for k, _ in frames][-2:] == ["error", "response.failed"]
        failed = terminal["response"]
        assert failed["status"] == "failed" and failed["error"]["code"] == "server_error"
        stored = (await client.get(f"/v1/responses/{failed['id']}")).json()
        assert stored["status"] == "failed" and stored["error"] == failed["error"]
