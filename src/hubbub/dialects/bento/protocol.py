"""bento wire models (API.md §1). camelCase on the wire; unknown fields are ignored."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


class BentoMessage(_Wire):
    role: Literal["system", "user", "assistant"]
    content: str


class BentoChatRequest(_Wire):
    """Body of ``POST /chat/stream``. ``null`` for an optional field means "use the default"."""

    messages: list[BentoMessage] = Field(min_length=1)
    model: str | None = None
    ragEnabled: bool | None = False
    temperature: float | None = Field(default=None, ge=0, le=2, description="0..2, default 0.7")
    maxTokens: int | None = Field(default=None, ge=1)
    topP: float | None = Field(default=None, ge=0, le=1)
    stopSequences: list[str] | None = None
    # The seed's own client sends ``stream: true``; the route always streams, so any value is accepted.
    stream: Any = None
