"""OpenAI wire <-> core: request mapping, response/chunk shapes, and the one error mapper."""

from __future__ import annotations

import time
from typing import Any, AsyncIterator

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from hubbub.core.events import Finish, TextDelta, UsageReport
from hubbub.core.ids import new_id
from hubbub.core.service import Generation
from hubbub.core.types import Message, ModelInfo, ResponseFormat, SamplingParams, Usage
from hubbub.dialects.openai.protocol import ChatCompletionRequest, ChatMessageIn
from hubbub.dialects.routing import request_id
from hubbub.dialects.sse import DONE, Last, frame
from hubbub.dialects.validation import problems
from hubbub.errors import (
    ContextTooLong,
    HubbubError,
    InvalidRequest,
    ModelNotFound,
    NotFound,
    RateLimited,
    Unauthorized,
)

_FINISH = {"stop": "stop", "length": "length", "cancelled": "stop", "error": "stop"}


def _text(message: ChatMessageIn) -> str:
    if message.content is None:
        return ""
    if isinstance(message.content, str):
        return message.content
    return "".join(part.text or "" for part in message.content if part.type == "text")


def to_messages(body: ChatCompletionRequest) -> list[Message]:
    out = []
    for m in body.messages:
        role = {"developer": "system", "tool": "user"}.get(m.role, m.role)
        out.append(Message(role, _text(m)))  # type: ignore[arg-type]
    return out


def to_params(body: ChatCompletionRequest) -> tuple[SamplingParams, set[str]]:
    """Sampling parameters with OpenAI's defaults, and the names the client set explicitly."""
    stop = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
    fmt = None
    if body.response_format is not None and body.response_format.type != "text":
        schema = body.response_format.json_schema.schema_ if body.response_format.json_schema else None
        if body.response_format.type == "json_schema" and not schema:
            raise InvalidRequest("response_format.json_schema.schema is required for type json_schema")
        fmt = ResponseFormat(body.response_format.type, schema)
    max_tokens = body.max_completion_tokens or body.max_tokens
    explicit = {name for name in ("temperature", "top_p") if getattr(body, name) is not None}
    if max_tokens is not None:
        explicit.add("max_tokens")
    params = SamplingParams(
        temperature=1.0 if body.temperature is None else body.temperature,
        top_p=1.0 if body.top_p is None else body.top_p,
        max_tokens=max_tokens,
        stop=stop,
        seed=body.seed,
        response_format=fmt,
    )
    return params, explicit


def usage_body(usage: Usage | None) -> dict[str, int] | None:
    if usage is None:
        return None
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


def served(gen: Generation, asked: str) -> tuple[str, dict[str, str] | None]:
    """The response's ``model`` and extra headers: the model that answered, as OpenAI names the
    model version that served, and ``X-Hubbub-Channel`` for the channel (issue 19); what was
    asked when no channel router served it (the embedded model)."""
    by = gen.served_by
    if by is None:
        return asked, None
    return by.model, {"X-Hubbub-Channel": by.channel}


def completion_body(gen: Generation, model: str) -> dict[str, Any]:
    return {
        "id": new_id("chatcmpl-"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": gen.text, "refusal": None},
                "logprobs": None,
                "finish_reason": _FINISH.get(gen.finish_reason or "stop", "stop"),
            }
        ],
        "usage": usage_body(gen.usage),
    }


