"""Responses API wire <-> core: input items as messages, tools, parameters, the response
object and its output items, and the one error mapper (docs/api-decisions.md, "Responses")."""

from __future__ import annotations

from typing import Any, Iterable

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from hubbub.core.ids import new_id
from hubbub.core.types import (
    ImagePart,
    Message,
    Part,
    ReasoningPart,
    ResponseFormat,
    SamplingParams,
    TextPart,
    ToolCall,
    ToolChoice,
    ToolResult,
    Tools,
    ToolSpec,
    Usage,
)
from hubbub.dialects.responses.protocol import (
    FunctionCallItem,
    FunctionCallOutputItem,
    FunctionTool,
    InputImagePart,
    InputTextPart,
    MessageItem,
    OutputTextPart,
    ReasoningItem,
    RefusalPart,
    ResponsesRequest,
)
from hubbub.errors import (
    ContextTooLong,
    FieldProblem,
    HubbubError,
    InvalidRequest,
    ModelNotFound,
    NotFound,
    RateLimited,
    Unauthorized,
)
from hubbub.http.routing import error_response, request_id
from hubbub.http.validation import problems

# What a finished turn's status and finish reason make of a response (docs/api-decisions.md).
INCOMPLETE_REASONS = {"length": "max_output_tokens", "content_filter": "content_filter"}


def refuse(field: str, message: str) -> InvalidRequest:
    return InvalidRequest(details=[FieldProblem(field, message, "unsupported")])


def check_unsupported(body: ResponsesRequest) -> None:
    """Fields that would change the answer and that hubbub cannot honour: a 400 naming each,
    never a silent drop (API.md §5)."""
    if body.reasoning and any(v is not None for v in body.reasoning.values()):
        raise refuse("reasoning", "reasoning settings are not supported by hubbub's models")
    if body.conversation is not None:
        raise refuse("conversation", "the Conversations API is not supported; use previous_response_id")
    if body.prompt is not None:
        raise refuse("prompt", "stored prompt templates are not supported")
    if body.context_management is not None:
        raise refuse("context_management", "is not supported; use truncation")
    if body.top_logprobs:
        raise refuse("top_logprobs", "log probabilities are not supported")
    if body.background and body.store is False:
        raise InvalidRequest(details=[FieldProblem("background", "background mode requires store=true")])


# -- input items -> core messages -------------------------------------------------------------


def _validate(model: type[BaseModel], raw: dict[str, Any], where: str) -> Any:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        path = ".".join(str(p) for p in (where, *first["loc"]))
        raise InvalidRequest(details=[FieldProblem(path, first["msg"], first["type"])]) from None


def _content(raw: str | list[dict[str, Any]], where: str, role: str) -> tuple[list[Part], list[dict[str, Any]]]:
    """A message's (or a tool output's) content as parts and as the wire parts to list again."""
    if isinstance(raw, str):
        kind = "output_text" if role == "assistant" else "input_text"
        return ([TextPart(raw)] if raw else []), [_text_wire(kind, raw)]
    parts: list[Part] = []
    wire: list[dict[str, Any]] = []
    for j, part in enumerate(raw):
        kind = part.get("type")
        at = f"{where}.{j}"
        if role == "assistant" and kind in ("output_text", "refusal"):
            item = _validate(OutputTextPart if kind == "output_text" else RefusalPart, part, at)
            text = item.text if kind == "output_text" else item.refusal
            parts.append(TextPart(text))
            wire.append(_text_wire("output_text", text) if kind == "output_text" else {"type": "refusal",
                                                                                       "refusal": text})
        elif role != "assistant" and kind == "input_text":
            text = _validate(InputTextPart, part, at).text
            parts.append(TextPart(text))
            wire.append(_text_wire("input_text", text))
        elif role in ("user", "tool") and kind == "input_image":
            image = _validate(InputImagePart, part, at)
            if image.file_id is not None or not image.image_url:
                raise refuse(f"{at}.file_id", "files are not supported; send the image as image_url (https or data:)")
            parts.append(ImagePart(image.image_url, image.detail))
            wire.append({"type": "input_image", "image_url": image.image_url, "detail": image.detail or "auto",
                         "file_id": None})
        else:
            raise refuse(f"{at}.type", f"content parts of type '{kind}' are not supported in {role} content")
    return parts, wire


def _text_wire(kind: str, text: str) -> dict[str, Any]:
    return {"type": kind, "text": text, "annotations": []} if kind == "output_text" else {"type": kind, "text": text}


