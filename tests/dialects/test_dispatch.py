"""``POST /api/chat``: ``messages`` goes to the builder, ``message`` to conversations,
anything else is a 400 in the builder's shape (API.md §2, §3)."""

from __future__ import annotations

import uuid

import pytest

from support import ScriptedProvider, collect_sse, register_scripted


@pytest.fixture(autouse=True)
def short_replies(server, monkeypatch):
    monkeypatch.setattr(server.settings, "max_tokens_cap", 6)


@pytest.fixture
def model(server) -> str:
    name = f"scripted-{uuid.uuid4().hex[:8]}"
    register_scripted(server, name, ScriptedProvider("Dispatched."))
    return name


async def test_messages_go_to_the_builder(client, model):
    r, events = await collect_sse(client, "POST", "/api/chat",
                                  json={"messages": [{"role": "user", "content": "hi"}], "model": model,
                                        "enableDSL": False})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    assert [e.json() for e in events] == [
        {"type": "chat", "content": r.headers["x-chat-id"]}, {"type": "text", "content": "Dispatched."},
        {"type": "done", "content": ""}]


async def test_message_goes_to_conversations_through_the_real_model(client):
    r = await client.post("/api/chat", json={"message": "Say hi", "userId": f"u-{uuid.uuid4().hex}"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["success"] is True and body["data"]["conversationId"].startswith("conv_")
    assert body["data"]["response"] and 0 < body["data"]["usage"]["completionTokens"] <= 6


async def test_a_body_with_both_is_the_builders(client, model):
    body = {"messages": [{"role": "user", "content": "hi"}], "message": "ignored", "model": model}
    r, events = await collect_sse(client, "POST", "/api/chat", json=body)
    assert r.status_code == 200 and events[-1].json() == {"type": "done", "content": ""}


@pytest.mark.parametrize(
    ("content", "field", "message"),
    [
        (b'{"model": "x"}', "messages", "Field required (or `message` for the conversations API)"),
        (b"{}", "messages", "Field required (or `message` for the conversations API)"),
        (b"[]", "body", "Request body must be a JSON object"),
        (b'"hello"', "body", "Request body must be a JSON object"),
        (b"null", "body", "Request body must be a JSON object"),
        (b"42", "body", "Request body must be a JSON object"),
        (b'{"messages": [', "body", "Request body is not valid JSON"),
        (b"", "body", "Request body is not valid JSON"),
        (b"\xff\xfe", "body", "Request body is not valid JSON"),
    ],
)
async def test_neither_shape_is_a_builder_validation_error(client, content, field, message):
    r = await client.post("/api/chat", content=content, headers={"content-type": "application/json"})
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert error["details"] == [{"field": field, "message": message}]
    assert r.headers["x-request-id"]


async def test_each_dialect_renders_its_own_validation_errors(client):
    builder = await client.post("/api/chat", json={"messages": "not a list"})
    assert builder.status_code == 400 and set(builder.json()) == {"error"}
    assert builder.json()["error"]["code"] == "VALIDATION_ERROR"
    conversations = await client.post("/api/chat", json={"message": 42})
    assert conversations.status_code == 400
    assert conversations.json()["success"] is False
    assert conversations.json()["error"]["code"] == "INVALID_REQUEST"


async def test_each_dialect_renders_its_own_not_found(client):
    r = await client.post("/api/chat", json={"message": "hi", "conversationId": "conv_missing"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "CONVERSATION_NOT_FOUND"
    r = await client.post("/api/chat", json={"message": "hi", "model": "gpt-5"})
    assert r.status_code == 400 and r.json()["success"] is False
    r = await client.post("/api/chat", json={"messages": [{"role": "user", "content": "hi"}], "model": "gpt-5"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "INVALID_MODEL"


async def test_oversized_body_is_413_before_dispatch(client):
    r = await client.post("/api/chat", content=b'{"message": "' + b"x" * (1024 * 1024) + b'"}')
    assert r.status_code == 413 and r.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"


async def test_openapi_documents_both_request_shapes(client):
    spec = (await client.get("/openapi.json")).json()
    operation = spec["paths"]["/api/chat"]["post"]
    shapes = operation["requestBody"]["content"]["application/json"]["schema"]["anyOf"]
    assert [s["required"] for s in shapes] == [["messages"], ["message"]]
    assert set(shapes[0]["properties"]) == {"messages", "chatId", "model", "temperature", "enableDSL"}
    assert set(shapes[1]["properties"]) == {"message", "userId", "groupId", "preset", "conversationId", "model"}
    assert shapes[0]["properties"]["messages"]["items"]["properties"]["role"]["enum"] == ["system", "user", "assistant"]
    assert "$ref" not in str(shapes)  # self-contained: no dangling $defs references
    assert "/api/chat/stream" in spec["paths"] and "/api/conversations/{conversation_id}/clear" in spec["paths"]