async def chunk_stream(
    gen: Generation, model: str, include_usage: bool, first_extra: dict[str, Any] | None = None
) -> AsyncIterator[bytes]:
    """``chat.completion.chunk`` frames, then the usage chunk when asked for, then ``[DONE]``.
    ``first_extra``: top-level fields for the first chunk only (``rag_sources``)."""
    base = {"id": new_id("chatcmpl-"), "object": "chat.completion.chunk", "created": int(time.time()),
            "model": model, "system_fingerprint": None}
    usage_field = {"usage": None} if include_usage else {}

    def chunk(delta: dict[str, Any], finish: str | None = None, extra: dict[str, Any] | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return frame({**base, "choices": [choice], **usage_field, **(extra or {})})

    # The content chunk, the one sent per token, as bytes around the text: the same bytes as
    # ``chunk({"content": text})`` (orjson keeps key order) without building and dumping the dict.
    head, _, tail = chunk({"content": ""}).partition(b'{"content":""}')
    head += b'{"content":'
    tail = b"}" + tail

    # Frames produced together go out as one write (a send is the costliest step of an event):
    # the role chunk with the first text, which ``open_stream`` already awaited; the finish chunk
    # with the usage chunk and [DONE] that follow it at once. (Tokens that came from an upstream
    # in one read are already one delta: ``TextDelta.tokens``.)
    role = chunk({"role": "assistant", "content": ""}, extra=first_extra)
    pending = role if gen.primed else b""
    if not pending:
        yield role
    first = True
    try:
        async for event in gen:
            if isinstance(event, TextDelta):
                out = head + orjson.dumps(event.text) + tail
            elif isinstance(event, Finish):
                pending += chunk({}, _FINISH.get(event.reason, "stop"))  # the end follows at once
                first = False
                continue
            elif first and pending:  # the first event is not text: the role chunk waits no longer
                out = b""
            else:
                continue
            first = False
            if pending:
                out, pending = pending + out, b""
            yield out
    except HubbubError as exc:
        yield Last(pending + frame(error_body(exc, None)))
        return
    if include_usage:
        pending += frame({**base, "choices": [], "usage": usage_body(gen.usage)})
    yield Last(pending + DONE)


def model_body(info: ModelInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "object": "model",
        "created": info.created,
        "owned_by": info.owned_by,
        "context_length": info.context_length,
        "pricing": {"prompt": info.pricing_prompt, "completion": info.pricing_completion},
    }


def error_body(exc: Exception, rid: str | None) -> dict[str, Any]:
    message, etype, param, code = "Internal server error", "server_error", None, None
    if isinstance(exc, RequestValidationError):
        exc = InvalidRequest("Invalid request", problems(exc))
    if isinstance(exc, InvalidRequest):
        etype = "invalid_request_error"
        if exc.details:
            first = exc.details[0]
            param = first.field
            message = f"Invalid value for '{first.field}': {first.message}"
            if first.kind == "json_invalid":
                message, param = "We could not parse the JSON body of your request.", None
        else:
            message = exc.message
    elif isinstance(exc, ModelNotFound):
        etype, code = "invalid_request_error", "model_not_found"
        message = f"The model `{exc.model}` does not exist or you do not have access to it."
        param = "model"
    elif isinstance(exc, NotFound):
        etype, code, message = "invalid_request_error", "not_found", exc.message
        if exc.kind == "bot":
            code, param = "model_not_found", "model"
            message = f"The model `@{exc.ident}` does not exist or you do not have access to it."
    elif isinstance(exc, ContextTooLong):
        etype, code, param = "invalid_request_error", "context_length_exceeded", "messages"
        message = (
            f"This model's maximum context length is {exc.max_length} tokens. "
            f"However, your messages resulted in {exc.request_length} tokens."
        )
    elif isinstance(exc, Unauthorized):
        etype, code, message = "invalid_request_error", "invalid_api_key", "Incorrect API key provided."
    elif isinstance(exc, RateLimited):
        etype, code, message = "requests", "rate_limit_exceeded", exc.message
    elif isinstance(exc, HubbubError):
        etype = "invalid_request_error" if exc.status < 500 else "server_error"
        code, message = exc.code.lower(), exc.message
    if rid and etype == "server_error":
        message = f"{message} (request id {rid})"
    return {"error": {"message": message, "type": etype, "param": param, "code": code}}


def render_error(exc: Exception, request: Request) -> JSONResponse:
    status = 400 if isinstance(exc, RequestValidationError) else getattr(exc, "status", 500)
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
    return JSONResponse(error_body(exc, request_id(request)), status_code=status, headers=headers,
                        media_type="application/json")


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)
