"""bots wire <-> core: bot JSON, the ``{"content"}`` stream, and the one error mapper.

Errors are FastAPI-style, as the seed's app wrote them::

    422 {"detail": [{"loc", "msg", "type"[, "ctx"]}]}     pydantic v1 shape (see ``v1``)
    400 {"detail": "<message>"}                            bad request the core found; context too long
    400 {"detail": "Model '<id>' is not available", "availableModels": [...]}   bot with an unknown model
    401 {"detail": "Unauthorized"}   403 {"detail": "<message>"}
    404 {"detail": "Bot not found"}   404 {"detail": "Model not found", "availableModels": [...]}
    409 {"detail": "<message>"}       413 {"detail": "<message>"}
    429 {"detail": "<message>"} + Retry-After
    502 {"detail": "Model error: <details>"}   503 {"detail": "No available channels"}
    500 {"detail": "Internal Server Error", "request_id": "<id>"}
"""

from __future__ import annotations

import logging
from typing import Any, AsyncIterator

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from hubbub.core.events import TextDelta
from hubbub.core.service import Generation
from hubbub.core.types import Bot
from hubbub.dialects.bots.v1 import V1ValidationError
from hubbub.http.routing import request_id
from hubbub.http.sse import DONE, frame
from hubbub.errors import (
    HubbubError,
    InvalidRequest,
    ModelNotFound,
    NotFound,
    RateLimited,
    Unauthorized,
    Unavailable,
    UpstreamError,
)

log = logging.getLogger(__name__)

# wire name -> (Bot attribute, value stored for null)
BOT_FIELDS: dict[str, tuple[str, Any]] = {
    "slug": ("slug", None),
    "name": ("name", None),
    "systemPrompt": ("system_prompt", ""),
    "model": ("model", None),
    "temperature": ("temperature", None),
    "maxTokens": ("max_tokens", None),
    "topP": ("top_p", None),
    "ragEnabled": ("rag_enabled", False),
    "description": ("description", ""),
}


class UnknownBotModel(InvalidRequest):
    """A bot body names a model the catalog does not have (400, not the chat routes' 404)."""

    def __init__(self, model: str, available: list[str]) -> None:
        super().__init__(f"Model '{model}' is not available")
        self.available = available


def bot_values(wire: dict[str, Any]) -> dict[str, Any]:
    """Wire fields (camelCase) -> ``Bot`` attributes / column names, nulls replaced by defaults."""
    out = {}
    for name, value in wire.items():
        attr, empty = BOT_FIELDS[name]
        out[attr] = empty if value is None else value
    return out


def bot_body(bot: Bot) -> dict[str, Any]:
    return {
        "uid": bot.uid,
        "slug": bot.slug,
        "name": bot.name,
        "systemPrompt": bot.system_prompt,
        "model": bot.model,
        "temperature": bot.temperature,
        "maxTokens": bot.max_tokens,
        "topP": bot.top_p,
        "ragEnabled": bot.rag_enabled,
        "description": bot.description,
        "createdAt": bot.created_at,
        "updatedAt": bot.updated_at,
    }


async def content_stream(gen: Generation) -> AsyncIterator[bytes]:
    """``{"content": ""}`` first (as the seed shows), one frame per delta, then ``[DONE]``.

    A failure after the stream began is ``{"content": "", "error": "<message>"}``. Only
    ``Exception`` is caught, so a disconnect's cancellation reaches the provider and stops it.
    """
    yield frame({"content": ""})
    try:
        async for event in gen:
            if isinstance(event, TextDelta) and event.text:
                yield frame({"content": event.text})
    except HubbubError as exc:
        yield frame({"content": "", "error": exc.message})
    except Exception:
        log.exception("bots stream failed")
        yield frame({"content": "", "error": "Internal Server Error"})
    yield DONE


def error_body(exc: Exception, rid: str) -> tuple[int, dict[str, Any]]:
    """The one mapping from any error to the bots dialect's status and body."""
    if isinstance(exc, V1ValidationError):
        return 422, {"detail": exc.errors}
    if isinstance(exc, RequestValidationError):  # path/query parameters only: bodies go through v1
        return 422, {"detail": [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
                                for e in exc.errors()]}
    if isinstance(exc, UnknownBotModel):
        return 400, {"detail": exc.message, "availableModels": exc.available}
    if isinstance(exc, ModelNotFound):
        return 404, {"detail": "Model not found", "availableModels": exc.available}
    if isinstance(exc, NotFound):
        return 404, {"detail": f"{exc.kind.capitalize()} not found"}
    if isinstance(exc, UpstreamError):
        return exc.status, {"detail": f"{exc.message}: {exc.details}" if exc.details else exc.message}
    if isinstance(exc, HubbubError):
        return exc.status, {"detail": exc.message}
    return 500, {"detail": "Internal Server Error", "request_id": rid}


def render_error(exc: Exception, request: Request) -> JSONResponse:
    status, body = error_body(exc, request_id(request))
    headers = None
    if isinstance(exc, (RateLimited, Unavailable)):
        headers = {"Retry-After": str(exc.retry_after)}
    elif isinstance(exc, Unauthorized):
        headers = {"WWW-Authenticate": "Bearer"}
    return JSONResponse(body, status_code=status, headers=headers)
