"""A backend that goes away is a 503 in the route's dialect shape, never a 500, and ``/readyz``
says so (issue 22): both answered 500 / stayed 200 while Redis or PostgreSQL was down.

Each test starts and stops its own Redis or PostgreSQL on a free port (never the shared ones),
then brings it back and checks the server recovers without a restart."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from support import env_flag, free_port, start_server

HI = [{"role": "user", "content": "hi"}]


def _need(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        if env_flag("CI"):
            pytest.fail(f"{binary} is missing, and CI=true", pytrace=False)
        pytest.skip(f"{binary} is not installed")
    return path


def _wait(check: Any, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not happen in {timeout}s")
        time.sleep(0.1)


class OwnRedis:
    """``redis-server`` on a free port, no persistence."""

    def __init__(self) -> None:
        self.binary = _need("redis-server")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> "OwnRedis":
        self.proc = subprocess.Popen([self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait(lambda: _listening(self.port), "redis start")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


class OwnPostgres:
    """A throwaway cluster (``initdb`` into a temp dir, ``pg_ctl`` on a free port; as the
    ``postgres`` user when the tests run as root, since PostgreSQL refuses to run as root)."""

    def __init__(self) -> None:
        self.initdb, self.pg_ctl = _need("initdb"), _need("pg_ctl")
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="hubbub-pg-"))
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user:
            shutil.chown(self.dir, self.user)
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        subprocess.run(args, check=True, user=self.user, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=120)

    def init(self) -> "OwnPostgres":
        self._run(self.initdb, "-D", str(self.dir / "data"), "-U", "postgres", "--auth=trust", "--no-sync")
        return self

    def start(self) -> "OwnPostgres":
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync=off"
        self._run(self.pg_ctl, "-D", str(self.dir / "data"), "-o", options, "-l", str(self.dir / "log"), "-w",
                  "start")
        return self

    def stop(self) -> None:
        subprocess.run([self.pg_ctl, "-D", str(self.dir / "data"), "-m", "immediate", "-w", "stop"], user=self.user,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def _listening(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def redis_down(tmp_path) -> Iterator[tuple[Any, OwnRedis]]:
    redis = OwnRedis().start()
    srv = start_server(tmp_path, redis_url=redis.url, embedded={"n_ctx": 512, "max_sequences": 1},
                       max_tokens_cap=4)
    srv.key = srv.call(srv.container.keys.create("limited", rpm=1000))[1]
    srv.container.auth.forget()
    try:
        yield srv, redis
    finally:
        srv.stop()
        redis.stop()


def test_redis_down_is_503_in_each_dialect_and_readyz_says_so(redis_down):
    srv, redis = redis_down
    with httpx.Client(base_url=srv.url, timeout=60, headers={"X-API-Key": srv.key}) as c:
        ready = c.get("/readyz")
        assert ready.status_code == 200 and ready.json()["redis"] is True
        assert c.post("/api/chat", json={"message": "hi"}).status_code == 200
        redis.stop()
        ready = c.get("/readyz")
        assert ready.status_code == 503 and ready.json()["redis"] is False and ready.json()["database"] is True
        # The key's rate limits live in Redis: every dialect's request needs it.
        r = c.post("/v1/chat/completions", json={"model": "smollm2-135m-instruct", "messages": HI, "max_tokens": 2})
        assert r.status_code == 503 and r.json()["error"]["code"] == "service_unavailable", r.text
        assert r.headers["retry-after"].isdigit()
        r = c.post("/api/bento/chat/stream", json={"messages": HI, "maxTokens": 2})
        assert r.status_code == 503 and r.json()["error"] == "Service unavailable", r.text
        r = c.post("/api/chat", json={"message": "hi"})
        assert r.status_code == 503 and r.json()["success"] is False, r.text
        assert r.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
        r = c.post("/api/chat", json={"messages": HI})
        assert r.status_code == 503 and r.json()["error"]["code"] == "SERVICE_UNAVAILABLE", r.text
        r = c.post("/chat", json={"bot_slug": "default", "prompt": "hi", "stream": False})
        assert r.status_code == 503 and "unavailable" in r.json()["detail"], r.text
        r = c.get("/api/documents")
        assert r.status_code == 503 and r.json()["error"]["code"] == "service_unavailable", r.text
        redis.start()  # same port: the server recovers by itself
        _wait(lambda: c.get("/readyz").status_code == 200, "readiness after Redis came back")
        r = c.post("/v1/chat/completions", json={"model": "smollm2-135m-instruct", "messages": HI, "max_tokens": 2})
        assert r.status_code == 200, r.text


@pytest.fixture
def postgres_down(tmp_path) -> Iterator[tuple[Any, OwnPostgres]]:
    pg = OwnPostgres().init().start()
    srv = None
    try:
        srv = start_server(tmp_path, database_url=pg.url, embedded={"enabled": False})
        yield srv, pg
    finally:
        if srv is not None:
            srv.stop()
        pg.remove()


def test_postgres_down_is_503_in_each_dialect_and_readyz_says_so(postgres_down):
    srv, pg = postgres_down
    with httpx.Client(base_url=srv.url, timeout=60) as c:
        ready = c.get("/readyz")
        assert ready.json()["database"] is True and "redis" not in ready.json()
        assert c.get("/api/conversations").status_code == 200
        assert c.post("/api/bots", json={"slug": "before", "name": "Before"}).status_code == 201
        pg.stop()
        time.sleep(6)  # past the key cache (auth_enabled is cached for 5 s): the next lookup needs the database
        ready = c.get("/readyz")
        assert ready.status_code == 503 and ready.json()["database"] is False
        r = c.get("/api/conversations")
        assert r.status_code == 503 and r.json()["success"] is False, r.text
        assert r.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
        r = c.get("/api/bots")
        assert r.status_code == 503 and "unavailable" in r.json()["detail"], r.text
        r = c.post("/v1/chat/completions", json={"model": "x", "messages": HI})
        assert r.status_code == 503 and r.json()["error"]["type"] == "server_error", r.text
        r = c.get("/api/chat/some-chat")
        assert r.status_code == 503 and r.json()["error"]["code"] == "SERVICE_UNAVAILABLE", r.text
        r = c.get("/api/keys")
        assert r.status_code == 503 and "unavailable" in r.json()["detail"], r.text
        assert c.get("/metrics").status_code == 503
        pg.start()
        # (No model is loaded here, so /readyz stays 503 for that; its database check recovers.)
        _wait(lambda: c.get("/readyz").json()["database"] is True, "readiness after PostgreSQL came back")
        assert c.get("/api/bots").status_code == 200
