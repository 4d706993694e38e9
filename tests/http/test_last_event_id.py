"""``Last-Event-ID`` is one of our ids or a 400 (issue 22): other digits (``"²"``, Arabic-Indic)
passed ``str.isdigit`` and failed in ``int`` (500), and huge numbers went on to Redis. An empty
header means none was sent."""

from __future__ import annotations

import httpx
import pytest

from support import ScriptedProvider, collect_sse, register_scripted, start_server

BAD = [b"\xb2", "\u0661\u0662".encode(), b"9" * 40, b"9223372036854775808", b"-1", b"+1", b"1.0", b"abc", b"0x10"]


@pytest.fixture(scope="module", params=["memory", "redis"])
def srv(request, tmp_path_factory):
    """Memory and Redis stream hubs: the largest id must also be one Redis takes."""
    hub = {"redis_url": request.getfixturevalue("redis_url")} if request.param == "redis" else {}
    server = start_server(tmp_path_factory.mktemp("lei"), embedded={"enabled": False}, **hub)
    register_scripted(server, "echo", ScriptedProvider("one two three"))
    yield server
    server.stop()


async def test_builder_resume_refuses_ids_we_never_sent(srv):
    async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
        r, events = await collect_sse(c, "POST", "/api/chat", json={"messages": [{"role": "user", "content": "hi"}],
                                                                     "model": "echo", "enableDSL": False})
        chat_id = r.headers["x-chat-id"]
        for value in BAD:
            r = await c.get(f"/api/chat/{chat_id}/stream", headers={"Last-Event-ID": value})
            assert r.status_code == 400, (value, r.text)
            error = r.json()["error"]
            assert error["code"] == "VALIDATION_ERROR" and error["details"][0]["field"] == "Last-Event-ID", error
        for value, first in ((b"", "history"), (b"0", "chat"), (b"9223372036854775807", None)):
            r, events = await collect_sse(c, "GET", f"/api/chat/{chat_id}/stream", headers={"Last-Event-ID": value})
            assert r.status_code == 200, (value, r.text)
            assert (events[0].json()["type"] if events else None) == first, (value, events)


async def test_conversations_reconnect_refuses_ids_we_never_sent_and_sends_nothing(srv):
    async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
        r = await c.post("/api/chat", json={"message": "hi", "model": "echo"})
        conv = r.json()["data"]["conversationId"]
        for value in BAD:
            r = await c.post("/api/chat/stream", json={"message": "again", "conversationId": conv, "model": "echo"},
                             headers={"Last-Event-ID": value})
            assert r.status_code == 400, (value, r.text)
            body = r.json()
            assert body["success"] is False and body["error"]["details"][0]["field"] == "Last-Event-ID", body
        messages = (await c.get(f"/api/conversations/{conv}")).json()["data"]["messages"]
        assert [m["content"] for m in messages] == ["hi", "one two three"]  # no message was sent again
