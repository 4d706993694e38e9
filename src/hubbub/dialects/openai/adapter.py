"""OpenAI wire <-> core: request mapping, response/chunk shapes, and the one error mapper."""

from __future__ import annotations

import time
from typing import Any, AsyncIterator

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from hubbub.core.events import Finish, ReasoningDelta, TextDelta, ToolCallDelta
from hubbub.core.generation import Generation
from hubbub.core.ids import new_id
from hubbub.core.types import (
    ImagePart,
    Message,
    ModelInfo,
    Part,
    ResponseFormat,
    SamplingParams,
    TextPart,
    TokenLogprob,
    ToolCall,
    ToolChoice,
    ToolResult,
    Tools,
    ToolSpec,
    Usage,
)
from hubbub.dialects.openai.protocol import ChatCompletionRequest, ChatMessageIn
from hubbub.http.routing import error_response, request_id
from hubbub.http.sse import DONE, Last, frame
from hubbub.http.validation import problems
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

_FINISH = {"stop": "stop", "length": "length", "tool_calls": "tool_calls", "content_filter": "content_filter",
           "cancelled": "stop", "error": "stop"}


def _parts(message: ChatMessageIn, i: int, images: bool) -> list[Part]:
    """A message's content as parts: text, and images where the role may carry them. Any other
    part type is refused by name (API.md §5: never a silent drop)."""
    content = message.content
    if content is None:
        return []
    if isinstance(content, str):
        return [TextPart(content)] if content else []
    parts: list[Part] = []
    for j, part in enumerate(content):
        if part.type == "text" and part.text is not None:
            parts.append(TextPart(part.text))
        elif part.type == "image_url" and part.image_url is not None and images:
            parts.append(ImagePart(part.image_url.url, part.image_url.detail))
        elif part.type == "refusal" and message.role == "assistant":
            parts.append(TextPart(part.refusal or ""))
        else:
            raise InvalidRequest(details=[FieldProblem(
                f"messages.{i}.content.{j}.type",
                f"content parts of type '{part.type}' are not supported in {message.role} messages")])
    return parts


def to_messages(body: ChatCompletionRequest) -> list[Message]:
    """OpenAI messages as core messages: ``developer`` is ``system``; an assistant's ``tool_calls``
    and a ``tool`` message's result become typed parts (docs/api-decisions.md)."""
    out: list[Message] = []
    for i, m in enumerate(body.messages):
        if m.role in ("system", "developer"):
            out.append(Message("system", _parts(m, i, images=False), m.name))
        elif m.role == "user":
            out.append(Message("user", _parts(m, i, images=True), m.name))
        elif m.role == "assistant":
            parts = _parts(m, i, images=False)
            parts += [ToolCall(c.id, c.function.name, c.function.arguments) for c in m.tool_calls or ()]
            out.append(Message("assistant", parts, m.name))
        else:  # tool
            if not m.tool_call_id:
                raise InvalidRequest(details=[FieldProblem(f"messages.{i}.tool_call_id",
                                                           "is required in a tool message")])
            text = [p for p in _parts(m, i, images=False) if isinstance(p, TextPart)]
            out.append(Message("tool", [ToolResult(m.tool_call_id, tuple(text))]))
    return out


