"""A provider for Anthropic's Messages API, through the official ``anthropic`` SDK.

The translation both ways (docs/anthropic.md has the whole table):

- requests (``message_params``): system messages become ``system`` (one message as the client
  wrote it, a string or text blocks; several joined by a blank line); text, image, tool-call and
  signed reasoning parts become ``text``, ``image`` (base64 or url source), ``tool_use``,
  ``thinking``/``redacted_thinking`` blocks; ``role: tool`` results become ``tool_result`` blocks
  of one user message (consecutive results, and a user message right after them, merged);
  ``Tools`` become ``tools``/``tool_choice`` (``auto``/``any``/``tool``/``none``,
  ``disable_parallel_tool_use``); ``Reasoning`` becomes ``thinking``. A message that is one text
  part goes as a plain string, so a request from an Anthropic client reaches the upstream as it
  was sent (docs/anthropic.md, "Passed through");
- events (the ``stream`` loop): ``text_delta`` → ``TextDelta``; ``thinking_delta`` and
  ``signature_delta`` → ``ReasoningDelta`` (text, then the signature that closes the block), a
  ``redacted_thinking`` block → ``ReasoningDelta(redacted=...)``, all opaque and unchanged;
  each ``tool_use`` block → ``ToolCallDelta`` events numbered 0, 1, … in the order the blocks start
  (its id and name first, then its ``input_json_delta`` fragments);
- usage: ``input_tokens`` (plus cache reads and writes) from ``message_start``, ``output_tokens``
  from the last ``message_delta`` (it is cumulative);
- ``stop_reason``: ``end_turn``/``pause_turn`` → ``stop``, ``stop_sequence`` → ``stop`` with
  ``Finish.stop_sequence``, ``max_tokens``/``model_context_window_exceeded`` → ``length``,
  ``tool_use`` → ``tool_calls``, ``refusal`` → ``content_filter``;
- an ``error`` event inside the stream (``overloaded_error``…) → ``UpstreamUnavailable``.

The SDK's own retries are off (``max_retries=0``): the channel router decides where a
failed request goes next. Closing the iterator cancels the task reading the SDK stream
(see ``pump.py``), which closes the HTTP response at once.

An answer begun elsewhere is continued with Anthropic's "prefill": a trailing assistant
message. The API refuses one that ends in whitespace, so the prefix is sent right-stripped
and the leading whitespace of the continuation is dropped (the client already has it).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, AsyncIterator

from hubbub.core.events import Finish, ProviderEvent, ReasoningDelta, TextDelta, ToolCallDelta, UsageReport
from hubbub.core.types import (
    FinishReason,
    ImagePart,
    Message,
    Part,
    ProviderRequest,
    ReasoningPart,
    TextPart,
    ToolCall,
    ToolResult,
    Tools,
    Usage,
)
from hubbub.errors import HubbubError, InvalidRequest, UpstreamError
from hubbub.providers.faults import (
    UpstreamUnavailable,
    error_message,
    estimate_prompt_tokens,
    estimate_text_tokens,
    estimate_tools_tokens,
    from_status,
    parse_retry_after,
    scrub,
)
from hubbub.providers.base import Capabilities, ProviderKind
from hubbub.providers.pump import in_own_task
from hubbub.settings import ProviderConfig

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.anthropic.com"
DEFAULT_MAX_TOKENS = 4096  # Anthropic requires max_tokens; used when a request names none
_RETRYABLE_TYPES = {"overloaded_error", "api_error", "rate_limit_error", "timeout_error"}
_STOP_REASONS: dict[str, FinishReason] = {
    "end_turn": "stop", "pause_turn": "stop", "stop_sequence": "stop", "max_tokens": "length",
    "model_context_window_exceeded": "length", "tool_use": "tool_calls", "refusal": "content_filter",
}
_TOOL_CHOICE = {"auto": "auto", "required": "any", "named": "tool", "none": "none"}


def message_params(request: ProviderRequest, config: ProviderConfig) -> tuple[dict[str, Any], bool]:
    """``messages.create`` keyword arguments for ``request``, and whether to trim the
    continuation's leading whitespace (see the module docstring).

    The SDK no longer types ``temperature``/``top_p``/``top_k`` (recent models refuse them), so
    they travel in ``extra_body``, only while the provider's ``sampling`` is on, and only when
    they differ from Anthropic's defaults (temperature 1, top_p 1): a request that set none
    reaches the upstream without them."""
    p = request.params
    system, messages = wire_messages(request.messages)
    prefix = request.assistant_prefix.rstrip()
    if prefix:
        messages.append({"role": "assistant", "content": prefix})
    kwargs: dict[str, Any] = {
        "model": request.model,
        "messages": messages,
        "max_tokens": p.max_tokens or DEFAULT_MAX_TOKENS,
    }
    extra = dict(config.extra_body)
    if config.sampling:
        temperature = min(max(p.temperature, 0.0), 1.0)  # Anthropic's range is 0..1, OpenAI's 0..2
        if temperature != 1.0:
            extra["temperature"] = temperature
        if p.top_p != 1.0:
            extra["top_p"] = p.top_p
        if p.top_k is not None:
            extra["top_k"] = p.top_k
    if extra:
        kwargs["extra_body"] = extra
    if system is not None:
        kwargs["system"] = system
    if p.stop:
        kwargs["stop_sequences"] = list(p.stop)
    if request.tools is not None:
        kwargs.update(tool_params(request.tools))
    reasoning = p.reasoning
    if reasoning is not None:
        thinking: dict[str, Any] = {"type": reasoning.mode}
        if reasoning.budget is not None:
            thinking["budget_tokens"] = reasoning.budget
        if reasoning.display is not None:
            thinking["display"] = reasoning.display
        kwargs["thinking"] = thinking
    return kwargs, prefix != request.assistant_prefix


def wire_messages(messages: list[Message]) -> tuple[Any, list[dict[str, Any]]]:
    """``system`` (None, a string or text blocks) and ``messages`` in Anthropic's shape."""
    systems = [m for m in messages if m.role == "system"]
    system: Any = None
    if len(systems) == 1 and len(systems[0].parts) > 1:
        system = [{"type": "text", "text": p.text} for p in systems[0].parts if isinstance(p, TextPart) and p.text]
    elif systems:
        system = "\n\n".join(m.text for m in systems if m.text)
    out: list[dict[str, Any]] = []
    results_open = False  # the last wire message is a user message opened by tool results
    for m in messages:
        if m.role == "system":
            continue
        if m.role == "tool":
            blocks = [_result_block(p) for p in m.parts if isinstance(p, ToolResult)]
            if results_open:
                out[-1]["content"].extend(blocks)
            else:
                out.append({"role": "user", "content": blocks})
                results_open = True
            continue
        if m.role == "user" and results_open:  # the text that came with the results, in their message
            out[-1]["content"].extend(_blocks(m.parts))
            results_open = False
            continue
        results_open = False
        if m.is_plain_text and len(m.parts) <= 1:
            out.append({"role": m.role, "content": m.text})
        else:
            out.append({"role": m.role, "content": _blocks(m.parts)})
    return system, out


