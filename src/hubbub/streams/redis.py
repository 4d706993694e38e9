"""The Redis stream hub: any replica can replay and follow any generation.

Each generation is a Redis Stream ``hubbub:stream:<id>`` whose entry ids are
``<seq>-1`` (so ``Last-Event-ID: n`` maps straight to "after n"), capped at
``max_events`` and expiring ``ttl`` seconds after the last write. A publish is
one Lua call (one round trip): next sequence number, XADD, expiries. A
generation is live while ``hubbub:live:<id>`` exists; its TTL is refreshed by
every publish, so a generation whose replica died stops looking live.

Stop requests travel over the pub/sub channel ``hubbub:stop``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import AsyncIterator

from hubbub.core.events import Event
from hubbub.streams.codec import decode, encode

log = logging.getLogger(__name__)

_CLOSE = b"__close__"
_PUBLISH = """
local seq = redis.call('INCR', KEYS[2])
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], seq .. '-1', 'e', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
if ARGV[5] == '1' then redis.call('SET', KEYS[3], '1', 'EX', ARGV[4]) else redis.call('DEL', KEYS[3]) end
return seq
"""
STOP_CHANNEL = "hubbub:stop"


class RedisStreamHub:
    def __init__(self, url: str, max_events: int = 10_000, ttl: int = 300, live_ttl: int = 120) -> None:
        from redis.asyncio import Redis

        self._redis = Redis.from_url(url)
        self._max_events = max_events
        self._ttl = ttl
        self._live_ttl = live_ttl
        self._publish = self._redis.register_script(_PUBLISH)

    @staticmethod
    def _keys(key: str) -> list[str]:
        return [f"hubbub:stream:{key}", f"hubbub:seq:{key}", f"hubbub:live:{key}"]

    async def open(self, key: str) -> None:
        stream, seq, live = self._keys(key)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(stream, seq)
            pipe.set(live, "1", ex=self._live_ttl)
            await pipe.execute()

    async def publish(self, key: str, event: Event) -> int:
        return int(await self._publish(keys=self._keys(key),
                                       args=[encode(event), self._max_events, self._ttl, self._live_ttl, "1"]))

    async def close(self, key: str) -> None:
        await self._publish(keys=self._keys(key), args=[_CLOSE, self._max_events, self._ttl, self._live_ttl, "0"])

    async def snapshot(self, key: str) -> list[tuple[int, Event]]:
        entries = await self._redis.xrange(self._keys(key)[0], "-", "+")
        out = []
        for entry_id, fields in entries:
            if fields[b"e"] != _CLOSE:
                ident = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                out.append((int(ident.split("-")[0]), decode(fields[b"e"])))
        return out

    async def is_live(self, key: str) -> bool:
        return bool(await self._redis.exists(self._keys(key)[2]))

    async def subscribe(self, key: str, after: int = 0) -> AsyncIterator[tuple[int, Event]]:
        stream, _, live = self._keys(key)
        cursor = f"{after}-1" if after > 0 else "0-0"
        while True:
            reply = await self._redis.xread({stream: cursor}, block=2000, count=500)
            if not reply:
                if not await self._redis.exists(live):
                    # Nothing new and nobody publishing: the generation ended (or its replica died).
                    more = await self._redis.xread({stream: cursor}, count=500)
                    if not more:
                        return
                    reply = more
                else:
                    continue
            for entry_id, fields in reply[0][1]:
                cursor = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                raw = fields[b"e"]
                if raw == _CLOSE:
                    return
                yield int(cursor.split("-")[0]), decode(raw)

    async def set_latest(self, conversation_id: str, key: str) -> None:
        await self._redis.set(f"hubbub:latest:{conversation_id}", key, ex=86_400)

    async def latest(self, conversation_id: str) -> str | None:
        value = await self._redis.get(f"hubbub:latest:{conversation_id}")
        return value.decode() if isinstance(value, bytes) else value

    async def request_stop(self, conversation_id: str) -> None:
        await self._redis.publish(STOP_CHANNEL, conversation_id)

    async def stop_requests(self) -> AsyncIterator[str]:
        """Conversation ids whose running generation someone asked to stop (from any replica)."""
        pubsub = self._redis.pubsub()
        await pubsub.subscribe(STOP_CHANNEL)
        try:
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5.0)
                if message is None:
                    continue
                data = message["data"]
                yield data.decode() if isinstance(data, bytes) else str(data)
        finally:
            await pubsub.aclose()

    @property
    def shared(self) -> bool:
        return True

    async def aclose(self) -> None:
        await self._redis.aclose()
