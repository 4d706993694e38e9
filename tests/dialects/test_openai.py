"""The OpenAI-compatible dialect (API.md §5), through the real embedded model."""

from __future__ import annotations

import json

import httpx
import jsonschema
import openai
import pytest

from openai_schema import RecordingTransport, check
from support import collect_sse

MODEL = "smollm2-135m-instruct"
HELLO = [{"role": "user", "content": "Say hello."}]


@pytest.fixture
def recorder():
    """Every /v1 response a test receives, validated against OpenAI's OpenAPI schemas at its end
    (issue 21; tests/dialects/openai_schema.py)."""
    transport = RecordingTransport()
    yield transport
    check(transport.recorded)


@pytest.fixture
async def client(server, recorder):
    async with httpx.AsyncClient(base_url=server.url, timeout=60, transport=recorder) as c:
        yield c


async def test_non_stream_shape_and_usage(client):
    r = await client.post("/v1/chat/completions", json={"model": MODEL, "messages": HELLO, "max_tokens": 8})
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    assert body["model"] == MODEL
    choice = body["choices"][0]
    assert choice["index"] == 0 and choice["message"]["role"] == "assistant"
    assert choice["message"]["content"]
    assert choice["finish_reason"] in ("stop", "length")
    usage = body["usage"]
    assert usage["prompt_tokens"] > 0 and 0 < usage["completion_tokens"] <= 8
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


async def test_stream_chunks_include_usage_and_done(client):
    r, events = await collect_sse(
        client, "POST", "/v1/chat/completions",
        json={"model": MODEL, "messages": HELLO, "max_tokens": 6, "stream": True,
              "stream_options": {"include_usage": True}},
    )
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["cache-control"] == "no-cache" and r.headers["x-accel-buffering"] == "no"
    assert events[-1].data == "[DONE]"
    chunks = [e.json() for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    finish = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert len(finish) == 1 and finish[0]["choices"][0]["finish_reason"] == "length"
    usage_chunk = chunks[-1]
    assert usage_chunk["choices"] == [] and usage_chunk["usage"]["completion_tokens"] == 6
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text
    assert all(c["usage"] is None for c in chunks[:-1])


async def test_stream_without_include_usage_has_no_usage_field(client):
    _, events = await collect_sse(
        client, "POST", "/v1/chat/completions",
        json={"model": MODEL, "messages": HELLO, "max_tokens": 3, "stream": True},
    )
    chunks = [e.json() for e in events[:-1]]
    assert all("usage" not in c for c in chunks)
    assert all(c["choices"] for c in chunks)


async def test_max_completion_tokens_wins_and_limits(client):
    r = await client.post("/v1/chat/completions", json={
        "model": MODEL, "messages": [{"role": "user", "content": "Write a long poem about the sea."}],
        "max_tokens": 50, "max_completion_tokens": 4})
    body = r.json()
    assert body["usage"]["completion_tokens"] == 4
    assert body["choices"][0]["finish_reason"] == "length"


async def test_stop_sequence_is_not_emitted(client):
    # Greedy decoding of this prompt says "Hello! How can I ..."; stop at "How".
    base = {"model": MODEL, "messages": HELLO, "max_tokens": 16, "temperature": 0}
    full = (await client.post("/v1/chat/completions", json=base)).json()["choices"][0]["message"]["content"]
    word = full.split()[1]
    r = await client.post("/v1/chat/completions", json={**base, "stop": [word]})
    choice = r.json()["choices"][0]
    assert word not in choice["message"]["content"]
    assert full.startswith(choice["message"]["content"])
    assert choice["finish_reason"] == "stop"


async def test_seed_makes_sampling_repeatable(client):
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Tell me a story."}],
            "max_tokens": 16, "temperature": 1.2, "seed": 1234}
    a = (await client.post("/v1/chat/completions", json=body)).json()["choices"][0]["message"]["content"]
    b = (await client.post("/v1/chat/completions", json=body)).json()["choices"][0]["message"]["content"]
    c = (await client.post("/v1/chat/completions", json={**body, "seed": 99})).json()["choices"][0]["message"]["content"]
    assert a == b
    assert a != c


async def test_json_object_mode_returns_json(client):
    r = await client.post("/v1/chat/completions", timeout=180, json={
        "model": MODEL, "max_tokens": 300, "temperature": 0, "seed": 3,
        # The 135M model loops on some JSON prompts at temperature 0 (e.g. "describe a cat" nests
        # "habits" forever until max_tokens); this one it closes, so the object must parse.
        "messages": [{"role": "user", "content": "List three colors in a JSON object."}],
        "response_format": {"type": "json_object"}})
    content = r.json()["choices"][0]["message"]["content"]
    assert r.json()["choices"][0]["finish_reason"] == "stop", content
    assert isinstance(json.loads(content), dict)


PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 20},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 10}, "maxItems": 3},
        "role": {"type": "string", "enum": ["admin", "user"]},
    },
    "required": ["name", "age", "tags", "role"],
    "additionalProperties": False,
}


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
async def test_json_schema_output_always_validates(client, seed):
    r = await client.post("/v1/chat/completions", timeout=180, json={
        "model": MODEL, "max_tokens": 300, "temperature": 1.0, "seed": seed,
        "messages": [{"role": "user", "content": "Invent a person."}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON}}})
    assert r.status_code == 200
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] == "stop", choice["message"]["content"]
    jsonschema.validate(json.loads(choice["message"]["content"]), PERSON)


