"""Conversations wire <-> core: which conversation a message joins, replies and SSE events,
list/detail bodies, and the one error mapper."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, AsyncIterator

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from hubbub.core.events import ChatCreated, Done, ErrorEvent, TextDelta
from hubbub.core.ids import new_id
from hubbub.core.service import DEFAULT_BOT_SLUG, bot_params
from hubbub.core.turns import Turn, TurnOptions, TurnRunner
from hubbub.core.types import Conversation, Message, SamplingParams, StoredMessage, Usage
from hubbub.dialects.conversations.protocol import ConversationChatRequest
from hubbub.http.routing import error_response, request_id
from hubbub.http.sse import frame
from hubbub.http.validation import problems
from hubbub.errors import (
    ChannelUnavailable,
    Conflict,
    ContextTooLong,
    Forbidden,
    HubbubError,
    InvalidRequest,
    ModelNotFound,
    NotFound,
    PayloadTooLarge,
    ProviderError,
    RateLimited,
    Unauthorized,
    UpstreamError,
)

if TYPE_CHECKING:
    from hubbub.settings import Settings

KIND = "conversation"

# Core codes of in-stream errors, as this dialect names them.
_CODES = {"MODEL_NOT_FOUND": "INVALID_REQUEST", "NOT_FOUND": "CONVERSATION_NOT_FOUND"}
# In-stream errors re-raised as HTTP errors by the non-streaming route (nothing was sent yet).
_RAISE = {"CHANNEL_UNAVAILABLE": ChannelUnavailable, "MODEL_ERROR": UpstreamError, "INVALID_REQUEST": InvalidRequest}


async def start_turn(turns: TurnRunner, settings: "Settings", body: ConversationChatRequest, owner: str | None,
                     rid: str) -> Turn:
    """Pick the conversation (given id, else the latest for userId/groupId/preset, else a new
    one), apply the preset, and store and start the turn. Returns the started turn.

    The preset and model are checked before anything is created; a conversation
    created by a request that then fails (context length) is removed again.
    """
    repo, service = turns.conversations, turns.service
    conv = None
    slug = body.preset
    if body.conversationId:
        conv = await repo.get(body.conversationId, owner, kind=KIND)
        if conv is None:
            raise NotFound("conversation", body.conversationId)
        if "preset" not in body.model_fields_set:  # an existing conversation keeps its preset
            slug = conv.preset or DEFAULT_BOT_SLUG
    bot = await service.bot(slug, owner)
    service.model(body.model or bot.model)
    created = False
    if conv is None:
        conv = await repo.find_latest(KIND, body.userId, body.groupId, bot.slug, owner)
    if conv is None:
        conv = await repo.create(Conversation(id=new_id("conv_"), kind=KIND, owner=owner, user_id=body.userId,
                                              group_id=body.groupId, preset=bot.slug))
        created = True
    params = bot_params(SamplingParams(), bot, explicit=set())
    # A preset's own length, else the model's default answer length (issue 21); within the cap.
    default = service.model(body.model or bot.model).default_max_tokens
    params.max_tokens = min(params.max_tokens or default, settings.max_tokens_cap)
    opts = TurnOptions(model=body.model, params=params, bot=bot, owner=owner, user_id=body.userId, request_id=rid)
    try:
        return await turns.start(conv, [Message("user", body.message)], opts)
    except Exception:
        if created:
            await repo.delete(conv.id)
        raise


def usage_body(usage: Usage) -> dict[str, int]:
    return {"promptTokens": usage.prompt_tokens, "completionTokens": usage.completion_tokens,
            "totalTokens": usage.total_tokens}


async def reply_body(turns: TurnRunner, turn: Turn) -> dict[str, Any]:
    """Wait for the turn's ``Done``; a failure raises (nothing has been sent yet)."""
    parts: list[str] = []
    usage = Usage()
    conv_id = turn.conversation_id
    async for _, event in turns.follow(conv_id, generation=turn.message_id):
        if isinstance(event, TextDelta):
            parts.append(event.text)
        elif isinstance(event, ErrorEvent):
            raise _RAISE.get(event.code, HubbubError)(event.message)
        elif isinstance(event, Done):
            usage = event.usage
    return {"success": True, "data": {"response": "".join(parts), "conversationId": conv_id,
                                      "usage": usage_body(usage)}}


