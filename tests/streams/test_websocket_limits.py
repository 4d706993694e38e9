"""``GET /api/chat/ws`` gets the HTTP limits (issue 22, Medium 10): a message over the body limit
closes the socket with 1009 instead of being buffered whole (16 MiB passed before), and at most
``ws_max_queued_messages`` wait for their answers (the queue was unbounded: +328 MB from 30 large
messages); one more is refused with an error event, never dropped silently."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from support import ScriptedProvider, register_scripted, start_server

LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("ws-limits"), embedded={"enabled": False}, max_body_bytes=LIMIT,
                       ws_max_queued_messages=2)
    register_scripted(srv, "slow", ScriptedProvider("one two three four five six", delay=0.3))
    register_scripted(srv, "quick", ScriptedProvider("fine"))
    yield srv
    srv.stop()


def url(srv) -> str:  # noqa: ANN001
    return f"ws://127.0.0.1:{srv.port}/api/chat/ws"


def message(content: str, model: str = "quick") -> str:
    return json.dumps({"type": "message", "content": content, "model": model, "enableDSL": False})


async def until(ws, kind: str, timeout: float = 60) -> list[dict]:  # noqa: ANN001
    out: list[dict] = []
    async with asyncio.timeout(timeout):
        while not out or out[-1]["type"] != kind:
            out.append(json.loads(await ws.recv()))
    return out


@pytest.mark.parametrize("as_bytes", [False, True], ids=["text", "binary"])
async def test_a_message_over_the_body_limit_closes_the_socket_with_1009(small, as_bytes):
    async with connect(url(small), max_size=None) as ws:
        fits = message("x" * (LIMIT - 200))
        await ws.send(fits.encode() if as_bytes else fits)
        assert (await until(ws, "done"))[0]["type"] == "chat"
        big = message("x" * LIMIT)
        await ws.send(big.encode() if as_bytes else big)
        with pytest.raises(ConnectionClosed) as closed:
            await until(ws, "done")
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


async def test_at_most_the_configured_messages_wait_and_one_more_is_refused(small):
    async with connect(url(small)) as ws:
        await ws.send(message("first", "slow"))
        first = await ws.recv()  # the first turn has started (its "chat" event): it left the queue
        assert json.loads(first)["type"] == "chat"
        for word in ("second", "third", "fourth"):
            await ws.send(message(word))
        events = await until(ws, "error")
        assert events[-1]["content"]["code"] == "RATE_LIMITED", events
        assert "not queued" in events[-1]["content"]["message"]
        # The two queued messages are answered in order; the refused one never runs.
        done = 0
        replies: list[dict] = []
        while done < 3:
            body = json.loads(await asyncio.wait_for(ws.recv(), 60))
            replies.append(body)
            done += body["type"] == "done"
        chat_id = json.loads(first)["content"]
    import httpx

    async with httpx.AsyncClient(base_url=small.url, timeout=30) as c:
        chat = (await c.get(f"/api/chat/{chat_id}")).json()
    assert [m["content"] for m in chat["messages"] if m["role"] == "user"] == ["first", "second", "third"]
