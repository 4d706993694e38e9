"""Domain types shared by the core, providers, storage and dialects.

These are plain dataclasses: no wire names, no ORM rows (STYLE.md §5).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant"]
MessageStatus = Literal["streaming", "complete", "stopped", "interrupted", "error"]
FinishReason = Literal["stop", "length", "cancelled", "error"]


@dataclass(frozen=True)
class Message:
    role: Role
    content: str


@dataclass
class ResponseFormat:
    """``json_object``: any JSON object; ``json_schema``: JSON valid against ``schema``."""

    type: Literal["text", "json_object", "json_schema"] = "text"
    schema: dict[str, Any] | None = None


@dataclass
class SamplingParams:
    temperature: float = 0.7
    top_p: float = 1.0
    max_tokens: int | None = None
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    response_format: ResponseFormat | None = None


@dataclass
class ProviderRequest:
    """What a provider is asked to do: continue ``messages`` with the upstream model name."""

    model: str
    messages: list[Message]
    params: SamplingParams
    assistant_prefix: str = ""  # continue an answer already begun (failover)


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class ModelInfo:
    """One entry of the model catalog."""

    id: str
    name: str
    context_length: int
    pricing_prompt: float = 0.0  # USD per 1K tokens
    pricing_completion: float = 0.0
    owned_by: str = "hubbub"
    created: int = 0

    def cost(self, usage: Usage) -> float:
        return (usage.prompt_tokens * self.pricing_prompt + usage.completion_tokens * self.pricing_completion) / 1000.0


@dataclass
class Bot:
    """A bot (a "preset" in the conversations dialect): a system prompt plus settings."""

    uid: str
    slug: str
    name: str
    system_prompt: str = ""
    model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    rag_enabled: bool = False
    description: str = ""
    owner: str | None = None
    created_at: int = 0
    updated_at: int = 0


@dataclass
class StoredMessage:
    id: str
    conversation_id: str
    role: Role
    content: str
    status: MessageStatus = "complete"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str | None = None
    created_at: int = 0  # epoch milliseconds
    updated_at: int = 0


@dataclass
class Conversation:
    """A stored chat. ``kind`` is ``chat`` (builder) or ``conversation`` (conversations)."""

    id: str
    kind: str = "conversation"
    owner: str | None = None
    user_id: str | None = None
    group_id: str | None = None
    preset: str | None = None
    model: str | None = None
    title: str = ""
    dsl: dict[str, Any] | None = None
    phase: str | None = None
    created_at: int = 0
    updated_at: int = 0
    message_count: int = 0
    last_message: str | None = None


@dataclass
class UsageRecord:
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost: float
    owner: str | None = None
    user_id: str | None = None
    conversation_id: str | None = None
    message_id: str | None = None
    request_id: str | None = None
    created_at: int = 0


@dataclass(frozen=True)
class Source:
    """A retrieved passage put into a prompt (RAG): which document, and the text used."""

    document_id: str
    title: str
    text: str
    score: float = 0.0
    heading: str = ""