def to_tools(body: ChatCompletionRequest, defaults: tuple[ToolSpec, ...] | None = None) -> Tools | None:
    """``tools``, ``tool_choice`` and ``parallel_tool_calls`` as core ``Tools`` (None: no tools).
    ``defaults``: a bot's default tools, used when the request names none (``tool_choice`` then
    chooses among them; docs/tool-calling.md)."""
    choice = body.tool_choice
    if not body.tools and not defaults:
        if choice is not None and choice != "none":
            raise InvalidRequest(details=[FieldProblem("tool_choice", "is only allowed when tools are specified")])
        return None
    specs = tuple(
        ToolSpec(t.function.name, t.function.description or "",
                 t.function.parameters if t.function.parameters is not None else {"type": "object", "properties": {}},
                 t.function.strict)
        for t in body.tools) if body.tools else tuple(defaults or ())
    names = [t.name for t in specs]
    if len(set(names)) != len(names):
        raise InvalidRequest(details=[FieldProblem("tools", "function names must be unique")])
    if choice is None or isinstance(choice, str):
        mode = ToolChoice(choice or "auto")  # type: ignore[arg-type]
    else:
        if choice.function.name not in names:
            raise InvalidRequest(details=[FieldProblem("tool_choice",
                                                       f"names the function '{choice.function.name}', "
                                                       "which is not in tools")])
        mode = ToolChoice("named", choice.function.name)
    return Tools(specs, mode, True if body.parallel_tool_calls is None else body.parallel_tool_calls)


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
    if body.top_logprobs and not body.logprobs:
        raise InvalidRequest(details=[FieldProblem("top_logprobs", "requires logprobs to be true")])
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
        top_k=None if body.top_k is None or body.top_k <= 0 else body.top_k,  # vLLM: -1 and 0 are "off"
        min_p=body.min_p,
        frequency_penalty=body.frequency_penalty,
        presence_penalty=body.presence_penalty,
        repetition_penalty=body.repetition_penalty,
        logit_bias={int(k): v for k, v in body.logit_bias.items()} if body.logit_bias else None,
        logprobs=bool(body.logprobs),
        top_logprobs=body.top_logprobs or 0,
    )
    return params, explicit


def choices_asked(body: ChatCompletionRequest, max_choices: int) -> int:
    """OpenAI's ``n``: how many answers to give, at most the server's ``max_choices``."""
    n = body.n or 1
    if n > max_choices:
        raise InvalidRequest(details=[FieldProblem("n", f"must be at most {max_choices} on this server")])
    return n


def logprobs_body(entries: "list[TokenLogprob] | tuple[TokenLogprob, ...]") -> dict[str, Any]:
    """A choice's ``logprobs`` as OpenAI sends it."""
    return {"content": [
        {"token": e.token, "logprob": e.logprob, "bytes": list(e.bytes),
         "top_logprobs": [{"token": t.token, "logprob": t.logprob, "bytes": list(t.bytes)} for t in e.top]}
        for e in entries], "refusal": None}


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


