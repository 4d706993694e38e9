"""The fast path (http/fastpath.py, issue 15): the routes it serves answer exactly as the normal
path does, and middleware added to the app reaches them too.

Two real servers with the same scripted model (exact text): one serves the listed routes from the
edge, the other (``fast_path = false``) through FastAPI's router. The same requests — answers,
streams and every kind of error — must get the same statuses, headers and bodies, ids aside.
"""

from __future__ import annotations

import re
from typing import Any, Iterator

import httpx
import pytest
from starlette.middleware.cors import CORSMiddleware

from support import ScriptedProvider, ServerThread, register_scripted, start_server

MODEL = "scripted-fast"
SEEN: dict[str, list[bool]] = {}


class Recorder:
    """Added middleware: records, per server, whether each request took the fast path."""

    def __init__(self, app: Any, name: str) -> None:
        self.app, self.name = app, name

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)
        if scope["type"] == "http" and scope["method"] == "POST":
            SEEN.setdefault(self.name, []).append(bool(scope.get("hubbub.fast_path")))


def _server(tmp: Any, name: str, fast: bool) -> ServerThread:
    def configure(app: Any) -> None:
        app.add_middleware(Recorder, name=name)
        app.add_middleware(CORSMiddleware, allow_origins=["https://example.test"], allow_methods=["*"],
                           allow_headers=["*"], expose_headers=["X-Request-Id"])

    server = start_server(tmp, configure=configure, fast_path=fast, default_model=MODEL,
                          embedded={"enabled": False}, max_body_bytes=4096)
    register_scripted(server, MODEL, ScriptedProvider("One two three four."))
    return server


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerThread, ServerThread]]:
    fast = _server(tmp_path_factory.mktemp("fast"), "fast", True)
    normal = _server(tmp_path_factory.mktemp("normal"), "normal", False)
    yield fast, normal
    fast.stop()
    normal.stop()


_IDS = re.compile(rb'(chatcmpl-|chat_|msg_|conv_)[0-9A-Za-z_-]+|"created":\d+|"createdAt":"[^"]+"|'
                  rb'"(updatedAt|timestamp)":\d+|request id [0-9a-f]+|"requestId":"[0-9a-f]*"')


def _normal(body: bytes) -> bytes:
    return _IDS.sub(b"<id>", body)


_SKIP_HEADERS = {"date", "x-request-id", "x-chat-id", "content-length"}

REQUESTS: list[tuple[str, dict[str, Any]]] = [
    ("openai whole", {"json": {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]}}),
    ("openai stream", {"json": {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "stream": True,
                                "stream_options": {"include_usage": True}}}),
    ("openai unknown model", {"json": {"model": "nope", "messages": [{"role": "user", "content": "Hi"}]}}),
    ("openai bad field", {"json": {"model": MODEL, "messages": [], "temperature": 9}}),
    ("openai not json", {"content": b"{nope", "headers": {"content-type": "application/json"}}),
    ("openai text/plain", {"content": b"{}", "headers": {"content-type": "text/plain"}}),
    ("openai too large", {"json": {"model": MODEL, "messages": [{"role": "user", "content": "x" * 5000}]}}),
    ("openai image to a text model", {"json": {"model": MODEL, "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]}}),
]
CHAT_REQUESTS: list[tuple[str, dict[str, Any]]] = [
    ("builder", {"json": {"messages": [{"role": "user", "content": "Hello"}], "enableDSL": False}}),
    ("conversations", {"json": {"message": "Hello", "userId": "u1", "groupId": "g1"}}),
    ("neither", {"json": {"hello": 1}}),
    ("builder bad", {"json": {"messages": "no"}}),
]


async def _exchange(server: ServerThread, path: str, kwargs: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        headers = {"origin": "https://example.test", **kwargs.pop("headers", {})}
        r = await client.post(path, headers=headers, **kwargs)
        kept = {k: v for k, v in r.headers.items() if k not in _SKIP_HEADERS}
        return r.status_code, kept, _normal(r.content)


@pytest.mark.parametrize("name,kwargs", REQUESTS + CHAT_REQUESTS, ids=[n for n, _ in REQUESTS + CHAT_REQUESTS])
async def test_the_fast_and_the_normal_path_answer_alike(servers, name, kwargs):
    fast, normal = servers
    path = "/v1/chat/completions" if (name, kwargs) in REQUESTS else "/api/chat"
    SEEN.clear()
    got_fast = await _exchange(fast, path, dict(kwargs))
    got_normal = await _exchange(normal, path, dict(kwargs))
    assert got_fast == got_normal
    # ... and each really took its own path, with the added middleware around it.
    assert SEEN == {"fast": [True], "normal": [False]}
    # The CORS middleware added to the app reached the fast route too.
    assert got_fast[1].get("access-control-allow-origin") == "https://example.test"


async def test_a_fast_route_answers_a_cors_preflight(servers):
    fast, _ = servers
    async with httpx.AsyncClient(base_url=fast.url) as client:
        r = await client.options("/v1/chat/completions", headers={
            "origin": "https://example.test", "access-control-request-method": "POST"})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://example.test"


def test_a_fast_route_with_the_wrong_signature_is_refused_at_start_up():
    from fastapi import Request

    from hubbub.http.routing import dialect_router

    router = dialect_router(lambda exc, request: None)  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError, match="fast path"):
        @router.post("/v1/chat/completions")
        async def wrong(request: Request, extra: int = 0) -> dict:  # noqa: ARG001
            return {}


@pytest.mark.parametrize("method, path, status", [
    ("GET", "/v1/chat/completions", 405), ("PUT", "/v1/messages", 405), ("GET", "/v1/no-such-route", 404),
    ("POST", "/v1/chat/completions/extra", 404), ("GET", "/v1/messages/no-such-route", 404),
])
async def test_unknown_routes_and_wrong_methods_answer_alike_on_both_paths(servers, method, path, status):
    """A fast route's path with another method, or no route at all: the fast path passes it on
    to the router, so both answer with the same 404/405: OpenAI-shaped (issue 21), Anthropic-shaped
    under /v1/messages."""
    answers = []
    for server in servers:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            r = await client.request(method, path)
        answers.append((r.status_code, r.headers.get("allow"), r.json()))
    assert answers[0] == answers[1]
    status_got, allow, body = answers[0]
    assert status_got == status and (allow is not None) == (status == 405)
    if path.startswith("/v1/messages"):  # the Anthropic dialect's own shape, which its SDKs read
        kind = "not_found_error" if status == 404 else "invalid_request_error"
        assert body["type"] == "error" and body["error"]["type"] == kind and body["error"]["message"]
    else:
        assert body["error"]["type"] == "invalid_request_error" and body["error"]["code"] in (
            "unknown_url", "method_not_allowed")
