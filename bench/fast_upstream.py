"""A minimal, fast OpenAI-compatible upstream for benchmarks, in a process of its own.

Gateway benchmarks measure what hubbub (or LiteLLM) adds on top of an upstream,
so the upstream must cost next to nothing: this one is a raw asyncio HTTP/1.1
server (uvloop and httptools when installed, which they are with
``uvicorn[standard]``), keep-alive, no framework, no model. It answers

* ``POST /v1/chat/completions`` — a fixed answer of ``--tokens`` tokens, whole
  (``chat.completion``) or streamed (``chat.completion.chunk`` SSE events in
  OpenAI's exact format: a role chunk, one chunk per token, a finish chunk, a
  usage chunk with ``choices: []`` when ``stream_options.include_usage`` is set,
  then ``data: [DONE]``), ``--token-delay-ms`` apart; ``max_tokens`` shorter than
  the answer cuts it with ``finish_reason: "length"``;
* ``GET /v1/models`` — the one model (``--model``); ``GET /health`` — ``ok``.

As a command::

    .venv/bin/python bench/fast_upstream.py --port 8900 --tokens 16 --token-delay-ms 0

As a module (what ``bench/overhead.py`` and ``bench/streams.py`` do)::

    from fast_upstream import start, stop
    proc, base_url = start(tokens=16)       # base_url = "http://127.0.0.1:PORT/v1"
    ...                                     # POST base_url + "/chat/completions"
    stop(proc)

``start`` runs it with this interpreter on a free loopback port (the child binds
port 0 and reports the port it got, so there is no race for it) and returns once
the server answers ``GET /v1/models``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import tempfile
import signal
import subprocess
import sys
import time
from pathlib import Path

try:  # orjson is a hubbub dependency; plain json keeps the script usable anywhere
    import orjson

    def _dumps(obj: object) -> bytes:
        return orjson.dumps(obj)

    _loads = orjson.loads
except ImportError:  # pragma: no cover
    import json

    def _dumps(obj: object) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()

    _loads = json.loads

try:
    import httptools
except ImportError:  # pragma: no cover - uvicorn[standard] brings it
    httptools = None

WORDS = ("The", " quick", " brown", " fox", " jumps", " over", " the", " lazy", " dog", ".")
READY_PREFIX = "fast-upstream listening on "


class Answer:
    """The fixed answer and everything about it that does not depend on the request."""

    def __init__(self, tokens: int, delay_ms: float, model: str) -> None:
        self.tokens = [WORDS[i % len(WORDS)] for i in range(tokens)]
        self.delay = delay_ms / 1000.0
        self.model = model
        self.models_body = _dumps(
            {"object": "list", "data": [{"id": model, "object": "model", "created": 0, "owned_by": "fast-upstream"}]}
        )
        self._ids = itertools.count(1)

    def next_id(self) -> str:
        return f"chatcmpl-fast{next(self._ids)}"


def _prompt_tokens(body: dict) -> int:
    """A cheap, deterministic prompt size: ~4 bytes per token plus 4 per message (like hubbub's estimate)."""
    total = 0
    for message in body.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            total += len(content) // 4 + 4
        elif isinstance(content, list):
            total += 4 + sum(len(p.get("text", "")) // 4 for p in content if isinstance(p, dict))
        else:
            total += 4
    return max(total, 1)


def _plan(answer: Answer, body: dict) -> tuple[list[str], str]:
    """The tokens this request gets and its finish reason (``length`` when ``max_tokens`` cuts it)."""
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    tokens = answer.tokens
    if isinstance(limit, int) and 0 < limit < len(tokens):
        return tokens[:limit], "length"
    return tokens, "stop"


def completion_body(answer: Answer, body: dict) -> bytes:
    tokens, finish = _plan(answer, body)
    prompt = _prompt_tokens(body)
    return _dumps(
        {
            "id": answer.next_id(),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model") or answer.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(tokens)},
                    "logprobs": None,
                    "finish_reason": finish,
                }
            ],
            "usage": {"prompt_tokens": prompt, "completion_tokens": len(tokens), "total_tokens": prompt + len(tokens)},
        }
    )


