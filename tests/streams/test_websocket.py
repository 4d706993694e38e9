"""``GET /api/chat/ws``: the builder dialect over a WebSocket (API.md §2, issue 5).

The event-sequence tests run one assertion against both transports (``sse``:
``POST /api/chat``; ``ws``: one socket), so the WebSocket route passes exactly
the SSE route's tests. Real model and SQLite; the scripted provider where a test
needs exact text, a slow stream (stop) or a failure.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from hubbub.core.events import DslUpdate, PhaseChange, TextDelta
from hubbub.errors import UpstreamError
from hubbub.settings import EMBEDDED_MODEL_ID
from support import ScriptedProvider, collect_sse, register_scripted, sse_events, start_server

CAP = 6


@pytest.fixture(autouse=True)
def short_replies(server, monkeypatch):
    monkeypatch.setattr(server.settings, "max_tokens_cap", CAP)


def ws_url(server, query: str = "") -> str:
    return f"ws://127.0.0.1:{server.port}/api/chat/ws{query}"


def scripted(server, reply: str = "", delay: float = 0.0, provider: ScriptedProvider | None = None) -> str:
    model = f"scripted-{uuid.uuid4().hex[:8]}"
    register_scripted(server, model, provider or ScriptedProvider(reply, delay))
    return model


class FailingProvider(ScriptedProvider):
    def __init__(self) -> None:
        super().__init__("partial")

    async def stream(self, request):  # noqa: ANN001
        self.requests.append(request)
        yield TextDelta("partial")
        raise UpstreamError("Model error", details="boom")


async def ws_turn(ws: ClientConnection, message: dict[str, Any], timeout: float = 90) -> list[dict[str, Any]]:
    """Send one message; the server's objects up to and including ``done`` (or a start error)."""
    await ws.send(json.dumps({"type": "message", **message}))
    return await ws_until_done(ws, timeout)


async def ws_until_done(ws: ClientConnection, timeout: float = 90) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while True:
            body = json.loads(await ws.recv())
            out.append(body)
            if body["type"] == "done" or (body["type"] == "error" and len(out) == 1):
                return out


class Transport:
    """One chat driven over SSE (a POST per turn) or one WebSocket; ``turn`` returns the event objects."""

    def __init__(self, kind: str, client, server) -> None:  # noqa: ANN001
        self.kind, self.client, self.server = kind, client, server
        self.chat_id: str | None = None
        self.ws: ClientConnection | None = None

    async def __aenter__(self) -> "Transport":
        if self.kind == "ws":
            self.ws = await connect(ws_url(self.server))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.ws is not None:
            await self.ws.close()

    async def turn(self, content: str, **extra: Any) -> list[dict[str, Any]]:
        if self.kind == "ws":
            assert self.ws is not None
            bodies = await ws_turn(self.ws, {"content": content, **extra})
        else:
            body = {"messages": [{"role": "user", "content": content}], **extra}
            if self.chat_id:
                body["chatId"] = self.chat_id
            r, events = await collect_sse(self.client, "POST", "/api/chat", json=body)
            assert r.status_code == 200, r.text
            bodies = [e.json() for e in events]
            assert r.headers["x-chat-id"] == bodies[0]["content"]
        if bodies and bodies[0]["type"] == "chat":
            self.chat_id = bodies[0]["content"]
        return bodies


def assert_turn(bodies: list[dict[str, Any]], chat_id: str | None = None, text: str | None = None) -> str:
    """The builder's event sequence: chat, text…, [dsl, phase], done. Returns the text."""
    assert bodies[0]["type"] == "chat" and isinstance(bodies[0]["content"], str)
    if chat_id is not None:
        assert bodies[0]["content"] == chat_id
    assert bodies[-1] == {"type": "done", "content": ""}
    middle = bodies[1:-1]
    tail = [b["type"] for b in middle if b["type"] != "text"]
    assert tail in ([], ["dsl", "phase"]), tail
    texts = middle[: len(middle) - len(tail)]
    assert texts and all(b["type"] == "text" and isinstance(b["content"], str) for b in texts)
    joined = "".join(b["content"] for b in texts)
    if text is not None:
        assert joined == text
    return joined


TRANSPORTS = pytest.mark.parametrize("kind", ["sse", "ws"])


@TRANSPORTS
async def test_a_new_chat_streams_chat_text_done_and_stores_the_answer(kind, client, server):
    async with Transport(kind, client, server) as t:
        bodies = await t.turn("Say hello.", enableDSL=False)
    text = assert_turn(bodies)
    chat = (await client.get(f"/api/chat/{t.chat_id}")).json()
    assert chat["status"] == "complete"
    assert [(m["role"], m["content"]) for m in chat["messages"]] == [("user", "Say hello."), ("assistant", text)]


