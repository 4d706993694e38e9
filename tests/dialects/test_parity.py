"""One conversation through all five dialects: the same text and the same token counts from each.

A scripted provider gives exact text; every dialect sends the provider the same
messages (a bot's system prompt plus one user turn), so prompt and completion
token counts must agree too — checked on the wire where a dialect reports usage,
and in the usage records (by request id) for every dialect.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from hubbub.storage.tables import usage

from support import ScriptedProvider, collect_sse, register_scripted

MODEL = "parity-model"
REPLY = "Parity holds across every dialect, word for word."
SYSTEM = "Answer in one sentence."
USER = "Is hubbub consistent?"


@pytest.fixture(scope="module")
def scripted(server):
    provider = ScriptedProvider(REPLY)
    register_scripted(server, MODEL, provider)
    return provider


@pytest.fixture
async def parity_bot(client, scripted):
    r = await client.post("/api/bots", json={"slug": "parity", "name": "Parity", "systemPrompt": SYSTEM,
                                             "model": MODEL})
    assert r.status_code in (201, 409)
    yield "parity"


async def _usage(server, rid: str) -> tuple[int, int]:
    """(prompt, completion) tokens of the one usage record with request id ``rid``."""
    for _ in range(100):  # usage is recorded just after the stream ends
        if server.call(server.container.usage.count(rid)) == 1:
            break
        await asyncio.sleep(0.05)

    async def fetch() -> tuple[int, int]:
        async with server.container.engine.connect() as conn:
            row = (await conn.execute(select(usage).where(usage.c.request_id == rid))).one()
        return row.prompt_tokens, row.completion_tokens

    return server.call(fetch())


async def test_same_text_and_tokens_in_all_five_dialects(server, client, scripted, parity_bot):
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": USER}]
    texts: dict[str, str] = {}
    wire_usage: dict[str, tuple[int, int]] = {}

    _, events = await collect_sse(client, "POST", "/v1/chat/completions", headers={"X-Request-Id": "parity-openai"},
                                  json={"model": MODEL, "messages": messages, "stream": True,
                                        "stream_options": {"include_usage": True}})
    chunks = [e.json() for e in events if e.data != "[DONE]"]
    texts["openai"] = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    u = chunks[-1]["usage"]
    wire_usage["openai"] = (u["prompt_tokens"], u["completion_tokens"])

    _, events = await collect_sse(client, "POST", "/api/bento/chat/stream", headers={"X-Request-Id": "parity-bento"},
                                  json={"model": MODEL, "messages": messages})
    texts["bento"] = "".join(e.json()["content"] for e in events if e.data != "[DONE]")

    _, events = await collect_sse(client, "POST", "/api/chat", headers={"X-Request-Id": "parity-builder"},
                                  json={"model": MODEL, "messages": messages, "enableDSL": False})
    texts["builder"] = "".join(e.json()["content"] for e in events if e.json()["type"] == "text")

    r = await client.post("/api/chat", headers={"X-Request-Id": "parity-conversations"},
                          json={"message": USER, "preset": "parity", "userId": "parity-user"})
    data = r.json()["data"]
    texts["conversations"] = data["response"]
    wire_usage["conversations"] = (data["usage"]["promptTokens"], data["usage"]["completionTokens"])

    r = await client.post("/chat", headers={"X-Request-Id": "parity-bots"},
                          json={"bot_slug": "parity", "prompt": USER, "stream": False})
    texts["bots"] = r.json()["content"]

    assert texts == {name: REPLY for name in texts}, texts
    assert len(texts) == 5
    # What the provider was asked is identical in every dialect.
    asked = [[(m.role, m.content) for m in req.messages] for req in scripted.requests[-5:]]
    assert all(a == [("system", SYSTEM), ("user", USER)] for a in asked), asked
    recorded = {name: await _usage(server, f"parity-{name}") for name in texts}
    expected = recorded["openai"]
    assert expected[1] == len(REPLY.split())
    assert recorded == {name: expected for name in recorded}, recorded
    assert wire_usage == {name: expected for name in wire_usage}, wire_usage
