"""Shared fixtures: one real hubbub server (embedded model, SQLite) per test session,
plus PostgreSQL and Redis URLs that skip cleanly when no server answers — except
under ``CI=true``, where a missing service is a failure, never a skip."""

from __future__ import annotations

import asyncio
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import AsyncIterator, Iterator

import httpx
import pytest

from support import ServerThread, env_flag, start_server

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


@pytest.fixture(scope="session")
def pg_database(pg_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database for this test session (dropped afterwards)."""
    import uuid

    import asyncpg

    name = f"hubbub_test_{uuid.uuid4().hex[:10]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(user="postgres", host="127.0.0.1", port=5432, database="test")
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    def run(sql: str) -> None:  # in a thread: this fixture may be set up from inside the event loop
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, admin(sql)).result()

    run(f'CREATE DATABASE "{name}"')
    yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