@TRANSPORTS
async def test_later_messages_continue_the_same_chat(kind, client, server):
    model = scripted(server, "Noted, thanks.")
    async with Transport(kind, client, server) as t:
        first = await t.turn("one", model=model)
        chat_id = t.chat_id
        second = await t.turn("two", model=model)
    assert_turn(first, text="Noted, thanks.")
    assert_turn(second, chat_id=chat_id, text="Noted, thanks.")
    chat = (await client.get(f"/api/chat/{chat_id}")).json()
    assert [(m["role"], m["content"]) for m in chat["messages"]] == [
        ("user", "one"), ("assistant", "Noted, thanks."), ("user", "two"), ("assistant", "Noted, thanks."),
    ]


@TRANSPORTS
async def test_an_explicit_chat_id_is_used(kind, client, server):
    model = scripted(server, "Hi there.")
    chat_id = f"ws-chat.{uuid.uuid4().hex[:8]}"
    async with Transport(kind, client, server) as t:
        bodies = await t.turn("hello", model=model, chatId=chat_id)
    assert_turn(bodies, chat_id=chat_id, text="Hi there.")


@TRANSPORTS
async def test_dsl_and_phase_follow_enable_dsl(kind, client, server, monkeypatch):
    model = scripted(server, "A blog, then.")

    class Hook:  # stands in for the DSL extraction: fixed events, whatever the model said
        async def after_turn(self, ctx):  # noqa: ANN001
            return [DslUpdate({"entities": {}, "relationships": []}), PhaseChange("clarifying")]

    monkeypatch.setattr(server.container.turns, "hooks", [Hook()])
    async with Transport(kind, client, server) as t:
        on = await t.turn("a blog", model=model)
        off = await t.turn("a blog", model=model, enableDSL=False)
    assert_turn(on, text="A blog, then.")
    assert on[-3:] == [{"type": "dsl", "content": {"entities": {}, "relationships": []}},
                       {"type": "phase", "content": "clarifying"}, {"type": "done", "content": ""}]
    assert [b["type"] for b in off] == ["chat", "text", "text", "text", "done"]


@TRANSPORTS
async def test_a_failure_mid_stream_is_an_error_then_done(kind, client, server):
    model = scripted(server, provider=FailingProvider())
    async with Transport(kind, client, server) as t:
        bodies = await t.turn("hello", model=model)
    assert bodies[1:] == [
        {"type": "text", "content": "partial"},
        {"type": "error", "content": {"code": "LLM_ERROR", "message": "Model error"}},
        {"type": "done", "content": ""},
    ]
    chat = (await client.get(f"/api/chat/{t.chat_id}")).json()
    assert chat["status"] == "error" and chat["messages"][-1]["content"] == "partial"


@TRANSPORTS
async def test_the_generation_goes_on_after_the_client_leaves(kind, client, server):
    reply = "one two three four five six seven eight"
    model = scripted(server, reply, delay=0.05)
    body = {"messages": [{"role": "user", "content": "go"}], "model": model}
    if kind == "sse":
        async with client.stream("POST", "/api/chat", json=body) as r:
            chat_id = r.headers["x-chat-id"]
            async for _ in sse_events(r):
                break  # gone after the first event
    else:
        async with connect(ws_url(server)) as ws:
            await ws.send(json.dumps({"type": "message", "content": "go", "model": model}))
            chat_id = json.loads(await ws.recv())["content"]
    for _ in range(100):
        chat = (await client.get(f"/api/chat/{chat_id}")).json()
        if chat["status"] != "streaming":
            break
        await asyncio.sleep(0.05)
    assert chat["status"] == "complete" and chat["messages"][-1]["content"] == reply


# -- WebSocket only -------------------------------------------------------------


async def test_stop_ends_the_reply_with_done_and_keeps_the_partial_answer(client, server):
    reply = " ".join(f"w{i}" for i in range(80))
    model = scripted(server, reply, delay=0.05)
    async with connect(ws_url(server)) as ws:
        await ws.send(json.dumps({"type": "message", "content": "go", "model": model}))
        received = [json.loads(await ws.recv()) for _ in range(4)]  # chat + 3 texts
        await ws.send(json.dumps({"type": "stop"}))
        received += await ws_until_done(ws, timeout=5)
        text = assert_turn(received)
        chat_id = received[0]["content"]
        chat = (await client.get(f"/api/chat/{chat_id}")).json()
        assert chat["status"] == "stopped"
        assert chat["messages"][-1]["content"] == text and 0 < len(text) < len(reply)
        # The socket still serves its chat afterwards.
        again = await ws_turn(ws, {"content": "more", "model": scripted(server, "ok")})
        assert_turn(again, chat_id=chat_id, text="ok")


