"""The stream hub seam.

Every generation of a stored chat publishes sequence-numbered events under its
chat id. Any number of subscribers replay from a given sequence number and then
follow live events until the channel closes. Buffers are bounded and expire.

The same channels carry recorded HTTP responses for ``Idempotency-Key``
(``records.py``): one way to record, replay and follow, whatever is recorded.

A channel is *live* while its publisher runs. The hub that opened it keeps it
live by itself (Redis: a marker with a short TTL that the owning replica
refreshes), so a channel whose replica died stops being live within about
``live_ttl`` seconds, and its followers end then, with ``Done("interrupted")``
when the channel never published its own ``Done`` (docs/architecture.md,
"Requests, keys and replicas").
"""

from __future__ import annotations

from typing import AsyncIterator, Protocol

from hubbub.streams.records import Item


class StreamHub(Protocol):
    async def open(self, key: str, *, ttl: float | None = None, max_events: int | None = None) -> None:
        """Start a fresh channel for ``key`` (a new generation), dropping an older finished one.

        ``ttl``: how long it stays readable after its last write; ``max_events``: how many of
        its newest items it keeps (0: all). Both default to the hub's own."""

    async def publish(self, key: str, event: Item) -> int:
        """Append ``event``; returns its sequence number (1, 2, …)."""

    async def close(self, key: str) -> None:
        """Mark the channel finished; it stays readable until it expires."""

    async def discard(self, key: str) -> None:
        """End the channel and forget it: its followers end, nothing of it stays to replay."""

    async def snapshot(self, key: str) -> list[tuple[int, Item]]:
        """The events buffered so far, without waiting."""

    async def is_live(self, key: str) -> bool:
        """Whether a generation is still publishing on ``key``."""

    def subscribe(self, key: str, after: int = 0) -> AsyncIterator[tuple[int, Item]]:
        """Events with sequence number > ``after``, then live ones until the channel closes
        (or stops being live: its publisher died)."""

    async def set_latest(self, conversation_id: str, key: str) -> None:
        """Remember ``key`` as the conversation's latest generation (for resuming)."""

    async def latest(self, conversation_id: str) -> str | None: ...

    async def request_stop(self, conversation_id: str) -> None:
        """Ask whichever replica runs the conversation's generation to stop it."""

    def stop_requests(self) -> AsyncIterator[str]:
        """Conversation ids other replicas asked to stop."""

    @property
    def shared(self) -> bool: ...

    async def aclose(self) -> None: ...
