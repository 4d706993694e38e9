"""The stream hub seam.

Every generation of a stored chat publishes sequence-numbered events under its
chat id. Any number of subscribers replay from a given sequence number and then
follow live events until the channel closes. Buffers are bounded and expire.
"""

from __future__ import annotations

from typing import AsyncIterator, Protocol

from hubbub.core.events import Event


class StreamHub(Protocol):
    async def open(self, key: str) -> None:
        """Start a fresh channel for ``key`` (a new generation), dropping an older finished one."""

    async def publish(self, key: str, event: Event) -> int:
        """Append ``event``; returns its sequence number (1, 2, …)."""

    async def close(self, key: str) -> None:
        """Mark the channel finished; it stays readable until it expires."""

    async def snapshot(self, key: str) -> list[tuple[int, Event]]:
        """The events buffered so far, without waiting."""

    async def is_live(self, key: str) -> bool:
        """Whether a generation is still publishing on ``key``."""

    def subscribe(self, key: str, after: int = 0) -> AsyncIterator[tuple[int, Event]]:
        """Events with sequence number > ``after``, then live ones until the channel closes."""

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
