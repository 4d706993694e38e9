"""Builder wire models (API.md §2). camelCase on the wire; unknown fields are ignored."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

CHAT_ID_PATTERN = r"^[A-Za-z0-9_.:\-]{1,64}$"  # ids travel in URLs and fit the 64-character column


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


class BuilderMessage(_Wire):
    role: Literal["system", "user", "assistant"]
    content: str


class BuilderChatRequest(_Wire):
    """``POST /api/chat`` with ``messages``: one turn of a stored builder chat."""

    messages: list[BuilderMessage] = Field(min_length=1)
    chatId: str | None = Field(default=None, pattern=CHAT_ID_PATTERN)
    model: str | None = Field(default=None, min_length=1, max_length=255)
    temperature: float = Field(default=0.3, ge=0, le=2)
    enableDSL: bool = True
