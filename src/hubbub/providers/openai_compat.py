"""A provider for any OpenAI-compatible ``/chat/completions`` endpoint.

OpenRouter, vLLM, Ollama, llama.cpp's servers, LM Studio, OpenAI itself: one
connection pool (``http1.Pool``) per configured provider, streaming by default. Text
comes from ``choices[0].delta.content``; usage from the upstream's final chunk (we ask
for it with ``stream_options.include_usage``), else estimated: the prompt with
``faults.estimate_prompt_tokens`` and the answer as one token per content chunk
(servers stream about one token per chunk).

This is the hot path of every upstream request, hence hubbub's own small HTTP/1.1
client (``http1.py``; httpx cost ~1 ms of CPU per request here, aiohttp ~0.3 ms, this
one ~0.09 ms). An unfinished response is closed synchronously, so the upstream is read
right in the request's task: closing the iterator (``aclose()``, task cancellation)
closes the connection at once, and the upstream sees the disconnect and can stop
generating (no ``pump.py`` task needed). Like httpx it honours ``HTTP(S)_PROXY`` /
``NO_PROXY`` (read once, at start) and ``SSL_CERT_FILE``, and verifies TLS against
certifi's bundle.

What an upstream sends is bounded (issue 22; the provider's ``max_*`` settings): one
server-sent event at most ``max_event_bytes``, a whole answer at most ``max_body_bytes``,
and an answer longer than the ``max_tokens`` asked (counted one token per content chunk, as
usage is estimated) is cut there with finish reason ``length``. A chunk that is not the
shape a chat stream has (not JSON, not an object, content not a string) breaks the stream,
as a cut would: the router continues the answer elsewhere. A stream that finished
(``finish_reason``) but never says ``[DONE]`` is given ``_DRAIN_SECONDS`` for its usage
chunk, then ends as it is.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import urllib.request
from typing import Any, AsyncIterator
from urllib.parse import urlsplit

import orjson

from hubbub import __version__

from hubbub.core.events import Finish, ProviderEvent, ReasoningDelta, TextDelta, ToolCallDelta, UsageReport
from hubbub.core.types import (FinishReason, ImagePart, Message, ProviderRequest, TextPart, TokenLogprob, ToolResult,
                               Tools, TopLogprob, Usage)
from hubbub.errors import FieldProblem, HubbubError, InvalidRequest
from hubbub.providers.base import Capabilities, ProviderKind
from hubbub.providers.http1 import HTTPFailure, Pool, Response
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
from hubbub.settings import ProviderConfig

_FINISH: dict[str, FinishReason] = {"stop": "stop", "length": "length", "tool_calls": "tool_calls",
                                    "function_call": "tool_calls", "content_filter": "content_filter"}
_MAX_ERROR_BODY = 16 * 1024
_DRAIN_SECONDS = 1.0
# Idle connections are kept a little less than the 5 s most servers (uvicorn, llama.cpp) keep
# them, so one is rarely reused in the very moment the server closes it.
_KEEPALIVE_SECONDS = 4.0


def wire_message(m: Message) -> dict[str, Any]:
    """A core message in OpenAI's chat shape: text stays a plain string (what every server takes),
    images become ``image_url`` parts, tool calls and results their OpenAI fields. Reasoning parts
    are not sent back (core/capabilities.py says why)."""
    if m.is_plain_text:
        out: dict[str, Any] = {"role": m.role, "content": m.text}
    elif m.role == "tool":
        result = next((p for p in m.parts if isinstance(p, ToolResult)), None)
        out = {"role": "tool", "tool_call_id": result.call_id if result else "",
               "content": result.text if result else m.text}
    else:
        parts = [p for p in m.parts if isinstance(p, (TextPart, ImagePart))]
        if any(isinstance(p, ImagePart) for p in parts):
            content: Any = [{"type": "text", "text": p.text} if isinstance(p, TextPart)
                            else {"type": "image_url", "image_url": {"url": p.url, **({"detail": p.detail} if p.detail
                                                                                       else {})}}
                            for p in parts]
        else:
            content = m.text
        out = {"role": m.role, "content": content}
        calls = m.tool_calls
        if calls:
            out["tool_calls"] = [{"id": c.id, "type": "function",
                                  "function": {"name": c.name, "arguments": c.arguments}} for c in calls]
            if not m.text:
                out["content"] = None
    if m.name:
        out["name"] = m.name
    return out


def tools_body(tools: Tools) -> dict[str, Any]:
    """``tools``, ``tool_choice`` and ``parallel_tool_calls`` as OpenAI takes them."""
    specs = []
    for t in tools.specs:
        function: dict[str, Any] = {"name": t.name, "parameters": t.parameters}
        if t.description:
            function["description"] = t.description
        if t.strict is not None:
            function["strict"] = t.strict
        specs.append({"type": "function", "function": function})
    choice = tools.choice
    body: dict[str, Any] = {
        "tools": specs,
        "tool_choice": {"type": "function", "function": {"name": choice.name}} if choice.mode == "named"
        else choice.mode,
    }
    if not tools.parallel:
        body["parallel_tool_calls"] = False
    return body


def request_body(request: ProviderRequest, config: ProviderConfig, stream: bool) -> dict[str, Any]:
    """The JSON body for ``request``: ``extra_body`` first, so the request's own fields win."""
    p = request.params
    messages: list[dict[str, Any]] = [wire_message(m) for m in request.messages]
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
    if request.prompt is not None:  # /completions: a raw prompt, no messages (Capabilities.raw_prompt)
        body["prompt"] = request.prompt
    else:
        body["messages"] = messages
    if p.max_tokens is not None:
        body["max_tokens"] = p.max_tokens
    if p.stop:
        body["stop"] = list(p.stop)
    if p.seed is not None:
        body["seed"] = p.seed
    # The rest of OpenAI's sampling surface and the extensions vLLM and llama.cpp's server take,
    # passed through as set (issue 21); an upstream that refuses one answers with its own 400.
    for name in ("frequency_penalty", "presence_penalty", "top_k", "min_p", "repetition_penalty"):
        value = getattr(p, name)
        if value is not None:
            body[name] = value
    if p.logit_bias:
        body["logit_bias"] = {str(token): bias for token, bias in p.logit_bias.items()}
    if p.logprobs:
        body["logprobs"] = True
        if p.top_logprobs:
            body["top_logprobs"] = p.top_logprobs
    fmt = p.response_format
    if fmt is not None and fmt.type == "json_object":
        body["response_format"] = {"type": "json_object"}
    elif fmt is not None and fmt.type == "json_schema":
        body["response_format"] = {"type": "json_schema",
                                   "json_schema": {"name": "response", "schema": fmt.schema or {}, "strict": True}}
    if request.tools is not None:
        body.update(tools_body(request.tools))
    if stream:
        body["stream_options"] = {"include_usage": True}
    return body


