"""The builder dialect (API.md §2): stored chats as typed SSE events.

Real model and real SQLite; the scripted provider only where a test needs exact
text or a slow stream (stop, disconnect). The builder's wire has no maxTokens,
so replies are bounded by the server's ``max_tokens_cap``, set small here.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import datetime

import pytest
from starlette.requests import Request

from hubbub.core.events import ChatCreated, Done, DslUpdate, ErrorEvent, PhaseChange, TextDelta
from hubbub.core.types import Conversation, Message
from hubbub.dialects.builder import adapter
from hubbub.http.sse import frame
from hubbub.errors import (
    ChannelUnavailable,
    ContextTooLong,
    FieldProblem,
    InvalidRequest,
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
HELLO = [{"role": "user", "content": "Say hello."}]


@pytest.fixture(autouse=True)
def short_replies(server, monkeypatch):
    monkeypatch.setattr(server.settings, "max_tokens_cap", CAP)


def scripted(server, reply: str, delay: float = 0.0, provider: ScriptedProvider | None = None) -> tuple[str, ScriptedProvider]:
    model = f"scripted-{uuid.uuid4().hex[:8]}"
    provider = provider or ScriptedProvider(reply, delay)
    register_scripted(server, model, provider)
    return model, provider


async def wait_for_status(client, chat_id: str, statuses: tuple[str, ...], timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = (await client.get(f"/api/chat/{chat_id}")).json()
        if body["status"] in statuses:
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"chat {chat_id} never reached {statuses}")


class FailingProvider(ScriptedProvider):
    """Sends one word, then fails the way ``error`` says."""

    def __init__(self, error: Exception) -> None:
        super().__init__("partial")
        self.error = error

    async def stream(self, request):  # noqa: ANN001
        self.requests.append(request)
        yield TextDelta("partial")
        raise self.error


# -- the stream ---------------------------------------------------------------


async def test_new_chat_streams_chat_text_done_with_increasing_ids(client):
    # enableDSL off: this test pins the text events alone (the DSL's dsl/phase events have their own tests)
    r, events = await collect_sse(client, "POST", "/api/chat", json={"messages": HELLO, "enableDSL": False})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["cache-control"] == "no-cache" and r.headers["x-accel-buffering"] == "no"
    chat_id = r.headers["x-chat-id"]
    assert chat_id.startswith("chat_")
    bodies = [e.json() for e in events]
    assert bodies[0] == {"type": "chat", "content": chat_id}
    assert bodies[-1] == {"type": "done", "content": ""}
    texts = bodies[1:-1]
    assert texts and all(b["type"] == "text" and isinstance(b["content"], str) for b in texts)
    ids = [int(e.id) for e in events]
    assert ids == sorted(set(ids)) and ids[0] >= 1

    chat = (await client.get(f"/api/chat/{chat_id}")).json()
    assert set(chat) == {"id", "messages", "dsl", "phase", "status"}
    assert chat["id"] == chat_id and chat["status"] == "complete"
    assert chat["dsl"] is None and chat["phase"] is None
    user, answer = chat["messages"]
    assert (user["role"], user["content"]) == ("user", "Say hello.")
    assert answer["role"] == "assistant" and answer["status"] == "complete"
    assert answer["content"] == "".join(b["content"] for b in texts)
    created = datetime.fromisoformat(answer["createdAt"].replace("Z", "+00:00"))
    assert answer["createdAt"].endswith("Z") and abs(created.timestamp() - time.time()) < 300


async def test_existing_chat_appends_only_the_last_user_message(client, server):
    model, provider = scripted(server, "Noted, thanks.")
    first = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "one"}]
    off = {"model": model, "enableDSL": False}  # no DSL guidance in the prompt: it is compared exactly
    r, _ = await collect_sse(client, "POST", "/api/chat", json={"messages": first, **off})
    chat_id = r.headers["x-chat-id"]
    # A client that resends the whole history (with a made-up answer) and one that sends only the new turn.
    resend = [*first, {"role": "assistant", "content": "INVENTED"}, {"role": "user", "content": "two"}]
    await collect_sse(client, "POST", "/api/chat", json={"messages": resend, "chatId": chat_id, **off})
    await collect_sse(client, "POST", "/api/chat", json={"messages": [{"role": "user", "content": "three"}],
                                                         "chatId": chat_id, **off})
    chat = (await client.get(f"/api/chat/{chat_id}")).json()
    assert [(m["role"], m["content"]) for m in chat["messages"]] == [
        ("system", "Be brief."), ("user", "one"), ("assistant", "Noted, thanks."),
        ("user", "two"), ("assistant", "Noted, thanks."), ("user", "three"), ("assistant", "Noted, thanks."),
    ]
    assert provider.requests[-1].messages == [
        Message("system", "Be brief."), Message("user", "one"), Message("assistant", "Noted, thanks."),
        Message("user", "two"), Message("assistant", "Noted, thanks."), Message("user", "three"),
    ]


async def test_unknown_chat_id_creates_the_chat_with_that_id(client, server):
    model, _ = scripted(server, "Hi.")
    chat_id = f"my-chat.{uuid.uuid4().hex[:8]}"
    r, events = await collect_sse(client, "POST", "/api/chat",
                                  json={"messages": HELLO, "chatId": chat_id, "model": model})
    assert r.headers["x-chat-id"] == chat_id and events[0].json() == {"type": "chat", "content": chat_id}
    assert [m["content"] for m in (await client.get(f"/api/chat/{chat_id}")).json()["messages"]] == ["Say hello.", "Hi."]


async def test_concurrent_turns_on_one_new_chat_id_both_land(client, server):
    model, _ = scripted(server, "done", delay=0.01)
    chat_id = f"chat_{uuid.uuid4().hex[:12]}"
    bodies = [{"messages": [{"role": "user", "content": word}], "chatId": chat_id, "model": model}
              for word in ("first", "second")]
    results = await asyncio.gather(*(collect_sse(client, "POST", "/api/chat", json=b) for b in bodies))
    assert [r.status_code for r, _ in results] == [200, 200]
    assert all(events[-1].json()["type"] == "done" for _, events in results)
    chat = (await client.get(f"/api/chat/{chat_id}")).json()
    assert sorted(m["content"] for m in chat["messages"] if m["role"] == "user") == ["first", "second"]
    assert [m["role"] for m in chat["messages"]] == ["user", "assistant", "user", "assistant"]


async def test_temperature_default_and_cap_bound_the_request(client, server):
    model, provider = scripted(server, "ok")
    r, _ = await collect_sse(client, "POST", "/api/chat", json={"messages": HELLO, "model": model})
    assert provider.requests[-1].params.temperature == 0.3
    assert provider.requests[-1].params.max_tokens == CAP
    await collect_sse(client, "POST", "/api/chat", json={"messages": HELLO, "model": model, "temperature": 1.5})
    assert provider.requests[-1].params.temperature == 1.5


async def test_a_chat_keeps_the_model_it_was_created_with(client, server):
    model, provider = scripted(server, "again")
    r, _ = await collect_sse(client, "POST", "/api/chat", json={"messages": HELLO, "model": model})
    chat_id = r.headers["x-chat-id"]
    await collect_sse(client, "POST", "/api/chat", json={"messages": HELLO, "chatId": chat_id})
    assert len(provider.requests) == 2


async def test_dsl_and_phase_events_follow_enable_dsl(client, server, monkeypatch):
    model, _ = scripted(server, "A blog, then.")
    seen: list[dict] = []

    class Hook:
        async def after_turn(self, ctx):  # noqa: ANN001
            seen.append(ctx.options)
            return [DslUpdate({"entities": {}, "relationships": []}), PhaseChange("clarifying")]

    monkeypatch.setattr(server.container.turns, "hooks", [Hook()])  # only this hook, not the real DSL one
    _, on = await collect_sse(client, "POST", "/api/chat", json={"messages": HELLO, "model": model})
    _, off = await collect_sse(client, "POST", "/api/chat",
                               json={"messages": HELLO, "model": model, "enableDSL": False})
    assert [e.json()["type"] for e in on][-3:] == ["dsl", "phase", "done"]
    assert on[-3].json() == {"type": "dsl", "content": {"entities": {}, "relationships": []}}
    assert on[-2].json() == {"type": "phase", "content": "clarifying"}
    assert [e.json()["type"] for e in off] == ["chat", "text", "text", "text", "done"]
    assert [int(e.id) for e in on] == sorted(int(e.id) for e in on)
    assert [o["enable_dsl"] for o in seen] == [True, False]


async def test_model_failure_mid_stream_is_an_error_event_then_done(client, server):
    model, _ = scripted(server, "", provider=FailingProvider(UpstreamError("Model error", details="boom")))
    r, events = await collect_sse(client, "POST", "/api/chat", json={"messages": HELLO, "model": model})
    assert r.status_code == 200
    assert [e.json() for e in events[1:]] == [
        {"type": "text", "content": "partial"},
        {"type": "error", "content": {"code": "LLM_ERROR", "message": "Model error"}},
        {"type": "done", "content": ""},
    ]
    chat = (await client.get(f"/api/chat/{r.headers['x-chat-id']}")).json()
    assert chat["status"] == "error" and chat["messages"][-1]["content"] == "partial"


# -- disconnects and stop -------------------------------------------------------


async def test_generation_continues_after_the_client_disconnects(client):
    async with client.stream("POST", "/api/chat", json={"messages": HELLO}) as r:
        chat_id = r.headers["x-chat-id"]
        async for event in sse_events(r):
            if event.json()["type"] == "text":
                break  # leave mid-stream
    chat = await wait_for_status(client, chat_id, ("complete", "stopped", "interrupted", "error"))
    assert chat["status"] == "complete" and chat["messages"][-1]["content"]


async def test_disconnected_generation_stores_the_whole_answer(client, server):
    reply = "one two three four five six seven eight"
    model, _ = scripted(server, reply, delay=0.05)
    async with client.stream("POST", "/api/chat", json={"messages": HELLO, "model": model}) as r:
        chat_id = r.headers["x-chat-id"]
        async for event in sse_events(r):
            if event.json()["type"] == "text":
                break
    chat = await wait_for_status(client, chat_id, ("complete", "stopped", "interrupted", "error"))
    assert chat["status"] == "complete" and chat["messages"][-1]["content"] == reply


async def test_stop_keeps_the_partial_answer(client, server):
    reply = " ".join(f"w{i}" for i in range(60))
    model, _ = scripted(server, reply, delay=0.05)
    async with client.stream("POST", "/api/chat", json={"messages": HELLO, "model": model}) as r:
        chat_id = r.headers["x-chat-id"]
        events = sse_events(r)
        received = [await anext(events), await anext(events), await anext(events)]
        running = (await client.get(f"/api/chat/{chat_id}")).json()
        assert running["status"] == "streaming" and running["messages"][-1]["status"] == "streaming"
        assert (await client.post(f"/api/chat/{chat_id}/stop")).json() == {"stopped": True}
        received += [e async for e in events]
    bodies = [e.json() for e in received]
    assert bodies[-1] == {"type": "done", "content": ""}
    text = "".join(b["content"] for b in bodies if b["type"] == "text")
    chat = (await client.get(f"/api/chat/{chat_id}")).json()
    assert chat["status"] == "stopped"
    assert chat["messages"][-1]["content"] == text and 0 < len(text) < len(reply)
    # Nothing runs any more.
    assert (await client.post(f"/api/chat/{chat_id}/stop")).json() == {"stopped": False}


async def test_chat_without_answers_is_idle(client, server):
    chat_id = f"chat_{uuid.uuid4().hex[:12]}"
    server.call(server.container.conversations.create(Conversation(id=chat_id, kind="chat")))
    body = (await client.get(f"/api/chat/{chat_id}")).json()
    assert body == {"id": chat_id, "messages": [], "dsl": None, "phase": None, "status": "idle"}
    assert (await client.post(f"/api/chat/{chat_id}/stop")).json() == {"stopped": False}


# -- errors -------------------------------------------------------------------


async def test_unknown_chat_is_404(client, server):
    for r in (await client.get("/api/chat/nope"), await client.post("/api/chat/nope/stop")):
        assert r.status_code == 404
        assert r.json() == {"error": {"code": "CHAT_NOT_FOUND", "message": "Chat not found: nope"}}
    conv_id = f"conv_{uuid.uuid4().hex[:12]}"
    server.call(server.container.conversations.create(Conversation(id=conv_id, kind="conversation")))
    assert (await client.get(f"/api/chat/{conv_id}")).status_code == 404
    r = await client.post("/api/chat", json={"messages": HELLO, "chatId": conv_id})
    assert r.status_code == 400 and r.json()["error"]["details"][0]["field"] == "chatId"


async def test_unknown_model_is_invalid_model_and_creates_nothing(client):
    chat_id = f"chat_{uuid.uuid4().hex[:12]}"
    r = await client.post("/api/chat", json={"messages": HELLO, "model": "gpt-5", "chatId": chat_id})
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "INVALID_MODEL" and error["message"] == "Model 'gpt-5' is not available"
    assert EMBEDDED_MODEL_ID in error["availableModels"]
    assert (await client.get(f"/api/chat/{chat_id}")).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"messages": []}, "messages"),
        ({"messages": "hi"}, "messages"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages.0.role"),
        ({"messages": [{"role": "user"}]}, "messages.0.content"),
        ({"messages": [{"role": "assistant", "content": "x"}]}, "messages"),
        ({"messages": HELLO, "temperature": 3}, "temperature"),
        ({"messages": HELLO, "temperature": "warm"}, "temperature"),
        ({"messages": HELLO, "enableDSL": "sometimes"}, "enableDSL"),
        ({"messages": HELLO, "chatId": "../etc"}, "chatId"),
        ({"messages": HELLO, "chatId": "x" * 65}, "chatId"),
        ({"messages": HELLO, "model": ""}, "model"),
    ],
)
async def test_bad_bodies_are_validation_errors(client, body, field):
    r = await client.post("/api/chat", json=body)
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "VALIDATION_ERROR" and error["message"]
    assert field in [d["field"] for d in error["details"]]
    assert all(set(d) == {"field", "message"} for d in error["details"])


async def test_unknown_fields_are_ignored(client, server):
    model, _ = scripted(server, "fine")
    body = {"messages": [{"role": "user", "content": "hi", "name": "x", "id": 3}], "model": model,
            "stream": False, "maxTokens": 2, "extra": {"nested": True}}
    r, events = await collect_sse(client, "POST", "/api/chat", json=body)
    assert r.status_code == 200 and events[-1].json() == {"type": "done", "content": ""}


async def test_context_length_exceeded_uses_the_model_tokenizer(client, server):
    text = "hello " * 9000
    provider = server.container.registry.get(EMBEDDED_MODEL_ID).provider
    expected = server.call(provider.count_tokens([Message("user", text)], EMBEDDED_MODEL_ID))
    chat_id = f"chat_{uuid.uuid4().hex[:12]}"
    r = await client.post("/api/chat", json={"messages": [{"role": "user", "content": text}], "chatId": chat_id,
                                             "enableDSL": False})
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "CONTEXT_LENGTH_EXCEEDED"
    assert error["maxLength"] == 8192 and error["requestLength"] == expected > 8192
    assert (await client.get(f"/api/chat/{chat_id}")).status_code == 404  # nothing left behind


async def test_too_large_body_is_413(client):
    r = await client.post("/api/chat", json={"messages": [{"role": "user", "content": "x" * (1024 * 1024 + 10)}]})
    assert r.status_code == 413 and r.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"


def _request() -> Request:
    return Request({"type": "http", "method": "POST", "path": "/api/chat", "headers": [],
                    "state": {"request_id": "rid-123"}})


@pytest.mark.parametrize(
    ("exc", "status", "error"),
    [
        (RateLimited(60), 429, {"code": "RATE_LIMITED", "message": "Too many requests. Please wait 60 seconds.",
                                "retryAfter": 60}),
        (ModelNotFound("gpt-5", ["a", "b"]), 400, {"code": "INVALID_MODEL", "message": "Model 'gpt-5' is not available",
                                                   "availableModels": ["a", "b"]}),
        (UpstreamError("Failed to connect to LLM service", details="Check your key"), 502,
         {"code": "LLM_ERROR", "message": "Failed to connect to LLM service", "details": "Check your key"}),
        (NotFound("chat", "c1"), 404, {"code": "CHAT_NOT_FOUND", "message": "Chat not found: c1"}),
        (InvalidRequest(details=[FieldProblem("messages", "Field required")]), 400,
         {"code": "VALIDATION_ERROR", "message": "messages: Field required",
          "details": [{"field": "messages", "message": "Field required"}]}),
        (Unauthorized(), 401, {"code": "UNAUTHORIZED", "message": "Unauthorized"}),
        (ContextTooLong(4096, 5000), 400, {"code": "CONTEXT_LENGTH_EXCEEDED", "maxLength": 4096,
                                           "requestLength": 5000}),
        (ChannelUnavailable(), 503, {"code": "CHANNEL_UNAVAILABLE", "message": "No available channels"}),
        (PayloadTooLarge(10), 413, {"code": "PAYLOAD_TOO_LARGE"}),
        (RuntimeError("secret stack detail"), 500, {"code": "INTERNAL_ERROR", "message": "Internal server error",
                                                    "requestId": "rid-123"}),
    ],
)
def test_render_error_maps_every_error(exc, status, error):
    response = adapter.render_error(exc, _request())
    assert response.status_code == status
    body = json.loads(response.body)
    assert set(body) == {"error"}
    assert error.items() <= body["error"].items()
    assert "secret" not in response.body.decode()
    assert (response.headers.get("retry-after") == "60") == isinstance(exc, RateLimited)


def test_event_frames_byte_for_byte():
    assert frame(adapter.event_body(TextDelta("hé"), True), 3) == (
        'id: 3\ndata: {"type":"text","content":"hé"}\n\n'.encode()
    )
    assert adapter.event_body(ChatCreated("c1"), True) == {"type": "chat", "content": "c1"}
    assert adapter.event_body(ErrorEvent("CHANNEL_UNAVAILABLE", "m"), True) == {
        "type": "error", "content": {"code": "CHANNEL_UNAVAILABLE", "message": "m"}}
    assert adapter.event_body(DslUpdate({"a": 1}), False) is None
    assert adapter.event_body(PhaseChange("ready"), True) == {"type": "phase", "content": "ready"}
    assert adapter.event_body(Done("stopped"), True) == {"type": "done", "content": ""}


def test_stop_before_the_turn_task_has_started_still_finishes_the_turn(server):
    """Regression: a stop that lands before the background task first runs must not leave the
    answer ``streaming`` forever (the task was cancelled before its bookkeeping could run)."""
    from hubbub.core.turns import TurnOptions

    model, provider = scripted(server, "never sent")
    repo, turns = server.container.conversations, server.container.turns

    async def start_then_stop() -> tuple[bool, list]:
        conv = await repo.create(Conversation(id=f"chat_{uuid.uuid4().hex[:12]}", kind="chat"))
        await turns.start(conv, [Message("user", "hi")], TurnOptions(model=model))
        stopped = await turns.stop(conv.id)  # same loop tick: the task has not started yet
        return stopped, await repo.messages(conv.id)

    stopped, messages = server.call(start_then_stop())
    assert stopped is True
    assert (messages[-1].status, messages[-1].content) == ("stopped", "")
    assert provider.requests == []
