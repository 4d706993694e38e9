"""The OpenAI surface clients probe beyond chat (issue 21): /v1/embeddings, legacy /v1/completions,
GET /v1/models/{id}, OpenAI-shaped 404/405 under /v1 — through the official SDK where it has a
call for it, on the real embedded model. Every /v1 response here is validated against OpenAI's
OpenAPI schemas (``recorder``, tests/dialects/openai_schema.py)."""

from __future__ import annotations

import base64
import json

import httpx
import jsonschema
import numpy as np
import openai
import pytest

from openai_schema import RecordingTransport, check, validate
from support import collect_sse

MODEL = "smollm2-135m-instruct"
DIMENSIONS = 576  # SmolLM2-135M's hidden size: the embedded embedder's documented dimension


@pytest.fixture
def recorder():
    transport = RecordingTransport()
    yield transport
    assert check(transport.recorded) > 0 or not transport.recorded


@pytest.fixture
async def client(server, recorder):
    async with httpx.AsyncClient(base_url=server.url, timeout=60, transport=recorder) as c:
        yield c


@pytest.fixture
async def api(server, recorder):
    sdk = openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0,
                             http_client=httpx.AsyncClient(transport=recorder, timeout=60))
    yield sdk
    await sdk.close()


def test_the_validator_refuses_what_openai_does_not_send():
    body = {"id": "x", "object": "chat.completion", "created": 1, "model": "m", "system_fingerprint": None,
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}}]}
    with pytest.raises(jsonschema.ValidationError):
        validate("CreateChatCompletionResponse", body)  # a null system_fingerprint (issue 21)
    with pytest.raises(jsonschema.ValidationError):
        validate("ErrorResponse", {"detail": "Not Found"})
    del body["system_fingerprint"]
    validate("CreateChatCompletionResponse", body)


# -- embeddings ---------------------------------------------------------------------------

async def test_sdk_embeddings_are_unit_vectors_of_the_documented_dimension(api):
    texts = ["The cat sat on the mat.", "Stock markets fell sharply today.", "A kitten sleeps on a rug."]
    result = await api.embeddings.create(model=MODEL, input=texts, encoding_format="float")
    assert [d.index for d in result.data] == [0, 1, 2] and result.model == MODEL
    vectors = np.array([d.embedding for d in result.data])
    assert vectors.shape == (3, DIMENSIONS)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert result.usage.prompt_tokens > 3 and result.usage.total_tokens == result.usage.prompt_tokens
    # the same text alone gives the same vector (inputs are decoded apart)
    alone = await api.embeddings.create(model=MODEL, input=texts[0], encoding_format="float")
    assert np.allclose(alone.data[0].embedding, vectors[0], atol=1e-5)
    # meaning: the two sentences about cats are closer to each other than to the markets one
    assert vectors[0] @ vectors[2] > vectors[0] @ vectors[1]


async def test_base64_decodes_to_the_floats(client, api):
    floats = (await client.post("/v1/embeddings", json={"model": MODEL, "input": "hello there"})).json()
    raw = (await client.post("/v1/embeddings", json={"model": MODEL, "input": "hello there",
                                                     "encoding_format": "base64"})).json()
    decoded = np.frombuffer(base64.b64decode(raw["data"][0]["embedding"]), dtype="<f4")
    assert np.array_equal(decoded, np.array(floats["data"][0]["embedding"], dtype=np.float32))
    # the SDK's default asks for base64 and decodes it itself
    sdk = await api.embeddings.create(model=MODEL, input="hello there")
    assert np.allclose(sdk.data[0].embedding, decoded)


@pytest.mark.parametrize("payload, param", [
    ({"input": ""}, "input"),
    ({"input": []}, "input"),
    ({"input": ["ok", ""]}, "input.1"),
    ({"input": [1, 2, 3]}, "input"),
    ({"input": [[1, 2], [3]]}, "input.0"),
    ({"input": "x", "dimensions": 8}, "dimensions"),
    ({"input": "x", "encoding_format": "int8"}, "encoding_format"),
])
async def test_bad_embedding_requests_are_openai_400s(client, payload, param):
    r = await client.post("/v1/embeddings", json={"model": MODEL, **payload})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param


async def test_too_many_inputs_and_unknown_model(api, server):
    limit = server.settings.max_embedding_inputs
    with pytest.raises(openai.BadRequestError) as too_many:
        await api.embeddings.create(model=MODEL, input=["x"] * (limit + 1))
    assert too_many.value.body["param"] == "input" and str(limit) in too_many.value.body["message"]
    with pytest.raises(openai.NotFoundError) as unknown:
        await api.embeddings.create(model="no-such-model", input="x")
    assert unknown.value.body["code"] == "model_not_found"


async def test_embeddings_are_a_usage_row(server, client):
    r = await client.post("/v1/embeddings", json={"model": MODEL, "input": ["one two three", "four"]},
                          headers={"X-Request-Id": "embed-usage-1"})
    tokens = r.json()["usage"]["prompt_tokens"]
    assert r.status_code == 200 and tokens >= 4
    server.call(server.container.service.usage_writer.flush())
    assert server.call(server.container.usage.count("embed-usage-1")) == 1


# -- models, routes -------------------------------------------------------------------------

async def test_retrieve_a_model(api, client):
    model = await api.models.retrieve(MODEL)
    assert model.id == MODEL and model.object == "model" and model.owned_by
    with pytest.raises(openai.NotFoundError):
        await api.models.retrieve("no-such-model")
    assert (await client.get("/v1/models/")).status_code == 404


