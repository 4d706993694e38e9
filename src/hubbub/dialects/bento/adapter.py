"""bento wire <-> core: request mapping, the ``{"content"}`` stream, and the one error mapper.

Error bodies (API.md §1), by status::

    400 {"error": "Invalid request", "details": [{"field", "message"}]}
    400 {"error": "Context length exceeded", "maxLength", "requestLength"}
    401 {"error": "Unauthorized"}            403 {"error": "Forbidden"}
    404 {"error": "Model not found", "availableModels": [...]}
    409 {"error": "<message>"}               413 {"error": "Request too large", "maxBytes"}
    429 {"error": "Rate limit exceeded", "retryAfter"}   (+ Retry-After header)
    502 {"error": "Model error", "details"}   503 {"error": "Model error", "details": "No available channels"}
    503 {"error": "Service unavailable", "details"}  (database or Redis down; + Retry-After)
    500 {"error": "Internal error", "requestId"}
"""

from __future__ import annotations

import logging
from contextlib import aclosing
from typing import Any, AsyncIterator

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from hubbub.core.events import TextDelta
from hubbub.core.generation import Generation
from hubbub.core.types import Message, ModelInfo, SamplingParams
from hubbub.dialects.bento.protocol import BentoChatRequest
from hubbub.http.routing import error_response, request_id
from hubbub.http.sse import DONE, frame
from hubbub.http.validation import problems
from hubbub.errors import (
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
    Unavailable,
    UpstreamError,
)

log = logging.getLogger(__name__)

DEFAULT_TEMPERATURE = 0.7
# Core field names (from the core's own checks) -> bento wire names.
WIRE_FIELDS = {"max_tokens": "maxTokens", "top_p": "topP", "stop": "stopSequences"}


def to_messages(body: BentoChatRequest) -> list[Message]:
    return [Message(m.role, m.content) for m in body.messages]


def to_params(body: BentoChatRequest) -> SamplingParams:
    return SamplingParams(
        temperature=DEFAULT_TEMPERATURE if body.temperature is None else body.temperature,
        top_p=1.0 if body.topP is None else body.topP,
        max_tokens=body.maxTokens,
        stop=list(body.stopSequences or []),
    )


async def content_stream(gen: Generation) -> AsyncIterator[bytes]:
    """``{"content": delta}`` frames then ``[DONE]``; a failure mid-stream is one
    ``{"content": "", "error"}`` frame (the seed's client reads ``content`` unchecked).

    Only ``Exception`` is caught: a client disconnect cancels this generator with
    ``CancelledError``/``GeneratorExit``, which must reach the provider to stop it.
    """
    try:
        # aclosing: however this generator ends (a disconnect closes it at a ``yield``),
        # the generation is closed at once, not whenever the garbage collector gets to it.
        async with aclosing(gen.__aiter__()) as events:
            async for event in events:
                if isinstance(event, TextDelta) and event.text:
                    yield frame({"content": event.text})
    except HubbubError as exc:
        yield frame({"content": "", "error": exc.message})
    except Exception:
        log.exception("bento stream failed")
        yield frame({"content": "", "error": "Internal error"})
    yield DONE


def model_body(info: ModelInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "name": info.name,
        "contextLength": info.context_length,
        "pricing": {"prompt": info.pricing_prompt, "completion": info.pricing_completion},
    }


def error_body(exc: Exception, rid: str) -> tuple[int, dict[str, Any]]:
    """The one mapping from any error to bento's status and body."""
    if isinstance(exc, RequestValidationError):
        exc = InvalidRequest("Invalid request", problems(exc))
    if isinstance(exc, InvalidRequest):
        details = [{"field": WIRE_FIELDS.get(p.field, p.field), "message": p.message} for p in exc.details]
        return 400, {"error": "Invalid request", "details": details or [{"field": "body", "message": exc.message}]}
    if isinstance(exc, ContextTooLong):
        return 400, {"error": "Context length exceeded", "maxLength": exc.max_length,
                     "requestLength": exc.request_length}
    if isinstance(exc, Unauthorized):
        return 401, {"error": "Unauthorized"}
    if isinstance(exc, Forbidden):
        return 403, {"error": "Forbidden"}
    if isinstance(exc, ModelNotFound):
        return 404, {"error": "Model not found", "availableModels": exc.available}
    if isinstance(exc, NotFound):
        return 404, {"error": f"{exc.kind.capitalize()} not found"}
    if isinstance(exc, PayloadTooLarge):
        return 413, {"error": "Request too large", "maxBytes": exc.limit}
    if isinstance(exc, RateLimited):
        return 429, {"error": "Rate limit exceeded", "retryAfter": exc.retry_after}
    if isinstance(exc, ProviderError):
        details = exc.details if isinstance(exc, UpstreamError) and exc.details else exc.message
        return exc.status, {"error": "Model error", "details": details}
    if isinstance(exc, Unavailable):
        return 503, {"error": "Service unavailable", "details": exc.message}
    if isinstance(exc, HubbubError) and exc.status < 500:
        return exc.status, {"error": exc.message}
    return 500, {"error": "Internal error", "requestId": rid}


def render_error(exc: Exception, request: Request) -> JSONResponse:
    status, body = error_body(exc, request_id(request))
    return error_response(body, status, exc)
