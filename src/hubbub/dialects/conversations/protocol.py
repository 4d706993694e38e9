"""Conversations wire models (API.md §3). camelCase on the wire; unknown fields are ignored."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from hubbub.core.service import DEFAULT_BOT_SLUG


def _id_text(value: object) -> object:
    """Chat platforms' ids are often numbers (Discord, Telegram); store them as text."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


ExternalId = Annotated[str, BeforeValidator(_id_text), Field(min_length=1, max_length=255)]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ConversationChatRequest(_Wire):
    """``POST /api/chat`` with ``message`` and ``POST /api/chat/stream``."""

    message: str = Field(min_length=1)
    userId: ExternalId | None = None
    groupId: ExternalId | None = None
    preset: str = Field(default=DEFAULT_BOT_SLUG, min_length=1, max_length=255)
    conversationId: str | None = Field(default=None, min_length=1, max_length=64)
    model: str | None = Field(default=None, min_length=1, max_length=255)

    @field_validator("message")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value
