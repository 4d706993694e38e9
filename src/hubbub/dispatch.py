"""``POST /api/chat``: one path, two dialects (API.md §2, §3).

The body is parsed once, here, and only to choose: ``messages`` means the
builder, ``message`` the conversations dialect (a body with both has
``messages`` and is the builder's). The chosen dialect's model validates it
and the dialect's own ``send`` handles it; from that moment errors render in
that dialect's shape. Anything else (not JSON, not an object, neither field)
is a 400 in the builder's shape.

The key is checked before the body is read (issue 22: an unknown caller must not
make the server read up to 1 MiB), so a 401 cannot know the dialect: it has the
shape both dialects share, ``{"success": false, "error": {"code", "message"}}``
(docs/api-decisions.md). The rate limits apply once the dialect is chosen, so a
429 has the chosen dialect's shape.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.responses import JSONResponse
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from hubbub.dialects.builder import adapter as builder_adapter
from hubbub.dialects.builder import router as builder
from hubbub.dialects.builder.protocol import BuilderChatRequest
from hubbub.dialects.conversations import adapter as conversations_adapter
from hubbub.dialects.conversations import router as conversations
from hubbub.dialects.conversations.protocol import ConversationChatRequest
from hubbub.http.routing import apply_limits, body_doc, dialect_router
from hubbub.errors import FieldProblem, InvalidRequest, Unauthorized

_RENDERERS = {"builder": builder_adapter.render_error, "conversations": conversations_adapter.render_error}


def render_error(exc: Exception, request: Request) -> Response:
    """Errors in the shape of the dialect the body was dispatched to (builder until then); a 401,
    which comes before the body is read, in the shape the two dialects share."""
    if isinstance(exc, Unauthorized):
        body = {"success": False, "error": {"code": exc.code, "message": exc.message}}
        return JSONResponse(body, status_code=exc.status)
    dialect = getattr(request.state, "dialect", None)
    if dialect is None:  # refused while the body was read (http/text.py), before ``chat`` chose
        dialect = _dialect_of(getattr(request, "_body", b""))
    return _RENDERERS[dialect](exc, request)


def _dialect(payload: Any) -> str:
    """``message`` without ``messages``: conversations; anything else: the builder."""
    conversations = isinstance(payload, dict) and "message" in payload and "messages" not in payload
    return "conversations" if conversations else "builder"


def _dialect_of(raw: bytes) -> str:
    """The dialect ``chat`` would choose for ``raw``, a body ``http/text.py`` refused for a NUL or a
    lone surrogate. Python's parser reads those (orjson refuses the surrogate); NaN and Infinity,
    which orjson refuses, are refused here too, so such a body is the builder's as in ``chat``."""
    try:
        return _dialect(json.loads(raw, parse_constant=_no_constants))
    except (ValueError, RecursionError):
        return "builder"


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "builder: an SSE stream (`text/event-stream`, header `X-Chat-Id`); "
        "conversations: `{success, data: {response, conversationId, usage}}`",
        "content": {"text/event-stream": {}, "application/json": {}},
    },
    400: {"description": "Invalid body, unknown model or preset, or context length exceeded"},
}

router = dialect_router(render_error, tags=["chat"], admit_in_handler=True, idempotent=True)


def _parse(raw: bytes) -> dict[str, Any]:
    try:
        payload = orjson.loads(raw)
    except ValueError:
        raise InvalidRequest(details=[FieldProblem("body", "Request body is not valid JSON", kind="json_invalid")])
    if not isinstance(payload, dict):
        raise InvalidRequest(details=[FieldProblem("body", "Request body must be a JSON object")])
    return payload


def _validate(model: type[BaseModel], payload: dict[str, Any]) -> Any:
    try:
        return model.model_validate(payload)
    except ValidationError as exc:  # the same path as FastAPI's own body validation
        raise RequestValidationError(exc.errors(include_url=False)) from exc


@router.post(
    "/api/chat",
    summary="Chat: `messages` → builder (SSE), `message` → conversations (JSON)",
    openapi_extra=body_doc(BuilderChatRequest, ConversationChatRequest),
    responses=_RESPONSES,
)
async def chat(request: Request) -> Response:
    # The route class has authenticated the caller before reading the body (see the module doc).
    try:
        payload = _parse(await request.body())
    except InvalidRequest:
        await apply_limits(request)
        raise
    request.state.dialect = _dialect(payload)
    await apply_limits(request)  # after choosing: a 429 takes the chosen dialect's shape
    if "messages" in payload:
        return await builder.send(_validate(BuilderChatRequest, payload), request)
    if "message" in payload:
        return await conversations.send(_validate(ConversationChatRequest, payload), request)
    raise InvalidRequest(
        details=[FieldProblem("messages", "Field required (or `message` for the conversations API)")]
    )