class OpenAICompatProvider:
    """The provider seam over one OpenAI-compatible endpoint."""

    def __init__(self, config: ProviderConfig, api_key: str | None = None) -> None:
        if not config.base_url:
            raise ValueError(f"provider {config.name}: base_url is required")
        self.name = config.name
        self.config = config
        # What an OpenAI-compatible server takes; one that cannot answers with its own 400, passed on.
        self.capabilities = Capabilities(json_schema=True, tools=True, images=True,
                                         continues_answers=config.continuation != "none",
                                         embeddings=config.embeddings, raw_prompt=config.completions,
                                         sampling=frozenset({"seed", "top_k", "min_p", "frequency_penalty",
                                                             "presence_penalty", "repetition_penalty",
                                                             "logit_bias", "logprobs"}))
        self._key = api_key
        self._url = config.base_url.rstrip("/") + "/chat/completions"
        self._base_path = urlsplit(config.base_url.rstrip("/")).path
        headers = dict(config.headers)
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        headers["Content-Type"] = "application/json"
        self._headers = headers
        parts = urlsplit(self._url)
        self._path = parts.path + (f"?{parts.query}" if parts.query else "")
        origin = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
        # No read timeout here: the channel router bounds the wait for every event with the
        # channel's own ``timeout``, which also covers the time to the first token.
        # ``connect_timeout`` covers waiting for a free connection too (httpx's pool timeout).
        self._pool = Pool(
            origin,
            max_connections=config.max_connections,
            connect_timeout=config.connect_timeout,
            pool_timeout=config.pool_timeout,
            keepalive=_KEEPALIVE_SECONDS,
            ssl_context=_ssl_context() if origin.startswith("https:") else None,
            proxy=_env_proxy(self._url),
            user_agent=f"hubbub/{__version__}",
            max_header_bytes=config.max_header_bytes,
            max_headers=config.max_headers,
        )

    def waits_locally(self, task: asyncio.Task[object] | None) -> bool:
        """Is ``task`` waiting for a free pooled connection (so a timeout now is not the upstream's)?"""
        return self._pool.waiting(task)

    async def count_tokens(self, messages: list[Message], model: str = "", tools: Tools | None = None) -> int:
        return estimate_prompt_tokens(messages) + estimate_tools_tokens(tools)

    async def count_text_tokens(self, text: str, model: str = "") -> int:
        return estimate_text_tokens(text)

    async def stream(self, request: ProviderRequest) -> AsyncIterator[ProviderEvent]:
        try:
            # An exact-size copy: orjson's bytes keep its whole ~4 KB output buffer however short the
            # JSON, and this body lives as long as the stream (4 KB per open stream; bench/streams.py).
            body = bytes(memoryview(orjson.dumps(request_body(request, self.config, self.config.stream))))
        except TypeError as exc:  # orjson.JSONEncodeError: a value JSON cannot carry (an int past 64 bits)
            # The request's own fault, found before any upstream saw it: never counted against one.
            raise InvalidRequest("The request cannot be sent to the upstream model",
                                 [FieldProblem("body", str(exc))]) from None
        response = await self._post(self._path if request.prompt is None else self._base_path + "/completions", body)
        try:
            if response.status >= 400:
                raise await self._status_error(response)
            if not self.config.stream:
                for event in await self._whole(response, request):
                    yield event
                return
            # Server-sent events, parsed here as the bytes come (no generator in between: each
            # layer costs a resume per event on the path of every token).
            usage: Usage | None = None
            finish: FinishReason | None = None
            limit = request.params.max_tokens  # an upstream that ignores it is cut there
            chunks = 0
            done = False
            relay = request.params.logprobs  # the upstream's log-probabilities ride on the text
            lps: list[TokenLogprob] = []
            events = _SSEDecoder(self.config.max_event_bytes)
            while not done:
                if finish is None:
                    received = await response.read_chunk()
                else:  # finished: what follows is the usage chunk and [DONE], or nothing
                    received = await _rest(response)
                if not received:
                    break
                texts: list[str] = []  # the text of this read, yielded together below
                others: list[ProviderEvent] = []  # tool-call and reasoning deltas of this read, in order
                broken: UpstreamUnavailable | None = None
                try:
                    payloads = events.feed(received)
                except ValueError as exc:
                    payloads, broken = [], UpstreamUnavailable("stream_broken", f"{self.name}: {exc}")
                for payload in payloads:
                    if payload == b"[DONE]":
                        done = True
                        break
                    try:
                        obj = _json(payload)
                        if "error" in obj:  # OpenRouter and others report a failure inside a 200 stream
                            message, _ = error_message(obj)
                            broken = UpstreamUnavailable("stream_broken", f"{self.name}: {scrub(message, self._key)}")
                            break
                        for choice in (obj.get("choices") or ())[:1]:
                            delta = choice.get("delta")
                            if delta is None:  # a text_completion chunk (/completions): its ``text``
                                delta = {"content": choice.get("text")}
                            text = delta.get("content")
                            if relay and choice.get("logprobs"):
                                lps.extend(_logprobs(choice["logprobs"]))
                            if text:
                                if not isinstance(text, str):
                                    raise TypeError("content is not a string")
                                texts.append(text)
                            if len(delta) > 2 or "tool_calls" in delta:  # more than role and content
                                structured = _structured_deltas(delta)
                                if structured:
                                    if texts:  # keep the order: text before what follows it
                                        others.append(TextDelta("".join(texts), len(texts),
                                                                tuple(lps) if lps else None))
                                        chunks += len(texts)
                                        texts, lps = [], []
                                    others.extend(structured)
                            if choice.get("finish_reason"):
                                finish = _FINISH.get(choice["finish_reason"], "stop")
                        if obj.get("usage"):
                            usage = _usage(obj["usage"])
                    except (orjson.JSONDecodeError, TypeError, AttributeError, KeyError, ValueError):
                        broken = UpstreamUnavailable("stream_broken", f"{self.name}: unreadable stream chunk")
                        break
                for event in others:
                    yield event
                if texts:  # the text of one read is one delta (see ``TextDelta.tokens``)
                    if limit is not None and chunks + len(texts) > limit:
                        # More than max_tokens: the upstream ignored it. What it was asked for, no more.
                        texts = texts[:limit - chunks]
                        finish, usage, done, broken = "length", None, True, None
                    if texts:
                        chunks += len(texts)
                        yield TextDelta(texts[0] if len(texts) == 1 else "".join(texts), len(texts),
                                        tuple(lps) if lps else None)
                        lps = []
                if broken is not None:
                    raise broken
            if not done and finish is None:
                # The body ended without [DONE] or a finish_reason: the connection was cut short.
                raise UpstreamUnavailable("stream_broken",
                                          f"{self.name}: the stream ended before the answer did")
            if done and finish != "length" and not response.at_eof:
                await _drain(response)
            yield UsageReport(usage or Usage(estimate_prompt_tokens(request.messages), chunks))
            yield Finish(finish or "stop")
        except HTTPFailure as exc:  # the connection broke while the answer was coming
            raise UpstreamUnavailable("stream_broken", f"{self.name}: {exc.detail}") from None
        finally:
            # Synchronous, so a cancelled request cannot interrupt it: a response read to the end
            # gives its connection back to the pool, any other is closed here and now.
            response.release()

    async def _status_error(self, response: Response) -> HubbubError:
        raw = await response.read(limit=_MAX_ERROR_BODY)
        try:
            body: Any = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = raw
        message, code = error_message(body)
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        return from_status(response.status, scrub(message, self._key), code=code, retry_after=retry_after,
                           who=self.name)

    async def _read_whole(self, response: Response) -> bytes:
        """A non-streamed answer's body, at most ``max_body_bytes`` (issue 22: never read unbounded)."""
        cap = self.config.max_body_bytes
        raw = await response.read(limit=cap + 1)
        if len(raw) > cap:
            raise UpstreamUnavailable("server_error", f"{self.name}: an answer larger than {cap} bytes")
        return raw

    async def _whole(self, response: Response, request: ProviderRequest) -> list[ProviderEvent]:
        raw = await self._read_whole(response)
        try:
            obj = orjson.loads(raw)
            choice = (obj.get("choices") or [{}])[0]
            message = choice.get("message") or {"content": choice.get("text")}  # chat, or /completions
            text = message.get("content") or ""
            if not isinstance(text, str):
                raise TypeError("content is not a string")
            structured = _structured_deltas(message)
            lps = tuple(_logprobs(choice["logprobs"])) if request.params.logprobs and choice.get("logprobs") else None
        except (orjson.JSONDecodeError, AttributeError, TypeError, KeyError, IndexError, ValueError):
            raise UpstreamUnavailable("server_error", f"{self.name}: unreadable response") from None
        usage = _usage(obj["usage"]) if obj.get("usage") else Usage(
            estimate_prompt_tokens(request.messages), estimate_text_tokens(text))
        events: list[ProviderEvent] = [*structured, *([TextDelta(text, logprobs=lps or None)] if text else [])]
        return [*events, UsageReport(usage), Finish(_FINISH.get(choice.get("finish_reason") or "stop", "stop"))]

    async def embed(self, texts: list[str], model: str, dimensions: int | None = None) -> tuple[Any, int | None]:
        """``POST {base_url}/embeddings``: the vectors (float32 rows, in input order) and the
        upstream's prompt token count (None when it sends none). Failures are classified as a
        chat request's are (``faults.from_status``), so the channel router can fail over."""
        import numpy as np

        body: dict[str, Any] = {"model": model, "input": texts, "encoding_format": "float"}
        if dimensions is not None:
            body["dimensions"] = dimensions
        response = await self._post(self._base_path + "/embeddings", orjson.dumps(body))
        try:
            if response.status >= 400:
                raise await self._status_error(response)
            raw = await self._read_whole(response)
            try:
                obj = orjson.loads(raw)
                rows = sorted(obj["data"], key=lambda d: d["index"])
                matrix = np.array([r["embedding"] for r in rows], dtype=np.float32)
                if matrix.ndim != 2 or len(matrix) != len(texts):
                    raise ValueError("one vector per input expected")
                tokens = (obj.get("usage") or {}).get("prompt_tokens")
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
                raise UpstreamUnavailable("server_error", f"{self.name}: unreadable embeddings response") from None
        except HTTPFailure as exc:
            raise UpstreamUnavailable("stream_broken", f"{self.name}: {exc.detail}") from None
        finally:
            response.release()
        return matrix, int(tokens) if isinstance(tokens, int) else None

    async def _post(self, path: str, body: bytes) -> Any:
        """Send ``body``; a failure before any answer (connecting, a busy pool, a timeout) is the
        channel's ``UpstreamUnavailable`` of that kind."""
        try:
            return await self._pool.request("POST", path, body, self._headers)
        except HTTPFailure as exc:
            kind = exc.kind if exc.kind in ("timeout", "busy") else "connect"
            raise UpstreamUnavailable(kind, f"{self.name}: {exc.detail}") from None

    async def aclose(self) -> None:
        await self._pool.aclose()


