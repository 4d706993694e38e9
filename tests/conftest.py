"""Shared fixtures: one real hubbub server (embedded model, SQLite) per test session,
plus PostgreSQL and Redis URLs that skip cleanly when no server answers — except
under ``CI=true``, where a missing service is a failure, never a skip."""

from __future__ import annotations

import asyncio
import os
import socket
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import AsyncIterator, Iterator

import httpx
import pytest

from support import ServerThread, env_flag, start_server

# The embedded model decodes on one llama.cpp thread in tests. llama.cpp's threads spin at a
# barrier each step: with two of them on a 2-core machine where another process keeps one core
# busy, every token waits for a descheduled thread and a test's few tokens take minutes. One
# thread is a little slower on an idle machine and steady on a loaded one (issue 21: `make test`
# passes with a core busy). Servers started as processes inherit it through the environment.
os.environ.setdefault("HUBBUB_EMBEDDED__N_THREADS", "1")

PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _need(service: str, host: str, port: int) -> None:
    if _reachable(host, port):
        return
    message = f"{service} is not reachable at {host}:{port}"
    if env_flag("CI"):
        pytest.fail(f"{message}, and CI=true: these tests must run in CI", pytrace=False)
    pytest.skip(f"{message}; start it to run these tests")


@pytest.fixture(scope="session")
def pg_url() -> str:
    _need("PostgreSQL", "127.0.0.1", 5432)
    return PG_URL


@pytest.fixture(scope="session")
def redis_url() -> str:
    _need("Redis", "127.0.0.1", 6379)
    return REDIS_URL


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    srv = start_server(tmp_path_factory.mktemp("hubbub"))
    yield srv
    srv.stop()


@pytest.fixture
async def client(server: ServerThread) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as c:
        yield c


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path


def _pg_admin(sql: str) -> None:
    """Run one administrative statement on the ``test`` database, in a thread: the
    caller may be a fixture set up from inside a running event loop."""
    import asyncpg

    async def admin() -> None:
        conn = await asyncpg.connect(user="postgres", host="127.0.0.1", port=5432, database="test")
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, admin()).result()


@contextmanager
def new_pg_database() -> Iterator[str]:
    """A PostgreSQL database of its own, dropped on exit (its URL is yielded)."""
    import uuid

    name = f"hubbub_test_{uuid.uuid4().hex[:10]}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_database(pg_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database for this test session (dropped afterwards). Tests of
    the session share it: API keys one test creates switch authentication on for the
    others; a test whose server must see no keys uses ``module_pg_database``."""
    with new_pg_database() as url:
        yield url


@pytest.fixture(scope="module")
def module_pg_database(pg_url: str) -> Iterator[str]:
    """A PostgreSQL database for one test module alone: no keys, bots or chats that
    another module left (a server on the shared one may demand keys it never issued)."""
    with new_pg_database() as url:
        yield url