def to_messages(body: ResponsesRequest) -> tuple[list[Message], list[dict[str, Any]]]:
    """``input`` as core messages, and as the items ``GET …/input_items`` lists (with ids).

    Consecutive assistant items — output messages, ``function_call``\\ s, ``reasoning`` — form
    one assistant message (text, calls and reasoning as parts); a ``function_call_output`` is a
    ``tool`` message; ``developer`` and ``system`` messages are system messages."""
    if isinstance(body.input, str):
        wire = {"id": new_id("msg_"), "type": "message", "role": "user", "status": "completed",
                "content": [_text_wire("input_text", body.input)]}
        return [Message("user", body.input)], [wire]
    if not body.input:
        raise InvalidRequest(details=[FieldProblem("input", "must contain at least one item")])
    messages: list[Message] = []
    items: list[dict[str, Any]] = []
    assistant: list[Part] | None = None

    def flush() -> None:
        nonlocal assistant
        if assistant is not None:
            messages.append(Message("assistant", assistant))
            assistant = None

    for i, raw in enumerate(body.input):
        kind = raw.get("type", "message" if "role" in raw else None)
        at = f"input.{i}"
        if kind == "message":
            item = _validate(MessageItem, raw, at)
            parts, content = _content(item.content, f"{at}.content", item.role)
            items.append({"id": item.id or new_id("msg_"), "type": "message", "role": item.role,
                          "status": "completed", "content": content})
            if item.role == "assistant":
                assistant = (assistant or []) + parts
                continue
            flush()
            messages.append(Message("user" if item.role == "user" else "system", parts))
        elif kind == "function_call":
            call = _validate(FunctionCallItem, raw, at)
            assistant = (assistant or []) + [ToolCall(call.call_id, call.name, call.arguments or "{}")]
            items.append({"id": call.id or new_id("fc_"), "type": "function_call", "status": "completed",
                          "call_id": call.call_id, "name": call.name, "arguments": call.arguments})
        elif kind == "function_call_output":
            out = _validate(FunctionCallOutputItem, raw, at)
            parts, content = _content(out.output, f"{at}.output", "tool")
            flush()
            result = tuple(p for p in parts if isinstance(p, (TextPart, ImagePart)))
            messages.append(Message("tool", [ToolResult(out.call_id, result)]))
            items.append({"id": out.id or new_id("fco_"), "type": "function_call_output", "status": "completed",
                          "call_id": out.call_id, "output": out.output if isinstance(out.output, str) else content})
        elif kind == "reasoning":
            reasoning = _validate(ReasoningItem, raw, at)
            texts = [p.get("text", "") for p in (reasoning.content or reasoning.summary)]
            assistant = (assistant or []) + [ReasoningPart("".join(t for t in texts if isinstance(t, str)))]
            items.append({"id": reasoning.id or new_id("rs_"), "type": "reasoning", "summary": reasoning.summary,
                          **({"content": reasoning.content} if reasoning.content is not None else {})})
        elif kind is None:
            raise InvalidRequest(details=[FieldProblem(f"{at}.type", "is required")])
        else:
            raise refuse(f"{at}.type", f"input items of type '{kind}' are not supported")
    flush()
    return messages, items


# -- tools and parameters ---------------------------------------------------------------------


def to_tools(body: ResponsesRequest) -> tuple[Tools | None, list[dict[str, Any]]]:
    """Function tools as core ``Tools`` (None: none offered), and the tools as echoed. A built-in
    tool (``web_search``, ``file_search``, ``code_interpreter``, ``computer_use_preview``…) is a
    400 naming it: hubbub runs no tools itself."""
    specs: list[ToolSpec] = []
    echo: list[dict[str, Any]] = []
    for i, raw in enumerate(body.tools or ()):
        kind = raw.get("type")
        if kind != "function":
            what = f"the built-in tool '{kind}'" if kind else "a tool without a type"
            raise refuse(f"tools.{i}.type", f"{what} is not supported: hubbub runs no tools itself; "
                                            "declare function tools and run them in your code")
        tool = _validate(FunctionTool, raw, f"tools.{i}")
        parameters = tool.parameters if tool.parameters is not None else {"type": "object", "properties": {}}
        specs.append(ToolSpec(tool.name, tool.description or "", parameters, tool.strict))
        echo.append({"type": "function", "name": tool.name, "description": tool.description,
                     "parameters": parameters, "strict": tool.strict})
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise InvalidRequest(details=[FieldProblem("tools", "function names must be unique")])
    choice = body.tool_choice
    if isinstance(choice, dict):
        if choice.get("type") != "function":
            raise refuse("tool_choice.type", f"tool_choice of type '{choice.get('type')}' is not supported")
        name = choice.get("name")
        if name not in names:
            raise InvalidRequest(details=[FieldProblem("tool_choice.name",
                                                       f"names the function '{name}', which is not in tools")])
        mode = ToolChoice("named", name)
    elif choice is None or choice in ("auto", "none", "required"):
        mode = ToolChoice(choice or "auto")  # type: ignore[arg-type]
    else:
        raise InvalidRequest(details=[FieldProblem("tool_choice", "must be 'none', 'auto', 'required' or "
                                                                  "{\"type\": \"function\", \"name\": …}")])
    parallel = True if body.parallel_tool_calls is None else body.parallel_tool_calls
    if not specs:
        if mode.mode in ("required", "named"):
            raise InvalidRequest(details=[FieldProblem("tool_choice", "needs at least one function in tools")])
        return None, []
    return Tools(tuple(specs), mode, parallel), echo


