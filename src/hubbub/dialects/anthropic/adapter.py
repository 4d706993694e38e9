"""Anthropic Messages wire <-> core: request mapping, the message body, and the one error mapper.

The streamed form is in ``events.py``. What is passed through, translated or refused is
docs/anthropic.md; the decisions are in docs/api-decisions.md, "Anthropic Messages".
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from hubbub.core.generation import Generation
from hubbub.core.types import (
    ImagePart,
    Message,
    Part,
    Reasoning,
    ReasoningPart,
    SamplingParams,
    TextPart,
    ToolCall,
    ToolChoice,
    ToolResult,
    Tools,
    ToolSpec,
    Usage,
)
from hubbub.dialects.anthropic.protocol import (
    ContentBlock,
    CountTokensRequest,
    MessageIn,
    ImageSource,
    MessagesRequest,
    ResultBlock,
)
from hubbub.errors import (
    ChannelUnavailable,
    ContextTooLong,
    FieldProblem,
    Forbidden,
    HubbubError,
    InvalidRequest,
    ModelNotFound,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    Unauthorized,
    UpstreamError,
)
from hubbub.http.routing import error_response, request_id
from hubbub.http.validation import problems

_STOP_REASON = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "refusal",
                "cancelled": "end_turn", "error": "end_turn"}


def _refuse(field: str, message: str) -> InvalidRequest:
    return InvalidRequest(details=[FieldProblem(field, message)])


# -- requests --------------------------------------------------------------------------------


def refuse_unsupported(body: CountTokensRequest) -> None:
    """Server-side features of Anthropic's platform hubbub has no part in: a 400 naming them."""
    if body.mcp_servers:
        raise _refuse("mcp_servers", "MCP servers run on Anthropic's platform and are not supported by hubbub")
    if body.container is not None:
        raise _refuse("container", "code execution containers are not supported by hubbub")


def to_messages(body: CountTokensRequest) -> tuple[list[Message], str]:
    """The system prompt and messages as core messages, and a prefill: a trailing assistant
    message of text only is the start of the answer (the model continues it, as Anthropic's does),
    returned apart so the pipeline passes it as the answer's prefix.

    A user message's ``tool_result`` blocks become ``tool`` messages (one per result, as OpenAI
    has them), in block order with the user's own text and images around them."""
    out: list[Message] = []
    if isinstance(body.system, str):
        if body.system:
            out.append(Message("system", body.system))
    elif body.system:
        texts: list[Part] = []
        for j, block in enumerate(body.system):
            if block.type != "text" or block.text is None:
                raise _refuse(f"system.{j}.type", f"system blocks must be text blocks, not '{block.type}'")
            texts.append(TextPart(block.text))
        out.append(Message("system", texts))
    for i, message in enumerate(body.messages):
        out.extend(_message(message, i))
    prefix = ""
    last = body.messages[-1]
    if last.role == "assistant" and out and out[-1].role == "assistant" and out[-1].is_plain_text:
        prefix = out.pop().text
    return out, prefix


def _message(message: MessageIn, i: int) -> list[Message]:
    content = message.content
    if isinstance(content, str):
        return [Message(message.role, content)]
    if message.role == "assistant":
        return [Message("assistant", [_assistant_part(b, i, j) for j, b in enumerate(content)])]
    out: list[Message] = []
    parts: list[Part] = []
    for j, block in enumerate(content):
        if block.type == "tool_result":
            if parts:
                out.append(Message("user", parts))
                parts = []
            out.append(Message("tool", [_tool_result(block, f"messages.{i}.content.{j}")]))
        elif block.type in ("text", "image"):
            parts.append(_text_or_image(block, f"messages.{i}.content.{j}"))
        else:
            raise _unsupported_block(block, f"messages.{i}.content.{j}", "user")
    if parts or not out:
        out.append(Message("user", parts))
    return out


def _assistant_part(block: ContentBlock, i: int, j: int) -> Part:
    where = f"messages.{i}.content.{j}"
    if block.type == "text":
        return TextPart(_required(block.text, where, "text"))
    if block.type == "tool_use":
        if not isinstance(block.input, dict):
            raise _refuse(f"{where}.input", "must be an object")
        arguments = json.dumps(block.input, ensure_ascii=False, separators=(",", ":"))
        return ToolCall(_required(block.id, where, "id"), _required(block.name, where, "name"), arguments)
    if block.type == "thinking":
        return ReasoningPart(block.thinking or "", signature=block.signature)
    if block.type == "redacted_thinking":
        return ReasoningPart(redacted=_required(block.data, where, "data"))
    raise _unsupported_block(block, where, "assistant")


