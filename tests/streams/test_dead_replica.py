"""A replica killed with SIGKILL mid-answer (PostgreSQL + Redis, two real processes): resuming
its chat on the other replica ends soon, with ``done`` (issue 22, Medium 7).

Regression: the live marker of a generation lasted 120 s after its last event and only a publish
refreshed it, so a resume of a dead replica's chat hung about 117 s and then ended without
``done``. Now the owning replica refreshes a short marker (``stream_live_ttl_seconds``, 10 s by
default) by itself, and a follower of a channel that stops being live without a close ends with
``done`` (``Done("interrupted")``, what the row becomes).
"""

from __future__ import annotations

import asyncio
import signal
import time

import httpx
import pytest

from support import ServerProcess, sse_events

LONG = [{"role": "user", "content": "Write a very long story about a dragon who learns to bake bread."}]
CEILING = 30.0  # seconds from the kill to the resumed stream's end (was about 117 before the fix)

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


async def _resume(client: httpx.AsyncClient, chat_id: str, **headers: str) -> list:
    async with client.stream("GET", f"/api/chat/{chat_id}/stream", headers=headers) as r:
        assert r.status_code == 200
        return [e async for e in sse_events(r)]


async def test_resuming_a_killed_replicas_chat_ends_soon_with_done(tmp_path_factory, module_pg_database, redis_url):
    env = {"database_url": module_pg_database, "redis_url": redis_url, "max_tokens_cap": "2000"}
    a = ServerProcess(tmp_path_factory.mktemp("dead-a"), **env).wait_ready()
    b = ServerProcess(tmp_path_factory.mktemp("dead-b"), **env).wait_ready()
    try:
        seen = []
        async with httpx.AsyncClient(base_url=a.url, timeout=60) as ca:
            async with ca.stream("POST", "/api/chat", json={"messages": LONG, "enableDSL": False}) as r:
                assert r.status_code == 200
                chat_id = r.headers["x-chat-id"]
                async for event in sse_events(r):
                    body = event.json()
                    assert body["type"] != "done", "the answer ended before the kill: make the prompt longer"
                    seen.append((int(event.id), body))
                    if sum(1 for _, e in seen if e["type"] == "text") >= 5:
                        break
        a.signal(signal.SIGKILL)  # mid-answer: nothing closes its channel
        a.proc.wait(timeout=10)
        killed = time.monotonic()

        async with httpx.AsyncClient(base_url=b.url, timeout=60) as cb:
            last_id = seen[-1][0]
            rest, fresh = await asyncio.wait_for(asyncio.gather(
                _resume(cb, chat_id, **{"Last-Event-ID": str(last_id)}),
                _resume(cb, chat_id),
            ), CEILING + 30)
            took = time.monotonic() - killed
        assert took < CEILING, f"the resumes took {took:.1f}s after the kill"
        # With Last-Event-ID: what A published after it (if anything), then done, numbered on.
        ids = [int(e.id) for e in rest]
        assert rest and rest[-1].json() == {"type": "done", "content": ""}
        assert ids == sorted(set(ids)) and ids[0] > last_id
        # Without: the history (the answer so far), then done.
        assert fresh[0].json()["type"] == "history" and fresh[-1].json() == {"type": "done", "content": ""}
        text = "".join(e["content"] for _, e in seen if e["type"] == "text")
        assert fresh[0].json()["content"][-1]["content"].startswith(text)
    finally:
        a.stop()
        b.stop()