def tool_choice_echo(body: ResponsesRequest) -> Any:
    choice = body.tool_choice
    return {"type": "function", "name": choice.get("name")} if isinstance(choice, dict) else (choice or "auto")


def to_params(body: ResponsesRequest) -> tuple[SamplingParams, set[str]]:
    """Sampling parameters with OpenAI's defaults (temperature 1, top_p 1), and the names the
    client set (a bot's settings fill the rest). Without ``max_output_tokens`` an answer is
    bounded by the model's default answer length (core/service.py, issue 21), as every
    dialect's are."""
    fmt = body.text.format if body.text is not None else None
    response_format = None
    if fmt is not None and fmt.type != "text":
        if fmt.type == "json_schema" and not fmt.schema_:
            raise InvalidRequest(details=[FieldProblem("text.format.schema", "is required for type json_schema")])
        response_format = ResponseFormat(fmt.type, fmt.schema_)
    explicit = {name for name in ("temperature", "top_p") if getattr(body, name) is not None}
    if body.max_output_tokens is not None:
        explicit.add("max_tokens")
    params = SamplingParams(
        temperature=1.0 if body.temperature is None else body.temperature,
        top_p=1.0 if body.top_p is None else body.top_p,
        max_tokens=body.max_output_tokens,
        response_format=response_format,
    )
    return params, explicit


def echo(body: ResponsesRequest, tools: list[dict[str, Any]]) -> dict[str, Any]:
    """The request's settings as every read of the response shows them (stored with it)."""
    fmt = body.text.format if body.text is not None and body.text.format is not None else None
    text_format: dict[str, Any] = {"type": "text"}
    if fmt is not None and fmt.type == "json_object":
        text_format = {"type": "json_object"}
    elif fmt is not None and fmt.type == "json_schema":
        text_format = {"type": "json_schema", "name": fmt.name or "response", "schema": fmt.schema_,
                       "description": fmt.description, "strict": fmt.strict}
    return {
        "model": body.model,
        "instructions": body.instructions,
        "metadata": body.metadata or {},
        "tools": tools,
        "tool_choice": tool_choice_echo(body),
        "parallel_tool_calls": True if body.parallel_tool_calls is None else body.parallel_tool_calls,
        "temperature": 1.0 if body.temperature is None else body.temperature,
        "top_p": 1.0 if body.top_p is None else body.top_p,
        "max_output_tokens": body.max_output_tokens,
        "text": {"format": text_format, "verbosity": (body.text.verbosity if body.text else None) or "medium"},
        "truncation": body.truncation or "disabled",
        "user": body.user,
        "store": body.store is not False,
        "background": bool(body.background),
        "previous_response_id": body.previous_response_id,
    }


# -- output items and the response object ---------------------------------------------------------


def item_id(response_id: str, kind: str, index: int) -> str:
    """Output item ids follow from the response id and the item's place, so every replica and
    every replay of a stream names an item alike."""
    return f"{kind}_{response_id.removeprefix('resp_')}_{index}"


