"""Test support: a real hubbub server in a thread, SSE parsing, a scripted provider."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator

import httpx
import uvicorn

from hubbub.app import create_app
from hubbub.http.server import uvicorn_config
from hubbub.core.events import Finish, ProviderEvent, TextDelta, UsageReport
from hubbub.core.types import Message, ModelInfo, ProviderRequest, Usage
from hubbub.settings import Settings
from hubbub.providers.base import Capabilities


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerThread:
    """A real hubbub (uvicorn) serving on a free loopback port from a background thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.port = settings.port
        self.app = create_app(settings)
        # hubbub serve's own uvicorn configuration (slow-client and WebSocket limits), logging aside.
        config = uvicorn_config(self.app, settings, host="127.0.0.1", log_level="warning", lifespan="on",
                                log_config=uvicorn.config.LOGGING_CONFIG)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> "ServerThread":
        self._thread.start()
        deadline = time.monotonic() + 60
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("hubbub test server did not start")
            time.sleep(0.02)
        return self

    @property
    def container(self) -> Any:
        return self.app.state.container

    def call(self, coro: Any, timeout: float = 30) -> Any:
        """Run ``coro`` on the server's own event loop (for repositories and the like)."""
        loop = self._server_loop()
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)

    def _server_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)


def start_server(tmp: Path, configure: Any = None, **overrides: Any) -> ServerThread:
    """A real server; ``configure(app)``, if given, runs before it starts (e.g. to add middleware)."""
    settings = Settings(
        host="127.0.0.1",
        port=free_port(),
        data_dir=tmp,
        **overrides,
    )
    server = ServerThread(settings)
    if configure is not None:
        configure(server.app)
    loop_holder: dict[str, asyncio.AbstractEventLoop] = {}

    original = server.app.router.lifespan_context

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app):  # noqa: ANN001
        loop_holder["loop"] = asyncio.get_running_loop()
        async with original(app):
            yield

    server.app.router.lifespan_context = lifespan
    server.start()
    server._loop = loop_holder["loop"]
    return server


@dataclass
class SSEEvent:
    data: str
    id: str | None = None

    def json(self) -> Any:
        return json.loads(self.data)


async def sse_events(response: httpx.Response) -> AsyncIterator[SSEEvent]:
    """Parse an SSE body (``data:`` and ``id:`` lines; comments skipped)."""
    data: list[str] = []
    event_id: str | None = None
    async for line in response.aiter_lines():
        if line == "":
            if data:
                yield SSEEvent("\n".join(data), event_id)
            data, event_id = [], None
        elif line.startswith(":"):
            continue
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
        elif line.startswith("id:"):
            event_id = line[3:].strip()
    if data:
        yield SSEEvent("\n".join(data), event_id)


async def collect_sse(client: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> tuple[httpx.Response, list[SSEEvent]]:
    async with client.stream(method, url, **kwargs) as response:
        if response.status_code != 200:
            await response.aread()
            return response, []
        return response, [e async for e in sse_events(response)]



def start_on_backend(request: Any, tmp_path_factory: Any, prefix: str, **overrides: Any) -> ServerThread:
    """A server on the backend a ``params=["sqlite", "postgres"]`` fixture's ``request`` names;
    on PostgreSQL in a database of the test module's own (``module_pg_database``)."""
    if request.param == "postgres":
        overrides["database_url"] = request.getfixturevalue("module_pg_database")
    return start_server(tmp_path_factory.mktemp(f"{prefix}-{request.param}"), **overrides)

class ScriptedProvider:
    """Replies with exact text, one word per delta. For tests that need exact text only."""

    name = "scripted"
    capabilities = Capabilities()

    def __init__(self, reply: str, delay: float = 0.0) -> None:
        self.reply = reply
        self.delay = delay
        self.requests: list[ProviderRequest] = []

    def pieces(self) -> list[str]:
        words = self.reply.split(" ")
        return [w if i == 0 else " " + w for i, w in enumerate(words)]

    async def count_tokens(self, messages: list[Message], model: str = "") -> int:
        return sum(len(m.content.split()) + 4 for m in messages)

    async def count_text_tokens(self, text: str, model: str = "") -> int:
        return len(text.split())

    async def stream(self, request: ProviderRequest) -> AsyncIterator[ProviderEvent]:
        self.requests.append(request)
        for piece in self.pieces():
            if self.delay:
                await asyncio.sleep(self.delay)
            yield TextDelta(piece)
        prompt = await self.count_tokens(request.messages)
        yield UsageReport(Usage(prompt, len(self.pieces())))
        yield Finish("stop")

    async def aclose(self) -> None:
        pass


def register_scripted(server: ServerThread, model_id: str, provider: ScriptedProvider, context_length: int = 4096) -> None:
    server.container.registry.register(ModelInfo(id=model_id, name=model_id, context_length=context_length), provider)


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")


class ServerProcess:
    """hubbub as a real separate process (``python -m hubbub serve``), for multi-replica tests."""

    def __init__(self, data_dir: Path, port: int | None = None, **env: str) -> None:
        import subprocess
        import sys

        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.log_path = data_dir / f"server-{self.port}.log"
        full_env = {**os.environ, **{f"HUBBUB_{k.upper()}": str(v) for k, v in env.items()}}
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hubbub", "serve", "--port", str(self.port), "--data-dir", str(data_dir)],
            env=full_env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def wait_ready(self, timeout: float = 120) -> "ServerProcess":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"hubbub exited early:\n{self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"hubbub did not become ready:\n{self.log_path.read_text()[-3000:]}")

    def signal(self, sig: int) -> None:
        import signal as _signal

        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)

    def stop(self) -> None:
        import signal as _signal

        self.signal(_signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except Exception:
            self.signal(_signal.SIGKILL)
            self.proc.wait(timeout=10)
        self._log.close()