def _text_or_image(block: ContentBlock | ResultBlock, where: str) -> Part:
    if block.type == "text":
        return TextPart(_required(block.text, where, "text"))
    if block.source is None:
        raise _refuse(f"{where}.source", "Field required")
    try:
        source = ImageSource.model_validate(block.source)
    except ValidationError:
        raise _refuse(f"{where}.source.type", "Field required") from None
    if source.type == "base64":
        media = _required(source.media_type, f"{where}.source", "media_type")
        return ImagePart(f"data:{media};base64,{_required(source.data, f'{where}.source', 'data')}")
    if source.type == "url":
        return ImagePart(_required(source.url, f"{where}.source", "url"))
    raise _refuse(f"{where}.source.type", f"image sources of type '{source.type}' are not supported "
                                           "(use base64 or url)")


def _tool_result(block: ContentBlock, where: str) -> ToolResult:
    call_id = _required(block.tool_use_id, where, "tool_use_id")
    content = block.content
    parts: tuple[TextPart | ImagePart, ...] = ()
    if isinstance(content, str):
        parts = (TextPart(content),) if content else ()
    elif content:
        items = []
        for k, inner in enumerate(content):
            if inner.type not in ("text", "image"):
                raise _unsupported_block(inner, f"{where}.content.{k}", "tool_result")
            items.append(_text_or_image(inner, f"{where}.content.{k}"))
        parts = tuple(items)  # type: ignore[arg-type]
    return ToolResult(call_id, parts, bool(block.is_error))


def _required(value: Any, where: str, name: str) -> Any:
    if value is None:
        raise _refuse(f"{where}.{name}", "Field required")
    return value


def _unsupported_block(block: ContentBlock | ResultBlock, where: str, container: str) -> InvalidRequest:
    return _refuse(f"{where}.type", f"content blocks of type '{block.type}' are not supported in {container} "
                                    "content by hubbub")


def to_tools(body: CountTokensRequest) -> Tools | None:
    """``tools`` and ``tool_choice`` as core ``Tools`` (None: no tools)."""
    choice = body.tool_choice
    if not body.tools:
        if choice is not None and choice.type in ("any", "tool"):
            raise _refuse("tool_choice", f"tool_choice '{choice.type}' needs tools")
        return None
    specs = []
    for i, tool in enumerate(body.tools):
        if tool.type not in (None, "custom"):
            raise _refuse(f"tools.{i}.type", f"'{tool.type}' is one of Anthropic's server or client-defined tools, "
                                             "which hubbub does not run; define it as a custom tool with an "
                                             "input_schema")
        if tool.input_schema is None:
            raise _refuse(f"tools.{i}.input_schema", "Field required")
        specs.append(ToolSpec(tool.name, tool.description or "", tool.input_schema, tool.strict))
    names = [t.name for t in specs]
    if len(set(names)) != len(names):
        raise _refuse("tools", "tool names must be unique")
    if choice is None or choice.type == "auto":
        mode = ToolChoice("auto")
    elif choice.type == "any":
        mode = ToolChoice("required")
    elif choice.type == "none":
        mode = ToolChoice("none")
    else:
        if not choice.name:
            raise _refuse("tool_choice.name", "Field required")
        if choice.name not in names:
            raise _refuse("tool_choice.name", f"names the tool '{choice.name}', which is not in tools")
        mode = ToolChoice("named", choice.name)
    parallel = not (choice is not None and choice.disable_parallel_tool_use)
    return Tools(tuple(specs), mode, parallel)


def to_params(body: MessagesRequest) -> tuple[SamplingParams, set[str]]:
    """Sampling parameters with Anthropic's defaults (temperature 1, top_p 1), and the names the
    client set explicitly (a ``@bot``'s settings fill in the others)."""
    explicit = {name for name in ("temperature", "top_p") if getattr(body, name) is not None}
    explicit.add("max_tokens")
    return SamplingParams(
        temperature=1.0 if body.temperature is None else body.temperature,
        top_p=1.0 if body.top_p is None else body.top_p,
        max_tokens=body.max_tokens,
        stop=list(body.stop_sequences or ()),
        top_k=body.top_k,
        reasoning=to_reasoning(body),
    ), explicit


def to_reasoning(body: CountTokensRequest) -> Reasoning | None:
    thinking = body.thinking
    if thinking is None or thinking.type == "disabled":
        return None
    if thinking.type == "enabled" and thinking.budget_tokens is None:
        raise _refuse("thinking.budget_tokens", "Field required")
    return Reasoning(thinking.type, thinking.budget_tokens if thinking.type == "enabled" else None, thinking.display)


# -- responses -------------------------------------------------------------------------------


def stop_reason(gen: Generation) -> str:
    if gen.finish_reason == "stop" and gen.stop_sequence is not None:
        return "stop_sequence"
    return _STOP_REASON.get(gen.finish_reason or "stop", "end_turn")


