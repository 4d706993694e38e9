"""The streamed answer in Anthropic's event order (docs/anthropic.md, "Streaming"):

    message_start
    content_block_start   ping (once, after the first block starts, as Anthropic sends it)
    content_block_delta … text_delta | thinking_delta, signature_delta | input_json_delta
    content_block_stop    (every block that started is stopped, before the next one starts)
    … one start/deltas/stop group per block …
    message_delta         stop_reason, stop_sequence, usage (input and output tokens)
    message_stop

An error after the stream started is one ``error`` event, and the stream ends (no
``message_stop``), as Anthropic ends a stream that fails.

Blocks come from the core's events: a run of text is one ``text`` block; reasoning is a
``thinking`` block, closed by its signature (the next reasoning starts another), or a
``redacted_thinking`` block whole; each tool call (``ToolCallDelta.index``) is a ``tool_use``
block whose arguments stream as ``input_json_delta``. Signatures, redacted data and tool-call
ids are written exactly as the provider gave them.
"""

from __future__ import annotations

from contextlib import aclosing
from typing import Any, AsyncIterator

import orjson

from hubbub.core.events import ReasoningDelta, TextDelta, ToolCallDelta
from hubbub.core.generation import Generation
from hubbub.dialects.anthropic.adapter import error_body, stop_reason
from hubbub.errors import HubbubError, UpstreamError
from hubbub.http.sse import Last

PING = b'event: ping\ndata: {"type": "ping"}\n\n'  # byte for byte what Anthropic sends


def event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class _Blocks:
    """Turns the core's deltas into content blocks: which block is open, and its index."""

    __slots__ = ("index", "kind", "signed", "call", "done_calls", "pinged", "_text_head")

    def __init__(self) -> None:
        self.index = -1
        self.kind: str | None = None  # the open block: "text" | "thinking" | "tool_use" | None
        self.signed = False  # the open thinking block has its signature: the next reasoning starts another
        self.call: int | None = None  # the open tool_use block's call index
        self.done_calls: set[int] = set()
        self.pinged = False
        self._text_head = b""

    def _open(self, block: dict[str, Any], kind: str) -> bytes:
        out = self.close()
        self.index += 1
        self.kind = kind
        out += event("content_block_start", {"type": "content_block_start", "index": self.index,
                                             "content_block": block})
        if not self.pinged:
            self.pinged = True
            out += PING
        if kind == "text":
            # The frame sent per token, as bytes around the text (orjson keeps key order).
            self._text_head = (b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'
                               + str(self.index).encode() + b',"delta":{"type":"text_delta","text":')
        return out

    def close(self) -> bytes:
        if self.kind is None:
            return b""
        if self.kind == "tool_use" and self.call is not None:
            self.done_calls.add(self.call)
            self.call = None
        self.kind = None
        self.signed = False
        return event("content_block_stop", {"type": "content_block_stop", "index": self.index})

    def text(self, text: str) -> bytes:
        out = b"" if self.kind == "text" else self._open({"type": "text", "text": ""}, "text")
        return out + self._text_head + orjson.dumps(text) + b"}}\n\n"

    def reasoning(self, delta: ReasoningDelta) -> bytes:
        if delta.redacted is not None:
            return self._open({"type": "redacted_thinking", "data": delta.redacted}, "redacted_thinking") + self.close()
        out = b""
        if self.kind != "thinking" or self.signed:
            out = self._open({"type": "thinking", "thinking": "", "signature": ""}, "thinking")
        if delta.text:
            out += self._delta({"type": "thinking_delta", "thinking": delta.text})
        if delta.signature is not None:
            out += self._delta({"type": "signature_delta", "signature": delta.signature})
            self.signed = True
        return out

    def tool_call(self, delta: ToolCallDelta) -> bytes:
        out = b""
        if self.kind != "tool_use" or self.call != delta.index:
            if delta.index in self.done_calls:
                # A call's block cannot be reopened once another started: an upstream that
                # interleaves calls' fragments cannot be framed, and is never shown as complete.
                raise UpstreamError("Model error", details="the model interleaved two tool calls")
            out = self._open({"type": "tool_use", "id": delta.id or "", "name": delta.name or "", "input": {}},
                             "tool_use")
            self.call = delta.index
        if delta.arguments:
            out += self._delta({"type": "input_json_delta", "partial_json": delta.arguments})
        return out

    def _delta(self, delta: dict[str, Any]) -> bytes:
        return event("content_block_delta", {"type": "content_block_delta", "index": self.index, "delta": delta})


def message_start(gen: Generation, model: str, message_id: str) -> bytes:
    return event("message_start", {"type": "message_start", "message": {
        "id": message_id, "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": gen.prompt_tokens, "output_tokens": 0}}})


async def event_stream(gen: Generation, model: str, message_id: str, rid: str | None) -> AsyncIterator[bytes]:
    """The answer's events, framed. Frames made together go out as one write: ``message_start``
    with the first delta (``open_stream`` already awaited it); the last block's stop with
    ``message_delta`` and ``message_stop``."""
    blocks = _Blocks()
    start = message_start(gen, model, message_id)
    pending = start if gen.primed else b""
    if not pending:
        yield start
    try:
        # aclosing: an error raised here (an unframeable call) must still close the generation.
        async with aclosing(gen.__aiter__()) as items:
            async for item in items:
                kind = type(item)
                if kind is TextDelta:
                    if not item.text:  # type: ignore[union-attr]
                        continue
                    out = blocks.text(item.text)  # type: ignore[union-attr]
                elif kind is ReasoningDelta:
                    out = blocks.reasoning(item)  # type: ignore[arg-type]
                elif kind is ToolCallDelta:
                    out = blocks.tool_call(item)  # type: ignore[arg-type]
                else:
                    continue  # usage and the finish reason: tracked by the generation, sent at the end
                if pending:
                    out, pending = pending + out, b""
                yield out
    except HubbubError as exc:
        yield Last(pending + event("error", _stream_error(exc, rid)))
        return
    usage = gen.usage
    tail = pending + blocks.close() + (b"" if blocks.pinged else PING)
    tail += event("message_delta", {
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason(gen), "stop_sequence": gen.stop_sequence},
        "usage": {"input_tokens": usage.prompt_tokens if usage else gen.prompt_tokens,
                  "output_tokens": usage.completion_tokens if usage else 0}})
    yield Last(tail + event("message_stop", {"type": "message_stop"}))


def _stream_error(exc: Exception, rid: str | None) -> dict[str, Any]:
    body = error_body(exc, rid)
    body.pop("request_id", None)  # the stream's error event has Anthropic's two fields
    return body
