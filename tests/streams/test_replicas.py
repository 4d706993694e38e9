"""Two hubbub processes sharing PostgreSQL and Redis: a builder stream started on A is resumed on B
with no event lost or duplicated, and a stop sent to B ends A's generation (issue: streams)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from support import ServerProcess, sse_events

LONG = [{"role": "user", "content": "Write a very long story about a dragon who learns to bake bread."}]


@pytest.fixture(scope="module")
def replicas(tmp_path_factory, module_pg_database, redis_url):
    env = {"database_url": module_pg_database, "redis_url": redis_url, "max_tokens_cap": "150"}
    a = ServerProcess(tmp_path_factory.mktemp("a"), **env).wait_ready()
    b = ServerProcess(tmp_path_factory.mktemp("b"), **env).wait_ready()
    yield a, b
    a.stop()
    b.stop()


async def _final(client: httpx.AsyncClient, chat_id: str) -> dict:
    for _ in range(600):
        body = (await client.get(f"/api/chat/{chat_id}")).json()
        if body["status"] not in ("streaming", "idle"):
            return body
        await asyncio.sleep(0.1)
    raise AssertionError("the generation did not end")


async def test_resume_on_another_replica_loses_and_repeats_nothing(replicas):
    a, b = replicas
    seen: list[tuple[int, dict]] = []
    async with httpx.AsyncClient(base_url=a.url, timeout=60) as ca, \
            httpx.AsyncClient(base_url=b.url, timeout=60) as cb:
        async with ca.stream("POST", "/api/chat", json={"messages": LONG, "enableDSL": False}) as r:
            assert r.status_code == 200
            chat_id = r.headers["x-chat-id"]
            async for event in sse_events(r):
                seen.append((int(event.id), event.json()))
                if sum(1 for _, e in seen if e["type"] == "text") >= 5:
                    break  # the client goes away mid-answer (the generation goes on)
        last_id = seen[-1][0]
        async with cb.stream("GET", f"/api/chat/{chat_id}/stream", headers={"Last-Event-ID": str(last_id)}) as r:
            assert r.status_code == 200
            rest = [(int(e.id), e.json()) async for e in sse_events(r)]
        ids = [i for i, _ in seen + rest]
        assert ids == sorted(ids) and len(ids) == len(set(ids)), "ids increase, none repeated"
        assert rest and rest[0][0] > last_id and rest[-1][1]["type"] == "done"
        text = "".join(e["content"] for _, e in seen + rest if e["type"] == "text")
        final = await _final(cb, chat_id)
        assert final["status"] == "complete"
        assert final["messages"][-1]["content"] == text, "nothing lost, nothing doubled"

        # A fresh resume (no Last-Event-ID) on B: history with the whole answer, then done.
        async with cb.stream("GET", f"/api/chat/{chat_id}/stream") as r:
            events = [e.json() async for e in sse_events(r)]
        assert events[0]["type"] == "history" and events[-1]["type"] == "done"
        assert events[0]["content"][-1] == {**events[0]["content"][-1], "role": "assistant", "content": text}


async def test_history_then_live_events_while_running(replicas):
    a, b = replicas
    async with httpx.AsyncClient(base_url=a.url, timeout=60) as ca, \
            httpx.AsyncClient(base_url=b.url, timeout=60) as cb:
        async with ca.stream("POST", "/api/chat", json={"messages": LONG, "enableDSL": False}) as r:
            chat_id = r.headers["x-chat-id"]
            n = 0
            async for event in sse_events(r):
                n += event.json()["type"] == "text"
                if n >= 3:
                    break
        async with cb.stream("GET", f"/api/chat/{chat_id}/stream") as r:
            events = [e async for e in sse_events(r)]
        first = events[0].json()
        assert first["type"] == "history"
        assert [m["role"] for m in first["content"]] == ["user", "assistant"]
        live = "".join(e.json()["content"] for e in events[1:] if e.json()["type"] == "text")
        final = await _final(cb, chat_id)
        assert final["messages"][-1]["content"] == first["content"][-1]["content"] + live
        assert int(events[1].id) > int(events[0].id)


async def test_stop_sent_to_b_ends_generation_running_on_a(replicas):
    a, b = replicas
    async with httpx.AsyncClient(base_url=a.url, timeout=60) as ca, \
            httpx.AsyncClient(base_url=b.url, timeout=60) as cb:
        async with ca.stream("POST", "/api/chat", json={"messages": LONG, "enableDSL": False}) as r:
            chat_id = r.headers["x-chat-id"]
            received: list[dict] = []
            stop_task = None
            async for event in sse_events(r):
                received.append(event.json())
                if len([e for e in received if e["type"] == "text"]) == 3 and stop_task is None:
                    stop_task = asyncio.ensure_future(cb.post(f"/api/chat/{chat_id}/stop"))
            stopped = await stop_task
        assert stopped.status_code == 200 and stopped.json() == {"stopped": True}
        assert received[-1]["type"] == "done", "A's stream ends with done"
        final = (await ca.get(f"/api/chat/{chat_id}")).json()
        assert final["status"] == "stopped"
        text = "".join(e["content"] for e in received if e["type"] == "text")
        assert final["messages"][-1]["content"] == text and text
        assert (await cb.post(f"/api/chat/{chat_id}/stop")).json() == {"stopped": False}