def stream_events(answer: Answer, body: dict) -> tuple[bytes, list[bytes], bytes]:
    """One streamed answer as HTTP/1.1 chunks: (role event, one event per token, the rest up to ``[DONE]``)."""
    tokens, finish = _plan(answer, body)
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    base = {
        "id": answer.next_id(),
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body.get("model") or answer.model,
    }
    extra = {"usage": None} if include_usage else {}

    def chunk(delta: dict, finish_reason: str | None) -> dict:
        return {
            **base,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
            **extra,
        }

    payloads = [chunk({"role": "assistant", "content": ""}, None)]
    payloads += [chunk({"content": token}, None) for token in tokens]
    payloads.append(chunk({}, finish))
    if include_usage:
        prompt = _prompt_tokens(body)
        payloads.append(
            {
                **base,
                "choices": [],
                "usage": {"prompt_tokens": prompt, "completion_tokens": len(tokens), "total_tokens": prompt + len(tokens)},
            }
        )
    events = [b"data: " + _dumps(p) + b"\n\n" for p in payloads]
    events.append(b"data: [DONE]\n\n")
    framed = [b"%x\r\n%s\r\n" % (len(e), e) for e in events]
    return framed[0], framed[1 : 1 + len(tokens)], b"".join(framed[1 + len(tokens) :]) + b"0\r\n\r\n"


def _response(status: str, content_type: bytes, body: bytes, keep_alive: bool) -> bytes:
    return b"".join(
        (
            b"HTTP/1.1 ",
            status.encode(),
            b"\r\ncontent-type: ",
            content_type,
            b"\r\ncontent-length: ",
            str(len(body)).encode(),
            b"\r\nconnection: keep-alive\r\n\r\n" if keep_alive else b"\r\nconnection: close\r\n\r\n",
            body,
        )
    )


_STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n"
)
_JSON = b"application/json"


