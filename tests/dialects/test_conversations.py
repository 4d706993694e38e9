"""The conversations dialect (API.md §3): stored conversations per user, group and preset.

Real model and real SQLite; the scripted provider only where a test needs exact
text, a slow stream, or a tiny context window. A preset with ``maxTokens`` keeps
real-model replies short.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest
from starlette.requests import Request

from hubbub.core.events import TextDelta
from hubbub.core.service import DEFAULT_SYSTEM_PROMPT
from hubbub.core.types import Bot, Conversation, Message
from hubbub.dialects.conversations import adapter
from hubbub.errors import (
    ChannelUnavailable,
    ContextTooLong,
    ModelNotFound,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    Unauthorized,
    UpstreamError,
)
from hubbub.settings import EMBEDDED_MODEL_ID
from support import ScriptedProvider, collect_sse, register_scripted, sse_events

CAP = 6
TERSE_PROMPT = "You are terse. Answer in a few words."


@pytest.fixture(autouse=True)
def short_replies(server, monkeypatch):
    monkeypatch.setattr(server.settings, "max_tokens_cap", CAP)


@pytest.fixture(scope="module")
def terse(server) -> str:
    slug = f"terse-{uuid.uuid4().hex[:8]}"
    bot = Bot(uid="", slug=slug, name="Terse", system_prompt=TERSE_PROMPT, max_tokens=4, temperature=0.2)
    server.call(server.container.bots.create(bot))
    return slug


def scripted(server, reply: str = "ok", delay: float = 0.0, provider: ScriptedProvider | None = None,
             context_length: int = 4096) -> tuple[str, ScriptedProvider]:
    model = f"scripted-{uuid.uuid4().hex[:8]}"
    provider = provider or ScriptedProvider(reply, delay)
    register_scripted(server, model, provider, context_length=context_length)
    return model, provider


def user() -> str:
    return f"user-{uuid.uuid4().hex[:10]}"


def stored(server, conv_id: str) -> list:
    return server.call(server.container.conversations.messages(conv_id))


async def wait_until_done(server, conv_id: str, timeout: float = 90) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        messages = stored(server, conv_id)
        if messages and messages[-1].status != "streaming":
            return messages
        await asyncio.sleep(0.1)
    raise AssertionError(f"conversation {conv_id} never finished")


class FailingProvider(ScriptedProvider):
    def __init__(self, error: Exception) -> None:
        super().__init__("partial")
        self.error = error

    async def stream(self, request):  # noqa: ANN001
        self.requests.append(request)
        yield TextDelta("partial")
        raise self.error


# -- sending --------------------------------------------------------------------


async def test_send_answers_with_real_usage(client, server, terse):
    uid = user()
    body = {"message": "Hello, how are you?", "userId": uid, "groupId": "g1", "preset": terse}
    r = await client.post("/api/chat", json=body)
    assert r.status_code == 200
    out = r.json()
    assert out["success"] is True and set(out["data"]) == {"response", "conversationId", "usage"}
    data = out["data"]
    assert data["conversationId"].startswith("conv_") and data["response"]
    provider = server.container.registry.get(EMBEDDED_MODEL_ID).provider
    prompt = [Message("system", TERSE_PROMPT), Message("user", "Hello, how are you?")]
    expected_prompt = server.call(provider.count_tokens(prompt, EMBEDDED_MODEL_ID))
    usage = data["usage"]
    assert usage["promptTokens"] == expected_prompt
    assert 0 < usage["completionTokens"] <= 4  # the preset's maxTokens
    assert usage["totalTokens"] == usage["promptTokens"] + usage["completionTokens"]
    messages = stored(server, data["conversationId"])
    assert [(m.role, m.content, m.status) for m in messages] == [
        ("user", "Hello, how are you?", "complete"), ("assistant", data["response"], "complete")]


async def test_default_preset_applies_when_none_is_named(client, server):
    model, provider = scripted(server, "Fine.")
    r = await client.post("/api/chat", json={"message": "hi", "userId": user(), "model": model})
    assert r.json()["data"]["response"] == "Fine."
    assert provider.requests[-1].messages == [Message("system", DEFAULT_SYSTEM_PROMPT), Message("user", "hi")]
    assert provider.requests[-1].params.max_tokens == CAP  # the default bot sets none: the server cap


async def test_same_user_group_preset_continues_the_latest_conversation(client, server, terse):
    model, provider = scripted(server, "Sure.")
    uid = user()
    base = {"userId": uid, "groupId": "g", "preset": terse, "model": model}
    first = (await client.post("/api/chat", json={**base, "message": "one"})).json()["data"]["conversationId"]
    second = (await client.post("/api/chat", json={**base, "message": "two"})).json()["data"]["conversationId"]
    other_group = (await client.post("/api/chat", json={**base, "groupId": "h", "message": "x"})).json()
    other_preset = (await client.post("/api/chat", json={**base, "preset": "default", "message": "y"})).json()
    assert first == second
    assert len({first, other_group["data"]["conversationId"], other_preset["data"]["conversationId"]}) == 3
    assert provider.requests[1].messages == [
        Message("system", TERSE_PROMPT), Message("user", "one"), Message("assistant", "Sure."), Message("user", "two")]
    assert provider.requests[1].params.temperature == 0.2 and provider.requests[1].params.max_tokens == 4


async def test_conversation_id_continues_it_and_keeps_its_preset(client, server, terse):
    model, provider = scripted(server, "Yes.")
    conv = (await client.post("/api/chat", json={"message": "a", "preset": terse, "model": model,
                                                 "userId": user()})).json()["data"]["conversationId"]
    r = await client.post("/api/chat", json={"message": "b", "conversationId": conv, "model": model})
    assert r.json()["data"]["conversationId"] == conv
    assert provider.requests[-1].messages[0] == Message("system", TERSE_PROMPT)
    assert len(stored(server, conv)) == 4


async def test_numeric_user_and_group_ids_are_text(client, server):
    model, _ = scripted(server)
    uid = int(time.time() * 1000)
    await client.post("/api/chat", json={"message": "hi", "userId": uid, "groupId": 987654321, "model": model})
    listed = (await client.get("/api/conversations", params={"userId": str(uid)})).json()["data"]
    assert listed["total"] == 1 and listed["conversations"][0]["groupId"] == "987654321"


async def test_unknown_fields_are_ignored(client, server):
    model, _ = scripted(server)
    r = await client.post("/api/chat", json={"message": "hi", "model": model, "stream": True, "foo": {"bar": 1},
                                             "userId": user()})
    assert r.status_code == 200 and r.json()["success"] is True


# -- streaming ------------------------------------------------------------------


async def test_stream_start_content_end_with_ids(client, server, terse):
    uid = user()
    r, events = await collect_sse(client, "POST", "/api/chat/stream",
                                  json={"message": "Say hi", "userId": uid, "preset": terse})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    bodies = [e.json() for e in events]
    conv = bodies[0]["conversationId"]
    assert bodies[0] == {"type": "start", "conversationId": conv}
    assert all(b["type"] == "content" and isinstance(b["text"], str) for b in bodies[1:-1]) and len(bodies) > 2
    end = bodies[-1]
    assert end["type"] == "end" and set(end["usage"]) == {"promptTokens", "completionTokens", "totalTokens"}
    assert 0 < end["usage"]["completionTokens"] <= 4
    ids = [int(e.id) for e in events]
    assert ids == sorted(set(ids))
    answer = stored(server, conv)[-1]
    assert answer.content == "".join(b["text"] for b in bodies[1:-1]) and answer.status == "complete"


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [(UpstreamError("Model error", details="boom"), 502, "MODEL_ERROR"),
     (ChannelUnavailable(), 503, "CHANNEL_UNAVAILABLE")],
)
async def test_model_failures(client, server, error, status, code):
    model, _ = scripted(server, provider=FailingProvider(error))
    r = await client.post("/api/chat", json={"message": "hi", "model": model, "userId": user()})
    assert r.status_code == status
    assert r.json() == {"success": False, "error": {"code": code, "message": error.message}}
    _, events = await collect_sse(client, "POST", "/api/chat/stream",
                                  json={"message": "hi", "model": model, "userId": user()})
    assert [e.json() for e in events][1:] == [
        {"type": "content", "text": "partial"}, {"type": "error", "code": code, "message": error.message}]


async def test_generation_continues_after_a_stream_client_disconnects(client, server):
    reply = "one two three four five six seven"
    model, _ = scripted(server, reply, delay=0.05)
    async with client.stream("POST", "/api/chat/stream", json={"message": "hi", "model": model, "userId": user()}) as r:
        events = sse_events(r)
        conv = (await anext(events)).json()["conversationId"]
        await anext(events)  # one content event, then leave
    messages = await wait_until_done(server, conv)
    assert (messages[-1].status, messages[-1].content) == ("complete", reply)


# -- stop, delete, clear while running ----------------------------------------------


async def _running(client, server, reply_words: int = 80):
    """Start a slow scripted stream; returns (stream context, events iterator, conversation id)."""
    model, _ = scripted(server, " ".join(f"w{i}" for i in range(reply_words)), delay=0.05)
    ctx = client.stream("POST", "/api/chat/stream", json={"message": "hi", "model": model, "userId": user()})
    r = await ctx.__aenter__()
    events = sse_events(r)
    conv = (await anext(events)).json()["conversationId"]
    first = (await anext(events)).json()
    return ctx, events, conv, first


async def test_stop_keeps_the_partial_answer(client, server):
    ctx, events, conv, first = await _running(client, server)
    try:
        r = await client.post(f"/api/conversations/{conv}/stop")
        assert r.status_code == 200 and r.json() == {"success": True}
        rest = [e.json() async for e in events]
    finally:
        await ctx.__aexit__(None, None, None)
    assert rest[-1]["type"] == "end"
    text = first["text"] + "".join(b["text"] for b in rest if b["type"] == "content")
    answer = stored(server, conv)[-1]
    assert answer.status == "stopped" and answer.content == text and len(text.split()) < 80
    detail = (await client.get(f"/api/conversations/{conv}")).json()["data"]
    assert detail["messages"][-1] == {"role": "assistant", "content": text, "timestamp": answer.created_at}
    assert (await client.post(f"/api/conversations/{conv}/stop")).json() == {"success": True}  # idle: still fine


async def test_delete_while_running_stops_then_deletes(client, server):
    ctx, events, conv, _ = await _running(client, server)
    try:
        r = await client.delete(f"/api/conversations/{conv}")
        assert r.status_code == 200 and r.json() == {"success": True}
        assert not server.container.turns.is_running(conv)
    finally:
        await ctx.__aexit__(None, None, None)
    assert stored(server, conv) == []
    r = await client.get(f"/api/conversations/{conv}")
    assert r.status_code == 404 and r.json()["error"]["code"] == "CONVERSATION_NOT_FOUND"
    assert (await client.delete(f"/api/conversations/{conv}")).status_code == 404


async def test_clear_keeps_the_id_and_forgets_the_context(client, server):
    ctx, events, conv, _ = await _running(client, server)
    try:
        r = await client.post(f"/api/conversations/{conv}/clear")
        assert r.status_code == 200 and r.json() == {"success": True, "message": "Context cleared"}
    finally:
        await ctx.__aexit__(None, None, None)
    assert (await client.get(f"/api/conversations/{conv}")).json() == {
        "success": True, "data": {"id": conv, "messages": []}}
    model, provider = scripted(server, "Fresh.")
    r = await client.post("/api/chat", json={"message": "again", "conversationId": conv, "model": model})
    assert r.json()["data"]["conversationId"] == conv
    assert provider.requests[-1].messages == [Message("system", DEFAULT_SYSTEM_PROMPT), Message("user", "again")]


# -- listing and reading ---------------------------------------------------------------


async def test_list_filters_pages_and_orders_newest_first(client, server):
    model, _ = scripted(server, "Thanks for the help!")
    uid = user()
    ids = []
    for group in ("g1", "g2", "g3"):
        r = await client.post("/api/chat", json={"message": "hi", "userId": uid, "groupId": group, "model": model})
        ids.append(r.json()["data"]["conversationId"])
    before = time.time() * 1000
    page = (await client.get("/api/conversations", params={"userId": uid, "limit": 2})).json()
    assert page["success"] is True and page["data"]["total"] == 3
    convs = page["data"]["conversations"]
    assert [c["id"] for c in convs] == [ids[2], ids[1]]
    assert convs[0] == {"id": ids[2], "userId": uid, "groupId": "g3", "messageCount": 2,
                        "lastMessage": "Thanks for the help!", "updatedAt": convs[0]["updatedAt"]}
    assert isinstance(convs[0]["updatedAt"], int) and before - 120_000 < convs[0]["updatedAt"] <= before + 1000
    assert convs[0]["updatedAt"] >= convs[1]["updatedAt"]
    rest = (await client.get("/api/conversations", params={"userId": uid, "limit": 2, "offset": 2})).json()["data"]
    assert [c["id"] for c in rest["conversations"]] == [ids[0]] and rest["total"] == 3
    by_group = (await client.get("/api/conversations", params={"userId": uid, "groupId": "g2"})).json()["data"]
    assert [c["id"] for c in by_group["conversations"]] == [ids[1]]


async def test_builder_chats_are_not_listed(client, server):
    chat_id = f"chat_{uuid.uuid4().hex[:12]}"
    server.call(server.container.conversations.create(Conversation(id=chat_id, kind="chat")))
    listed = (await client.get("/api/conversations", params={"limit": 100})).json()["data"]["conversations"]
    assert chat_id not in [c["id"] for c in listed]
    r = await client.get(f"/api/conversations/{chat_id}")
    assert r.status_code == 404


@pytest.mark.parametrize("query", [{"limit": 0}, {"limit": 101}, {"offset": -1}, {"limit": "ten"}])
async def test_bad_paging_is_invalid_request(client, query):
    r = await client.get("/api/conversations", params=query)
    assert r.status_code == 400
    body = r.json()
    assert body["success"] is False and body["error"]["code"] == "INVALID_REQUEST"
    assert body["error"]["details"][0]["field"] == next(iter(query))


async def test_detail_lists_messages_with_timestamps(client, server):
    model, _ = scripted(server, "Hi there!")
    body = {"message": "Hello", "model": model, "userId": user()}
    conv = (await client.post("/api/chat", json=body)).json()["data"]["conversationId"]
    data = (await client.get(f"/api/conversations/{conv}")).json()["data"]
    assert data["id"] == conv
    assert [(m["role"], m["content"]) for m in data["messages"]] == [("user", "Hello"), ("assistant", "Hi there!")]
    assert all(isinstance(m["timestamp"], int) and m["timestamp"] > 1_600_000_000_000 for m in data["messages"])


# -- errors ---------------------------------------------------------------------------


async def test_unknown_conversation_is_404_everywhere(client):
    missing = "conv_doesnotexist"
    responses = [
        await client.post("/api/chat", json={"message": "hi", "conversationId": missing}),
        await client.get(f"/api/conversations/{missing}"),
        await client.delete(f"/api/conversations/{missing}"),
        await client.post(f"/api/conversations/{missing}/clear"),
        await client.post(f"/api/conversations/{missing}/stop"),
    ]
    for r in responses:
        assert r.status_code == 404
        assert r.json() == {"success": False, "error": {"code": "CONVERSATION_NOT_FOUND",
                                                        "message": f"Conversation not found: {missing}"}}
    r, _ = await collect_sse(client, "POST", "/api/chat/stream", json={"message": "hi", "conversationId": missing})
    assert r.status_code == 404


async def test_unknown_preset_and_model_are_invalid_requests_that_create_nothing(client):
    uid = user()
    r = await client.post("/api/chat", json={"message": "hi", "userId": uid, "preset": "no-such-bot"})
    assert r.status_code == 400
    assert r.json()["error"] == {"code": "INVALID_REQUEST", "message": "Unknown preset 'no-such-bot'"}
    r = await client.post("/api/chat/stream", json={"message": "hi", "userId": uid, "model": "gpt-5"})
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "INVALID_REQUEST" and EMBEDDED_MODEL_ID in error["availableModels"]
    assert (await client.get("/api/conversations", params={"userId": uid})).json()["data"]["total"] == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "message"), ({"message": ""}, "message"), ({"message": "   "}, "message"), ({"message": 5}, "message"),
     ({"message": "hi", "userId": ["x"]}, "userId"), ({"message": "hi", "preset": ""}, "preset"),
     ({"message": "hi", "conversationId": ""}, "conversationId")],
)
async def test_bad_bodies_are_invalid_requests(client, body, field):
    for url in ("/api/chat/stream", "/api/chat"):
        if url == "/api/chat" and "message" not in body:
            continue  # without ``message`` the dispatcher picks the builder (test_dispatch)
        r = await client.post(url, json=body)
        assert r.status_code == 400
        out = r.json()
        assert out["success"] is False and out["error"]["code"] == "INVALID_REQUEST"
        assert field in [d["field"] for d in out["error"]["details"]]


async def test_malformed_json_on_the_stream_route(client):
    r = await client.post("/api/chat/stream", content=b"{nope", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "INVALID_REQUEST"


# -- context length ---------------------------------------------------------------------


async def test_long_history_is_trimmed_oldest_first_keeping_the_system_prompt(client, server):
    model, provider = scripted(server, "ok", context_length=200)
    words = lambda tag: " ".join([tag] * 60)  # noqa: E731 - 64 scripted tokens per message
    conv = None
    for tag in ("first", "second", "third"):
        body = {"message": words(tag), "model": model, "userId": user()}
        if conv:
            body["conversationId"] = conv
        r = await client.post("/api/chat", json=body)
        assert r.status_code == 200 and r.json()["data"]["response"] == "ok"
        conv = r.json()["data"]["conversationId"]
    sent = provider.requests[-1].messages
    assert sent == [Message("system", DEFAULT_SYSTEM_PROMPT), Message("user", words("second")),
                    Message("assistant", "ok"), Message("user", words("third"))]
    assert await provider.count_tokens(sent) <= 200 - CAP
    assert len(stored(server, conv)) == 6  # trimming only shapes the prompt; nothing stored is lost


async def test_a_lone_message_that_fits_the_window_but_not_the_reserve_is_still_sent(client, server):
    """Regression: trimming used to drop the only user message when it fit the context
    but not the room kept for the answer, leaving the model just the system prompt."""
    model, provider = scripted(server, context_length=200)
    text = " ".join(["w"] * 185)  # 9 (system) + 189 = 198 tokens: under 200, over 200 - CAP
    r = await client.post("/api/chat", json={"message": text, "model": model, "userId": user()})
    assert r.status_code == 200
    assert provider.requests[-1].messages == [Message("system", DEFAULT_SYSTEM_PROMPT), Message("user", text)]
    assert provider.requests[-1].params.max_tokens == 2  # what is left of the window


async def test_input_that_cannot_fit_is_context_length_exceeded(client, server):
    model, _ = scripted(server, context_length=200)
    uid = user()
    r = await client.post("/api/chat", json={"message": " ".join(["w"] * 300), "model": model, "userId": uid})
    assert r.status_code == 400
    assert r.json()["error"] == {**r.json()["error"], "code": "CONTEXT_LENGTH_EXCEEDED", "maxLength": 200,
                                 "requestLength": 9 + 304}  # system (5 words + 4) + message (300 + 4)
    # Counted with the real model's tokenizer.
    text = "hello " * 9000
    provider = server.container.registry.get(EMBEDDED_MODEL_ID).provider
    expected = server.call(provider.count_tokens([Message("system", DEFAULT_SYSTEM_PROMPT), Message("user", text)]))
    r = await client.post("/api/chat/stream", json={"message": text, "userId": uid})
    assert r.status_code == 400
    error = r.json()["error"]
    assert (error["code"], error["maxLength"], error["requestLength"]) == ("CONTEXT_LENGTH_EXCEEDED", 8192, expected)
    assert (await client.get("/api/conversations", params={"userId": uid})).json()["data"]["total"] == 0


# -- the error mapper --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "status", "error"),
    [
        (NotFound("conversation", "c"), 404, {"code": "CONVERSATION_NOT_FOUND", "message": "Conversation not found: c"}),
        (ChannelUnavailable(), 503, {"code": "CHANNEL_UNAVAILABLE", "message": "No available channels"}),
        (RateLimited(30), 429, {"code": "RATE_LIMITED", "message": "Too many requests. Please wait 30 seconds.",
                                "retryAfter": 30}),
        (UpstreamError("Model error", details="secret upstream detail"), 502,
         {"code": "MODEL_ERROR", "message": "Model error"}),
        (Unauthorized(), 401, {"code": "UNAUTHORIZED", "message": "Unauthorized"}),
        (ModelNotFound("m", ["a"]), 400, {"code": "INVALID_REQUEST", "availableModels": ["a"]}),
        (ContextTooLong(10, 20), 400, {"code": "CONTEXT_LENGTH_EXCEEDED", "maxLength": 10, "requestLength": 20}),
        (PayloadTooLarge(5), 413, {"code": "PAYLOAD_TOO_LARGE"}),
        (KeyError("secret"), 500, {"code": "INTERNAL_ERROR", "message": "Internal server error",
                                   "requestId": "rid-9"}),
    ],
)
def test_render_error_maps_every_error(exc, status, error):
    request = Request({"type": "http", "method": "GET", "path": "/", "headers": [], "state": {"request_id": "rid-9"}})
    response = adapter.render_error(exc, request)
    assert response.status_code == status
    body = json.loads(response.body)
    assert body["success"] is False and error.items() <= body["error"].items()
    assert "secret" not in response.body.decode()
    assert (response.headers.get("retry-after") == "30") == isinstance(exc, RateLimited)


async def test_too_large_body_is_413(client):
    r = await client.post("/api/chat/stream", json={"message": "x" * (1024 * 1024 + 1)})
    assert r.status_code == 413
    assert r.json()["success"] is False and r.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
