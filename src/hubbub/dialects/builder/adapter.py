"""Builder wire <-> core: which chat a request continues, the SSE events, and the one error mapper."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, AsyncIterator

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from hubbub.core.events import ChatCreated, Done, DslUpdate, ErrorEvent, Event, PhaseChange, TextDelta
from hubbub.core.ids import new_id
from hubbub.core.turns import Turn, TurnOptions, TurnRunner
from hubbub.core.types import Conversation, Message, SamplingParams, StoredMessage
from hubbub.dialects.builder.protocol import BuilderChatRequest
from hubbub.http.routing import error_response, request_id
from hubbub.http.sse import frame
from hubbub.http.validation import problems
from hubbub.errors import (
    ChannelUnavailable,
    Conflict,
    ContextTooLong,
    FieldProblem,
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
    from hubbub.storage.repositories import ConversationRepository

KIND = "chat"

# Core error codes as the builder's clients know them (in-stream ``error`` events).
_CODES = {
    "MODEL_ERROR": "LLM_ERROR",
    "MODEL_NOT_FOUND": "INVALID_MODEL",
    "INVALID_REQUEST": "VALIDATION_ERROR",
    "NOT_FOUND": "CHAT_NOT_FOUND",
}


def new_messages(body: BuilderChatRequest, existing: bool) -> list[Message]:
    """What this turn appends: the whole conversation for a new chat, else only the last user message.

    Anything after the last user message is ignored: the model answers that message.
    """
    users = [i for i, m in enumerate(body.messages) if m.role == "user"]
    if not users:
        raise InvalidRequest(details=[FieldProblem("messages", "must contain a user message")])
    last = users[-1]
    if existing:
        return [Message("user", body.messages[last].content)]
    return [Message(m.role, m.content) for m in body.messages[: last + 1]]


async def _existing(repo: "ConversationRepository", chat_id: str | None, owner: str | None) -> Conversation | None:
    conv = await repo.get(chat_id, owner) if chat_id else None
    if conv is not None and conv.kind != KIND:
        raise InvalidRequest(details=[FieldProblem("chatId", "names a conversation, not a builder chat")])
    return conv


def _default_length(turns: TurnRunner, model: str | None) -> int:
    """The model's default answer length; an unknown model is refused by the turn itself
    (which removes a chat it created), so here it bounds nothing."""
    try:
        return turns.service.model(model).default_max_tokens
    except ModelNotFound:
        return 2**31 - 1


async def start_turn(turns: TurnRunner, settings: "Settings", body: BuilderChatRequest, owner: str | None,
                     rid: str) -> Turn:
    """Find or create the chat, then store and start the turn; returns the started turn.

    Every check that can fail (model, context length) runs before a 200 is sent;
    a chat created by a request that then fails is removed again.
    """
    repo = turns.conversations
    if len(body.messages) > settings.max_messages:
        raise InvalidRequest(details=[FieldProblem("messages", f"at most {settings.max_messages} messages")])
    conv = await _existing(repo, body.chatId, owner)
    created = conv is None
    new_messages(body, existing=False)  # reject a body without a user message before creating anything
    if conv is None:
        turns.service.model(body.model)  # an unknown model creates nothing
        try:
            conv = await repo.create(
                Conversation(id=body.chatId or new_id("chat_"), kind=KIND, owner=owner, model=body.model)
            )
        except Conflict:  # a concurrent request created it first: continue it
            conv, created = await _existing(repo, body.chatId, owner), False
            if conv is None:  # the id is taken by a chat this key cannot see
                raise InvalidRequest(details=[FieldProblem("chatId", "is already in use")]) from None
    messages = new_messages(body, existing=not created)
    opts = TurnOptions(
        model=body.model,
        # The builder's wire has no maxTokens: the model's default answer length bounds every
        # reply (issue 21: a runaway answer delayed the data model), within the server's cap.
        params=SamplingParams(temperature=body.temperature,
                              max_tokens=min(settings.max_tokens_cap, _default_length(turns, conv.model or body.model))),
        owner=owner,
        request_id=rid,
        hook_options={"enable_dsl": body.enableDSL},
    )
    try:
        return await turns.start(conv, messages, opts)
    except Exception:
        if created:
            await repo.delete(conv.id)
        raise


def event_body(event: Event, enable_dsl: bool) -> dict[str, Any] | None:
    """One core event as a builder SSE object; None for events the builder does not show."""
    if isinstance(event, TextDelta):
        return {"type": "text", "content": event.text}
    if isinstance(event, ChatCreated):
        return {"type": "chat", "content": event.chat_id}
    if isinstance(event, DslUpdate) and enable_dsl:
        return {"type": "dsl", "content": event.dsl}
    if isinstance(event, PhaseChange) and enable_dsl:
        return {"type": "phase", "content": event.phase}
    if isinstance(event, ErrorEvent):
        return {"type": "error", "content": {"code": _CODES.get(event.code, event.code), "message": event.message}}
    if isinstance(event, Done):
        return {"type": "done", "content": ""}
    return None  # UsageReport, Finish: their sequence numbers are simply skipped


async def sse_stream(
    turns: TurnRunner, chat_id: str, enable_dsl: bool, after: int = 0, generation: str | None = None
) -> AsyncIterator[bytes]:
    """The turn's events as ``id: <seq>`` + ``data:`` frames, ``done`` last."""
    async for seq, event in turns.follow(chat_id, after, generation):
        body = event_body(event, enable_dsl)
        if body is not None:
            yield frame(body, seq)


