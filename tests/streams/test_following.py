"""Following Redis streams: many followers share one blocking read per replica (issue 22, High 4),
and followers of a generation whose replica died end soon, with ``done`` (issue 22, Medium 7).

Against the real Redis at 127.0.0.1:6379. Connections are counted as Redis sees them
(``CLIENT LIST``, by the client name each pool gives its connections).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from hubbub.core.events import ChatCreated, Done, TextDelta
from hubbub.streams.redis import RedisStreamHub
from support import ScriptedProvider, register_scripted, sse_events, start_server

pytestmark = pytest.mark.redis


def _client(redis_url: str, name: str, max_connections: int) -> Any:
    from redis.asyncio import BlockingConnectionPool, Redis

    pool = BlockingConnectionPool.from_url(redis_url, max_connections=max_connections, timeout=20,
                                           client_name=name)
    return Redis.from_pool(pool)


class ConnectionCounter:
    """Samples how many connections named ``name`` Redis has open, in the background."""

    def __init__(self, redis_url: str, name: str) -> None:
        from redis.asyncio import Redis

        self._redis = Redis.from_url(redis_url)
        self._name = name
        self.peak = 0
        self._task: asyncio.Task[None] | None = None
        self._done = False

    async def count(self) -> int:
        return sum(1 for c in await self._redis.client_list() if c.get("name") == self._name)

    async def _sample(self) -> None:
        while not self._done:
            self.peak = max(self.peak, await self.count())
            await asyncio.sleep(0.05)

    async def __aenter__(self) -> "ConnectionCounter":
        self._task = asyncio.get_running_loop().create_task(self._sample())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._done = True  # not a cancel: redis-py 8.2 now and then swallows one mid-command
        await self._task
        await self._redis.aclose()


async def test_many_followers_share_one_read_and_a_small_pool(redis_url):
    """300 channels followed at once (two followers each) over a pool of 6 connections: every
    follower gets every event in order, and the hub never holds more than the pool."""
    name = f"test-follow-{uuid.uuid4().hex[:8]}"
    redis = _client(redis_url, name, max_connections=6)
    hub = RedisStreamHub(redis, close_client=True)
    keys = [f"follow-{uuid.uuid4().hex[:8]}-{n}" for n in range(300)]
    words = 8

    async def generate(key: str) -> None:
        await hub.publish(key, ChatCreated(key))
        for n in range(words):
            await asyncio.sleep(0.05)
            await hub.publish(key, TextDelta(f"w{n} "))
        await hub.publish(key, Done())
        await hub.close(key)

    async def follow(key: str) -> list[tuple[int, Any]]:
        return [item async for item in hub.subscribe(key)]

    try:
        for key in keys:
            await hub.open(key)
        async with ConnectionCounter(redis_url, name) as counter:
            followers = [asyncio.ensure_future(follow(k)) for k in keys for _ in range(2)]
            await asyncio.sleep(0.2)  # all following before anything is published
            await asyncio.wait_for(asyncio.gather(*[generate(k) for k in keys]), 60)
            results = await asyncio.wait_for(asyncio.gather(*followers), 60)
        for got in results:
            assert [seq for seq, _ in got] == list(range(1, words + 3))
            assert isinstance(got[0][1], ChatCreated) and got[-1][1] == Done()
        assert 0 < counter.peak <= 6, counter.peak
    finally:
        await hub.aclose()


async def test_a_follower_that_falls_behind_still_gets_everything(redis_url):
    hub = RedisStreamHub(redis_url)
    key = f"lag-{uuid.uuid4().hex[:8]}"
    try:
        await hub.open(key)
        fast = asyncio.ensure_future(_collect(hub.subscribe(key)))
        slow = hub.subscribe(key)
        await hub.publish(key, TextDelta("first"))
        first = await asyncio.wait_for(anext(slow), 20)  # joined; then reads nothing while 2,500 go by
        for n in range(1, 2501):
            await hub.publish(key, TextDelta(str(n)))
        await hub.publish(key, Done())
        await hub.close(key)
        rest = await asyncio.wait_for(_collect(slow), 30)
        assert [seq for seq, _ in [first, *rest]] == list(range(1, 2503))
        assert [seq for seq, _ in await asyncio.wait_for(fast, 30)] == list(range(1, 2503))
    finally:
        await hub.aclose()


async def _collect(items) -> list:  # noqa: ANN001
    return [item async for item in items]


async def test_followers_of_a_dead_replicas_channel_end_with_done_interrupted(redis_url):
    """The owner stops refreshing its live marker (its replica died): followers on another
    replica end once it lapses, with ``Done("interrupted")`` numbered after the last event."""
    owner = RedisStreamHub(redis_url, live_ttl=2)
    other = RedisStreamHub(redis_url, live_ttl=2)
    key = f"dead-{uuid.uuid4().hex[:8]}"
    try:
        await owner.open(key)
        for word in ("one", " two", " three"):
            await owner.publish(key, TextDelta(word))
        following = asyncio.ensure_future(_collect(other.subscribe(key)))
        late = asyncio.ensure_future(_collect(other.subscribe(key, after=2)))
        await asyncio.sleep(3)  # longer than live_ttl: refreshed all along while the owner lives
        assert not following.done() and await other.is_live(key)
        await owner.aclose()  # killed: nothing closes the channel, nothing refreshes its marker
        got = await asyncio.wait_for(following, 20)
        assert [seq for seq, _ in got] == [1, 2, 3, 4]
        assert got[-1][1] == Done("interrupted")
        assert await asyncio.wait_for(late, 20) == [(3, TextDelta(" three")), (4, Done("interrupted"))]
        assert not await other.is_live(key)
        # A resume after that ends the same way.
        assert [seq for seq, _ in await asyncio.wait_for(_collect(other.subscribe(key)), 20)] == [1, 2, 3, 4]
    finally:
        await other.aclose()


async def test_a_finished_or_missing_channel_ends_without_an_invented_done(redis_url):
    hub = RedisStreamHub(redis_url, live_ttl=2)
    try:
        key = f"done-{uuid.uuid4().hex[:8]}"
        await hub.open(key)
        await hub.publish(key, TextDelta("x"))
        await hub.publish(key, Done("stopped"))
        await hub.close(key)
        assert await asyncio.wait_for(_collect(hub.subscribe(key)), 20) == [(1, TextDelta("x")), (2, Done("stopped"))]
        assert await asyncio.wait_for(_collect(hub.subscribe(key, after=2)), 20) == []
        assert await asyncio.wait_for(_collect(hub.subscribe(f"never-{uuid.uuid4().hex}")), 20) == []
    finally:
        await hub.aclose()


# -- through the server ----------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory, redis_url):
    srv = start_server(tmp_path_factory.mktemp("following"), redis_url=redis_url, redis_max_connections=10)
    yield srv
    srv.stop()


async def test_200_concurrent_stored_chat_streams_on_a_pool_of_10(redis_server):
    """Regression (issue 22, High 4): each follower held about two pooled connections, so at 80
    stored-chat streams most hung and at 300 requests got 500s. Now 200 at once on a pool of 10
    all end with ``done`` and the replica never has more than its pool open."""
    model = f"follow-{uuid.uuid4().hex[:8]}"
    reply = "one two three four five six seven eight"
    register_scripted(redis_server, model, ScriptedProvider(reply, delay=0.05))
    name = redis_server.container.redis.connection_pool.connection_kwargs["client_name"]

    async def chat(client: httpx.AsyncClient) -> list[dict]:
        body = {"messages": [{"role": "user", "content": "count"}], "model": model, "enableDSL": False}
        async with client.stream("POST", "/api/chat", json=body) as r:
            assert r.status_code == 200, await r.aread()
            return [e.json() async for e in sse_events(r)]

    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    async with httpx.AsyncClient(base_url=redis_server.url, timeout=120, limits=limits) as client:
        async with ConnectionCounter(redis_server.settings.redis_url, name) as counter:
            streams = await asyncio.wait_for(asyncio.gather(*[chat(client) for _ in range(200)]), 180)
    for events in streams:
        assert events[-1]["type"] == "done", events[-3:]
        assert "".join(e["content"] for e in events if e["type"] == "text") == reply
    assert 0 < counter.peak <= 10, counter.peak


async def test_a_channel_never_closed_stops_looking_live_after_its_ttl(redis_url):
    """An open without a close (a bug, a lost error) is kept live only while it writes within its
    TTL, not for as long as the process runs; its followers then end."""
    hub = RedisStreamHub(redis_url, ttl=2, live_ttl=2)
    key = f"forgotten-{uuid.uuid4().hex[:8]}"
    try:
        await hub.open(key)
        await hub.publish(key, TextDelta("x"))
        got = await asyncio.wait_for(_collect(hub.subscribe(key)), 30)
        assert got == [(1, TextDelta("x")), (2, Done("interrupted"))] or got == [(1, TextDelta("x"))]
        assert not await hub.is_live(key)
    finally:
        await hub.aclose()
