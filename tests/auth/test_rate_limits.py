"""Rate limits: requests/minute per key (exact across replicas with Redis), tokens/minute with
real token counts, per-end-user limits, 429 with Retry-After in each dialect's shape."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from support import start_server

MODEL = "smollm2-135m-instruct"
HI = [{"role": "user", "content": "Say hi."}]


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("limits"), user_rpm=2)
    yield srv
    srv.stop()


def _key(srv, **limits) -> str:
    async def make():
        return (await srv.container.keys.create("k", **limits))[1]

    key = srv.call(make())
    srv.container.auth.forget()
    return key


async def test_requests_per_minute_then_429_with_retry_after(limited):
    key = _key(limited, rpm=3)
    async with httpx.AsyncClient(base_url=limited.url, headers=_auth(key), timeout=60) as c:
        codes = [(await c.get("/v1/models")).status_code for _ in range(3)]
        assert codes == [200, 200, 200]
        r = await c.get("/v1/models")
        assert r.status_code == 429
        assert 1 <= int(r.headers["retry-after"]) <= 60
        assert r.json()["error"]["code"] == "rate_limit_exceeded"
        r = await c.post("/api/bento/chat/stream", json={"messages": HI})
        assert r.status_code == 429 and r.json()["error"] == "Rate limit exceeded"
        assert r.json()["retryAfter"] == int(r.headers["retry-after"])
        r = await c.post("/api/chat", json={"message": "hi"})
        assert r.status_code == 429 and r.json()["error"]["code"] == "RATE_LIMITED"
        assert r.json()["error"]["retryAfter"] >= 1
        r = await c.post("/api/chat", json={"messages": HI})
        assert r.status_code == 429 and r.json()["error"]["code"] == "RATE_LIMITED"


async def _usage_tokens(srv, rid: str) -> int:
    from sqlalchemy import select

    from hubbub.storage.tables import usage

    for _ in range(100):
        if srv.call(srv.container.usage.count(rid)):
            break
        await asyncio.sleep(0.05)

    async def fetch() -> int:
        async with srv.container.engine.connect() as conn:
            row = (await conn.execute(select(usage).where(usage.c.request_id == rid))).one()
        return row.prompt_tokens + row.completion_tokens

    return srv.call(fetch())


async def test_tokens_per_minute_count_real_prompt_and_completion_tokens(limited):
    body = {"model": MODEL, "messages": HI, "max_tokens": 5, "temperature": 0}
    # Measure what one such request costs, with a key without limits.
    free = _key(limited)
    async with httpx.AsyncClient(base_url=limited.url, headers=_auth(free), timeout=60) as c:
        r = await c.post("/v1/chat/completions", json=body, headers={"X-Request-Id": "tpm-probe"})
        cost = r.json()["usage"]["total_tokens"]
    assert await _usage_tokens(limited, "tpm-probe") == cost

    exact = _key(limited, tpm=cost)  # one request uses the whole minute's budget
    roomy = _key(limited, tpm=cost + 1)  # one token left after the first request
    for key, second_allowed in ((exact, False), (roomy, True)):
        async with httpx.AsyncClient(base_url=limited.url, headers=_auth(key), timeout=60) as c:
            r = await c.post("/v1/chat/completions", json=body, headers={"X-Request-Id": f"tpm-{key[-6:]}"})
            assert r.status_code == 200
            await _usage_tokens(limited, f"tpm-{key[-6:]}")  # charged once recorded
            r = await c.post("/v1/chat/completions", json=body)
            assert (r.status_code == 200) is second_allowed, r.text
            if not second_allowed:
                assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1


async def test_daily_token_quota(limited):
    key = _key(limited, daily_tokens=1)
    async with httpx.AsyncClient(base_url=limited.url, headers=_auth(key), timeout=60) as c:
        r = await c.post("/v1/chat/completions", json={"model": MODEL, "messages": HI, "max_tokens": 2},
                         headers={"X-Request-Id": "daily-1"})
        assert r.status_code == 200
        await _usage_tokens(limited, "daily-1")
        r = await c.post("/v1/chat/completions", json={"model": MODEL, "messages": HI, "max_tokens": 2})
        assert r.status_code == 429
        assert 1 <= int(r.headers["retry-after"]) <= 86400


async def test_per_end_user_limit(limited):
    async with httpx.AsyncClient(base_url=limited.url, headers=_auth(_key(limited)), timeout=60) as c:
        body = {"model": MODEL, "messages": HI, "max_tokens": 1, "user": "end-user-7"}
        assert (await c.post("/v1/chat/completions", json=body)).status_code == 200
        assert (await c.post("/v1/chat/completions", json=body)).status_code == 200
        r = await c.post("/v1/chat/completions", json=body)
        assert r.status_code == 429
        other = await c.post("/v1/chat/completions", json={**body, "user": "end-user-8"})
        assert other.status_code == 200
        r = await c.post("/chat", json={"bot_slug": "default", "prompt": "x", "stream": False, "user_id": "end-user-7"})
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1


async def test_exact_limit_across_two_replicas_sharing_redis(tmp_path_factory, module_pg_database, redis_url):
    common = {"database_url": module_pg_database, "redis_url": redis_url}
    a = start_server(tmp_path_factory.mktemp("replica-a"), **common)
    b = start_server(tmp_path_factory.mktemp("replica-b"), **common)
    try:
        key = _key(a, rpm=10)
        b.container.auth.forget()

        async def one(url: str, c: httpx.AsyncClient) -> httpx.Response:
            return await c.get(f"{url}/v1/models")

        async with httpx.AsyncClient(headers=_auth(key), timeout=60) as c:
            results = await asyncio.gather(*(one((a.url, b.url)[i % 2], c) for i in range(30)))
        codes = [r.status_code for r in results]
        assert codes.count(200) == 10, codes
        assert codes.count(429) == 20
        for r in results:
            if r.status_code == 429:
                assert 1 <= int(r.headers["retry-after"]) <= 60
        served = {str(r.url).split("/v1")[0] for r in results if r.status_code == 200}
        assert served, "both replicas answered"
    finally:
        a.stop()
        b.stop()