@pytest.mark.parametrize(
    ("patch", "param"),
    [
        ({"temperature": 3}, "temperature"),
        ({"top_p": -0.1}, "top_p"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"n": 99}, "n"),  # above max_choices (4 by default; issue 21)
        ({"top_logprobs": 2}, "top_logprobs"),  # without logprobs
        ({"logit_bias": {"abc": 1}}, "logit_bias"),
        ({"messages": []}, "messages"),
        ({"messages": "hi"}, "messages"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"response_format": {"type": "xml"}}, "response_format.type"),
    ],
)
async def test_bad_values_get_openai_400(client, patch, param):
    r = await client.post("/v1/chat/completions", json={"model": MODEL, "messages": HELLO, **patch})
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error"
    assert err["param"] == param
    assert set(err) == {"message", "type", "param", "code"}


async def test_malformed_json_gets_openai_400(client):
    r = await client.post("/v1/chat/completions", content=b'{"model": ', headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("content", "content_type", "param"),
    [
        (b"", "application/json", "body"),  # no body at all
        (b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}', "text/plain", "body"),  # not JSON's type
        (b"[1, 2]", "application/json", "body"),  # JSON, but not an object
        (b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "n": 999}', None, "n"),  # no type: JSON
        (b"\xff\xfe{", "application/json", None),  # not UTF-8
    ],
)
async def test_body_edge_cases_get_openai_400(client, content, content_type, param):
    """The endpoint reads its own body (the fast path, dialects/routing.py): FastAPI's rules, our shape."""
    headers = {"content-type": content_type} if content_type else {}
    r = await client.post("/v1/chat/completions", content=content, headers=headers)
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error"
    assert err["param"] == param
    assert r.headers["x-request-id"]


async def test_unknown_model_is_404_model_not_found(client):
    r = await client.post("/v1/chat/completions", json={"model": "gpt-9", "messages": HELLO})
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "model_not_found"


async def test_unknown_bot_model_is_404(client):
    r = await client.post("/v1/chat/completions", json={"model": "@no-such-bot", "messages": HELLO})
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "model_not_found"


async def test_context_length_exceeded_has_real_counts(client):
    r = await client.post("/v1/chat/completions", json={
        "model": MODEL, "messages": [{"role": "user", "content": "word " * 9000}]})
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "context_length_exceeded"
    assert "8192" in err["message"] and "9" in err["message"]


async def test_unknown_fields_are_ignored(client):
    r = await client.post("/v1/chat/completions", json={
        "model": MODEL, "messages": HELLO, "max_tokens": 2, "logit_bias": {"1": 2}, "frobnicate": True})
    assert r.status_code == 200


async def test_content_parts_are_accepted(client):
    r = await client.post("/v1/chat/completions", json={
        "model": MODEL, "max_tokens": 2,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]})
    assert r.status_code == 200


async def test_models_list(client):
    r = await client.get("/v1/models")
    body = r.json()
    assert body["object"] == "list"
    model = next(m for m in body["data"] if m["id"] == MODEL)
    assert model["object"] == "model" and model["context_length"] == 8192
    assert model["pricing"] == {"prompt": 0.0, "completion": 0.0}
    assert isinstance(model["created"], int) and model["owned_by"]


async def test_official_openai_client(server, recorder):
    api = openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key="unused",
                             http_client=httpx.AsyncClient(transport=recorder))
    models = await api.models.list()
    assert MODEL in [m.id for m in models.data]
    done = await api.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=5)
    assert done.choices[0].message.content and done.usage.completion_tokens <= 5
    stream = await api.chat.completions.create(
        model=MODEL, messages=HELLO, max_tokens=5, stream=True, stream_options={"include_usage": True})
    parts, usage = [], None
    async for chunk in stream:
        if chunk.choices:
            parts.append(chunk.choices[0].delta.content or "")
        if chunk.usage:
            usage = chunk.usage
    assert "".join(parts) and usage is not None and usage.completion_tokens == 5
    with pytest.raises(openai.NotFoundError):
        await api.chat.completions.create(model="nope", messages=HELLO)
    with pytest.raises(openai.BadRequestError):
        await api.chat.completions.create(model=MODEL, messages=HELLO, temperature=5)
    await api.close()


async def test_usage_is_recorded(server, client):
    server.call(server.container.service.usage_writer.flush())  # earlier tests' rows, still batching
    before = server.call(server.container.usage.count())
    r = await client.post("/v1/chat/completions", json={"model": MODEL, "messages": HELLO, "max_tokens": 3},
                          headers={"X-Request-Id": "usage-check-1"})
    assert r.headers["x-request-id"] == "usage-check-1"
    import asyncio
    for _ in range(50):
        if server.call(server.container.usage.count("usage-check-1")) == 1:
            break
        await asyncio.sleep(0.05)
    assert server.call(server.container.usage.count("usage-check-1")) == 1
    assert server.call(server.container.usage.count()) == before + 1


async def test_max_tokens_over_the_cap_is_refused(client):
    r = await client.post("/v1/chat/completions", json={"model": MODEL, "messages": HELLO, "max_tokens": 5000})
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "max_tokens"


async def test_too_many_messages_is_refused(client):
    messages = [{"role": "user", "content": "x"}] * 1001
    r = await client.post("/v1/chat/completions", json={"model": MODEL, "messages": messages, "max_tokens": 1})
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "messages"


async def test_body_over_the_limit_is_413(client):
    r = await client.post("/v1/chat/completions", json={"model": MODEL, "messages": [
        {"role": "user", "content": "x" * (1024 * 1024 + 10)}]})
    assert r.status_code == 413
    assert r.json()["error"]["type"] == "invalid_request_error"
