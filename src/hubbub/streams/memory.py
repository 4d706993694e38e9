"""The in-process stream hub (single replica)."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import AsyncIterator

from hubbub.streams.records import Item


@dataclass
class _Channel:
    ttl: float
    max_events: int  # 0: keep every item
    events: list[tuple[int, Item]] = field(default_factory=list)
    first_seq: int = 1  # sequence number of events[0] (older ones were evicted)
    next_seq: int = 1
    live: bool = True
    expires_at: float = 0.0  # once finished
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)


class MemoryStreamHub:
    """Keeps at most ``max_events`` per channel, and finished channels for ``ttl`` seconds
    (at most ``max_finished`` of them), so memory stays bounded however many streams ran."""

    def __init__(
        self, max_events: int = 10_000, ttl: float = 300.0, max_latest: int = 10_000, max_finished: int = 1_000
    ) -> None:
        self._channels: dict[str, _Channel] = {}
        self._finished: OrderedDict[str, None] = OrderedDict()  # in the order they finished
        self._max_events = max_events
        self._ttl = ttl
        self._max_finished = max_finished
        self._latest: OrderedDict[str, str] = OrderedDict()
        self._max_latest = max_latest

    @property
    def shared(self) -> bool:
        """Whether other replicas see this hub (no: stops need no broadcast)."""
        return False

    async def set_latest(self, conversation_id: str, key: str) -> None:
        self._latest[conversation_id] = key
        self._latest.move_to_end(conversation_id)
        while len(self._latest) > self._max_latest:
            self._latest.popitem(last=False)

    async def latest(self, conversation_id: str) -> str | None:
        return self._latest.get(conversation_id)

    async def request_stop(self, conversation_id: str) -> None:
        """Single replica: the caller already stopped it locally if it ran here."""

    async def stop_requests(self) -> AsyncIterator[str]:
        return
        yield  # pragma: no cover - an empty async generator

    def _expire(self) -> None:
        """Drop finished channels past their TTL, and the oldest beyond ``max_finished``.

        In the order they finished: one whose own TTL is shorter than an older one's waits
        behind it (the count bound still holds)."""
        now = time.monotonic()
        while self._finished:
            key = next(iter(self._finished))
            channel = self._channels.get(key)
            if channel is not None and channel.live:  # reopened since: no longer finished
                del self._finished[key]
                continue
            if len(self._finished) <= self._max_finished and (channel is not None and channel.expires_at > now):
                return
            del self._finished[key]
            self._channels.pop(key, None)

    async def open(self, key: str, *, ttl: float | None = None, max_events: int | None = None) -> None:
        self._expire()
        self._finished.pop(key, None)
        self._channels[key] = _Channel(self._ttl if ttl is None else ttl,
                                       self._max_events if max_events is None else max_events)

    async def publish(self, key: str, event: Item) -> int:
        channel = self._channels.get(key)
        if channel is None:
            channel = self._channels[key] = _Channel(self._ttl, self._max_events)
        seq = channel.next_seq
        channel.next_seq += 1
        channel.events.append((seq, event))
        if channel.max_events and len(channel.events) > channel.max_events:
            drop = len(channel.events) - channel.max_events
            del channel.events[:drop]
            channel.first_seq = channel.events[0][0]
        async with channel.changed:
            channel.changed.notify_all()
        return seq

    async def close(self, key: str) -> None:
        channel = self._channels.get(key)
        if channel is None:
            return
        channel.live = False
        channel.expires_at = time.monotonic() + channel.ttl
        self._finished[key] = None
        self._finished.move_to_end(key)
        async with channel.changed:
            channel.changed.notify_all()

    async def discard(self, key: str) -> None:
        channel = self._channels.pop(key, None)
        self._finished.pop(key, None)
        if channel is None:
            return
        channel.live = False
        channel.events.clear()
        async with channel.changed:
            channel.changed.notify_all()

    async def snapshot(self, key: str) -> list[tuple[int, Item]]:
        channel = self._channels.get(key)
        return list(channel.events) if channel is not None else []

    async def is_live(self, key: str) -> bool:
        channel = self._channels.get(key)
        return channel is not None and channel.live

    async def subscribe(self, key: str, after: int = 0) -> AsyncIterator[tuple[int, Item]]:
        channel = self._channels.get(key)
        if channel is None:
            return
        while True:
            start = max(after + 1 - channel.first_seq, 0)
            for seq, event in channel.events[start:]:
                after = seq
                yield seq, event
            if not channel.live:
                return
            async with channel.changed:
                if channel.live and (not channel.events or channel.events[-1][0] <= after):
                    await channel.changed.wait()

    def __len__(self) -> int:
        return len(self._channels)

    async def aclose(self) -> None:
        self._channels.clear()
        self._finished.clear()
