"""API keys: 401 in every dialect's shape, Bearer and X-API-Key, ownership (404, not 403), admin routes."""

from __future__ import annotations

import httpx
import pytest

from support import start_server

MODEL = "smollm2-135m-instruct"


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("auth"), max_tokens_cap=4)
    keys = srv.container.keys

    async def make():
        _, admin = await keys.create("admin", admin=True)
        _, alice = await keys.create("alice")
        _, bob = await keys.create("bob")
        return admin, alice, bob

    srv.keys = srv.call(make())
    srv.container.auth.forget()
    yield srv
    srv.stop()


def _client(srv, key: str | None = None, header: str = "bearer") -> httpx.AsyncClient:
    headers = {}
    if key and header == "bearer":
        headers["Authorization"] = f"Bearer {key}"
    elif key:
        headers["X-API-Key"] = key
    return httpx.AsyncClient(base_url=srv.url, headers=headers, timeout=60)


async def test_no_key_is_401_in_each_dialects_shape(secured):
    async with _client(secured) as c:
        r = await c.post("/v1/chat/completions", json={"model": MODEL, "messages": [{"role": "user", "content": "x"}]})
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
        r = await c.post("/api/bento/chat/stream", json={"messages": [{"role": "user", "content": "x"}]})
        assert r.status_code == 401 and r.json() == {"error": "Unauthorized"}
        r = await c.post("/api/chat", json={"messages": [{"role": "user", "content": "x"}]})
        assert r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHORIZED"
        r = await c.post("/api/chat", json={"message": "x"})
        assert r.status_code == 401 and r.json()["success"] is False
        assert r.json()["error"]["code"] == "UNAUTHORIZED"
        r = await c.get("/api/conversations")
        assert r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHORIZED"
        r = await c.post("/chat", json={"bot_slug": "default", "prompt": "x", "stream": False})
        assert r.status_code == 401 and "detail" in r.json()
        r = await c.get("/v1/models")
        assert r.status_code == 401
        assert (await c.get("/healthz")).status_code == 200
        assert (await c.get("/readyz")).status_code == 200


async def test_wrong_key_is_401_and_both_headers_work(secured):
    _, alice, _ = secured.keys
    async with _client(secured, "hb_not-a-key") as c:
        assert (await c.get("/v1/models")).status_code == 401
    async with _client(secured, alice) as c:
        assert (await c.get("/v1/models")).status_code == 200
    async with _client(secured, alice, header="x-api-key") as c:
        assert (await c.get("/v1/models")).status_code == 200


async def test_user_keys_see_only_their_own_objects(secured):
    admin, alice, bob = secured.keys
    async with _client(secured, alice) as a, _client(secured, bob) as b, _client(secured, admin) as root:
        r = await a.post("/api/chat", json={"message": "Hello", "userId": "u1"})
        assert r.status_code == 200, r.text
        conv = r.json()["data"]["conversationId"]
        r = await a.post("/api/chat", json={"messages": [{"role": "user", "content": "A todo app"}],
                                            "enableDSL": False})
        chat = r.headers["x-chat-id"]
        await r.aread()

        assert conv in [c["id"] for c in (await a.get("/api/conversations")).json()["data"]["conversations"]]
        listed = (await b.get("/api/conversations")).json()["data"]
        assert conv not in [c["id"] for c in listed["conversations"]] and listed["total"] == 0
        for method, path in [("GET", f"/api/conversations/{conv}"), ("DELETE", f"/api/conversations/{conv}"),
                             ("POST", f"/api/conversations/{conv}/clear"), ("POST", f"/api/conversations/{conv}/stop")]:
            r = await b.request(method, path)
            assert r.status_code == 404, (method, path, r.text)
            assert r.json()["error"]["code"] == "CONVERSATION_NOT_FOUND"
        r = await b.post("/api/chat", json={"message": "hijack", "conversationId": conv})
        assert r.status_code == 404
        for method, path in [("GET", f"/api/chat/{chat}"), ("POST", f"/api/chat/{chat}/stop")]:
            r = await b.request(method, path)
            assert r.status_code == 404 and r.json()["error"]["code"] == "CHAT_NOT_FOUND", (path, r.text)
        r = await b.post("/api/chat", json={"chatId": chat, "messages": [{"role": "user", "content": "hijack"}]})
        assert r.status_code in (400, 404), r.text  # never appended to alice's chat
        assert len((await a.get(f"/api/chat/{chat}")).json()["messages"]) == 2

        # the admin sees everything
        assert (await root.get(f"/api/conversations/{conv}")).status_code == 200
        assert (await root.get(f"/api/chat/{chat}")).status_code == 200

        # bots: alice's private bot is invisible to bob; the global default bot is visible to all
        r = await a.post("/api/bots", json={"slug": "alice-bot", "name": "Alice", "systemPrompt": "Be Alice."})
        assert r.status_code == 201, r.text
        uid = r.json()["uid"]
        assert (await b.get(f"/api/bots/{uid}")).status_code == 404
        assert (await b.get("/api/bots/alice-bot")).status_code == 404
        assert (await b.delete("/api/bots/alice-bot")).status_code == 404
        assert "alice-bot" not in [x["slug"] for x in (await b.get("/api/bots")).json()["bots"]]
        assert (await b.post("/chat", json={"bot_slug": "alice-bot", "prompt": "hi", "stream": False})).status_code == 404
        assert (await a.post("/chat", json={"bot_slug": "alice-bot", "prompt": "hi", "stream": False})).status_code == 200
        assert (await b.get("/api/bots/default")).status_code == 200
        assert (await root.get("/api/bots/alice-bot")).status_code == 200

        # deleting as the owner works
        assert (await a.delete(f"/api/conversations/{conv}")).status_code == 200


