"""Following Redis Streams without a connection per follower (issue 22, High 4).

A blocking ``XREAD`` holds a pooled connection for as long as it blocks, so one
per follower ran the pool dry at about 50 concurrent stored-chat streams per
replica (each also polled its live marker on a second connection). Here each
replica runs one reader task: one ``XREAD BLOCK`` over every stream its
followers follow (``XREAD`` takes many keys), fanning the entries out to the
local followers. A replica's following holds one connection, however many
streams it serves.

- A follower joins the *tail* of its stream (created at the follower's position
  when it is the first). It reads what the tail had already read before it
  joined (``XRANGE``, on a connection held only for that call), then takes the
  entries the reader hands it. One that falls more than ``_LAG`` entries behind
  (a slow client) is dropped from the hand-out and catches up by ``XRANGE``
  again, so a follower's local queue stays bounded.
- A new tail must not wait for the reader's current ``XREAD`` to time out: the
  reader's call also reads a private *wake* stream, and a join while it blocks
  adds one entry there.
- Live or finished: a channel ends at its close marker. A tail that has heard
  nothing for ``quiet`` seconds has its live marker checked; one whose marker is
  gone (its replica died and the marker expired, or the channel expired) ends
  once the reader's next call brings it nothing more. Its followers then get
  ``Done("interrupted")`` — what the turn would have published had its replica
  shut down cleanly — unless the channel's last event already is a ``Done``; a
  stream that does not exist at all just ends.
- A Redis error ends every follower with that error (a new follow starts a new reader).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable

from hubbub.core.events import Done
from hubbub.streams.records import Item

_LAG = 1_000  # entries a follower may have waiting before it reads for itself instead
_CLOSED, _DEAD, _GONE = "closed", "dead", "gone"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _seq(entry_id: str) -> int:
    return int(entry_id.split("-", 1)[0])


class _Follower:
    __slots__ = ("items", "ready", "last", "end", "error", "lagging")

    def __init__(self, after: int) -> None:
        self.items: deque[tuple[int, Item]] = deque()
        self.ready = asyncio.Event()
        self.last = after  # the last sequence number it yielded (or was told to start after)
        self.end: str | None = None
        self.error: BaseException | None = None
        self.lagging = False


@dataclass(eq=False)
class _Tail:
    stream: str
    live: str
    cursor: str  # the last entry id the reader read ("0-0": none)
    heard: float  # loop time of the last entry (or of the tail's start)
    followers: set[_Follower] = field(default_factory=set)
    suspect: str | None = None  # _DEAD or _GONE: ends unless the next read brings entries


class Tails:
    def __init__(
        self, redis: Any, decode: Callable[[bytes], Item], close_marker: bytes,
        *, block_ms: int = 1000, quiet: float = 1.0, count: int = 500,
    ) -> None:
        self._redis = redis
        self._decode = decode
        self._close = close_marker
        self._block_ms = block_ms
        self._quiet = quiet
        self._count = count
        self._tails: dict[str, _Tail] = {}
        self._reader: asyncio.Task[None] | None = None
        self._wake_key = f"hubbub:wake:{uuid.uuid4().hex}"
        self._wake_cursor = "0-0"
        self._reading = False  # an XREAD is in flight
        self._woken = False  # and a wake entry was already sent for it
        self._checked = 0.0
        self._closing = False  # set by aclose: the reader stops even if a cancellation is lost

    def __len__(self) -> int:
        return len(self._tails)

    async def follow(self, stream: str, live: str, after: int = 0) -> AsyncIterator[tuple[int, Item]]:
        """Items of ``stream`` with sequence numbers > ``after``, until it closes or dies."""
        me = _Follower(after)
        loop = asyncio.get_running_loop()
        tail = self._tails.get(stream)
        new = tail is None
        if tail is None:
            tail = self._tails[stream] = _Tail(stream, live, f"{after}-1" if after > 0 else "0-0", loop.time())
        tail.followers.add(me)
        if self._reader is None or self._reader.done():
            self._reader = loop.create_task(self._read())
        seen_done = False
        try:
            if new:
                await self._wake()
            while True:
                me.lagging = False
                upto = _seq(tail.cursor)  # the reader hands out only entries after this
                while me.last < upto:  # what the tail read before we joined (or while we lagged)
                    entries = await self._redis.xrange(stream, min=f"({me.last}-1", max=f"{upto}-1",
                                                       count=self._count)
                    if not entries:
                        break
                    for entry_id, fields in entries:
                        raw = fields[b"e"]
                        if raw == self._close:
                            return
                        me.last = _seq(_text(entry_id))
                        item = self._decode(raw)
                        seen_done = isinstance(item, Done)
                        yield me.last, item
                while not me.lagging:
                    while me.items:
                        seq, item = me.items.popleft()
                        if seq > me.last:
                            me.last = seq
                            seen_done = isinstance(item, Done)
                            yield seq, item
                    if me.lagging:
                        break
                    if me.error is not None:
                        raise me.error
                    if me.end is not None:
                        if me.end == _DEAD and not seen_done and await self._ends_without_done(stream):
                            yield me.last + 1, Done("interrupted")
                        return
                    me.ready.clear()
                    await me.ready.wait()
        finally:
            tail.followers.discard(me)
            if not tail.followers and self._tails.get(stream) is tail:
                del self._tails[stream]

    async def _ends_without_done(self, stream: str) -> bool:
        """Whether the stream died: neither closed by its owner nor ended with a ``Done`` (a closed
        stream ended as its owner meant it to, whatever a late follower's position)."""
        last = await self._redis.xrevrange(stream, count=1)
        if not last:
            return True
        raw = last[0][1][b"e"]
        return raw != self._close and not isinstance(self._decode(raw), Done)

    async def _wake(self) -> None:
        """Make a blocked ``XREAD`` return, so it picks up a new tail now (once per call)."""
        if self._reading and not self._woken:
            self._woken = True
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.xadd(self._wake_key, {"w": "1"}, maxlen=8, approximate=False)
                pipe.expire(self._wake_key, 3600)
                await pipe.execute()

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._tails and not self._closing:
                asked = dict(self._tails)
                streams = {name: tail.cursor for name, tail in asked.items()}
                streams[self._wake_key] = self._wake_cursor
                self._reading = True
                try:
                    reply = await self._redis.xread(streams, count=self._count, block=self._block_ms)
                finally:
                    self._reading = self._woken = False
                now = loop.time()
                heard = set()
                for name, entries in (reply.items() if isinstance(reply, dict) else reply or ()):
                    name = _text(name)
                    if name == self._wake_key:
                        self._wake_cursor = _text(entries[-1][0])
                        continue
                    tail = self._tails.get(name)
                    if tail is None or tail is not asked.get(name):  # left (or restarted) meanwhile
                        continue
                    heard.add(name)
                    tail.heard, tail.suspect = now, None
                    self._hand_out(tail, entries)
                for name, tail in asked.items():
                    if tail.suspect is not None and name not in heard and self._tails.get(name) is tail:
                        self._end(tail, tail.suspect)
                if now - self._checked >= self._quiet:
                    self._checked = now
                    await self._check(now)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # Redis is down or refused: every follower learns it
            for tail in list(self._tails.values()):
                for follower in tail.followers:
                    follower.error = exc
                    follower.ready.set()
            self._tails.clear()

    def _hand_out(self, tail: _Tail, entries: list[Any]) -> None:
        items = []
        for entry_id, fields in entries:
            tail.cursor = _text(entry_id)
            raw = fields[b"e"]
            if raw == self._close:
                self._deliver(tail, items)
                self._end(tail, _CLOSED)
                return
            items.append((_seq(tail.cursor), self._decode(raw)))
        self._deliver(tail, items)

    @staticmethod
    def _deliver(tail: _Tail, items: list[tuple[int, Item]]) -> None:
        if not items:
            return
        for follower in tail.followers:
            if follower.lagging:
                continue
            if len(follower.items) + len(items) > _LAG:
                follower.lagging = True  # it reads for itself (XRANGE) from where it is
                follower.items.clear()
            else:
                follower.items.extend(items)
            follower.ready.set()

    def _end(self, tail: _Tail, why: str) -> None:
        for follower in tail.followers:
            follower.end = why
            follower.ready.set()
        if self._tails.get(tail.stream) is tail:
            del self._tails[tail.stream]

    async def _check(self, now: float) -> None:
        """Which quiet tails are still live (one round trip for all of them)."""
        quiet = [t for t in self._tails.values() if t.suspect is None and now - t.heard >= self._quiet]
        if not quiet:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for tail in quiet:
                pipe.exists(tail.live)
                pipe.exists(tail.stream)
            answers = await pipe.execute()
        for n, tail in enumerate(quiet):
            live, exists = answers[2 * n], answers[2 * n + 1]
            if not live:
                tail.suspect = _DEAD if exists else _GONE

    async def aclose(self) -> None:
        """Stop the reader. Also by a flag: redis-py 8.2 now and then swallows the cancellation of
        a task inside a command, and the reader must not read on for ever then."""
        self._closing = True
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.wait([self._reader], timeout=self._block_ms / 1000 + 5)
        for tail in list(self._tails.values()):
            self._end(tail, _GONE)
