"""A small OpenAI-compatible upstream that records what it is sent and answers as told.

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
