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
import re
from typing import Any, AsyncIterator

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from hubbub.core.events import TextDelta
from hubbub.core.generation import Generation
from hubbub.core.types import Bot, ToolCall, ToolSpec
from hubbub.dialects.bots.v1 import V1ValidationError
from hubbub.http.routing import error_response, request_id
from hubbub.http.sse import DONE, frame
from hubbub.errors import (
    HubbubError,
    InvalidRequest,
    ModelNotFound,
    NotFound,
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
    "tools": ("tools", None),
}
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
MAX_TOOLS = 128  # as OpenAI's chat completions


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
    if out.get("tools") is not None:
        out["tools"] = tool_specs(out["tools"])
    return out


def _bad(field: str, problem: str) -> InvalidRequest:
    return InvalidRequest(f"{field}: {problem}")


def tool_specs(value: Any) -> tuple[ToolSpec, ...]:
    """A bot's ``tools`` as OpenAI function tools (``{"type": "function", "function": {name,
    description, parameters, strict}}``), checked as the OpenAI routes check a request's: a bad
    shape is a 400 naming the field."""
    if not isinstance(value, list):
        raise _bad("tools", "must be a list of function tools")
    if len(value) > MAX_TOOLS:
        raise _bad("tools", f"at most {MAX_TOOLS} tools")
    specs = []
    for i, tool in enumerate(value):
        at = f"tools.{i}"
        if not isinstance(tool, dict) or tool.get("type") != "function" or set(tool) - {"type", "function"}:
            raise _bad(at, 'must be {"type": "function", "function": {...}}')
        fn = tool.get("function")
        if not isinstance(fn, dict) or set(fn) - {"name", "description", "parameters", "strict"}:
            raise _bad(f"{at}.function", "must be an object with name, description, parameters and strict")
        name = fn.get("name")
        if not isinstance(name, str) or not _TOOL_NAME.match(name):
            raise _bad(f"{at}.function.name", "must be 1 to 64 letters, digits, _ or -")
        description = fn.get("description")
        if description is not None and not isinstance(description, str):
            raise _bad(f"{at}.function.description", "must be a string")
        parameters = fn.get("parameters")
        if parameters is not None and (not isinstance(parameters, dict) or parameters.get("type", "object") != "object"):
            raise _bad(f"{at}.function.parameters", "must be a JSON Schema of type object")
        strict = fn.get("strict")
        if strict is not None and not isinstance(strict, bool):
            raise _bad(f"{at}.function.strict", "must be a boolean")
        specs.append(ToolSpec(name, description or "", parameters or {"type": "object", "properties": {}}, strict))
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise _bad("tools", "function names must be unique")
    return tuple(specs)


def tools_body(tools: tuple[ToolSpec, ...] | None) -> list[dict[str, Any]] | None:
    if tools is None:
        return None
    out = []
    for t in tools:
        fn: dict[str, Any] = {"name": t.name, "description": t.description, "parameters": t.parameters}
        if t.strict is not None:
            fn["strict"] = t.strict
        out.append({"type": "function", "function": fn})
    return out


def calls_or_error(gen: Generation) -> dict[str, Any]:
    """The answer's calls as ``toolCalls``, or an ``error`` when they did not finish (the token
    budget cut them): a truncated call is never presented as complete."""
    if gen.finish_reason == "tool_calls":
        return {"toolCalls": calls_body(gen.tool_calls)}
    return {"error": "the model's tool call was cut short (finish reason: "
                     f"{gen.finish_reason or 'cancelled'}); raise maxTokens"}


def calls_body(calls: list[ToolCall]) -> list[dict[str, Any]]:
    """Calls the model made, in OpenAI's shape (``toolCalls``: the bots wire has no other place)."""
    return [{"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in calls]


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
        "tools": tools_body(bot.tools),
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
        if gen.tool_calls:  # whole calls, once complete: this wire has no deltas for them
            yield frame({"content": "", **calls_or_error(gen)})
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
    return error_response(body, status, exc, challenge=True)