async def test_admin_routes_need_an_admin_key(secured):
    admin, alice, _ = secured.keys
    async with _client(secured, alice) as a, _client(secured, admin) as root:
        assert (await a.get("/api/keys")).status_code == 403
        assert (await a.post("/api/keys", json={"name": "sneaky"})).status_code == 403
        r = await root.post("/api/keys", json={"name": "temp", "rpm": 5})
        assert r.status_code == 201
        created = r.json()
        assert created["key"].startswith("hb_") and created["rpm"] == 5
        listed = (await root.get("/api/keys")).json()["keys"]
        assert created["id"] in [k["id"] for k in listed]
        assert all("key" not in k for k in listed)  # the key itself is never shown again
        secured.container.auth.forget()
        async with _client(secured, created["key"]) as t:
            assert (await t.get("/v1/models")).status_code == 200
            assert (await root.delete(f"/api/keys/{created['id']}")).status_code == 204
            secured.container.auth.forget()
            assert (await t.get("/v1/models")).status_code == 401


async def test_usage_report_is_per_key(secured):
    admin, alice, bob = secured.keys
    async with _client(secured, alice) as a, _client(secured, bob) as b, _client(secured, admin) as root:
        r = await a.post("/v1/chat/completions", json={"model": MODEL, "max_tokens": 3,
                                                       "messages": [{"role": "user", "content": "Hi"}]})
        assert r.status_code == 200
        import asyncio
        for _ in range(200):  # usage is recorded just after the answer; allow for a busy machine
            mine = (await a.get("/api/usage")).json()
            if mine["totals"]["completionTokens"] >= 3:
                break
            await asyncio.sleep(0.05)
        assert mine["usage"] and all(row["model"] for row in mine["usage"])
        theirs = (await b.get("/api/usage")).json()
        assert theirs["totals"]["totalTokens"] == 0
        everyone = (await root.get("/api/usage")).json()
        assert everyone["totals"]["totalTokens"] >= mine["totals"]["totalTokens"]
        assert (await a.get("/api/usage", params={"from": "yesterday"})).status_code == 422


async def test_global_bots_are_changed_only_by_admins(secured):
    admin, alice, _ = secured.keys
    async with _client(secured, alice) as a, _client(secured, admin) as root:
        r = await root.post("/api/bots", json={"slug": "global-bot", "name": "Global"})
        assert r.status_code == 201
        assert (await a.get("/api/bots/global-bot")).status_code == 200
        assert (await a.patch("/api/bots/global-bot", json={"name": "Mine now"})).status_code == 403
        assert (await a.delete("/api/bots/global-bot")).status_code == 403
        assert (await root.patch("/api/bots/global-bot", json={"name": "Renamed"})).json()["name"] == "Renamed"


async def test_metrics_need_an_admin_key_when_auth_is_on(secured):
    admin, alice, _ = secured.keys
    async with _client(secured) as anon, _client(secured, alice) as a, _client(secured, admin) as root:
        assert (await anon.get("/metrics")).status_code == 401
        assert (await a.get("/metrics")).status_code == 403
        r = await root.get("/metrics")
        assert r.status_code == 200 and "hubbub_http_requests_total" in r.text


async def test_channels_need_an_admin_key(secured):
    admin, alice, _ = secured.keys
    async with _client(secured) as anon, _client(secured, alice) as a, _client(secured, admin) as root:
        assert (await anon.get("/api/channels")).status_code == 401
        assert (await a.get("/api/channels")).status_code == 403
        assert (await root.get("/api/channels")).json() == {"channels": []}


async def test_resume_websocket_and_documents_refuse_another_keys_objects(secured):
    import json as _json

    from websockets.asyncio.client import connect

    admin, alice, bob = secured.keys
    async with _client(secured, alice) as a, _client(secured, bob) as b:
        r = await a.post("/api/chat", json={"messages": [{"role": "user", "content": "A shop app"}],
                                            "enableDSL": False})
        chat = r.headers["x-chat-id"]
        await r.aread()
        # resume
        r = await b.get(f"/api/chat/{chat}/stream")
        assert r.status_code == 404 and r.json()["error"]["code"] == "CHAT_NOT_FOUND"
        r = await b.get(f"/api/chat/{chat}/stream", headers={"Last-Event-ID": "1"})
        assert r.status_code == 404
        # WebSocket: bob naming alice's chat neither sees nor changes it
        ws_url = secured.url.replace("http://", "ws://") + f"/api/chat/ws?api_key={bob}"
        async with connect(ws_url) as ws:
            await ws.send(_json.dumps({"type": "message", "content": "hijack", "chatId": chat, "enableDSL": False}))
            frames = []
            while True:
                frame = _json.loads(await ws.recv())
                frames.append(frame)
                if frame["type"] in ("done", "error"):
                    break
        assert all("A shop app" not in _json.dumps(f) for f in frames)
        assert len((await a.get(f"/api/chat/{chat}")).json()["messages"]) == 2
        # documents
        r = await a.post("/api/documents", json={"title": "Alice's notes", "content": "The vault code is 4242."})
        assert r.status_code == 201
        doc = r.json()["id"]
        assert (await b.get(f"/api/documents/{doc}")).status_code == 404
        assert (await b.delete(f"/api/documents/{doc}")).status_code == 404
        assert doc not in [d["id"] for d in (await b.get("/api/documents")).json()["documents"]]
        found = (await b.post("/api/documents/search", json={"query": "vault code"})).json()["results"]
        assert all(hit["documentId"] != doc for hit in found)
        assert (await a.get(f"/api/documents/{doc}")).status_code == 200