def _blocks(parts: tuple[Part, ...]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for p in parts:
        if isinstance(p, TextPart):
            if p.text:  # the API refuses empty text blocks
                blocks.append({"type": "text", "text": p.text})
        elif isinstance(p, ImagePart):
            blocks.append(_image_block(p))
        elif isinstance(p, ToolCall):
            blocks.append({"type": "tool_use", "id": p.id, "name": p.name, "input": _tool_input(p)})
        elif isinstance(p, ToolResult):
            blocks.append(_result_block(p))
        elif isinstance(p, ReasoningPart):
            # Opaque, unchanged. Reasoning without a signature (another provider's) cannot be
            # verified by the API, which refuses it: it is left out (core/capabilities.py).
            if p.redacted is not None:
                blocks.append({"type": "redacted_thinking", "data": p.redacted})
            elif p.signature is not None:
                blocks.append({"type": "thinking", "thinking": p.text, "signature": p.signature})
    return blocks


def _image_block(part: ImagePart) -> dict[str, Any]:
    data = part.base64_data
    if data is not None:
        return {"type": "image", "source": {"type": "base64", "media_type": part.media_type, "data": data}}
    if part.url.startswith("data:"):
        raise InvalidRequest("an image data: URL must be base64-encoded for this model")
    return {"type": "image", "source": {"type": "url", "url": part.url}}


def _result_block(result: ToolResult) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": result.call_id}
    parts = result.parts
    if len(parts) == 1 and isinstance(parts[0], TextPart):
        block["content"] = parts[0].text
    elif parts:
        block["content"] = _blocks(parts)
    if result.is_error:
        block["is_error"] = True
    return block


def _tool_input(call: ToolCall) -> dict[str, Any]:
    try:
        value = json.loads(call.arguments or "{}")
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise InvalidRequest(f"the arguments of tool call {call.id!r} must be a JSON object for this model")
    return value


def tool_params(tools: Tools) -> dict[str, Any]:
    """``tools`` and ``tool_choice``; the choice is left out when it is Anthropic's default
    (``auto`` with parallel calls allowed)."""
    specs = []
    for t in tools.specs:
        spec: dict[str, Any] = {"name": t.name}
        if t.description:
            spec["description"] = t.description
        spec["input_schema"] = t.parameters
        if t.strict is not None:
            spec["strict"] = t.strict
        specs.append(spec)
    out: dict[str, Any] = {"tools": specs}
    choice = tools.choice
    if choice.mode != "auto" or not tools.parallel:
        wire: dict[str, Any] = {"type": _TOOL_CHOICE[choice.mode]}
        if choice.mode == "named":
            wire["name"] = choice.name
        if not tools.parallel and choice.mode != "none":
            wire["disable_parallel_tool_use"] = True
        out["tool_choice"] = wire
    return out


class AnthropicProvider:
    """The provider seam over ``anthropic.AsyncAnthropic``."""

    # Tool calls, images, thinking (sent back and asked for) and top_k; no response_format (the
    # Messages API has no JSON mode hubbub maps to): a request needing it is a 400 before any output.
    capabilities = Capabilities(tools=True, images=True, reasoning=True, continues_answers=True,
                                sampling=frozenset({"top_k"}))

    def __init__(self, config: ProviderConfig, api_key: str | None = None) -> None:
        import anthropic

        self.name = config.name
        self.config = config
        self._key = api_key
        self._sdk = anthropic
        self._tasks: set[asyncio.Task[None]] = set()  # upstream reads in flight (see pump.py)
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key or "unset",  # never let the SDK go looking for credentials elsewhere
            base_url=config.base_url or DEFAULT_BASE_URL,
            max_retries=0,
            timeout=anthropic.Timeout(connect=config.connect_timeout, read=None, write=30.0,
                                      pool=config.pool_timeout),
            default_headers=dict(config.headers) or None,
        )

    async def count_tokens(self, messages: list[Message], model: str = "", tools: Tools | None = None) -> int:
        return estimate_prompt_tokens(messages) + estimate_tools_tokens(tools)

    async def count_text_tokens(self, text: str, model: str = "") -> int:
        return estimate_text_tokens(text)

    def stream(self, request: ProviderRequest) -> AsyncIterator[ProviderEvent]:
        return in_own_task(self._stream(request), self._tasks)

    async def _stream(self, request: ProviderRequest) -> AsyncIterator[ProviderEvent]:
        if request.params.response_format is not None and request.params.response_format.type != "text":
            raise InvalidRequest("response_format is not supported by this model")
        kwargs, trim_lead = message_params(request, self.config)
        try:
            stream = await self._client.messages.create(**kwargs, stream=True)
        except Exception as exc:
            raise self._error(exc, started=False) from None
        prompt = completion = 0
        reason: FinishReason = "stop"
        stop_sequence: str | None = None
        stopped = False
        calls: dict[int, int] = {}  # content block index -> tool call number (0, 1, … as they start)
        try:
            async for event in stream:
                kind = event.type
                if kind == "content_block_delta":
                    delta = event.delta
                    dtype = delta.type
                    if dtype == "text_delta":
                        text = delta.text
                        if trim_lead:
                            text = text.lstrip()
                            trim_lead = not text
                        if text:
                            yield TextDelta(text)
                    elif dtype == "input_json_delta":
                        call = calls.get(event.index)
                        if call is not None and delta.partial_json:
                            yield ToolCallDelta(call, arguments=delta.partial_json)
                    elif dtype == "thinking_delta":
                        if delta.thinking:
                            yield ReasoningDelta(delta.thinking)
                    elif dtype == "signature_delta":
                        yield ReasoningDelta(signature=delta.signature)
                    # citations_delta: citations are not part of hubbub's answer (docs/anthropic.md)
                elif kind == "content_block_start":
                    for out in _block_start(event.index, event.content_block, calls):
                        yield out
                elif kind == "message_start":
                    prompt, completion = _input_tokens(event.message.usage), event.message.usage.output_tokens or 0
                elif kind == "message_delta":
                    if event.usage is not None:
                        completion = event.usage.output_tokens or completion
                        prompt = _input_tokens(event.usage) or prompt
                    upstream_reason = event.delta.stop_reason
                    if upstream_reason is not None:
                        reason = _STOP_REASONS.get(upstream_reason, "stop")
                        stop_sequence = event.delta.stop_sequence if upstream_reason == "stop_sequence" else None
                elif kind == "message_stop":
                    stopped = True
        except HubbubError:
            raise
        except Exception as exc:
            raise self._error(exc, started=True) from None
        finally:
            await stream.close()
        if not stopped:  # the body ended without message_stop: the connection was cut short
            raise UpstreamUnavailable("stream_broken", f"{self.name}: the stream ended before the answer did")
        yield UsageReport(Usage(prompt, completion))
        yield Finish(reason, stop_sequence)

    def _error(self, exc: Exception, started: bool) -> HubbubError:
        import httpx

        sdk = self._sdk
        if isinstance(exc, sdk.APITimeoutError):
            if isinstance(exc.__cause__, httpx.PoolTimeout):  # every pooled connection busy: a local limit
                return UpstreamUnavailable("busy", f"{self.name}: no free connection")
            return UpstreamUnavailable("timeout", f"{self.name}: timed out")
        if isinstance(exc, sdk.APIConnectionError):
            return UpstreamUnavailable("stream_broken" if started else "connect", f"{self.name}: connection failed")
        if isinstance(exc, sdk.APIStatusError):
            text, kind = error_message(exc.body)
            message = scrub(text, self._key)
            if exc.status_code < 400:  # an error event inside a 200 stream
                if kind in _RETRYABLE_TYPES:
                    return UpstreamUnavailable("stream_broken", f"{self.name}: {kind}: {message}")
                return UpstreamError(f"upstream error: {kind}", details=f"{self.name}: {kind}: {message}")
            retry_after = parse_retry_after(exc.response.headers.get("retry-after"))
            return from_status(exc.status_code, message, code=kind, retry_after=retry_after, who=self.name)
        if isinstance(exc, (httpx.TransportError, OSError)):
            # Transport errors the SDK lets through while reading the stream (the connection was cut).
            return UpstreamUnavailable("stream_broken" if started else "connect", f"{self.name}: {type(exc).__name__}")
        # Anything else failed here, in hubbub or the SDK (a request it cannot encode…): never the
        # upstream's fault, so never counted against the channel (issue 22).
        log.error("provider %s failed", self.name, exc_info=exc)
        return UpstreamUnavailable("internal", f"{self.name}: {type(exc).__name__}")

    async def aclose(self) -> None:
        await self._client.close()


