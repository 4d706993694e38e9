"""A provider for any OpenAI-compatible ``/chat/completions`` endpoint.

OpenRouter, vLLM, Ollama, llama.cpp's servers, LM Studio, OpenAI itself: one
``httpx.AsyncClient`` per configured provider, streaming by default. Text comes
from ``choices[0].delta.content``; usage from the upstream's final chunk (we ask
for it with ``stream_options.include_usage``), else estimated: the prompt with
``faults.estimate_prompt_tokens`` and the answer as one token per content chunk
(servers stream about one token per chunk).

Closing the iterator (``aclose()``, task cancellation) cancels the task that reads
the upstream (``pump.py`` says why it is a task of its own), and httpx closes a
connection whose body was not read to the end, so the upstream sees the disconnect
at once and can stop generating.
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator

import httpx
import orjson

from hubbub.core.events import Finish, ProviderEvent, TextDelta, UsageReport
from hubbub.core.types import FinishReason, Message, ProviderRequest, Usage
from hubbub.errors import HubbubError
from hubbub.providers.faults import (
    UpstreamUnavailable,
    error_message,
    estimate_prompt_tokens,
    estimate_text_tokens,
    from_status,
    parse_retry_after,
    scrub,
)
from hubbub.providers.pump import in_own_task
from hubbub.settings import ProviderConfig

_FINISH: dict[str, FinishReason] = {"stop": "stop", "length": "length"}
_MAX_ERROR_BODY = 16 * 1024


def request_body(request: ProviderRequest, config: ProviderConfig, stream: bool) -> dict[str, Any]:
    """The JSON body for ``request``: ``extra_body`` first, so the request's own fields win."""
    p = request.params
    messages: list[dict[str, str]] = [{"role": m.role, "content": m.content} for m in request.messages]
    body: dict[str, Any] = {**config.extra_body, "model": request.model, "stream": stream}
    if config.sampling:
        body["temperature"] = p.temperature
        if p.top_p != 1.0:
            body["top_p"] = p.top_p
    if request.assistant_prefix:
        # Continue an answer another channel began: the partial text is the last, open assistant turn.
        messages.append({"role": "assistant", "content": request.assistant_prefix})
        if config.continuation == "continue_final_message":
            body["continue_final_message"] = True
            body["add_generation_prompt"] = False
    body["messages"] = messages
    if p.max_tokens is not None:
        body["max_tokens"] = p.max_tokens
    if p.stop:
        body["stop"] = list(p.stop)
    if p.seed is not None:
        body["seed"] = p.seed
    fmt = p.response_format
    if fmt is not None and fmt.type == "json_object":
        body["response_format"] = {"type": "json_object"}
    elif fmt is not None and fmt.type == "json_schema":
        body["response_format"] = {"type": "json_schema",
                                   "json_schema": {"name": "response", "schema": fmt.schema or {}, "strict": True}}
    if stream:
        body["stream_options"] = {"include_usage": True}
    return body