def tool_calls_body(calls: list[ToolCall]) -> list[dict[str, Any]]:
    return [{"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}} for c in calls]


def message_body(gen: Generation) -> dict[str, Any]:
    """The assistant message: text (None when the answer is only tool calls, as OpenAI sends it),
    its tool calls, and any reasoning as ``reasoning_content`` (the field vLLM and others use)."""
    calls = gen.tool_calls
    message: dict[str, Any] = {"role": "assistant", "content": gen.text if gen.text or not calls else None,
                               "refusal": None}
    if calls:
        message["tool_calls"] = tool_calls_body(calls)
    reasoning = gen.reasoning_text
    if reasoning:
        message["reasoning_content"] = reasoning
    return message


def completion_body(gen: Generation, model: str, others: "list[Generation] | tuple[()]" = (),
                    logprobs: bool = False) -> dict[str, Any]:
    """The response; ``others``: the further choices of a request with ``n`` > 1 (the prompt is
    counted once in the usage, every choice's completion tokens)."""
    gens = [gen, *others]
    usage = gen.usage
    if others and usage is not None:
        usage = Usage(usage.prompt_tokens, sum(g.usage.completion_tokens if g.usage else 0 for g in gens))
    return {
        "id": new_id("chatcmpl-"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        # No system_fingerprint: OpenAI's schema makes it a string when present, never null, and
        # hubbub has no backend fingerprint to give (docs/api-decisions.md, "OpenAI-compatible").
        "choices": [
            {
                "index": i,
                "message": message_body(g),
                "logprobs": logprobs_body(g.logprobs) if logprobs else None,
                "finish_reason": _FINISH.get(g.finish_reason or "stop", "stop"),
            }
            for i, g in enumerate(gens)
        ],
        "usage": usage_body(usage),
    }


async def chunk_stream(
    gen: Generation, model: str, include_usage: bool, first_extra: dict[str, Any] | None = None, *,
    logprobs: bool = False, index: int = 0, base: dict[str, Any] | None = None, last: bool = True,
) -> AsyncIterator[bytes]:
    """``chat.completion.chunk`` frames, then the usage chunk when asked for, then ``[DONE]``.
    ``first_extra``: top-level fields for the first chunk only (``rag_sources``). ``logprobs``:
    each content chunk carries its tokens' log-probabilities. ``index``, ``base`` and ``last``:
    one choice of several (``choices_stream``): its index, the frames' shared id, and whether
    the usage chunk and ``[DONE]`` follow it."""
    if base is None:
        base = chunk_base(model)
    usage_field = {"usage": None} if include_usage else {}

    def chunk(delta: dict[str, Any], finish: str | None = None, extra: dict[str, Any] | None = None,
              lp: dict[str, Any] | None = None) -> bytes:
        choice = {"index": index, "delta": delta, "logprobs": lp, "finish_reason": finish}
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
    role = chunk({"role": "assistant", "content": ""}, extra=first_extra, lp=logprobs_body(()) if logprobs else None)
    pending = role if gen.primed else b""
    if not pending:
        yield role
    first = True
    try:
        async for event in gen:
            if type(event) is TextDelta:
                if logprobs:
                    out = chunk({"content": event.text}, lp=logprobs_body(event.logprobs or ()))
                else:
                    out = head + orjson.dumps(event.text) + tail
            elif isinstance(event, ToolCallDelta):
                out = chunk({"tool_calls": [tool_call_delta(event)]})
            elif isinstance(event, ReasoningDelta):
                if not event.text:
                    continue
                out = chunk({"reasoning_content": event.text})
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
    if not last:
        if pending:
            yield pending
        return
    if include_usage:
        pending += frame({**base, "choices": [], "usage": usage_body(gen.usage)})
    yield Last(pending + DONE)


def chunk_base(model: str) -> dict[str, Any]:
    return {"id": new_id("chatcmpl-"), "object": "chat.completion.chunk", "created": int(time.time()),
            "model": model}  # no system_fingerprint (completion_body says why)


async def choices_stream(gens: list[Generation], model: str, include_usage: bool,
                         first_extra: dict[str, Any] | None = None, *, logprobs: bool = False
                         ) -> AsyncIterator[bytes]:
    """The chunks of a request with ``n`` > 1: the choices are decoded together (the embedded
    model batches them), and streamed one after the other, each whole, under one id
    (docs/api-decisions.md, "n"). The usage chunk counts the prompt once."""
    base = chunk_base(model)
    try:
        for i, gen in enumerate(gens):
            async for out in chunk_stream(gen, model, include_usage, first_extra if i == 0 else None,
                                          logprobs=logprobs, index=i, base=base, last=False):
                yield out
                if isinstance(out, Last):  # an error ends the whole stream
                    return
    finally:  # a client gone (or an error) stops the choices not yet sent, and bills them
        for gen in gens:
            await gen.settle()
    tail = b""
    if include_usage:
        prompt = gens[0].usage.prompt_tokens if gens[0].usage else 0
        usage = Usage(prompt, sum(g.usage.completion_tokens if g.usage else 0 for g in gens))
        tail = frame({**base, "choices": [], "usage": usage_body(usage)})
    yield Last(tail + DONE)


def tool_call_delta(event: ToolCallDelta) -> dict[str, Any]:
    """As OpenAI streams a call: its first delta has ``index``, ``id``, ``type`` and the name;
    later ones only ``index`` and a fragment of the arguments."""
    if event.id is not None or event.name is not None:
        return {"index": event.index, "id": event.id, "type": "function",
                "function": {"name": event.name, "arguments": event.arguments}}
    return {"index": event.index, "function": {"arguments": event.arguments}}


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
    return error_response(error_body(exc, request_id(request)), status, exc)


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


def unmatched_route(status: int, method: str, path: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """An unknown route (404) or a wrong method (405) under ``/v1``, in OpenAI's error shape, as
    OpenAI words them; the Node SDK reports a body without ``error`` as "no body" (issue 21)."""
    if status == 405:
        message = f"Not allowed to {method} on {path}. (HINT: Perhaps you meant to use a different HTTP verb?)"
        code = "method_not_allowed"
    elif status == 404:
        message = (f"Unknown request URL: {method} {path}. Please check the URL for typos, "
                   "or see the docs at https://platform.openai.com/docs/api-reference/.")
        code = "unknown_url"
    else:
        message, code = f"HTTP {status}", None
    body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)