def _error(status: str, message: str, keep_alive: bool) -> bytes:
    body = _dumps({"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}})
    return _response(status, _JSON, body, keep_alive)


class UpstreamProtocol(asyncio.Protocol):
    """One client connection: parse requests with httptools, answer them in order.

    With no token delay every answer is written at once from the parser callback
    (no task, no await); with a delay, a task streams it and reading is paused
    meanwhile, so pipelined requests still get their answers in order.
    """

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.body: list[bytes] = []
        self.keep_alive = True
        self.task: asyncio.Task | None = None
        self.closing = False

    # asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._close()
        except httptools.HttpParserError:
            if self.transport is not None and not self.transport.is_closing():
                self.transport.write(_error("400 Bad Request", "malformed HTTP request", False))
            self._close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        if self.task is not None:
            self.task.cancel()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.url = b""
        self.body = []
        self.keep_alive = True

    def on_headers_complete(self) -> None:
        # Asked here, where it is reliable (the parser resets once the message is complete).
        self.keep_alive = self.parser.should_keep_alive()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        keep_alive = self.keep_alive
        method = self.parser.get_method()
        path = self.url.split(b"?", 1)[0]
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if method == b"POST" and path in (b"/v1/chat/completions", b"/chat/completions"):
            self._chat(b"".join(self.body), keep_alive)
            return
        if method == b"GET" and path in (b"/v1/models", b"/models"):
            transport.write(_response("200 OK", _JSON, self.answer.models_body, keep_alive))
        elif method == b"GET" and path == b"/health":
            transport.write(_response("200 OK", b"text/plain", b"ok", keep_alive))
        else:
            transport.write(_error("404 Not Found", f"no route {path.decode(errors='replace')}", keep_alive))
        if not keep_alive:
            self._close()

    # answering
    def _chat(self, raw: bytes, keep_alive: bool) -> None:
        transport = self.transport
        assert transport is not None
        try:
            body = _loads(raw)
            if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
                raise ValueError("'messages' must be a list")
        except ValueError as exc:
            transport.write(_error("400 Bad Request", f"invalid body: {exc}", keep_alive))
            if not keep_alive:
                self._close()
            return
        if not body.get("stream"):
            transport.write(_response("200 OK", _JSON, completion_body(self.answer, body), keep_alive))
            if not keep_alive:
                self._close()
            return
        head = _STREAM_HEAD + (b"connection: keep-alive\r\n\r\n" if keep_alive else b"connection: close\r\n\r\n")
        first, tokens, tail = stream_events(self.answer, body)
        if self.answer.delay <= 0:
            transport.write(b"".join((head, first, *tokens, tail)))
            if not keep_alive:
                self._close()
            return
        transport.pause_reading()
        self.task = asyncio.get_running_loop().create_task(self._drip(head + first, tokens, tail, keep_alive))

    async def _drip(self, first: bytes, tokens: list[bytes], tail: bytes, keep_alive: bool) -> None:
        transport = self.transport
        assert transport is not None
        try:
            transport.write(first)  # headers and the role chunk at once, like a real server
            for event in tokens:
                await asyncio.sleep(self.answer.delay)
                if self.closing:
                    return
                transport.write(event)
            transport.write(tail)  # finish, usage and [DONE] right after the last token
        except asyncio.CancelledError:
            return
        finally:
            self.task = None
        if not keep_alive:
            self._close()
        elif not self.closing:
            transport.resume_reading()

    def _close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.close()


async def serve(host: str, port: int, answer: Answer) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: UpstreamProtocol(answer), host, port, backlog=4096, reuse_address=True)
    bound = server.sockets[0].getsockname()[1]
    print(f"{READY_PREFIX}http://{host}:{bound}/v1", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A minimal, fast OpenAI-compatible upstream (fixed answer).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 (default): any free port, printed on stdout")
    parser.add_argument("--tokens", type=int, default=16, help="tokens in the fixed answer (default 16)")
    parser.add_argument("--token-delay-ms", type=float, default=0.0, help="pause between streamed tokens (default 0)")
    parser.add_argument("--model", default="fast-upstream", help="model id listed by /v1/models")
    args = parser.parse_args(argv)
    if httptools is None:
        sys.exit("fast_upstream needs httptools (pip install httptools, or uvicorn[standard])")
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve(args.host, args.port, Answer(args.tokens, args.token_delay_ms, args.model)))


# -- as a module -------------------------------------------------------------


def _die_with_parent() -> None:
    """In the child: SIGTERM when the benchmark dies, so no upstream outlives it (Linux only)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def start(
    tokens: int = 16,
    token_delay_ms: float = 0.0,
    model: str = "fast-upstream",
    *,
    python: str | None = None,
    host: str = "127.0.0.1",
    timeout: float = 15.0,
    extra_args: list[str] | None = None,
) -> tuple[subprocess.Popen[str], str]:
    """Start the upstream in its own process on a free port; return ``(process, base_url)``.

    ``base_url`` ends in ``/v1`` (``POST base_url + "/chat/completions"``, which is
    also what a hubbub ``[[providers]] base_url`` or an OpenAI client wants). It
    returns only once ``GET /v1/models`` answered 200; stop it with ``stop``.
    """
    import urllib.request

    cmd = [
        python or sys.executable,
        str(Path(__file__).resolve()),
        "--host", host,
        "--port", "0",
        "--tokens", str(tokens),
        "--token-delay-ms", str(token_delay_ms),
        "--model", model,
        *(extra_args or []),
    ]  # fmt: skip
    # stderr goes to a file, not a pipe nobody reads (a full pipe would block the server)
    errlog = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errlog, text=True, preexec_fn=_die_with_parent)
    proc._fast_upstream_errlog = errlog  # type: ignore[attr-defined]
    try:
        line = _read_ready_line(proc, timeout)
        base_url = line[len(READY_PREFIX) :].strip()
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(base_url + "/models", timeout=2.0) as resp:
                    if resp.status == 200:
                        return proc, base_url
            except OSError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.05)
    except BaseException:
        stop(proc)
        raise


def _read_ready_line(proc: subprocess.Popen[str], timeout: float) -> str:
    import selectors

    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sel.select(timeout=0.1):
                line = proc.stdout.readline()
                if line.startswith(READY_PREFIX):
                    return line
                if not line:  # EOF: the child died
                    break
            elif proc.poll() is not None:
                break
    err = ""
    errlog = getattr(proc, "_fast_upstream_errlog", None)
    if errlog is not None:
        errlog.seek(0)
        err = errlog.read()
    raise RuntimeError(f"fast upstream did not start (exit {proc.poll()}): {err[-2000:]}")


def stop(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL if it does not go; closes its pipes."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for pipe in (proc.stdout, proc.stderr, getattr(proc, "_fast_upstream_errlog", None)):
        if pipe is not None:
            pipe.close()


if __name__ == "__main__":
    main()
