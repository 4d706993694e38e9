"""Anthropic Messages API wire models (requests). Unknown fields are ignored.

Content blocks are one model with every block type's fields, not a tagged union, so that a
block hubbub does not take (``document``, ``search_result``, server tool blocks…) is refused by
name with its index (``adapter.to_messages``), never dropped and never a union-tag puzzle.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ImageSource(_Wire):
    """An image block's ``source``."""

    type: str  # "base64" | "url" ("file" is refused: hubbub has no Files API)
    media_type: str | None = None
    data: str | None = None
    url: str | None = None


class ResultBlock(_Wire):
    """A block inside a ``tool_result``'s content: ``text`` or ``image`` (others refused by name)."""

    type: str
    text: str | None = None
    source: dict[str, Any] | None = None  # image (ImageSource)


class ContentBlock(_Wire):
    """A content block: ``text``, ``image``, ``tool_use``, ``tool_result``, ``thinking`` and
    ``redacted_thinking`` are understood (``cache_control`` and ``citations`` are accepted and
    not forwarded: docs/anthropic.md); any other type is refused by name."""

    type: str
    text: str | None = None  # text
    source: dict[str, Any] | None = None  # image: read by adapter (ImageSource), so other blocks' sources pass
    id: str | None = None  # tool_use
    name: str | None = None  # tool_use
    input: Any = None  # tool_use: an object
    tool_use_id: str | None = None  # tool_result
    content: str | list[ResultBlock] | None = None  # tool_result: a string or text/image blocks
    is_error: bool | None = None  # tool_result
    thinking: str | None = None  # thinking
    signature: str | None = None  # thinking
    data: str | None = None  # redacted_thinking


class MessageIn(_Wire):
    role: Literal["user", "assistant"]
    content: str | list[ContentBlock]


class ToolIn(_Wire):
    """A client tool (``type`` absent or ``custom``). Anthropic's own tools (``bash_…``,
    ``web_search_…``, ``text_editor_…``) name a ``type`` and no ``input_schema``: refused."""

    name: str = Field(min_length=1, max_length=128, pattern=r"^[a-zA-Z0-9_-]+$")
    type: str | None = None
    description: str | None = None
    input_schema: dict[str, Any] | None = None
    strict: bool | None = None


class ToolChoiceIn(_Wire):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


class ThinkingIn(_Wire):
    type: Literal["enabled", "adaptive", "disabled"]
    budget_tokens: int | None = Field(default=None, ge=1)
    display: str | None = None


class MetadataIn(_Wire):
    user_id: str | None = Field(default=None, max_length=256)


class CountTokensRequest(_Wire):
    """``POST /v1/messages/count_tokens``: what a message would cost, without ``max_tokens``."""

    model: str = Field(min_length=1)
    messages: list[MessageIn] = Field(min_length=1)
    system: str | list[ContentBlock] | None = None
    tools: list[ToolIn] | None = None
    tool_choice: ToolChoiceIn | None = None
    thinking: ThinkingIn | None = None
    # Server-side features hubbub has no part in: refused by name when present (adapter.refuse_unsupported).
    mcp_servers: SkipJsonSchema[list[Any] | None] = None
    container: SkipJsonSchema[Any] = None


class MessagesRequest(CountTokensRequest):
    """``POST /v1/messages``."""

    max_tokens: int = Field(ge=1)  # required, as Anthropic requires it
    temperature: float | None = Field(default=None, ge=0, le=1)
    top_p: float | None = Field(default=None, ge=0, le=1)
    top_k: int | None = Field(default=None, ge=0)
    stop_sequences: list[str] | None = None
    stream: bool = False
    metadata: MetadataIn | None = None