@pytest.mark.parametrize("method, path, status", [
    ("GET", "/v1/nope", 404), ("POST", "/v1/engines/x/completions", 404), ("GET", "/v1", 404),
    ("GET", "/v1/chat/completions", 405), ("DELETE", "/v1/models", 405), ("GET", "/v1/embeddings", 405),
    ("PUT", "/v1/completions", 405),
])
async def test_unknown_routes_and_wrong_methods_answer_in_openai_shape(client, method, path, status):
    r = await client.request(method, path)
    assert r.status_code == status
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and method in error["message"] and path in error["message"]
    if status == 405:
        assert r.headers["allow"]


async def test_routes_outside_v1_keep_their_shape(client):
    r = await client.get("/no-such-page")
    assert r.status_code == 404 and "error" not in r.json()


# -- legacy completions -------------------------------------------------------------------

async def test_sdk_completion(api):
    done = await api.completions.create(model=MODEL, prompt="The capital of France is", temperature=0)
    choice = done.choices[0]
    assert done.object == "text_completion" and choice.text and choice.index == 0
    assert choice.finish_reason in ("stop", "length")
    # max_tokens defaults to 16, as OpenAI documents for this endpoint
    assert 0 < done.usage.completion_tokens <= 16 and done.usage.prompt_tokens > 0


async def test_sdk_completion_stream_and_usage(api):
    stream = await api.completions.create(model=MODEL, prompt="Once upon a time", max_tokens=5, stream=True,
                                          stream_options={"include_usage": True})
    parts, finish, usage = [], None, None
    async for chunk in stream:
        assert chunk.object == "text_completion"
        for choice in chunk.choices:
            parts.append(choice.text)
            finish = choice.finish_reason or finish
        usage = chunk.usage or usage
    assert "".join(parts) and finish == "length" and usage.completion_tokens == 5


async def test_completion_echo_list_and_stop(client):
    r = await client.post("/v1/completions", json={"model": MODEL, "prompt": ["1, 2, 3,", "a, b, c,"],
                                                   "max_tokens": 6, "echo": True, "temperature": 0})
    body = r.json()
    assert [c["index"] for c in body["choices"]] == [0, 1]
    assert body["choices"][0]["text"].startswith("1, 2, 3,") and body["choices"][1]["text"].startswith("a, b, c,")
    assert body["usage"]["completion_tokens"] <= 12
    plain = (await client.post("/v1/completions", json={"model": MODEL, "prompt": "1, 2, 3,", "max_tokens": 6,
                                                        "temperature": 0})).json()["choices"][0]["text"]
    stop = plain.strip()[:1]
    stopped = (await client.post("/v1/completions", json={"model": MODEL, "prompt": "1, 2, 3,", "max_tokens": 6,
                                                          "temperature": 0, "stop": [stop]})).json()
    assert stop not in stopped["choices"][0]["text"] and stopped["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize("payload, param", [
    ({"suffix": "end"}, "suffix"), ({"prompt": [1, 2, 3]}, "prompt"), ({"logprobs": 2}, "logprobs"),
    ({"n": 2}, "n"), ({"best_of": 3}, "best_of"), ({"prompt": []}, "prompt"), ({"max_tokens": 0}, "max_tokens"),
    ({"frequency_penalty": 1}, "frequency_penalty"), ({"logit_bias": {"1": -100}}, "logit_bias"),
])
async def test_unsupported_completion_parameters_are_named(client, payload, param):
    r = await client.post("/v1/completions", json={"model": MODEL, "prompt": "hi", **payload})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param


async def test_completion_unknown_model_and_context(client):
    r = await client.post("/v1/completions", json={"model": "nope", "prompt": "hi"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
    r = await client.post("/v1/completions", json={"model": MODEL, "prompt": "word " * 9000})
    assert r.status_code == 400 and r.json()["error"]["code"] == "context_length_exceeded"


# -- chat with tools, json and stream: validated like the rest -------------------------------

TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                          "required": ["city"]}}}]


async def test_chat_tool_calls_match_openai_schemas(client):
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Weather in Paris?"}], "tools": TOOLS,
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}}, "max_tokens": 40,
            "temperature": 0}
    r = await client.post("/v1/chat/completions", json=body)
    message = r.json()["choices"][0]["message"]
    assert message["tool_calls"][0]["function"]["name"] == "get_weather"
    json.loads(message["tool_calls"][0]["function"]["arguments"])
    r, events = await collect_sse(client, "POST", "/v1/chat/completions",
                                  json={**body, "stream": True, "stream_options": {"include_usage": True}})
    deltas = [json.loads(e.data) for e in events if e.data != "[DONE]"]
    assert any(c["choices"] and c["choices"][0]["delta"].get("tool_calls") for c in deltas)
    assert "system_fingerprint" not in deltas[0]


async def test_one_prompt_that_cannot_start_fails_the_request_and_frees_the_others(server, client):
    r = await client.post("/v1/completions", json={"model": MODEL, "prompt": ["Hi", "word " * 9000],
                                                   "max_tokens": 200})
    assert r.status_code == 400 and r.json()["error"]["code"] == "context_length_exceeded"
    import asyncio
    for _ in range(100):  # the started one is closed, not left decoding its 200 tokens
        if server.container.service.metrics.active_streams == 0:
            break
        await asyncio.sleep(0.02)
    assert server.container.service.metrics.active_streams == 0


async def test_the_bots_dialects_v1_chat_keeps_its_own_shape(server):
    """``POST /v1/chat`` is the bots dialect's, whose errors are ``{"detail": …}``: a wrong method
    there keeps that shape, not OpenAI's."""
    async with httpx.AsyncClient(base_url=server.url) as plain:
        r = await plain.get("/v1/chat")
    assert r.status_code == 405 and r.json() == {"detail": "Method Not Allowed"}