def iso_ms(ms: int) -> str:
    """Epoch milliseconds as ISO 8601 UTC (``2024-12-15T06:40:00.000Z``), as a JS client's Date expects."""
    stamp = datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def message_body(m: StoredMessage) -> dict[str, Any]:
    return {"id": m.id, "role": m.role, "content": m.content, "createdAt": iso_ms(m.created_at), "status": m.status}


def chat_status(messages: list[StoredMessage]) -> str:
    """The last answer's status (``streaming``, ``complete``, ``stopped``…); ``idle`` before any."""
    answers = [m for m in messages if m.role == "assistant"]
    return answers[-1].status if answers else "idle"


def chat_body(conv: Conversation, messages: list[StoredMessage]) -> dict[str, Any]:
    return {
        "id": conv.id,
        "messages": [message_body(m) for m in messages],
        "dsl": conv.dsl,
        "phase": conv.phase,
        "status": chat_status(messages),
    }


def error_parts(exc: Exception, rid: str | None) -> tuple[int, dict[str, Any]]:
    """Status and ``error`` object for any exception (the one place builder errors are shaped)."""
    if isinstance(exc, RequestValidationError):
        exc = InvalidRequest("Invalid request", problems(exc))
    if isinstance(exc, InvalidRequest):
        details = [{"field": p.field, "message": p.message} for p in exc.details]
        message = exc.message
        if exc.details:
            first = exc.details[0]
            message = first.message if first.field == "body" else f"{first.field}: {first.message}"
        return 400, {"code": "VALIDATION_ERROR", "message": message, "details": details}
    if isinstance(exc, ModelNotFound):
        return 400, {"code": "INVALID_MODEL", "message": exc.message, "availableModels": exc.available}
    if isinstance(exc, NotFound):
        code = "CHAT_NOT_FOUND" if exc.kind in ("chat", "conversation") else "NOT_FOUND"
        return 404, {"code": code, "message": exc.message}
    if isinstance(exc, RateLimited):
        return 429, {"code": "RATE_LIMITED", "message": exc.message, "retryAfter": exc.retry_after}
    if isinstance(exc, ContextTooLong):
        return 400, {"code": "CONTEXT_LENGTH_EXCEEDED", "message": exc.message,
                     "maxLength": exc.max_length, "requestLength": exc.request_length}
    if isinstance(exc, ChannelUnavailable):
        return 503, {"code": "CHANNEL_UNAVAILABLE", "message": exc.message}
    if isinstance(exc, ProviderError):
        details = exc.details if isinstance(exc, UpstreamError) else ""
        return 502, {"code": "LLM_ERROR", "message": exc.message, "details": details}
    if isinstance(exc, (Unauthorized, Forbidden, PayloadTooLarge, Conflict)):
        return exc.status, {"code": exc.code, "message": exc.message}
    if isinstance(exc, HubbubError) and exc.status != 500:  # REQUEST_TIMEOUT 408, SERVICE_UNAVAILABLE 503
        return exc.status, {"code": exc.code, "message": exc.message}
    return 500, {"code": "INTERNAL_ERROR", "message": "Internal server error", "requestId": rid or ""}


def render_error(exc: Exception, request: Request) -> JSONResponse:
    """``{"error": {"code", "message", ...}}`` with its status (and ``Retry-After`` on 429)."""
    status, error = error_parts(exc, request_id(request))
    return error_response({"error": error}, status, exc)


async def resume_stream(
    turns: TurnRunner, conv: Conversation, last_event_id: int | None
) -> AsyncIterator[bytes]:
    """``GET /api/chat/{id}/stream``: history (the running answer so far included), then the
    live events; with ``Last-Event-ID`` only the events after it. Works on any replica."""
    hub = turns.hub
    key = await turns.latest_generation(conv.id)
    if last_event_id is not None:
        if key is not None:
            async for chunk in sse_stream(turns, conv.id, True, last_event_id, generation=key):
                yield chunk
        return
    buffered = await hub.snapshot(key) if key is not None else []
    upto = buffered[-1][0] if buffered else 0
    so_far = "".join(e.text for _, e in buffered if isinstance(e, TextDelta))
    stored = await turns.conversations.messages(conv.id)
    history = []
    for m in stored:
        body = {"role": m.role, "content": m.content, "createdAt": iso_ms(m.created_at)}
        if m.id == key and m.status == "streaming":
            body["content"] = so_far  # fresher than the last flush
        history.append(body)
    yield frame({"type": "history", "content": history}, upto)
    live = key is not None and await hub.is_live(key)
    if live or (buffered and not isinstance(buffered[-1][1], Done)):
        async for chunk in sse_stream(turns, conv.id, True, upto, generation=key):
            yield chunk
    else:
        yield frame({"type": "done", "content": ""}, upto)


def check_dsl_format(fmt: str) -> None:
    """``GET /api/chat/{id}/dsl?format=``: one of ``dsl.export.FORMATS``, else a 400."""
    from hubbub.dsl.export import FORMATS

    if fmt not in FORMATS:
        raise InvalidRequest(details=[FieldProblem("format", f"must be one of {', '.join(FORMATS)}")])


def dsl_export(conv: Conversation, fmt: str) -> tuple[str, str]:
    """The chat's DSL rendered as ``fmt`` and its media type (an empty model before the first turn)."""
    from hubbub.dsl.export import MEDIA_TYPES, render
    from hubbub.dsl.schema import Dsl

    return render(Dsl.from_dict(conv.dsl), fmt), MEDIA_TYPES[fmt]