async def sse_stream(turns: TurnRunner, turn: Turn, after: int = 0) -> AsyncIterator[bytes]:
    """``start``, ``content``…, ``end`` (or ``error``, which ends the stream), with ``id:`` lines."""
    failed = False
    async for seq, event in turns.follow(turn.conversation_id, after, turn.message_id):
        body: dict[str, Any] | None = None
        if isinstance(event, ChatCreated):
            body = {"type": "start", "conversationId": event.chat_id}
        elif isinstance(event, TextDelta):
            body = {"type": "content", "text": event.text}
        elif isinstance(event, ErrorEvent):
            failed = True
            body = {"type": "error", "code": _CODES.get(event.code, event.code), "message": event.message}
        elif isinstance(event, Done) and not failed:
            body = {"type": "end", "usage": usage_body(event.usage)}
        if body is not None:
            yield frame(body, seq)


def summary_body(conv: Conversation) -> dict[str, Any]:
    return {"id": conv.id, "userId": conv.user_id, "groupId": conv.group_id, "messageCount": conv.message_count,
            "lastMessage": conv.last_message, "updatedAt": conv.updated_at}


def list_body(convs: list[Conversation], total: int) -> dict[str, Any]:
    return {"success": True, "data": {"conversations": [summary_body(c) for c in convs], "total": total}}


def detail_body(conv: Conversation, messages: list[StoredMessage]) -> dict[str, Any]:
    out = [{"role": m.role, "content": m.content, "timestamp": m.created_at} for m in messages]
    return {"success": True, "data": {"id": conv.id, "messages": out}}


def _field(loc: tuple[Any, ...], fallback: str) -> str:
    parts = [str(p) for p in loc[1:]] if loc and loc[0] in ("body", "query", "path") else []
    return ".".join(parts) or fallback


def error_parts(exc: Exception, rid: str | None) -> tuple[int, dict[str, Any]]:
    """Status and ``error`` object for any exception (the one place these errors are shaped)."""
    if isinstance(exc, RequestValidationError):
        exc = InvalidRequest("Invalid request", problems(exc))
    if isinstance(exc, InvalidRequest):
        details = [{"field": _field(p.loc, p.field), "message": p.message} for p in exc.details]
        message = exc.message
        if details:
            first = details[0]
            message = first["message"] if first["field"] == "body" else f"{first['field']}: {first['message']}"
        return 400, {"code": "INVALID_REQUEST", "message": message, "details": details}
    if isinstance(exc, NotFound):
        if exc.kind == "bot":  # a preset is named in the body: bad input, not a missing route
            return 400, {"code": "INVALID_REQUEST", "message": f"Unknown preset '{exc.ident}'"}
        code = "CONVERSATION_NOT_FOUND" if exc.kind == "conversation" else "NOT_FOUND"
        return 404, {"code": code, "message": exc.message}
    if isinstance(exc, ModelNotFound):
        return 400, {"code": "INVALID_REQUEST", "message": exc.message, "availableModels": exc.available}
    if isinstance(exc, ContextTooLong):
        return 400, {"code": "CONTEXT_LENGTH_EXCEEDED", "message": exc.message,
                     "maxLength": exc.max_length, "requestLength": exc.request_length}
    if isinstance(exc, RateLimited):
        return 429, {"code": "RATE_LIMITED", "message": exc.message, "retryAfter": exc.retry_after}
    if isinstance(exc, ChannelUnavailable):
        return 503, {"code": "CHANNEL_UNAVAILABLE", "message": exc.message}
    if isinstance(exc, ProviderError):
        return 502, {"code": "MODEL_ERROR", "message": exc.message}
    if isinstance(exc, (Unauthorized, Forbidden, PayloadTooLarge, Conflict)):
        return exc.status, {"code": exc.code, "message": exc.message}
    if isinstance(exc, HubbubError) and exc.status != 500:  # REQUEST_TIMEOUT 408, SERVICE_UNAVAILABLE 503
        return exc.status, {"code": exc.code, "message": exc.message}
    return 500, {"code": "INTERNAL_ERROR", "message": "Internal server error", "requestId": rid or ""}


def render_error(exc: Exception, request: Request) -> JSONResponse:
    """``{"success": false, "error": {"code", "message", ...}}`` (``Retry-After`` on 429)."""
    status, error = error_parts(exc, request_id(request))
    return error_response({"success": False, "error": error}, status, exc)
