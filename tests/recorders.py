"""Small upstreams that record what they are sent and answer as told: an OpenAI-compatible one
(``OpenAIRecorder``) and Anthropic's Messages API (``AnthropicRecorder``, at the end).

For the tests that need an exact upstream answer — tool calls, several calls in one turn,
reasoning — which a 135M model behind llama.cpp's server cannot be made to give reliably.
It is a real HTTP server (uvicorn on a free port, its own thread): hubbub reaches it through
its own HTTP client exactly as it reaches any upstream.

``recorder.replies`` is a queue of answers (``Reply``); an empty queue answers ``Reply()``
(a short text). Streamed answers are sent the way OpenAI streams them: a role chunk, content
in pieces, each tool call's first delta with ``index``/``id``/``type``/``function.name``, later
ones with argument fragments only, a finish chunk, a usage chunk, ``[DONE]``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from support import free_port


@dataclass
class Reply:
    text: str = "Hello from the recorder."
    tool_calls: list[tuple[str, str]] = field(default_factory=list)  # (name, JSON arguments)
    reasoning: str = ""
    finish: str | None = None  # default: tool_calls when there are calls, else stop
    fragment: int = 7  # bytes of arguments per streamed delta

    @property
    def finish_reason(self) -> str:
        return self.finish or ("tool_calls" if self.tool_calls else "stop")


class OpenAIRecorder:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.requests: list[dict[str, Any]] = []
        self.replies: deque[Reply] = deque()
        app = Starlette(routes=[Route("/v1/chat/completions", self._chat, methods=["POST"])])
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self._thread = threading.Thread(target=self._server.run, daemon=True, name="openai-recorder")

    def start(self) -> "OpenAIRecorder":
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the OpenAI recorder did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)

    async def _chat(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(body)
        reply = self.replies.popleft() if self.replies else Reply()
        calls = [{"id": f"call_{i}_{name}", "type": "function", "function": {"name": name, "arguments": args}}
                 for i, (name, args) in enumerate(reply.tool_calls)]
        usage = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
            if calls:
                message["tool_calls"] = calls
            if reply.reasoning:
                message["reasoning_content"] = reply.reasoning
            return JSONResponse({"id": "chatcmpl-rec", "object": "chat.completion", "created": 1, "model": body["model"],
                                 "choices": [{"index": 0, "message": message, "finish_reason": reply.finish_reason}],
                                 "usage": usage})

        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
            payload = {"id": "chatcmpl-rec", "object": "chat.completion.chunk", "created": 1, "model": body["model"],
                       "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
            return b"data: " + json.dumps(payload).encode() + b"\n\n"

        def events() -> Any:
            yield chunk({"role": "assistant", "content": ""})
            if reply.reasoning:
                yield chunk({"reasoning_content": reply.reasoning})
            for i in range(0, len(reply.text), 5):
                yield chunk({"content": reply.text[i:i + 5]})
            for i, call in enumerate(calls):
                args = call["function"]["arguments"]
                yield chunk({"tool_calls": [{"index": i, "id": call["id"], "type": "function",
                                             "function": {"name": call["function"]["name"], "arguments": ""}}]})
                for j in range(0, len(args), reply.fragment):
                    yield chunk({"tool_calls": [{"index": i, "function": {"arguments": args[j:j + reply.fragment]}}]})
            yield chunk({}, reply.finish_reason)
            yield b"data: " + json.dumps({"id": "chatcmpl-rec", "object": "chat.completion.chunk", "created": 1,
                                          "model": body["model"], "choices": [], "usage": usage}).encode() + b"\n\n"
            yield b"data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")


# -- Anthropic's Messages API ---------------------------------------------------------------------


def sse(event: str, data: dict[str, Any]) -> bytes:
    """One event as Anthropic frames it."""
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def answer(*texts: str, stop: str = "end_turn", input_tokens: int = 25, output_tokens: int = 9,
           finish: bool = True) -> list[bytes]:
    """The raw events of one streamed text answer, as Anthropic sends them (``finish=False``: cut
    before the end)."""
    events = [
        sse("message_start", {"type": "message_start", "message": {
            "id": "msg_1", "type": "message", "role": "assistant", "content": [], "model": "claude-test",
            "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": 1, "cache_read_input_tokens": 5}}}),
        sse("content_block_start", {"type": "content_block_start", "index": 0,
                                    "content_block": {"type": "text", "text": ""}}),
        sse("ping", {"type": "ping"}),
    ]
    events += [sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                           "delta": {"type": "text_delta", "text": t}}) for t in texts]
    if finish:
        events += [
            sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
            sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                                  "usage": {"output_tokens": output_tokens}}),
            sse("message_stop", {"type": "message_stop"}),
        ]
    return events


@dataclass
class AnthropicReply:
    """One answer of ``AnthropicRecorder``: an HTTP error (``status``, ``body``, ``headers``), raw
    SSE bytes (``events``), or content ``blocks`` — ``{"type": "text", "text"}``,
    ``{"type": "thinking", "thinking", "signature"}``, ``{"type": "redacted_thinking", "data"}``,
    ``{"type": "tool_use", "id", "name", "input"}`` — streamed as Anthropic streams them (text,
    thinking and tool input in ``fragment``-character deltas, a thinking block's signature in one
    ``signature_delta``) or answered whole. ``cut_after``: the stream ends after that many events,
    without ``message_stop`` (a connection cut mid-answer)."""

    status: int = 200
    events: list[bytes] | None = None
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # between events
    blocks: list[dict[str, Any]] = field(default_factory=lambda: [{"type": "text", "text": "Hello from Claude."}])
    stop_reason: str | None = None  # default: tool_use when a block is one, else end_turn
    stop_sequence: str | None = None
    input_tokens: int = 21
    output_tokens: int = 9
    fragment: int = 6
    cut_after: int | None = None

    @property
    def reason(self) -> str:
        return self.stop_reason or ("tool_use" if any(b["type"] == "tool_use" for b in self.blocks) else "end_turn")

    def message(self, model: str) -> dict[str, Any]:
        return {"id": "msg_recorded", "type": "message", "role": "assistant", "model": model, "content": self.blocks,
                "stop_reason": self.reason, "stop_sequence": self.stop_sequence,
                "usage": {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens}}

    def stream(self, model: str) -> list[bytes]:
        if self.events is not None:
            return self.events

        def ev(name: str, data: dict[str, Any]) -> bytes:  # compact UTF-8 JSON, as the API sends it
            return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'), ensure_ascii=False)}\n\n".encode()

        def pieces(text: str) -> list[str]:
            return [text[i:i + self.fragment] for i in range(0, len(text), self.fragment)]

        start = {**self.message(model), "content": [], "stop_reason": None, "stop_sequence": None,
                 "usage": {"input_tokens": self.input_tokens, "output_tokens": 1}}
        out = [ev("message_start", {"type": "message_start", "message": start})]
        for i, block in enumerate(self.blocks):
            kind = block["type"]
            opening = {"text": {"type": "text", "text": ""}, "thinking": {"type": "thinking", "thinking": "",
                                                                          "signature": ""},
                       "tool_use": {"type": "tool_use", "id": block.get("id"), "name": block.get("name"),
                                    "input": {}}}.get(kind, block)
            out.append(ev("content_block_start", {"type": "content_block_start", "index": i,
                                                  "content_block": opening}))
            if i == 0:
                out.append(b'event: ping\ndata: {"type": "ping"}\n\n')
            deltas: list[dict[str, Any]] = []
            if kind == "text":
                deltas = [{"type": "text_delta", "text": p} for p in pieces(block["text"])]
            elif kind == "thinking":
                deltas = [{"type": "thinking_delta", "thinking": p} for p in pieces(block["thinking"])]
                deltas.append({"type": "signature_delta", "signature": block["signature"]})
            elif kind == "tool_use":
                deltas = [{"type": "input_json_delta", "partial_json": p}
                          for p in pieces(json.dumps(block["input"], separators=(",", ":"), ensure_ascii=False))]
            out += [ev("content_block_delta", {"type": "content_block_delta", "index": i, "delta": d})
                    for d in deltas]
            out.append(ev("content_block_stop", {"type": "content_block_stop", "index": i}))
        out.append(ev("message_delta", {"type": "message_delta",
                                        "delta": {"stop_reason": self.reason, "stop_sequence": self.stop_sequence},
                                        "usage": {"output_tokens": self.output_tokens}}))
        out.append(ev("message_stop", {"type": "message_stop"}))
        return out


class AnthropicRecorder:
    """``POST /v1/messages`` as Anthropic serves it, answering from ``script`` (one reply per
    request; an empty script answers ``AnthropicReply()``) and recording ``(headers, body)`` of
    every request. A real HTTP server (uvicorn on a free port, its own thread), like
    ``OpenAIRecorder``; ``url`` is the base URL an Anthropic client or provider takes."""

    def __init__(self) -> None:
        self.script: list[AnthropicReply] = []
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.closed_at: float | None = None  # when the last streamed body ended (or was closed)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        app = Starlette(routes=[Route("/v1/messages", self._messages, methods=["POST"])])
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self._thread = threading.Thread(target=self._server.run, daemon=True, name="anthropic-recorder")

    def start(self) -> "AnthropicRecorder":
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the Anthropic recorder did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)

    async def _messages(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append((dict(request.headers), body))
        reply = self.script.pop(0) if self.script else AnthropicReply()
        if reply.status != 200:
            return JSONResponse(reply.body, status_code=reply.status, headers=reply.headers)
        if not body.get("stream"):
            return JSONResponse(reply.message(body["model"]), headers={"request-id": "req_recorded"})
        events = reply.stream(body["model"])

        async def send() -> Any:
            try:
                for n, item in enumerate(events):
                    if n == reply.cut_after:
                        # Cut: the server drops the connection mid-body (no final chunk), as a
                        # failing upstream or proxy does.
                        raise ConnectionAbortedError("the recorder cut the stream")
                    if reply.delay:
                        await asyncio.sleep(reply.delay)
                    yield item
            finally:
                self.closed_at = time.monotonic()

        return StreamingResponse(send(), media_type="text/event-stream", headers={"request-id": "req_recorded"})