class _SSEDecoder:
    """The ``data`` of each server-sent event in the bytes fed to it (lines end in LF, CRLF or
    CR; comments, ``event:``, ``id:`` and ``retry:`` lines carry nothing a chat stream needs).

    An unfinished line, or one event's data lines together, longer than ``max_bytes`` raises
    ``ValueError``: an upstream cannot make hubbub hold an endless line."""

    __slots__ = ("_rest", "_data", "_skip_lf", "_max", "_size")

    def __init__(self, max_bytes: int = 1024 * 1024) -> None:
        self._rest = b""  # an unfinished line
        self._data: list[bytes] = []  # the data lines of the event being read
        self._skip_lf = False  # the last bytes ended in CR: a LF right after it belongs to it
        self._max = max_bytes
        self._size = 0  # bytes in ``_data``

    def feed(self, received: bytes) -> list[bytes]:
        if self._skip_lf:
            self._skip_lf = False
            if received.startswith(b"\n"):
                received = received[1:]
        buf = self._rest + received if self._rest else received
        if b"\r" in buf:
            self._skip_lf = buf.endswith(b"\r")
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buf.split(b"\n")
        self._rest = lines.pop()
        if len(self._rest) > self._max:
            raise ValueError(f"a stream line longer than {self._max} bytes")
        out: list[bytes] = []
        data = self._data
        for line in lines:
            if line:
                if line.startswith(b"data:"):
                    data.append(line[6:] if line.startswith(b"data: ") else line[5:])
                    self._size += len(line)
                    if self._size > self._max:
                        raise ValueError(f"a stream event longer than {self._max} bytes")
            elif data:
                out.append(data[0] if len(data) == 1 else b"\n".join(data))
                data.clear()
                self._size = 0
        return out


