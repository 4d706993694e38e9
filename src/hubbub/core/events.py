"""Typed events the core emits. Framing (SSE, WebSocket, JSON) is each dialect's job.

A provider streams, in any interleaving: ``TextDelta``, ``ReasoningDelta`` and ``ToolCallDelta``
(a call's first delta has its ``id`` and ``name``, later ones only argument fragments, as
OpenAI streams them), then one ``UsageReport`` and one ``Finish``. Stored chats add
``ChatCreated``, ``DslUpdate``, ``PhaseChange``, ``ErrorEvent`` and ``Done`` around them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

from hubbub.core.types import FinishReason, TokenLogprob, Usage


@dataclass(frozen=True)
class TextDelta:
    text: str
    # How many of the upstream's chunks (about one token each) this text joins: an upstream
    # provider makes one delta of the text that came in one read, so every layer above handles
    # one event, and the client gets one frame, per read instead of per token.
    tokens: int = field(default=1, compare=False)
    # The log-probabilities of the tokens this text came from, when the request asked for them
    # (a stop string may hold text back: its tokens' entries ride with the text when it goes).
    logprobs: tuple[TokenLogprob, ...] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ReasoningDelta:
    """A piece of the model's reasoning; ``signature`` (Anthropic's, sent once at the end of a
    thinking block) and ``redacted`` (a redacted_thinking block's data) are opaque."""

    text: str = ""
    signature: str | None = None
    redacted: str | None = None


@dataclass(frozen=True)
class ToolCallDelta:
    """Part of the tool call number ``index`` of this answer (0, 1, … in the order they start)."""

    index: int
    id: str | None = None  # on a call's first delta
    name: str | None = None  # on a call's first delta
    arguments: str = ""  # a fragment of the JSON arguments


@dataclass(frozen=True)
class UsageReport:
    usage: Usage


@dataclass(frozen=True)
class Finish:
    reason: FinishReason
    stop_sequence: str | None = None  # which of the request's stop strings ended it, when one did


@dataclass(frozen=True)
class ServedBy:
    """Which channel answers (issue 19): a channel router yields it before the first text of the
    attempt that answers, and again when a continuation moves to another channel. ``model`` is
    the upstream's name for the model; the prices are that channel's (USD per 1K tokens), so
    the answer is billed as the channel that gave it."""

    channel: str
    provider: str
    model: str
    pricing_prompt: float = 0.0
    pricing_completion: float = 0.0

    def cost(self, usage: Usage) -> float:
        return (usage.prompt_tokens * self.pricing_prompt + usage.completion_tokens * self.pricing_completion) / 1000.0


@dataclass(frozen=True)
class ChatCreated:
    """A stored chat exists (its id), first event of a stored-chat stream."""

    chat_id: str


@dataclass(frozen=True)
class DslUpdate:
    dsl: dict[str, Any]


@dataclass(frozen=True)
class PhaseChange:
    phase: str


@dataclass(frozen=True)
class ErrorEvent:
    code: str
    message: str


@dataclass(frozen=True)
class Done:
    """The end of a stored-chat stream (after text, dsl, phase), with the turn's usage."""

    status: str = "complete"
    usage: Usage = Usage()


ProviderEvent = Union[TextDelta, ReasoningDelta, ToolCallDelta, UsageReport, Finish, ServedBy]
Event = Union[TextDelta, ReasoningDelta, ToolCallDelta, UsageReport, Finish, ChatCreated, DslUpdate, PhaseChange,
              ErrorEvent, Done]
