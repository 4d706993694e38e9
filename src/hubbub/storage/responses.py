"""Stored responses (the OpenAI Responses API): the ``responses`` table and its repository.

A stored response is a turn of a conversation of its own: ``conversations.id`` is the response
id (``kind = 'response'``) and ``messages`` hold its input messages and its answer, as for any
stored chat (the turn runner writes them). This table holds the rest, in the Responses API's
own terms (docs/api-decisions.md, "Responses")::

    responses ── id ──► conversations (kind 'response') ──► messages (its input + its answer)
        │
        └── previous_id ──► the parent response (NULL for the first of a chain)

A chain's history is the messages of its responses, root first (one recursive query).
Branches cost nothing: two responses naming one parent each point at it, and neither sees the
other. Deleting a response deletes its conversation and messages; its descendants keep theirs,
and their history then starts after the deleted link.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    String,
    Table,
    delete,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from hubbub.core.ids import now_ms
from hubbub.core.parts import parts_from_json
from hubbub.core.types import Message, MessageStatus, Part
from hubbub.storage.tables import conversations, messages, metadata

responses = Table(
    "responses",
    metadata,
    Column("id", String(64), ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True),
    Column("owner", String(64), nullable=True),
    Column("previous_id", String(64), nullable=True),
    Column("status", String(16), nullable=False),
    Column("model", String(255), nullable=False),
    Column("background", Boolean, nullable=False, default=False),
    Column("request", JSON, nullable=False),  # the settings as sent, echoed by every read
    Column("input_items", JSON, nullable=False),  # wire form, with ids (GET …/input_items)
    Column("output", JSON, nullable=True),  # wire form, once finished
    Column("usage", JSON, nullable=True),
    Column("error", JSON, nullable=True),
    Column("incomplete_reason", String(32), nullable=True),
    Column("channel", String(64), nullable=True),  # the stream hub key: the answer's message id
    Column("created_at", BigInteger, nullable=False),
    Column("completed_at", BigInteger, nullable=True),
    Column("expires_at", BigInteger, nullable=True),
    Index("ix_responses_previous", "previous_id"),
    Index("ix_responses_expires", "expires_at"),
)

# A chain longer than this is read from its newest responses only (the context would not hold it).
MAX_CHAIN = 10_000


@dataclass
class StoredResponse:
    """One stored response. ``reply_*``: its answer's message row (the turn runner's), which
    tells a response whose process died (``reply_status`` not ``streaming``) from a running one."""

    id: str
    model: str
    request: dict[str, Any]
    input_items: list[dict[str, Any]]
    status: str = "in_progress"
    owner: str | None = None
    previous_id: str | None = None
    background: bool = False
    output: list[dict[str, Any]] | None = None
    usage: dict[str, int] | None = None
    error: dict[str, Any] | None = None
    incomplete_reason: str | None = None
    channel: str | None = None
    created_at: int = 0
    completed_at: int | None = None
    expires_at: int | None = None
    reply_status: MessageStatus | None = None
    reply_text: str = ""
    reply_parts: tuple[Part, ...] | None = field(default=None)

    @property
    def finished(self) -> bool:
        return self.status not in ("queued", "in_progress")


def _live(now: int) -> Any:
    return or_(responses.c.expires_at.is_(None), responses.c.expires_at > now)


class ResponseRepository:
    """``retention_days``: how long a stored response is kept (0: for ever)."""

    def __init__(self, engine: AsyncEngine, retention_days: float = 30.0, purge_every: float = 600.0) -> None:
        self._engine = engine
        self.retention_ms = int(retention_days * 86_400_000)
        self._purge_every = purge_every
        self._next_purge = 0.0  # monotonic time of the next purge (``purge_due``)

    def expiry(self, created_at: int) -> int | None:
        return created_at + self.retention_ms if self.retention_ms > 0 else None

    async def create(self, resp: StoredResponse) -> StoredResponse:
        resp.created_at = resp.created_at or now_ms()
        resp.expires_at = self.expiry(resp.created_at)
        async with self._engine.begin() as conn:
            await conn.execute(insert(responses).values(
                id=resp.id, owner=resp.owner, previous_id=resp.previous_id, status=resp.status, model=resp.model,
                background=resp.background, request=resp.request, input_items=resp.input_items,
                channel=resp.channel, created_at=resp.created_at, expires_at=resp.expires_at,
            ))
        return resp

    async def get(self, response_id: str, owner: str | None = None) -> StoredResponse | None:
        """The response, unless it expired or another key owns it (``owner=None``: any owner)."""
        r, m = responses.c, messages.c
        stmt = (
            select(responses, m.status.label("reply_status"), m.content.label("reply_text"),
                   m.parts.label("reply_parts"))
            .select_from(responses.outerjoin(messages, m.id == r.channel))
            .where(r.id == response_id, _live(now_ms()))
        )
        if owner is not None:
            stmt = stmt.where(r.owner == owner)
        async with self._engine.connect() as conn:
            row = (await conn.execute(stmt)).first()
        if row is None:
            return None
        return StoredResponse(
            id=row.id, model=row.model, request=row.request, input_items=row.input_items, status=row.status,
            owner=row.owner, previous_id=row.previous_id, background=bool(row.background), output=row.output,
            usage=row.usage, error=row.error, incomplete_reason=row.incomplete_reason, channel=row.channel,
            created_at=row.created_at, completed_at=row.completed_at, expires_at=row.expires_at,
            reply_status=row.reply_status, reply_text=row.reply_text or "",
            reply_parts=parts_from_json(row.reply_parts) if row.reply_parts is not None else None,
        )

    async def history(self, response_id: str) -> list[Message]:
        """The messages of the chain ending at ``response_id``, root first (expired or deleted
        links end the chain). Empty answers (a failed turn) are left out, as stored chats do."""
        r = responses.c
        now = now_ms()
        chain = (
            select(r.id, r.previous_id, literal(0).label("depth"))
            .where(r.id == response_id, _live(now))
            .cte("chain", recursive=True)
        )
        parent = responses.alias("parent")
        chain = chain.union_all(
            select(parent.c.id, parent.c.previous_id, chain.c.depth + 1).where(
                parent.c.id == chain.c.previous_id, chain.c.depth < MAX_CHAIN,
                or_(parent.c.expires_at.is_(None), parent.c.expires_at > now))
        )
        m = messages.c
        stmt = (
            select(m.role, m.content, m.parts)
            .select_from(messages.join(chain, m.conversation_id == chain.c.id))
            .order_by(chain.c.depth.desc(), m.seq)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        out: list[Message] = []
        for row in rows:
            if row.role == "assistant" and not row.content and row.parts is None:
                continue
            out.append(Message(row.role, parts_from_json(row.parts) if row.parts is not None else row.content))
        return out

    async def set_channel(self, response_id: str, channel: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(update(responses).where(responses.c.id == response_id).values(channel=channel))

    async def finish(self, response_id: str, *, status: str, output: list[dict[str, Any]],
                     usage: dict[str, int] | None, error: dict[str, Any] | None = None,
                     incomplete_reason: str | None = None, completed_at: int | None = None) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(update(responses).where(responses.c.id == response_id).values(
                status=status, output=output, usage=usage, error=error, incomplete_reason=incomplete_reason,
                completed_at=completed_at,
            ))

    async def delete(self, response_id: str) -> bool:
        """Delete the response, its conversation and its messages."""
        async with self._engine.begin() as conn:
            return await self._delete(conn, [response_id]) > 0

    @staticmethod
    async def _delete(conn: Any, ids: list[str]) -> int:
        await conn.execute(delete(messages).where(messages.c.conversation_id.in_(ids)))
        result = await conn.execute(delete(responses).where(responses.c.id.in_(ids)))
        await conn.execute(delete(conversations).where(conversations.c.id.in_(ids)))
        return result.rowcount

    def purge_due(self) -> bool:
        """Whether a purge is due (at most one every ``purge_every`` seconds per process)."""
        if self.retention_ms <= 0:
            return False
        now = time.monotonic()
        if now < self._next_purge:
            return False
        self._next_purge = now + self._purge_every
        return True

    async def purge_expired(self, batch: int = 500) -> int:
        """Delete expired responses (with their conversations and messages), ``batch`` at a time
        so no transaction grows with the backlog; returns how many."""
        total = 0
        while True:
            async with self._engine.begin() as conn:
                ids = list((await conn.execute(
                    select(responses.c.id).where(responses.c.expires_at <= now_ms()).limit(batch))).scalars())
                if not ids:
                    return total
                total += await self._delete(conn, ids)
            if len(ids) < batch:
                return total
