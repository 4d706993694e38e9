"""Repositories: the only code that sees rows. Each returns core types."""

from __future__ import annotations

import re

import uuid
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from hubbub.core.ids import now_ms
from hubbub.core.parts import parts_from_json, parts_to_json
from hubbub.core.types import Bot, Conversation, MessageStatus, Part, StoredMessage, ToolSpec, UsageRecord
from hubbub.errors import Conflict
from hubbub.storage.tables import bots, conversations, messages, usage


def _conversation(row: Row[Any], message_count: int = 0, last_message: str | None = None) -> Conversation:
    return Conversation(
        id=row.id,
        kind=row.kind,
        owner=row.owner,
        user_id=row.user_id,
        group_id=row.group_id,
        preset=row.preset,
        model=row.model,
        title=row.title or "",
        dsl=row.dsl,
        phase=row.phase,
        created_at=row.created_at,
        updated_at=row.updated_at,
        message_count=message_count,
        last_message=last_message,
    )


def _message(row: Row[Any]) -> StoredMessage:
    return StoredMessage(
        id=row.id,
        conversation_id=row.conversation_id,
        role=row.role,
        content=row.content,
        status=row.status,
        prompt_tokens=row.prompt_tokens,
        completion_tokens=row.completion_tokens,
        model=row.model,
        created_at=row.created_at,
        updated_at=row.updated_at,
        parts=parts_from_json(row.parts) if row.parts is not None else None,
    )


def _bot(row: Row[Any]) -> Bot:
    return Bot(
        uid=row.uid,
        slug=row.slug,
        name=row.name,
        system_prompt=row.system_prompt or "",
        model=row.model,
        temperature=row.temperature,
        max_tokens=row.max_tokens,
        top_p=row.top_p,
        rag_enabled=bool(row.rag_enabled),
        description=row.description or "",
        owner=row.owner,
        created_at=row.created_at,
        updated_at=row.updated_at,
        tools=tools_from_json(row.tools),
    )


def tools_to_json(tools: tuple[ToolSpec, ...] | None) -> list[dict[str, Any]] | None:
    """A bot's default tools as stored (the ``tools`` column, migration 0006)."""
    if tools is None:
        return None
    return [{"name": t.name, "description": t.description, "parameters": t.parameters, "strict": t.strict}
            for t in tools]


def tools_from_json(value: list[dict[str, Any]] | None) -> tuple[ToolSpec, ...] | None:
    if value is None:
        return None
    return tuple(ToolSpec(t["name"], t.get("description") or "", t.get("parameters") or
                          {"type": "object", "properties": {}}, t.get("strict")) for t in value)


def _owned(column: Any, owner: str | None) -> Any:
    """``owner=None`` means "any owner" (admin or open server)."""
    return True if owner is None else column == owner



_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(value: Any) -> Any:
    """Generated text as every backend can store it: a NUL (PostgreSQL refuses it in text)
    and a lone surrogate (not UTF-8) become U+FFFD. What a client sends with them is
    refused at the edge with a 400; what a model or upstream generates is kept, never
    lost to a failed write (issue 22, Medium 6; docs/security.md)."""
    if isinstance(value, str):
        return _UNSTORABLE.sub("\ufffd", value) if _UNSTORABLE.search(value) else value
    if isinstance(value, list):
        return [storable(v) for v in value]
    if isinstance(value, dict):
        return {k: storable(v) for k, v in value.items()}
    return value


class ConversationRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create(self, conv: Conversation) -> Conversation:
        ts = conv.created_at or now_ms()
        conv.created_at = conv.updated_at = ts
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    insert(conversations).values(
                        id=conv.id,
                        kind=conv.kind,
                        owner=conv.owner,
                        user_id=conv.user_id,
                        group_id=conv.group_id,
                        preset=conv.preset,
                        model=conv.model,
                        title=conv.title,
                        dsl=conv.dsl,
                        phase=conv.phase,
                        created_at=ts,
                        updated_at=ts,
                    )
                )
        except IntegrityError as exc:
            raise Conflict(f"A conversation with id '{conv.id}' already exists") from exc
        return conv

    async def get(self, conv_id: str, owner: str | None = None, kind: str | None = None) -> Conversation | None:
        stmt = select(conversations).where(conversations.c.id == conv_id, _owned(conversations.c.owner, owner))
        if kind is not None:
            stmt = stmt.where(conversations.c.kind == kind)
        async with self._engine.connect() as conn:
            row = (await conn.execute(stmt)).first()
        return _conversation(row) if row else None

    async def find_latest(
        self, kind: str, user_id: str | None, group_id: str | None, preset: str | None, owner: str | None
    ) -> Conversation | None:
        c = conversations.c
        stmt = (
            select(conversations)
            .where(
                c.kind == kind,
                c.user_id.is_(None) if user_id is None else c.user_id == user_id,
                c.group_id.is_(None) if group_id is None else c.group_id == group_id,
                c.preset.is_(None) if preset is None else c.preset == preset,
                _owned(c.owner, owner),
            )
            .order_by(c.updated_at.desc())
            .limit(1)
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(stmt)).first()
        return _conversation(row) if row else None

    async def list(
        self,
        *,
        kind: str | None = None,
        owner: str | None = None,
        user_id: str | None = None,
        group_id: str | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> tuple[list[Conversation], int]:
        c = conversations.c
        where = [_owned(c.owner, owner)]
        if kind is not None:
            where.append(c.kind == kind)
        if user_id is not None:
            where.append(c.user_id == user_id)
        if group_id is not None:
            where.append(c.group_id == group_id)
        counts = (
            select(messages.c.conversation_id, func.count().label("n"), func.max(messages.c.seq).label("last_seq"))
            .group_by(messages.c.conversation_id)
            .subquery()
        )
        last = messages.alias("last")
        stmt = (
            select(conversations, counts.c.n, last.c.content.label("last_content"))
            .select_from(
                conversations.outerjoin(counts, counts.c.conversation_id == c.id).outerjoin(
                    last, and_(last.c.conversation_id == c.id, last.c.seq == counts.c.last_seq)
                )
            )
            .where(*where)
            .order_by(c.updated_at.desc(), c.id)
            .limit(limit)
            .offset(offset)
        )
        total_stmt = select(func.count()).select_from(conversations).where(*where)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
            total = (await conn.execute(total_stmt)).scalar_one()
        return [_conversation(r, r.n or 0, r.last_content) for r in rows], int(total)

    async def delete(self, conv_id: str) -> bool:
        async with self._engine.begin() as conn:
            await conn.execute(delete(messages).where(messages.c.conversation_id == conv_id))
            result = await conn.execute(delete(conversations).where(conversations.c.id == conv_id))
        return result.rowcount > 0

    async def clear(self, conv_id: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(delete(messages).where(messages.c.conversation_id == conv_id))
            await conn.execute(
                update(conversations)
                .where(conversations.c.id == conv_id)
                .values(updated_at=now_ms(), dsl=None, phase=None)
            )

    async def update(self, conv_id: str, **values: Any) -> None:
        values.setdefault("updated_at", now_ms())
        async with self._engine.begin() as conn:
            await conn.execute(update(conversations).where(conversations.c.id == conv_id).values(**values))

    async def messages(self, conv_id: str) -> list[StoredMessage]:
        stmt = select(messages).where(messages.c.conversation_id == conv_id).order_by(messages.c.seq)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [_message(r) for r in rows]

    async def add_messages(self, conv_id: str, new: list[StoredMessage]) -> list[StoredMessage]:
        """Append ``new`` in order (assigning sequence numbers) and touch the conversation."""
        ts = now_ms()
        async with self._engine.begin() as conn:
            top = (
                await conn.execute(select(func.max(messages.c.seq)).where(messages.c.conversation_id == conv_id))
            ).scalar()
            seq = (top or 0) + 1
            for m in new:
                m.conversation_id = conv_id
                m.created_at = m.created_at or ts
                m.updated_at = ts
                await conn.execute(
                    insert(messages).values(
                        id=m.id,
                        conversation_id=conv_id,
                        seq=seq,
                        role=m.role,
                        content=m.content,
                        parts=parts_to_json(m.parts) if m.parts is not None else None,
                        status=m.status,
                        prompt_tokens=m.prompt_tokens,
                        completion_tokens=m.completion_tokens,
                        model=m.model,
                        created_at=m.created_at,
                        updated_at=ts,
                    )
                )
                seq += 1
            await conn.execute(update(conversations).where(conversations.c.id == conv_id).values(updated_at=ts))
        return new

    async def update_message(
        self,
        message_id: str,
        *,
        content: str,
        status: MessageStatus,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        parts: tuple[Part, ...] | None = None,
    ) -> None:
        """``parts``: every part of the final answer, when it is more than text (None leaves them)."""
        values: dict[str, Any] = {"content": storable(content), "status": status, "updated_at": now_ms()}
        if parts is not None:
            values["parts"] = storable(parts_to_json(parts))
        if prompt_tokens is not None:
            values["prompt_tokens"] = prompt_tokens
        if completion_tokens is not None:
            values["completion_tokens"] = completion_tokens
        async with self._engine.begin() as conn:
            await conn.execute(update(messages).where(messages.c.id == message_id).values(**values))

    async def interrupt_streaming(self, older_than_ms: int | None = None) -> int:
        """Mark rows a dead process left ``streaming`` as ``interrupted``; returns how many."""
        stmt = update(messages).where(messages.c.status == "streaming")
        if older_than_ms is not None:
            stmt = stmt.where(messages.c.updated_at < older_than_ms)
        async with self._engine.begin() as conn:
            result = await conn.execute(stmt.values(status="interrupted", updated_at=now_ms()))
        return result.rowcount


class BotRepository:
    """Bots. A slug is unique per owner (global, admin-made bots are one more owner), so a key
    never learns another key's slugs by colliding with them (issue 22). A user key's slug may not
    repeat a global bot's either (that one it can see). Looking a slug up prefers the asker's
    own bot, then the global one; an admin (any owner) gets the global one, else the oldest."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @staticmethod
    async def _global_slug_taken(conn: Any, slug: str, owner: str | None, uid: str | None = None) -> None:
        if owner is None:
            return  # global bots collide only with each other: the unique index says so
        stmt = select(bots.c.uid).where(bots.c.slug == slug, bots.c.owner.is_(None))
        if uid is not None:
            stmt = stmt.where(bots.c.uid != uid)
        if (await conn.execute(stmt)).first() is not None:
            raise Conflict(f"A bot with slug '{slug}' already exists")

    async def create(self, bot: Bot) -> Bot:
        ts = now_ms()
        bot.uid = bot.uid or str(uuid.uuid4())
        bot.created_at = bot.updated_at = ts
        try:
            async with self._engine.begin() as conn:
                await self._global_slug_taken(conn, bot.slug, bot.owner)
                await conn.execute(
                    insert(bots).values(
                        uid=bot.uid,
                        slug=bot.slug,
                        name=bot.name,
                        system_prompt=bot.system_prompt,
                        model=bot.model,
                        temperature=bot.temperature,
                        max_tokens=bot.max_tokens,
                        top_p=bot.top_p,
                        rag_enabled=bot.rag_enabled,
                        description=bot.description,
                        owner=bot.owner,
                        tools=tools_to_json(bot.tools),
                        created_at=ts,
                        updated_at=ts,
                    )
                )
        except IntegrityError as exc:
            raise Conflict(f"A bot with slug '{bot.slug}' already exists") from exc
        return bot

    async def get(self, uid_or_slug: str, owner: str | None = None) -> Bot | None:
        stmt = select(bots).where(
            or_(bots.c.uid == uid_or_slug, bots.c.slug == uid_or_slug),
            or_(_owned(bots.c.owner, owner), bots.c.owner.is_(None)),
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        # A uid match wins over a slug that happens to look like a uid; then the asker's own bot,
        # then the global one (for an admin, ``owner`` is None: the global one first), then the oldest.
        rows.sort(key=lambda r: (r.uid != uid_or_slug, r.owner != owner, r.owner is not None, r.created_at))
        return _bot(rows[0]) if rows else None

    async def list(self, owner: str | None = None) -> list[Bot]:
        stmt = (
            select(bots)
            .where(or_(_owned(bots.c.owner, owner), bots.c.owner.is_(None)))
            .order_by(bots.c.created_at, bots.c.slug)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [_bot(r) for r in rows]

    async def update(self, uid: str, **values: Any) -> None:
        values["updated_at"] = now_ms()
        if "tools" in values:
            values["tools"] = tools_to_json(values["tools"])
        try:
            async with self._engine.begin() as conn:
                if values.get("slug") is not None:
                    owner = (await conn.execute(select(bots.c.owner).where(bots.c.uid == uid))).scalar()
                    await self._global_slug_taken(conn, values["slug"], owner, uid)
                await conn.execute(update(bots).where(bots.c.uid == uid).values(**values))
        except IntegrityError as exc:
            raise Conflict(f"A bot with slug '{values.get('slug')}' already exists") from exc

    async def delete(self, uid: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(delete(bots).where(bots.c.uid == uid))
        return result.rowcount > 0

    async def ensure(self, bot: Bot) -> Bot:
        """Create ``bot`` unless one with its slug exists; return the stored one."""
        existing = await self.get(bot.slug)
        if existing is not None:
            return existing
        try:
            return await self.create(bot)
        except Conflict:  # another replica created it first
            found = await self.get(bot.slug)
            assert found is not None
            return found


def _usage_row(rec: UsageRecord) -> dict[str, Any]:
    ts = rec.created_at or now_ms()
    return {
        "owner": rec.owner,
        "user_id": rec.user_id,
        "model": rec.model,
        "prompt_tokens": rec.prompt_tokens,
        "completion_tokens": rec.completion_tokens,
        "cost": rec.cost,
        "conversation_id": rec.conversation_id,
        "message_id": rec.message_id,
        "request_id": rec.request_id,
        "day": datetime.fromtimestamp(ts / 1000, tz=timezone.utc).strftime("%Y-%m-%d"),
        "created_at": ts,
    }


class UsageRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def record(self, rec: UsageRecord) -> None:
        await self.record_many([rec])

    async def record_many(self, records: list[UsageRecord]) -> None:
        """Insert ``records`` in one transaction (one executemany: ``UsageWriter`` batches them)."""
        if not records:
            return
        async with self._engine.begin() as conn:
            await conn.execute(insert(usage), [_usage_row(rec) for rec in records])

    async def summary(
        self,
        *,
        owner: str | None = None,
        user_id: str | None = None,
        day_from: str | None = None,
        day_to: str | None = None,
    ) -> list[dict[str, Any]]:
        """Tokens and cost per (day, model)."""
        u = usage.c
        where = [_owned(u.owner, owner)]
        if user_id is not None:
            where.append(u.user_id == user_id)
        if day_from:
            where.append(u.day >= day_from)
        if day_to:
            where.append(u.day <= day_to)
        stmt = (
            select(
                u.day,
                u.model,
                func.count().label("requests"),
                func.sum(u.prompt_tokens).label("prompt_tokens"),
                func.sum(u.completion_tokens).label("completion_tokens"),
                func.sum(u.cost).label("cost"),
            )
            .where(*where)
            .group_by(u.day, u.model)
            .order_by(u.day, u.model)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [
            {
                "day": r.day,
                "model": r.model,
                "requests": int(r.requests),
                "promptTokens": int(r.prompt_tokens or 0),
                "completionTokens": int(r.completion_tokens or 0),
                "totalTokens": int((r.prompt_tokens or 0) + (r.completion_tokens or 0)),
                "cost": float(r.cost or 0.0),
            }
            for r in rows
        ]

    async def count(self, request_id: str | None = None) -> int:
        stmt = select(func.count()).select_from(usage)
        if request_id is not None:
            stmt = stmt.where(usage.c.request_id == request_id)
        async with self._engine.connect() as conn:
            return int((await conn.execute(stmt)).scalar_one())
