"""``Idempotency-Key`` on the chat POST routes (API.md, Common rules; issue 5).

A repeated key (sequentially or concurrently) gets the first request's response
or joins its stream: one generation (the scripted provider is called once), one
usage record, identical bodies. A different request under the same key is a 409
in the dialect's shape; keys of different API keys never collide; a failed first
request leaves the key free for a retry. With Redis, duplicates on another
replica join the same record.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from hubbub.errors import Conflict
from hubbub.http.idempotency import Claim, MemoryIdempotencyStore
from support import ScriptedProvider, register_scripted, sse_events, start_server

REPLY = "one two three four five six seven eight nine ten"


def scripted(server, delay: float = 0.0) -> tuple[str, ScriptedProvider]:
    model = f"idem-{uuid.uuid4().hex[:8]}"
    provider = ScriptedProvider(REPLY, delay)
    register_scripted(server, model, provider)
    return model, provider


def new_key() -> str:
    return f"key-{uuid.uuid4().hex}"


async def usage_requests(server, model: str, expect: int | None = None) -> int:
    """Usage rows for ``model`` (recorded just after a stream ends: wait for ``expect`` a moment)."""
    count = 0
    for _ in range(60):
        rows = server.call(server.container.usage.summary())
        count = sum(r["requests"] for r in rows if r["model"] == model)
        if expect is None or count >= expect:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)  # and nothing more arrives
    rows = server.call(server.container.usage.summary())
    return sum(r["requests"] for r in rows if r["model"] == model)


async def post(client: httpx.AsyncClient, url: str, body: dict[str, Any], key: str, **headers: str) -> httpx.Response:
    return await client.post(url, json=body, headers={"Idempotency-Key": key, **headers})


def openai_body(model: str, stream: bool) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "count"}], "stream": stream}


# -- one generation, whatever the repeats ------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
async def test_sequential_repeats_get_the_first_response(client, server, stream):
    model, provider = scripted(server)
    key = new_key()
    first = await post(client, "/v1/chat/completions", openai_body(model, stream), key)
    again = await post(client, "/v1/chat/completions", openai_body(model, stream), key)
    assert first.status_code == again.status_code == 200
    assert again.content == first.content and REPLY.split()[-1] in first.text
    assert again.headers["content-type"] == first.headers["content-type"]
    assert again.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    assert again.headers["x-request-id"] != first.headers["x-request-id"]
    assert len(provider.requests) == 1
    assert await usage_requests(server, model, 1) == 1


@pytest.mark.parametrize("stream", [False, True])
async def test_concurrent_repeats_make_one_generation(client, server, stream):
    model, provider = scripted(server, delay=0.02)
    key = new_key()
    responses = await asyncio.gather(*[post(client, "/v1/chat/completions", openai_body(model, stream), key)
                                       for _ in range(5)])
    assert [r.status_code for r in responses] == [200] * 5
    assert len({r.content for r in responses}) == 1
    assert sum("idempotent-replayed" not in r.headers for r in responses) == 1
    assert len(provider.requests) == 1
    assert await usage_requests(server, model, 1) == 1
    # A new key is a new request.
    await post(client, "/v1/chat/completions", openai_body(model, stream), new_key())
    assert len(provider.requests) == 2


async def test_concurrent_builder_repeats_make_one_turn(client, server):
    model, provider = scripted(server, delay=0.02)
    key = new_key()
    body = {"messages": [{"role": "user", "content": "count"}], "model": model}
    responses = await asyncio.gather(*[post(client, "/api/chat", body, key) for _ in range(5)])
    assert [r.status_code for r in responses] == [200] * 5
    assert len({r.content for r in responses}) == 1
    chat_ids = {r.headers["x-chat-id"] for r in responses}
    assert len(chat_ids) == 1
    assert len(provider.requests) == 1
    chat = (await client.get(f"/api/chat/{chat_ids.pop()}")).json()
    assert [(m["role"], m["content"]) for m in chat["messages"]] == [("user", "count"), ("assistant", REPLY)]
    assert await usage_requests(server, model, 1) == 1


async def test_every_chat_route_honours_the_key(client, server):
    model, provider = scripted(server)
    r = await client.post("/api/bots", json={"slug": f"idem-{uuid.uuid4().hex[:8]}", "name": "Idem", "model": model})
    assert r.status_code == 201
    slug = r.json()["slug"]
    prefix = server.settings.bento_prefix
    routes = [
        ("/v1/chat/completions", openai_body(model, True)),
        (f"{prefix}/chat/stream", {"messages": [{"role": "user", "content": "count"}], "model": model}),
        ("/chat", {"bot_slug": slug, "prompt": "count", "stream": True}),
        ("/v1/chat", {"bot_slug": slug, "prompt": "count", "stream": False}),
        ("/api/chat", {"messages": [{"role": "user", "content": "count"}], "model": model}),
        ("/api/chat", {"message": "count", "userId": f"u-{uuid.uuid4().hex[:6]}", "model": model}),
        ("/api/chat/stream", {"message": "count", "userId": f"u-{uuid.uuid4().hex[:6]}", "model": model}),
    ]
    for n, (url, body) in enumerate(routes, start=1):
        key = new_key()
        first = await post(client, url, body, key)
        again = await post(client, url, body, key)
        assert first.status_code == again.status_code == 200, (url, first.text)
        assert again.content == first.content, url
        assert len(provider.requests) == n, url
    assert await usage_requests(server, model, len(routes)) == len(routes)


async def test_a_retry_after_a_dropped_stream_gets_the_whole_answer(client, server):
    """The first client leaves mid-stream; its retry (same key) joins the same generation."""
    model, provider = scripted(server, delay=0.05)
    for url, body in [("/v1/chat/completions", openai_body(model, True)),
                      ("/api/chat", {"messages": [{"role": "user", "content": "count"}], "model": model})]:
        key = new_key()
        async with client.stream("POST", url, json=body, headers={"Idempotency-Key": key}) as r:
            async for _ in sse_events(r):
                break  # gone after the first event
        retry = await post(client, url, body, key)
        assert retry.status_code == 200 and retry.headers["idempotent-replayed"] == "true"
        if url.startswith("/v1"):
            assert retry.text.rstrip().endswith("data: [DONE]")
        else:
            assert '"type":"done"' in retry.text.replace(" ", "")
        assert all(word in retry.text for word in REPLY.split())
    assert len(provider.requests) == 2  # one per route, none for the retries


# -- what the key does not cover -----------------------------------------------------


async def test_the_same_key_with_a_different_body_is_409_in_the_dialects_shape(client, server):
    model, provider = scripted(server)
    key = new_key()
    assert (await post(client, "/v1/chat/completions", openai_body(model, False), key)).status_code == 200
    r = await post(client, "/v1/chat/completions", openai_body(model, True), key)
    assert r.status_code == 409 and set(r.json()["error"]) == {"message", "type", "param", "code"}
    # The same key on another route is another request too.
    r = await post(client, "/api/chat", {"messages": [{"role": "user", "content": "count"}], "model": model}, key)
    assert r.status_code == 409 and r.json()["error"]["code"] == "CONFLICT"
    assert len(provider.requests) == 1


async def test_a_failed_first_request_leaves_the_key_free(client, server):
    model = f"idem-late-{uuid.uuid4().hex[:8]}"
    key = new_key()
    r = await post(client, "/v1/chat/completions", openai_body(model, False), key)
    assert r.status_code == 404  # the model does not exist yet
    provider = ScriptedProvider(REPLY)
    register_scripted(server, model, provider)
    r = await post(client, "/v1/chat/completions", openai_body(model, False), key)
    assert r.status_code == 200 and "idempotent-replayed" not in r.headers
    assert r.json()["choices"][0]["message"]["content"] == REPLY and len(provider.requests) == 1


async def test_a_malformed_key_is_a_400(client, server):
    model, provider = scripted(server)
    r = await post(client, "/v1/chat/completions", openai_body(model, False), "k" * 256)
    assert r.status_code == 400 and "Idempotency-Key" in r.json()["error"]["message"]
    assert provider.requests == []


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("idem-auth"))

    async def make():
        _, alice = await srv.container.keys.create("alice")
        _, bob = await srv.container.keys.create("bob")
        return alice, bob

    srv.keys = srv.call(make())
    srv.container.auth.forget()
    yield srv
    srv.stop()


async def test_different_api_keys_never_share_an_idempotency_key(secured):
    alice, bob = secured.keys
    model, provider = scripted(secured)
    key = new_key()
    async with httpx.AsyncClient(base_url=secured.url, timeout=60) as c:
        body = openai_body(model, False)
        a = await post(c, "/v1/chat/completions", body, key, Authorization=f"Bearer {alice}")
        b = await post(c, "/v1/chat/completions", body, key, Authorization=f"Bearer {bob}")
        assert a.status_code == b.status_code == 200 and "idempotent-replayed" not in b.headers
        assert len(provider.requests) == 2
        # Under another key string, Alice's and Bob's different bodies do not conflict either.
        other = new_key()
        b2 = await post(c, "/v1/chat/completions", openai_body(model, True), other, Authorization=f"Bearer {bob}")
        a2 = await post(c, "/v1/chat/completions", body, other, Authorization=f"Bearer {alice}")
        assert b2.status_code == a2.status_code == 200
        # Unauthenticated: 401 in the dialect's shape, the key is not even looked at.
        r = await post(c, "/v1/chat/completions", body, key)
        assert r.status_code == 401
        r = await post(c, "/api/chat", {"messages": [{"role": "user", "content": "x"}], "model": model}, key)
        assert r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHORIZED"
        # Alice's repeat still replays hers.
        again = await post(c, "/v1/chat/completions", body, key, Authorization=f"Bearer {alice}")
        assert again.content == a.content and again.headers["idempotent-replayed"] == "true"
    assert len(provider.requests) == 4


# -- the memory store stays bounded ----------------------------------------------------


async def test_the_memory_store_keeps_only_recent_finished_records():
    store = MemoryIdempotencyStore(max_records=3, max_bytes=1000)

    async def record(key: str, size: int) -> Claim:
        claim = await store.claim("open", key, "f")
        assert claim.first
        await store.begin(claim, 200, [])
        await store.append(claim, b"x" * size)
        await store.end(claim)
        return claim

    for i in range(10):
        await record(f"k{i}", 100)
    assert len(store) == 3
    assert (await store.claim("open", "k0", "f")).first  # evicted: a new first (left running)
    assert not (await store.claim("open", "k9", "f")).first  # recent: still replayed
    await record("big", 5000)  # over the byte budget: finished records go, the running one stays
    assert len(store) == 1 and not (await store.claim("open", "k0", "f")).first


# -- across replicas (Redis) ------------------------------------------------------------


@pytest.fixture(scope="module")
def replicas(tmp_path_factory, module_pg_database, redis_url):
    a = start_server(tmp_path_factory.mktemp("idem-a"), database_url=module_pg_database, redis_url=redis_url)
    b = start_server(tmp_path_factory.mktemp("idem-b"), database_url=module_pg_database, redis_url=redis_url)
    yield a, b
    a.stop()
    b.stop()


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.parametrize("url", ["/v1/chat/completions", "/api/chat"])
async def test_repeats_on_two_replicas_make_one_generation(replicas, url):
    a, b = replicas
    model = f"idem-shared-{uuid.uuid4().hex[:8]}"
    pa, pb = ScriptedProvider(REPLY, 0.03), ScriptedProvider(REPLY, 0.03)
    register_scripted(a, model, pa)
    register_scripted(b, model, pb)
    body = openai_body(model, True) if url.startswith("/v1") else {
        "messages": [{"role": "user", "content": "count"}], "model": model}
    key = new_key()
    async with httpx.AsyncClient(base_url=a.url, timeout=60) as ca, \
            httpx.AsyncClient(base_url=b.url, timeout=60) as cb:
        responses = await asyncio.gather(*[post(c, url, body, key) for c in (ca, cb, ca, cb, cb)])
        later = await post(cb, url, body, key)
        conflict = await post(ca, url, {**body, "temperature": 1.5}, key)
    assert [r.status_code for r in responses] == [200] * 5 and later.status_code == 200
    assert len({r.content for r in [*responses, later]}) == 1
    assert all(word in later.text for word in REPLY.split())
    assert len(pa.requests) + len(pb.requests) == 1
    assert conflict.status_code == 409
    assert await usage_requests(a, model, 1) == 1  # one shared database


@pytest.mark.redis
async def test_redis_store_releases_and_replays(redis_url):
    from hubbub.http.idempotency import RedisIdempotencyStore
    from hubbub.streams.redis import RedisStreamHub

    hub = RedisStreamHub(redis_url, live_ttl=2)
    store = RedisIdempotencyStore(hub)
    try:
        key = new_key()
        first = await store.claim("open", key, "f1")
        dup = await store.claim("open", key, "f1")
        assert first.first and not dup.first
        with pytest.raises(Conflict):
            await store.claim("open", key, "f2")
        waiting = asyncio.ensure_future(store.head(dup))
        await asyncio.sleep(0.1)
        await store.release(first)
        assert await waiting is None  # released: the duplicate claims again and is now first
        again = await store.claim("open", key, "f1")
        assert again.first
        await store.begin(again, 201, [(b"content-type", b"application/json")])
        await store.append(again, b'{"a":')
        late = await store.claim("open", key, "f1")
        reader = asyncio.ensure_future(store.head(late))
        assert await reader == (201, [(b"content-type", b"application/json")])
        body = asyncio.ensure_future(_join(store.body(late)))
        await asyncio.sleep(0.1)
        await store.append(again, b"1}")
        await store.end(again)
        assert await body == b'{"a":1}'
        # A first that dies before answering (its replica stops keeping it live): duplicates
        # stop waiting and take over.
        key2 = new_key()
        dying = RedisStreamHub(redis_url, live_ttl=2)
        dead = await RedisIdempotencyStore(dying).claim("open", key2, "f")
        assert dead.first
        await dying.aclose()  # like a replica killed: nothing ends the record, its marker lapses
        orphan = await store.claim("open", key2, "f")
        assert await asyncio.wait_for(store.head(orphan), 10) is None
        assert (await store.claim("open", key2, "f")).first
    finally:
        await store.aclose()
        await hub.aclose()


async def _join(chunks) -> bytes:  # noqa: ANN001
    return b"".join([c async for c in chunks])


async def test_a_repeat_with_last_event_id_resumes_after_it(client, server):
    """A reconnecting client that resends its key and the last id it saw gets only what followed."""
    model, provider = scripted(server, delay=0.03)
    body = {"messages": [{"role": "user", "content": "count"}], "model": model}
    key = new_key()
    seen = []
    async with client.stream("POST", "/api/chat", json=body, headers={"Idempotency-Key": key}) as r:
        async for event in sse_events(r):
            seen.append(event)
            if len(seen) == 4:  # chat + 3 words
                break
    last = int(seen[-1].id)
    async with client.stream("POST", "/api/chat", json=body,
                             headers={"Idempotency-Key": key, "Last-Event-ID": str(last)}) as r:
        assert r.status_code == 200 and r.headers["idempotent-replayed"] == "true"
        rest = [e async for e in sse_events(r)]
    ids = [int(e.id) for e in seen + rest]
    assert ids == sorted(set(ids)) and int(rest[0].id) == last + 1
    bodies = [e.json() for e in seen + rest]
    assert "".join(b["content"] for b in bodies if b["type"] == "text") == REPLY
    assert bodies[-1] == {"type": "done", "content": ""} and len(provider.requests) == 1