async def _rest(response: Response) -> bytes:
    """The next read after the finish chunk: the usage chunk and ``[DONE]`` come at once from a
    well-behaved upstream; one that sends neither and keeps the body open is not waited for
    longer than ``_DRAIN_SECONDS`` (the answer is whole: a stall here is no reason to fail over)."""
    try:
        async with asyncio.timeout(_DRAIN_SECONDS):
            return await response.read_chunk()
    except TimeoutError:
        return b""


async def _drain(response: Response) -> None:
    """Read what follows ``[DONE]`` (normally just the end of the chunked body, often already here).

    A connection goes back to the pool only when its response was read to the end; released
    earlier it is closed, and the next request pays a new TCP (and TLS) handshake. An upstream
    that keeps the body open after ``[DONE]`` gets ``_DRAIN_SECONDS``, then it is closed.
    """
    try:
        async with asyncio.timeout(_DRAIN_SECONDS):
            while await response.read_chunk():
                pass
    except (TimeoutError, HTTPFailure):
        pass


def _json(payload: bytes) -> Any:
    """A JSON event; bytes that are not UTF-8 are read with replacement characters, as text decoding would."""
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        return orjson.loads(payload.decode("utf-8", "replace"))


def _env_proxy(url: str) -> str | None:
    """The proxy ``HTTP(S)_PROXY`` / ``NO_PROXY`` give for ``url`` (httpx's ``trust_env``), read once."""
    parts = urlsplit(url)
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return proxy