def message_item(response_id: str, index: int, text: str, status: str) -> dict[str, Any]:
    return {"id": item_id(response_id, "msg", index), "type": "message", "status": status, "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]}


def call_item(response_id: str, index: int, call_id: str, name: str, arguments: str, status: str) -> dict[str, Any]:
    return {"id": item_id(response_id, "fc", index), "type": "function_call", "status": status,
            "arguments": arguments, "call_id": call_id, "name": name}


def reasoning_item(response_id: str, index: int, text: str, status: str) -> dict[str, Any]:
    return {"id": item_id(response_id, "rs", index), "type": "reasoning", "status": status, "summary": [],
            "content": [{"type": "reasoning_text", "text": text}]}


def output_items(response_id: str, parts: Iterable[Part], last_status: str = "completed") -> list[dict[str, Any]]:
    """An answer's parts as output items: each item ``completed`` but the last, which has
    ``last_status`` (``incomplete`` when the answer was cut) — as the stream closed them."""
    parts = [p for p in parts if not (isinstance(p, TextPart) and not p.text)]
    out: list[dict[str, Any]] = []
    for i, part in enumerate(parts):
        status = last_status if i == len(parts) - 1 else "completed"
        if isinstance(part, TextPart):
            out.append(message_item(response_id, i, part.text, status))
        elif isinstance(part, ToolCall):
            out.append(call_item(response_id, i, part.id, part.name, part.arguments, status))
        elif isinstance(part, ReasoningPart):
            out.append(reasoning_item(response_id, i, part.text, status))
    return out


def item_status(status: str) -> str:
    return "completed" if status == "completed" else "incomplete"


def usage_body(usage: Usage | None) -> dict[str, Any] | None:
    if usage is None:
        return None
    return {"input_tokens": usage.prompt_tokens, "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": usage.completion_tokens, "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": usage.total_tokens}


def response_body(response_id: str, settings: dict[str, Any], created_at_ms: int, *, status: str,
                  output: list[dict[str, Any]] | None = None, usage: dict[str, Any] | None = None,
                  error: dict[str, Any] | None = None, incomplete_reason: str | None = None,
                  completed_at_ms: int | None = None) -> dict[str, Any]:
    """The response object, as OpenAI returns it."""
    s = settings
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at_ms // 1000,
        "status": status,
        "background": s["background"],
        "completed_at": completed_at_ms // 1000 if completed_at_ms else None,
        "error": error,
        "incomplete_details": {"reason": incomplete_reason} if incomplete_reason else None,
        "instructions": s["instructions"],
        "max_output_tokens": s["max_output_tokens"],
        "max_tool_calls": None,
        "model": s["model"],
        "output": output or [],
        "parallel_tool_calls": s["parallel_tool_calls"],
        "previous_response_id": s["previous_response_id"],
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "store": s["store"],
        "temperature": s["temperature"],
        "text": s["text"],
        "tool_choice": s["tool_choice"],
        "tools": s["tools"],
        "top_logprobs": 0,
        "top_p": s["top_p"],
        "truncation": s["truncation"],
        "usage": usage,
        "user": s["user"],
        "metadata": s["metadata"],
    }


def output_text(output: list[dict[str, Any]]) -> str:
    """All ``output_text`` of an output (what the SDK's ``response.output_text`` joins)."""
    return "".join(c.get("text", "") for item in output if item.get("type") == "message"
                   for c in item.get("content", ()) if c.get("type") == "output_text")


# -- errors ------------------------------------------------------------------------------


def _param(field: str) -> str:
    """A core field name in this dialect's terms (the pipeline speaks of messages and max_tokens)."""
    head = field.split(".", 1)[0]
    if head == "messages":
        return "input"
    return {"max_tokens": "max_output_tokens", "response_format": "text.format"}.get(field, field)


def error_body(exc: Exception, rid: str | None) -> dict[str, Any]:
    """OpenAI's error object: ``{"error": {"message", "type", "param", "code"}}``."""
    message, etype, param, code = "Internal server error", "server_error", None, None
    if isinstance(exc, RequestValidationError):
        exc = InvalidRequest("Invalid request", problems(exc))
    if isinstance(exc, InvalidRequest):
        etype = "invalid_request_error"
        if exc.details:
            first = exc.details[0]
            param = _param(first.field)
            message = f"Invalid value for '{param}': {first.message}"
            if first.kind == "json_invalid":
                message, param = "We could not parse the JSON body of your request.", None
            elif first.kind == "unsupported":
                message, code = f"Unsupported value for '{param}': {first.message}", "unsupported_value"
            elif first.kind == "missing":
                message, code = f"Missing required parameter: '{param}'.", "missing_required_parameter"
        else:
            message = exc.message
    elif isinstance(exc, ModelNotFound):
        etype, code, param = "invalid_request_error", "model_not_found", "model"
        message = f"The model `{exc.model}` does not exist or you do not have access to it."
    elif isinstance(exc, NotFound):
        etype, message = "invalid_request_error", exc.message
        if exc.kind == "response":
            message = f"Response with id '{exc.ident}' not found."
        elif exc.kind == "previous_response":
            message, param, code = (f"Previous response with id '{exc.ident}' not found.", "previous_response_id",
                                    "previous_response_not_found")
        elif exc.kind == "bot":
            code, param = "model_not_found", "model"
            message = f"The model `@{exc.ident}` does not exist or you do not have access to it."
    elif isinstance(exc, ContextTooLong):
        etype, code, param = "invalid_request_error", "context_length_exceeded", "input"
        message = (f"Your input exceeds the context window of this model: it needs {exc.request_length} tokens "
                   f"and the model has {exc.max_length}. Shorten the input, or send truncation: \"auto\" to "
                   "drop the oldest turns of the conversation.")
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
    return error_response(error_body(exc, request_id(request)), status, exc)


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)