class OpenAICompatProvider:
    """The provider seam over one OpenAI-compatible endpoint."""

    supports_json_schema = True

    def __init__(self, config: ProviderConfig, api_key: str | None = None) -> None:
        if not config.base_url:
            raise ValueError(f"provider {config.name}: base_url is required")
        self.name = config.name
        self.config = config
        self.continues_answers = config.continuation != "none"
        self._key = api_key
        self._tasks: set[asyncio.Task[None]] = set()  # upstream reads in flight (see pump.py)
        headers = dict(config.headers)
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        # No read timeout here: the channel router bounds the wait for every event with the
        # channel's own ``timeout``, which also covers the time to the first token.
        self._client = httpx.AsyncClient(
            base_url=config.base_url.rstrip("/") + "/",
            headers=headers,
            timeout=httpx.Timeout(connect=config.connect_timeout, read=None, write=30.0, pool=config.connect_timeout),
            limits=httpx.Limits(max_connections=config.max_connections,
                                max_keepalive_connections=config.max_connections),
        )

    async def count_tokens(self, messages: list[Message], model: str = "") -> int:
        return estimate_prompt_tokens(messages)

    async def count_text_tokens(self, text: str, model: str = "") -> int:
        return estimate_text_tokens(text)

    def stream(self, request: ProviderRequest) -> AsyncIterator[ProviderEvent]:
        return in_own_task(self._stream(request), self._tasks)

    async def _stream(self, request: ProviderRequest) -> AsyncIterator[ProviderEvent]:
        body = request_body(request, self.config, self.config.stream)
        http_request = self._client.build_request("POST", "chat/completions", content=orjson.dumps(body),
                                                  headers={"Content-Type": "application/json"})
        try:
            response = await self._client.send(http_request, stream=True)
        except httpx.TimeoutException as exc:
            raise UpstreamUnavailable("timeout", f"{self.name}: {type(exc).__name__}") from None
        except httpx.TransportError as exc:
            raise UpstreamUnavailable("connect", f"{self.name}: {type(exc).__name__}") from None
        try:
            if response.status_code >= 400:
                raise await self._status_error(response)
            if self.config.stream:
                async for event in self._events(response, request):
                    yield event
            else:
                for event in await self._whole(response, request):
                    yield event
        except httpx.TimeoutException as exc:
            raise UpstreamUnavailable("timeout", f"{self.name}: {type(exc).__name__}") from None
        except httpx.TransportError as exc:  # the connection broke while the answer was coming
            raise UpstreamUnavailable("stream_broken", f"{self.name}: {type(exc).__name__}") from None
        finally:
            await response.aclose()

    async def _status_error(self, response: httpx.Response) -> HubbubError:
        raw = b""
        async for chunk in response.aiter_bytes():
            raw += chunk
            if len(raw) > _MAX_ERROR_BODY:
                break
        try:
            body: Any = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = raw
        message, code = error_message(body)
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        return from_status(response.status_code, scrub(message, self._key), code=code, retry_after=retry_after,
                           who=self.name)

    async def _events(self, response: httpx.Response, request: ProviderRequest) -> AsyncIterator[ProviderEvent]:
        usage: Usage | None = None
        finish: FinishReason | None = None
        chunks = 0
        done = False
        data: list[str] = []
        async for line in response.aiter_lines():
            if line:
                if line.startswith("data:"):
                    data.append(line[6:] if line.startswith("data: ") else line[5:])
                continue  # comments (": ping"), event:, id:, retry: lines carry nothing we use
            if not data:
                continue
            payload, data = "\n".join(data), []
            if payload == "[DONE]":
                done = True
                break
            try:
                obj = orjson.loads(payload)
            except orjson.JSONDecodeError:
                raise UpstreamUnavailable("stream_broken", f"{self.name}: unreadable stream chunk") from None
            if "error" in obj:  # OpenRouter and others report a failure inside a 200 stream
                message, _ = error_message(obj)
                raise UpstreamUnavailable("stream_broken", f"{self.name}: {scrub(message, self._key)}")
            for choice in (obj.get("choices") or ())[:1]:
                text = (choice.get("delta") or {}).get("content")
                if text:
                    chunks += 1
                    yield TextDelta(text)
                if choice.get("finish_reason"):
                    finish = _FINISH.get(choice["finish_reason"], "stop")
            if obj.get("usage"):
                usage = _usage(obj["usage"])
        if not done and finish is None:
            # The body ended without [DONE] or a finish_reason: the connection was cut short.
            raise UpstreamUnavailable("stream_broken", f"{self.name}: the stream ended before the answer did")
        yield UsageReport(usage or Usage(estimate_prompt_tokens(request.messages), chunks))
        yield Finish(finish or "stop")

    async def _whole(self, response: httpx.Response, request: ProviderRequest) -> list[ProviderEvent]:
        try:
            obj = orjson.loads(await response.aread())
            choice = (obj.get("choices") or [{}])[0]
            text = (choice.get("message") or {}).get("content") or ""
        except (orjson.JSONDecodeError, AttributeError, TypeError):
            raise UpstreamUnavailable("server_error", f"{self.name}: unreadable response") from None
        usage = _usage(obj["usage"]) if obj.get("usage") else Usage(
            estimate_prompt_tokens(request.messages), estimate_text_tokens(text))
        events: list[ProviderEvent] = [TextDelta(text)] if text else []
        return [*events, UsageReport(usage), Finish(_FINISH.get(choice.get("finish_reason") or "stop", "stop"))]

    async def aclose(self) -> None:
        await self._client.aclose()


def _usage(raw: dict[str, Any]) -> Usage:
    return Usage(int(raw.get("prompt_tokens") or 0), int(raw.get("completion_tokens") or 0))
