"""Stream buffers are bounded and expire: memory stays flat over many finished streams."""

from __future__ import annotations

import gc
import tracemalloc

import pytest

from hubbub.core.events import Done, TextDelta
from hubbub.streams.memory import MemoryStreamHub


async def _run_streams(hub, start: int, count: int, events: int = 50) -> None:
    for i in range(start, start + count):
        key = f"gen-{i}"
        await hub.open(key)
        for n in range(events):
            await hub.publish(key, TextDelta(f"token {n} "))
        await hub.publish(key, Done())
        await hub.close(key)


async def test_memory_hub_stays_flat_over_many_finished_streams():
    hub = MemoryStreamHub(max_finished=200, ttl=3600)
    tracemalloc.start()
    await _run_streams(hub, 0, 500)  # fill up to the bound
    gc.collect()
    base, _ = tracemalloc.get_traced_memory()
    await _run_streams(hub, 500, 3000)
    gc.collect()
    after, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(hub) <= 201
    assert after - base < 512 * 1024, f"grew by {after - base} bytes over 3000 finished streams"


async def test_one_stream_is_capped_and_finished_streams_expire():
    hub = MemoryStreamHub(max_events=100, ttl=0.0)
    await hub.open("long")
    for n in range(1000):
        await hub.publish("long", TextDelta("x"))
    assert len(await hub.snapshot("long")) == 100
    replay = [seq async for seq, _ in _take(hub.subscribe("long", 0), 100)]
    assert replay[0] == 901 and replay[-1] == 1000  # the oldest were evicted, numbering kept
    await hub.close("long")
    await hub.open("next")  # expiry runs as new streams open
    assert await hub.snapshot("long") == []


async def _take(iterator, n):
    count = 0
    async for item in iterator:
        yield item
        count += 1
        if count >= n:
            break


async def test_redis_streams_are_capped_and_expire(redis_url):
    from redis.asyncio import Redis

    from hubbub.streams.redis import RedisStreamHub

    hub = RedisStreamHub(redis_url, max_events=100, ttl=2)
    await hub.open("capped-test")
    for _ in range(1000):
        await hub.publish("capped-test", TextDelta("x"))
    await hub.close("capped-test")
    events = await hub.snapshot("capped-test")
    assert 100 <= len(events) < 300  # MAXLEN ~ trims in whole nodes: approximately 100
    raw = Redis.from_url(redis_url)
    ttl = await raw.ttl("hubbub:stream:capped-test")
    assert 0 < ttl <= 2
    assert not await hub.is_live("capped-test")
    await raw.aclose()
    await hub.aclose()


@pytest.mark.parametrize("after", [0, 3])
async def test_redis_subscribe_replays_after_last_event_id(redis_url, after):
    from hubbub.streams.redis import RedisStreamHub

    hub = RedisStreamHub(redis_url)
    key = f"replay-{after}"
    await hub.open(key)
    for n in range(5):
        await hub.publish(key, TextDelta(str(n)))
    await hub.publish(key, Done())
    await hub.close(key)
    got = [(seq, e) async for seq, e in hub.subscribe(key, after)]
    assert [s for s, _ in got] == list(range(after + 1, 7))
    assert isinstance(got[-1][1], Done)
    await hub.aclose()


async def test_a_channel_can_keep_everything_and_its_own_ttl():
    """Idempotency records keep every item (their head must survive a long body) for a day."""
    hub = MemoryStreamHub(max_events=100, ttl=0.0)
    await hub.open("record", ttl=3600, max_events=0)
    for _ in range(1000):
        await hub.publish("record", TextDelta("x"))
    await hub.close("record")
    await hub.open("other")  # expiry runs: the record's own TTL keeps it
    assert len(await hub.snapshot("record")) == 1000
    await hub.discard("record")
    assert await hub.snapshot("record") == [] and not await hub.is_live("record")


async def test_redis_channel_can_keep_everything_and_its_own_ttl(redis_url):
    from redis.asyncio import Redis

    from hubbub.streams.redis import RedisStreamHub

    hub = RedisStreamHub(redis_url, max_events=100, ttl=2)
    raw = Redis.from_url(redis_url)
    try:
        await hub.open("record-test", ttl=3600, max_events=0)
        for _ in range(300):
            await hub.publish("record-test", TextDelta("x"))
        await hub.close("record-test")
        assert len(await hub.snapshot("record-test")) == 300
        assert 3000 < await raw.ttl("hubbub:stream:record-test") <= 3600
        await hub.discard("record-test")
        assert 0 < await raw.ttl("hubbub:stream:record-test") <= 60
        assert [e async for e in hub.subscribe("record-test")] == []  # discarded: nothing to replay
    finally:
        await raw.aclose()
        await hub.aclose()