def content_blocks(gen: Generation) -> list[dict[str, Any]]:
    """The answer's parts as content blocks, in the order they came."""
    blocks: list[dict[str, Any]] = []
    for part in gen.parts:
        if isinstance(part, TextPart):
            if part.text:
                blocks.append({"type": "text", "text": part.text})
        elif isinstance(part, ReasoningPart):
            if part.redacted is not None:
                blocks.append({"type": "redacted_thinking", "data": part.redacted})
            else:
                blocks.append({"type": "thinking", "thinking": part.text, "signature": part.signature or ""})
        elif isinstance(part, ToolCall):
            try:
                arguments = json.loads(part.arguments)
            except ValueError:
                arguments = None
            if not isinstance(arguments, dict):
                if gen.finish_reason == "length":
                    continue  # cut by max_tokens: never presented as a complete call (stop_reason says why)
                raise UpstreamError("Model error", details=f"the model's call of {part.name!r} has arguments "
                                                           "that are not a JSON object")
            blocks.append({"type": "tool_use", "id": part.id, "name": part.name, "input": arguments})
    return blocks


def usage_body(usage: Usage | None, prompt_tokens: int) -> dict[str, int]:
    if usage is None:
        return {"input_tokens": prompt_tokens, "output_tokens": 0}
    return {"input_tokens": usage.prompt_tokens, "output_tokens": usage.completion_tokens}


def message_body(gen: Generation, model: str, message_id: str) -> dict[str, Any]:
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content_blocks(gen),
        "stop_reason": stop_reason(gen),
        "stop_sequence": gen.stop_sequence,
        "usage": usage_body(gen.usage, gen.prompt_tokens),
    }


# -- errors ----------------------------------------------------------------------------------


def error_type(exc: Exception) -> tuple[str, int]:
    """Anthropic's error type and HTTP status for ``exc`` (docs/api-decisions.md)."""
    if isinstance(exc, (RequestValidationError, InvalidRequest, ContextTooLong)):
        return "invalid_request_error", 400
    if isinstance(exc, Unauthorized):
        return "authentication_error", 401
    if isinstance(exc, Forbidden):
        return "permission_error", 403
    if isinstance(exc, (NotFound, ModelNotFound)):
        return "not_found_error", 404
    if isinstance(exc, PayloadTooLarge):
        return "request_too_large", 413
    if isinstance(exc, RateLimited):
        return "rate_limit_error", 429
    if isinstance(exc, ChannelUnavailable):
        return "overloaded_error", 529
    if isinstance(exc, HubbubError) and exc.status < 500:
        return "invalid_request_error", exc.status
    return "api_error", 500


def _wire_path(field: str) -> str:
    """A field path without pydantic's union branch tags (``content.str``, ``content.list[…]``)."""
    return ".".join(p for p in field.split(".") if p not in ("str", "int") and "[" not in p)


def error_message(exc: Exception, rid: str | None) -> str:
    if isinstance(exc, RequestValidationError):
        exc = InvalidRequest("Invalid request", problems(exc))
    if isinstance(exc, InvalidRequest) and exc.details:
        if any(p.kind == "json_invalid" for p in exc.details):
            return "The request body is not valid JSON."
        # A value that fits no branch of a union has one problem per branch: the deepest one
        # names what is wrong (a block's field, not "content: Input should be a valid string").
        first = max(exc.details, key=lambda p: len(_wire_path(p.field).split(".")))
        return f"{_wire_path(first.field)}: {first.message}"
    if isinstance(exc, ContextTooLong):
        # Anthropic's own wording, which clients (hubbub's Anthropic provider among them) parse.
        return f"prompt is too long: {exc.request_length} tokens > {exc.max_length} maximum"
    if isinstance(exc, ModelNotFound):
        return f"model: {exc.model}"
    if isinstance(exc, NotFound) and exc.kind == "bot":
        return f"model: @{exc.ident}"
    if isinstance(exc, Unauthorized):
        return "invalid x-api-key"
    if isinstance(exc, HubbubError):
        message = exc.message
    else:
        message = "Internal server error"
    if rid and error_type(exc)[1] >= 500:
        message = f"{message} (request id {rid})"
    return message


def error_body(exc: Exception, rid: str | None) -> dict[str, Any]:
    kind, _ = error_type(exc)
    body: dict[str, Any] = {"type": "error", "error": {"type": kind, "message": error_message(exc, rid)}}
    if rid:
        body["request_id"] = rid
    return body


def render_error(exc: Exception, request: Request) -> JSONResponse:
    rid = request_id(request)
    response = error_response(error_body(exc, rid), error_type(exc)[1], exc)
    if rid:
        response.headers["request-id"] = rid
    return response


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


def unmatched_route(status: int, method: str, path: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """An unknown route (404) or a wrong method (405) under ``/v1/messages``, in Anthropic's error
    shape: an Anthropic SDK reads ``error.type`` from every error body (docs/anthropic.md)."""
    if status == 405:
        kind, message = "invalid_request_error", f"Method {method} is not allowed on {path}"
    elif status == 404:
        kind, message = "not_found_error", f"Not found: {method} {path}"
    else:
        kind, message = "invalid_request_error", f"HTTP {status}"
    return JSONResponse({"type": "error", "error": {"type": kind, "message": message}}, status_code=status,
                        headers=headers)