def _ssl_context() -> ssl.SSLContext:
    """What httpx verifies against: ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` when set, else certifi's bundle."""
    cafile, capath = os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")
    if cafile and os.path.isfile(cafile):
        return ssl.create_default_context(cafile=cafile)
    if capath and os.path.isdir(capath):
        return ssl.create_default_context(capath=capath)
    try:
        import certifi
    except ImportError:
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=certifi.where())


def _structured_deltas(delta: dict[str, Any]) -> list[ProviderEvent]:
    """The reasoning (``reasoning_content``, as vLLM, llama.cpp and DeepSeek send it) and tool-call
    deltas of one streamed ``delta`` (or a whole ``message``), relayed as the upstream numbered them."""
    out: list[ProviderEvent] = []
    reasoning = delta.get("reasoning_content") or delta.get("reasoning")
    if reasoning and isinstance(reasoning, str):
        out.append(ReasoningDelta(reasoning))
    for n, call in enumerate(delta.get("tool_calls") or ()):
        if not isinstance(call, dict):
            continue
        function = call.get("function") or {}
        arguments = function.get("arguments")
        out.append(ToolCallDelta(
            index=int(call["index"]) if isinstance(call.get("index"), int) else n,
            id=call.get("id") or None,
            name=function.get("name") or None,
            arguments=arguments if isinstance(arguments, str) else ("" if arguments is None else orjson.dumps(
                arguments).decode()),
        ))
    return out


def _logprobs(raw: Any) -> list[TokenLogprob]:
    """An OpenAI ``logprobs`` object's ``content`` entries as core log-probabilities."""
    out = []
    for entry in raw.get("content") or ():
        top = tuple(TopLogprob(str(t["token"]), float(t["logprob"]), tuple(t.get("bytes") or ()))
                    for t in entry.get("top_logprobs") or ())
        out.append(TokenLogprob(str(entry["token"]), float(entry["logprob"]), tuple(entry.get("bytes") or ()), top))
    return out


def _usage(raw: dict[str, Any]) -> Usage:
    return Usage(int(raw.get("prompt_tokens") or 0), int(raw.get("completion_tokens") or 0))


KIND = ProviderKind("openai", ProviderConfig, OpenAICompatProvider)
