"""POST /v1/responses is on the fast path (http/fastpath.py): it answers exactly as through
FastAPI's router — answers, streams and errors — ids and clocks aside (STYLE.md §12)."""

from __future__ import annotations

import re
from typing import Any, Iterator

import httpx
import pytest

from support import ScriptedProvider, ServerThread, register_scripted, start_server

MODEL = "scripted-fast"
SEEN: dict[str, list[bool]] = {}


class Seen:
    """Added middleware: records, per server, whether each POST took the fast path."""

    def __init__(self, app: Any, name: str) -> None:
        self.app, self.name = app, name

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)
        if scope["type"] == "http" and scope["method"] == "POST":
            SEEN.setdefault(self.name, []).append(bool(scope.get("hubbub.fast_path")))


def _server(tmp: Any, name: str, fast: bool) -> ServerThread:
    server = start_server(tmp, configure=lambda app: app.add_middleware(Seen, name=name), fast_path=fast,
                          default_model=MODEL, embedded={"enabled": False}, max_body_bytes=4096)
    register_scripted(server, MODEL, ScriptedProvider("One two three four."))
    return server


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerThread, ServerThread]]:
    fast = _server(tmp_path_factory.mktemp("fast"), "fast", True)
    normal = _server(tmp_path_factory.mktemp("normal"), "normal", False)
    yield fast, normal
    fast.stop()
    normal.stop()

_IDS = re.compile(rb'(resp_|msg_|fc_)[0-9a-f_]+|"(created_at|completed_at)":\d+|request id [0-9a-f]+')
_SKIP_HEADERS = {"date", "x-request-id", "content-length"}

REQUESTS: list[tuple[str, dict[str, Any]]] = [
    ("whole", {"json": {"model": MODEL, "input": "Hi"}}),
    ("stream", {"json": {"model": MODEL, "input": "Hi", "stream": True}}),
    ("not stored", {"json": {"model": MODEL, "input": [{"role": "user", "content": "Hi"}], "store": False}}),
    ("unknown model", {"json": {"model": "nope", "input": "Hi"}}),
    ("bad field", {"json": {"model": MODEL, "input": "Hi", "temperature": 9}}),
    ("built-in tool", {"json": {"model": MODEL, "input": "Hi", "tools": [{"type": "web_search"}]}}),
    ("unknown parent", {"json": {"model": MODEL, "input": "Hi", "previous_response_id": "resp_none"}}),
    ("not json", {"content": b"{nope", "headers": {"content-type": "application/json"}}),
    ("too large", {"json": {"model": MODEL, "input": "x" * 5000}}),
]


async def _exchange(url: str, kwargs: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        r = await client.post("/v1/responses", headers=kwargs.pop("headers", {}), **kwargs)
        kept = {k: v for k, v in r.headers.items() if k not in _SKIP_HEADERS}
        return r.status_code, kept, _IDS.sub(b"<id>", r.content)


@pytest.mark.parametrize("name,kwargs", REQUESTS, ids=[n for n, _ in REQUESTS])
async def test_responses_answer_alike_on_the_fast_and_the_normal_path(servers, name, kwargs):
    fast, normal = servers
    SEEN.clear()
    got_fast = await _exchange(fast.url, dict(kwargs))
    got_normal = await _exchange(normal.url, dict(kwargs))
    assert got_fast == got_normal
    assert (got_fast[0] == 200) == (name in ("whole", "stream", "not stored")), got_fast
    assert SEEN == {"fast": [True], "normal": [False]}
