"""bots wire formats (API.md §4): the chat body and the /api/bots bodies.

Both are validated by ``v1`` so that a 422 reads exactly as the pydantic-v1-era
FastAPI app the seed documents. The chat body is snake_case, as the seed; the bot
management bodies are camelCase (``systemPrompt``, ``maxTokens``…). Unknown fields
are ignored.

Decisions the seed leaves open (documented in the project docs):
- ``role`` is a str Enum (``type_error.enum`` with ``ctx.enum_values``);
- the root validators run in the order bot, then prompt, after the field errors, and
  an empty string or empty list counts as absent ("Either … is required");
- a field that failed validation is absent for the root validators, as in v1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hubbub.core.types import Message
from hubbub.dialects.bots.v1 import Bool, Choice, Field, Float, Int, ListOf, Loc, Model, Str, parse_body

ROLES = ("system", "user", "assistant")
SLUG_PATTERN = r"^[a-z0-9_-]+$"


def _need_bot(values: dict[str, Any]) -> None:
    if not values.get("bot_uid") and not values.get("bot_slug"):
        raise ValueError('Either "bot_uid" or "bot_slug" is required')


def _need_prompt(values: dict[str, Any]) -> None:
    if not values.get("prompt") and not values.get("messages"):
        raise ValueError('Either "prompt" or "messages" is required')


CHAT_MESSAGE = Model("ChatMessage", [
    Field("role", Choice(ROLES), required=True, nullable=False, description="system, user or assistant"),
    Field("content", Str(), required=True, nullable=False),
])

CHAT = Model("BotChatRequest", [
    Field("bot_uid", Str(), description="Bot unique identifier (one of bot_uid, bot_slug is required)"),
    Field("bot_slug", Str(), description="Bot unique human-readable identifier"),
    Field("prompt", Str(), description="Prompt (one of prompt, messages is required; with both, "
                                       "prompt is appended as the last user message)"),
    Field("messages", ListOf(CHAT_MESSAGE)),
    Field("stream", Bool(), required=True, nullable=False, description="Whether to stream the response"),
    Field("user_id", Str(), description="End-user identifier"),
], roots=[_need_bot, _need_prompt])


class AnyJSON:
    """A value taken as sent, checked later by its own rules (``tools``: ``adapter.tool_specs``,
    whose bad shapes are 400s naming the field, as on the OpenAI routes)."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self._schema = schema

    def __call__(self, v: Any, loc: Loc) -> Any:
        return v

    def schema(self) -> dict[str, Any]:
        return self._schema


TOOLS_SCHEMA = {"type": "array", "items": {"type": "object", "required": ["type", "function"], "properties": {
    "type": {"type": "string", "enum": ["function"]},
    "function": {"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,64}$"},
        "description": {"type": "string"},
        "parameters": {"type": "object", "description": "a JSON Schema of type object"},
        "strict": {"type": "boolean"}}}}}}


def _bot_fields(creating: bool) -> list[Field]:
    return [
        Field("slug", Str(min_length=1, max_length=64, pattern=SLUG_PATTERN), required=creating, nullable=False,
              description="lowercase letters, digits, - and _"),
        Field("name", Str(min_length=1, max_length=255), required=creating, nullable=False),
        Field("systemPrompt", Str()),
        Field("model", Str(), description="a model id from the catalog (default: the server's default)"),
        Field("temperature", Float(ge=0, le=2)),
        Field("maxTokens", Int(ge=1)),
        Field("topP", Float(ge=0, le=1)),
        Field("ragEnabled", Bool()),
        Field("description", Str()),
        Field("tools", AnyJSON(TOOLS_SCHEMA),
              description="default tools (OpenAI function tools), offered when a request names none; "
                          "null: none (docs/tool-calling.md)"),
    ]


BOT_CREATE = Model("BotCreate", _bot_fields(creating=True))
BOT_PATCH = Model("BotPatch", _bot_fields(creating=False), partial=True)


@dataclass
class BotsChatBody:
    """A validated chat body: which bot, the messages to send (``prompt`` appended), and how."""

    bot: str  # a uid or a slug
    messages: list[Message]
    stream: bool
    user_id: str | None = None


def parse_chat(raw: bytes, content_type: str | None) -> BotsChatBody:
    values = parse_body(raw, content_type, CHAT)
    messages = [Message(m["role"], m["content"]) for m in values["messages"] or []]
    if values["prompt"]:
        messages.append(Message("user", values["prompt"]))
    return BotsChatBody(values["bot_uid"] or values["bot_slug"], messages, values["stream"], values["user_id"])


def parse_bot(raw: bytes, content_type: str | None, creating: bool) -> dict[str, Any]:
    """The bot fields by wire name; for a PATCH only those the body sent (``null`` included)."""
    return parse_body(raw, content_type, BOT_CREATE if creating else BOT_PATCH)