async def test_stop_right_after_a_message_stops_that_reply(client, server):
    reply = " ".join(f"w{i}" for i in range(200))
    model = scripted(server, reply, delay=0.02)
    async with connect(ws_url(server)) as ws:
        # Both frames arrive together: the stop lands while the turn is still starting.
        await ws.send(json.dumps({"type": "message", "content": "go", "model": model}))
        await ws.send(json.dumps({"type": "stop"}))
        bodies = await ws_until_done(ws, timeout=5)
    assert bodies[0]["type"] == "chat" and bodies[-1] == {"type": "done", "content": ""}
    chat = (await client.get(f"/api/chat/{bodies[0]['content']}")).json()
    assert chat["status"] == "stopped" and len(chat["messages"][-1]["content"]) < len(reply)


@pytest.mark.parametrize(
    "frame, field",
    [
        ("not json", "Message is not valid JSON"),
        ("[1, 2]", "Message must be a JSON object"),
        (json.dumps({"type": "shout"}), "type"),
        (json.dumps({"content": "no type"}), "type"),
        (json.dumps({"type": "message"}), "content"),
        (json.dumps({"type": "message", "content": 5}), "content"),
        (json.dumps({"type": "message", "content": "x", "chatId": "bad id!"}), "chatId"),
        (json.dumps({"type": "message", "content": "x", "enableDSL": "maybe"}), "enableDSL"),
    ],
)
async def test_bad_messages_are_validation_errors_and_the_socket_stays_open(server, frame, field):
    model = scripted(server, "still here")
    async with connect(ws_url(server)) as ws:
        await ws.send(frame)
        error = json.loads(await ws.recv())
        assert error["type"] == "error" and error["content"]["code"] == "VALIDATION_ERROR"
        assert field in error["content"]["message"]
        assert_turn(await ws_turn(ws, {"content": "hi", "model": model}), text="still here")


async def test_unknown_model_is_invalid_model_and_creates_nothing(client, server):
    async with connect(ws_url(server)) as ws:
        bodies = await ws_turn(ws, {"content": "hi", "model": "no-such-model", "chatId": "ws-unknown-model"})
        assert len(bodies) == 1 and bodies[0]["type"] == "error"
        error = bodies[0]["content"]
        assert error["code"] == "INVALID_MODEL" and EMBEDDED_MODEL_ID in error["availableModels"]
        assert (await client.get("/api/chat/ws-unknown-model")).status_code == 404
        assert_turn(await ws_turn(ws, {"content": "hi", "model": scripted(server, "fine")}), text="fine")


async def test_messages_sent_while_a_reply_streams_are_answered_in_order(client, server):
    model = scripted(server, "a b c d e", delay=0.02)
    async with connect(ws_url(server)) as ws:
        for word in ("one", "two", "three"):
            await ws.send(json.dumps({"type": "message", "content": word, "model": model}))
        turns = [await ws_until_done(ws) for _ in range(3)]
    chat_id = turns[0][0]["content"]
    for bodies in turns:
        assert_turn(bodies, chat_id=chat_id, text="a b c d e")
    chat = (await client.get(f"/api/chat/{chat_id}")).json()
    assert [m["content"] for m in chat["messages"] if m["role"] == "user"] == ["one", "two", "three"]


# -- auth and ownership ---------------------------------------------------------


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("ws-auth"), max_tokens_cap=4)

    async def make():
        _, alice = await srv.container.keys.create("alice")
        _, bob = await srv.container.keys.create("bob")
        return alice, bob

    srv.keys = srv.call(make())
    srv.container.auth.forget()
    yield srv
    srv.stop()


async def test_without_a_key_the_socket_closes_with_4401(secured):
    for query in ("", "?api_key=wrong"):
        async with connect(ws_url(secured, query)) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


async def test_keys_in_header_or_query_and_chats_belong_to_their_key(secured):
    import httpx

    alice, bob = secured.keys
    model = scripted(secured, "Mine.")
    async with connect(ws_url(secured, f"?api_key={alice}")) as ws:
        bodies = await ws_turn(ws, {"content": "hi", "model": model})
    chat_id = assert_turn(bodies, text="Mine.") and bodies[0]["content"]
    async with httpx.AsyncClient(base_url=secured.url, timeout=30) as c:
        assert (await c.get(f"/api/chat/{chat_id}", headers={"X-API-Key": alice})).status_code == 200
        assert (await c.get(f"/api/chat/{chat_id}", headers={"X-API-Key": bob})).status_code == 404
    # Bob cannot continue (or stop) Alice's chat by naming it.
    async with connect(ws_url(secured), additional_headers={"Authorization": f"Bearer {bob}"}) as ws:
        bodies = await ws_turn(ws, {"content": "let me in", "chatId": chat_id, "model": model})
        assert bodies[0]["type"] == "error" and bodies[0]["content"]["code"] == "VALIDATION_ERROR"
    async with httpx.AsyncClient(base_url=secured.url, timeout=30) as c:
        chat = (await c.get(f"/api/chat/{chat_id}", headers={"X-API-Key": alice})).json()
    assert [m["content"] for m in chat["messages"]] == ["hi", "Mine."]
