"""Session fixtures for the upstream tests (issue 4): one real llama.cpp server, the fault
proxies in front of it, and one hubbub configured with upstream models and channels.

Kept here (not in upstream.py) so every test module shares the same processes."""

from __future__ import annotations

import os
from typing import AsyncIterator, Iterator

import httpx
import pytest

from support import ServerThread, start_server
from upstream import UPSTREAM_KEY, UPSTREAM_KEY_ENV, FaultProxy, LlamaServer, upstream_settings


@pytest.fixture(scope="session")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    server = LlamaServer(tmp_path_factory.mktemp("llama") / "server.log").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def proxies(llama: LlamaServer) -> Iterator[dict[str, FaultProxy]]:
    made = {name: FaultProxy(llama.port).start() for name in ("a", "b", "c", "d", "keyed", "stall")}
    yield made
    for proxy in made.values():
        proxy.stop()


@pytest.fixture(scope="session")
def fault_proxies(llama: LlamaServer) -> Iterator[dict[str, FaultProxy]]:
    """The fault catalogue's proxies (issue 19): ``primary``, ``fallback``, ``third`` in front of
    the real upstream, and ``hole``, which never answers."""
    made = {name: FaultProxy(llama.port).start() for name in ("primary", "fallback", "third", "hole")}
    yield made
    for proxy in made.values():
        proxy.stop()


@pytest.fixture
def fp(fault_proxies: dict[str, FaultProxy]) -> dict[str, FaultProxy]:
    """The catalogue's proxies, all passing again (``hole`` stalling) and with nothing recorded."""
    for name, proxy in fault_proxies.items():
        proxy.set("stall" if name == "hole" else "pass")
    return fault_proxies


@pytest.fixture(params=["defaults", "retries2-timeout30"])
def profile(request: pytest.FixtureRequest) -> str:
    """The two profiles every catalogue test runs under (tests/providers/catalogue.py)."""
    return request.param


@pytest.fixture(scope="session")
def upstream_hub(tmp_path_factory: pytest.TempPathFactory, llama: LlamaServer,
                 proxies: dict[str, FaultProxy]) -> Iterator[ServerThread]:
    os.environ[UPSTREAM_KEY_ENV] = UPSTREAM_KEY
    proxies["stall"].set("stall")
    srv = start_server(tmp_path_factory.mktemp("hubbub-upstream"), **upstream_settings(llama, proxies))
    yield srv
    srv.stop()
    os.environ.pop(UPSTREAM_KEY_ENV, None)


@pytest.fixture
async def hub(upstream_hub: ServerThread) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the upstream-configured hubbub."""
    async with httpx.AsyncClient(base_url=upstream_hub.url, timeout=60) as c:
        yield c
