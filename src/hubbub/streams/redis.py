"""The Redis stream hub: any replica can replay and follow any generation.

Each generation is a Redis Stream ``hubbub:stream:<id>`` whose entry ids are
``<seq>-1`` (so ``Last-Event-ID: n`` maps straight to "after n"), capped at
``max_events`` and expiring ``ttl`` seconds after the last write. A publish is
one Lua call (one round trip): next sequence number, XADD, expiries.

A generation is live while ``hubbub:live:<id>`` exists. Its TTL is short
(``live_ttl``, the ``stream_live_ttl_seconds`` setting) and the replica that
opened the channel refreshes it by itself (one pipelined round trip every
``live_ttl / 3`` for all of its open channels) until it closes it: so a
generation whose replica died stops looking live within ``live_ttl`` seconds,
and its followers end then (issue 22, Medium 7), however long the model takes
between tokens.

Followers share one blocking ``XREAD`` per replica (``tails.py``). Stop
requests travel over the pub/sub channel ``hubbub:stop``.

The Redis client is the app's one client (built in ``container.py``), shared
with idempotency and the rate limiter; the hub closes it at shutdown when asked
to (``close_client``), being the last of them to stop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, AsyncIterator

from hubbub.streams.records import Item, decode, encode
from hubbub.streams.tails import Tails

log = logging.getLogger(__name__)

_CLOSE = b"__close__"
_PUBLISH = """
local seq = redis.call('INCR', KEYS[2])
if tonumber(ARGV[2]) > 0 then
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], seq .. '-1', 'e', ARGV[1])
else
  redis.call('XADD', KEYS[1], seq .. '-1', 'e', ARGV[1])
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
if ARGV[5] == '1' then redis.call('SET', KEYS[3], '1', 'EX', ARGV[4]) else redis.call('DEL', KEYS[3]) end
return seq
"""
STOP_CHANNEL = "hubbub:stop"
_DISCARD_TTL = 60  # a discarded channel's close marker stays this long, for followers still reading


@dataclass
class _Owned:
    """A channel this replica publishes on: its own expiry and cap, and when it last wrote."""

    ttl: int
    max_events: int
    touched: float = 0.0


class RedisStreamHub:
    def __init__(
        self, redis: Any, max_events: int = 10_000, ttl: int = 300, live_ttl: int = 10,
        close_client: bool | None = None,
    ) -> None:
        """``redis``: a ``redis.asyncio.Redis`` (the app's shared client) or a URL (the hub then
        makes and closes its own)."""
        if isinstance(redis, str):
            from redis.asyncio import Redis

            redis = Redis.from_url(redis)
            close_client = True if close_client is None else close_client
        self.redis = redis
        self._close_client = bool(close_client)
        self._max_events = max_events
        self._ttl = ttl
        self.live_ttl = max(int(live_ttl), 1)
        self._publish = redis.register_script(_PUBLISH)
        self._owned: dict[str, _Owned] = {}
        self._keeper: asyncio.Task[None] | None = None
        self._closing = False
        self._tails = Tails(redis, decode, _CLOSE)

    @staticmethod
    def _keys(key: str) -> list[str]:
        return [f"hubbub:stream:{key}", f"hubbub:seq:{key}", f"hubbub:live:{key}"]

    @staticmethod
    def live_key(key: str) -> str:
        """The marker that says ``key`` is live (idempotency sets it atomically with a claim)."""
        return f"hubbub:live:{key}"

    async def open(self, key: str, *, ttl: float | None = None, max_events: int | None = None) -> None:
        stream, seq, live = self._keys(key)
        self._owned[key] = _Owned(self._ttl if ttl is None else int(ttl),
                                  self._max_events if max_events is None else max_events, time.monotonic())
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(stream, seq)
            pipe.set(live, "1", ex=self.live_ttl)
            await pipe.execute()
        if self._keeper is None or self._keeper.done():
            self._keeper = asyncio.get_running_loop().create_task(self._keep_live())

    async def _keep_live(self) -> None:
        """Refresh the live markers of the channels this replica has open, while it has any.

        EXPIRE, not SET: a channel closed meanwhile must not look live again. A channel silent
        for longer than its own TTL is let go (its events have expired anyway): an open that was
        never closed, by a bug or a lost error, must not look live for as long as the process runs.
        """
        while self._owned and not self._closing:
            await asyncio.sleep(self.live_ttl / 3)
            now = time.monotonic()
            for key, owned in list(self._owned.items()):
                if now - owned.touched > owned.ttl:
                    log.warning("stream %s was never closed; no longer keeping it live", key)
                    del self._owned[key]
            keys = [self._keys(key)[2] for key in self._owned]
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for live in keys:
                        pipe.expire(live, self.live_ttl)
                    await pipe.execute()
            except Exception:  # Redis hiccup: the next round (or the next publish) refreshes them
                log.warning("could not refresh live markers", exc_info=True)

    def _limits(self, key: str) -> _Owned:
        return self._owned.get(key) or _Owned(self._ttl, self._max_events)

    async def publish(self, key: str, event: Item) -> int:
        owned = self._limits(key)
        owned.touched = time.monotonic()
        return int(await self._publish(keys=self._keys(key),
                                       args=[encode(event), owned.max_events, owned.ttl, self.live_ttl, "1"]))

    async def close(self, key: str) -> None:
        owned = self._owned.pop(key, None) or _Owned(self._ttl, self._max_events)
        await self._publish(keys=self._keys(key), args=[_CLOSE, owned.max_events, owned.ttl, self.live_ttl, "0"])

    async def discard(self, key: str) -> None:
        """Empty it, leaving only a close marker (its followers end there) that expires soon."""
        self._owned.pop(key, None)
        await self.redis.delete(self._keys(key)[0])
        await self._publish(keys=self._keys(key), args=[_CLOSE, 0, _DISCARD_TTL, self.live_ttl, "0"])

    async def snapshot(self, key: str) -> list[tuple[int, Item]]:
        entries = await self.redis.xrange(self._keys(key)[0], "-", "+")
        out = []
        for entry_id, fields in entries:
            if fields[b"e"] != _CLOSE:
                ident = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                out.append((int(ident.split("-")[0]), decode(fields[b"e"])))
        return out

    async def is_live(self, key: str) -> bool:
        return bool(await self.redis.exists(self._keys(key)[2]))

    def subscribe(self, key: str, after: int = 0) -> AsyncIterator[tuple[int, Item]]:
        stream, _, live = self._keys(key)
        return self._tails.follow(stream, live, after)

    async def set_latest(self, conversation_id: str, key: str) -> None:
        await self.redis.set(f"hubbub:latest:{conversation_id}", key, ex=86_400)

    async def latest(self, conversation_id: str) -> str | None:
        value = await self.redis.get(f"hubbub:latest:{conversation_id}")
        return value.decode() if isinstance(value, bytes) else value

    async def request_stop(self, conversation_id: str) -> None:
        await self.redis.publish(STOP_CHANNEL, conversation_id)

    async def stop_requests(self) -> AsyncIterator[str]:
        """Conversation ids whose running generation someone asked to stop (from any replica)."""
        pubsub = self.redis.pubsub()
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
        """Stop following and refreshing. Channels still open here are left to expire, as if this
        replica had died: their followers elsewhere end within ``live_ttl`` seconds."""
        self._closing = True  # a cancellation redis-py swallows must not keep it refreshing (tails.py)
        if self._keeper is not None:
            self._keeper.cancel()
            await asyncio.wait([self._keeper], timeout=5)
        self._owned.clear()
        await self._tails.aclose()
        if self._close_client:
            await self.redis.aclose()
