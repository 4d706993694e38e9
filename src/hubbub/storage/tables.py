"""Table definitions. Rows never leave ``storage/``: repositories map them to core types."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
)

metadata = MetaData()

conversations = Table(
    "conversations",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("owner", String(64), nullable=True),
    Column("user_id", String(255), nullable=True),
    Column("group_id", String(255), nullable=True),
    Column("preset", String(255), nullable=True),
    Column("model", String(255), nullable=True),
    Column("title", Text, nullable=False, default=""),
    Column("dsl", JSON, nullable=True),
    Column("phase", String(32), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_conversations_lookup", "kind", "user_id", "group_id", "preset", "updated_at"),
    Index("ix_conversations_owner_updated", "owner", "updated_at"),
)

messages = Table(
    "messages",
    metadata,
    Column("id", String(64), primary_key=True),
    Column(
        "conversation_id",
        String(64),
        ForeignKey("conversations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("seq", Integer, nullable=False),
    Column("role", String(16), nullable=False),
    Column("content", Text, nullable=False, default=""),
    Column("parts", JSON, nullable=True),  # every part (core/parts.py); NULL: the message is its text alone
    Column("status", String(16), nullable=False, default="complete"),
    Column("prompt_tokens", Integer, nullable=False, default=0),
    Column("completion_tokens", Integer, nullable=False, default=0),
    Column("model", String(255), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_messages_conversation_seq", "conversation_id", "seq"),
    Index("ix_messages_status", "status"),
)

bots = Table(
    "bots",
    metadata,
    Column("uid", String(36), primary_key=True),
    Column("slug", String(255), nullable=False),  # unique per owner: the index below (migration 0003)
    Column("name", String(255), nullable=False),
    Column("system_prompt", Text, nullable=False, default=""),
    Column("model", String(255), nullable=True),
    Column("temperature", Float, nullable=True),
    Column("max_tokens", Integer, nullable=True),
    Column("top_p", Float, nullable=True),
    Column("rag_enabled", Boolean, nullable=False, default=False),
    Column("description", Text, nullable=False, default=""),
    Column("owner", String(64), nullable=True),
    # Default tools (migration 0006): [{"name", "description", "parameters", "strict"}]; NULL: none.
    Column("tools", JSON(none_as_null=True), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# Global (admin-made) bots are the owner '' here, so two global bots cannot share a slug either.
Index("ux_bots_owner_slug", func.coalesce(bots.c.owner, ""), bots.c.slug, unique=True)
Index("ix_bots_slug", bots.c.slug)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("key_hash", String(128), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("is_admin", Boolean, nullable=False, default=False),
    Column("rpm", Integer, nullable=True),
    Column("tpm", Integer, nullable=True),
    Column("daily_tokens", Integer, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
)

usage = Table(
    "usage",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("owner", String(64), nullable=True),
    Column("user_id", String(255), nullable=True),
    Column("model", String(255), nullable=False),
    Column("prompt_tokens", Integer, nullable=False),
    Column("completion_tokens", Integer, nullable=False),
    Column("cost", Float, nullable=False, default=0.0),
    Column("conversation_id", String(64), nullable=True),
    Column("message_id", String(64), nullable=True),
    Column("request_id", String(64), nullable=True),
    Column("day", String(10), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_usage_owner_day", "owner", "day"),
    Index("ix_usage_user_day", "user_id", "day"),
)