def _block_start(index: int, block: Any, calls: dict[int, int]) -> list[ProviderEvent]:
    """The events a ``content_block_start`` carries: a tool call's id and name, a redacted
    thinking block whole, or text a block starts with (usually none)."""
    btype = block.type
    if btype == "tool_use":
        call = calls[index] = len(calls)
        out: list[ProviderEvent] = [ToolCallDelta(call, id=block.id, name=block.name)]
        if block.input:  # streamed input starts empty; a block that starts with its input keeps it
            out.append(ToolCallDelta(call, arguments=json.dumps(block.input, ensure_ascii=False)))
        return out
    if btype == "redacted_thinking":
        return [ReasoningDelta(redacted=block.data)]
    if btype == "thinking":
        out = [ReasoningDelta(block.thinking)] if getattr(block, "thinking", "") else []
        if getattr(block, "signature", None):
            out.append(ReasoningDelta(signature=block.signature))
        return out
    if btype == "text" and getattr(block, "text", ""):
        return [TextDelta(block.text)]
    return []  # server tools are refused in requests (docs/anthropic.md), so none should start


def _input_tokens(usage: Any) -> int:
    return sum(getattr(usage, name, None) or 0
               for name in ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"))


KIND = ProviderKind("anthropic", ProviderConfig, AnthropicProvider)
