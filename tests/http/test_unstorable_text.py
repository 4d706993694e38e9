"""Text no backend can store (issue 22, Medium 12): PostgreSQL answered 500 to a NUL character in
messages, documents, bot prompts and even GET paths and queries, while SQLite stored it. Now a NUL
or a lone surrogate in a JSON body, a WebSocket message, a path or a query is a 400 in the route's
dialect shape naming the field, the same on both backends; uploaded files are cleaned instead."""

from __future__ import annotations

import json
from typing import Any, Callable

import httpx
import pytest
from websockets.asyncio.client import connect

from support import start_on_backend

HI = [{"role": "user", "content": "hi"}]
NUL, SURROGATE = "\\u0000", "\\ud800"  # as escapes in raw JSON text


def raw(template: str, bad: str) -> bytes:
    return template.replace("@", bad).encode()


def openai(body: Any, field: str) -> None:
    assert body["error"]["type"] == "invalid_request_error" and body["error"]["param"] == field, body


def bento(body: Any, field: str) -> None:
    assert body["error"] == "Invalid request" and body["details"][0]["field"] == field, body


def builder(body: Any, field: str) -> None:
    assert body["error"]["code"] == "VALIDATION_ERROR" and body["error"]["details"][0]["field"] == field, body


def conversations(body: Any, field: str) -> None:
    assert body["success"] is False and body["error"]["code"] == "INVALID_REQUEST", body
    assert body["error"]["details"][0]["field"] == field, body


def bots(body: Any, field: str) -> None:
    assert isinstance(body["detail"], str) and field in body["detail"], body


def documents(body: Any, field: str) -> None:
    assert body["error"]["code"] == "invalid_request" and body["error"]["details"][0]["field"] == field, body


def management(body: Any, field: str) -> None:
    assert field in json.dumps(body["detail"]), body


# (method, url, JSON text with "@" where the bad string goes, field named in the error, shape)
BODIES: list[tuple[str, str, str, str, Callable[[Any, str], None]]] = [
    ("POST", "/v1/chat/completions", '{"model": "m", "messages": [{"role": "user", "content": "a@b"}]}',
     "messages.0.content", openai),
    ("POST", "/v1/chat/completions", '{"model": "m", "messages": [{"role": "user", "content": "hi"}], "user": "@"}',
     "user", openai),
    ("POST", "/api/bento/chat/stream", '{"messages": [{"role": "user", "content": "@"}]}', "messages.0.content", bento),
    ("POST", "/api/chat", '{"messages": [{"role": "user", "content": "x@"}]}', "messages.0.content", builder),
    ("POST", "/api/chat", '{"messages": [{"role": "user", "content": "x"}], "chatId": "a@"}', "chatId", builder),
    ("POST", "/api/chat", '{"message": "x@"}', "message", conversations),
    ("POST", "/api/chat", '{"message": "x", "userId": "u@"}', "userId", conversations),
    ("POST", "/api/chat/stream", '{"message": "@"}', "message", conversations),
    ("POST", "/chat", '{"bot_slug": "default", "prompt": "p@", "stream": false}', "prompt", bots),
    ("POST", "/v1/chat", '{"bot_slug": "default", "messages": [{"role": "user", "content": "@"}], "stream": true}',
     "messages.0.content", bots),
    ("POST", "/api/bots", '{"slug": "nul", "name": "Nul", "systemPrompt": "be @"}', "systemPrompt", bots),
    ("PATCH", "/api/bots/default", '{"description": "@"}', "description", bots),
    ("POST", "/api/documents", '{"title": "t", "content": "doc @ text"}', "content", documents),
    ("POST", "/api/documents", '{"title": "@", "content": "doc text"}', "title", documents),
    ("POST", "/api/documents/search", '{"query": "q@"}', "query", documents),
    ("POST", "/api/keys", '{"name": "k@"}', "name", management),
]
# (url with a NUL in its path or query, shape checker, field)
TARGETS = [
    ("/api/chat/a%00b", builder, "path"),
    ("/api/chat/a%00b/stream", builder, "path"),
    ("/api/conversations?userId=a%00b", conversations, "userId"),
    ("/api/conversations/a%00b", conversations, "path"),
    ("/api/bots/a%00b", bots, "path"),
    ("/api/documents/a%00b", documents, "path"),
    ("/api/usage?userId=%00", management, "userId"),
]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def backend(request, tmp_path_factory):
    """A server on each backend. No model: every request here is refused before one would run."""
    srv = start_on_backend(request, tmp_path_factory, "nul", embedded={"enabled": False})
    yield srv
    srv.stop()


@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["nul", "surrogate"])
def test_unstorable_strings_in_bodies_are_400_naming_the_field(backend, bad):
    with httpx.Client(base_url=backend.url, timeout=30, headers={"content-type": "application/json"}) as c:
        for method, url, template, field, shape in BODIES:
            r = c.request(method, url, content=raw(template, bad))
            assert r.status_code == 400, (method, url, bad, r.status_code, r.text)
            shape(r.json(), field)


def test_nul_in_paths_and_queries_is_400_before_any_lookup(backend):
    with httpx.Client(base_url=backend.url, timeout=30) as c:
        for url, shape, field in TARGETS:
            r = c.get(url)
            assert r.status_code == 400, (url, r.status_code, r.text)
            shape(r.json(), field)
        assert c.delete("/api/conversations/a%00b").status_code == 400
        assert c.get("/static/app%00.js").status_code == 404


def test_escaped_backslashes_and_surrogate_pairs_are_ordinary_text(backend):
    """``\\\\u0000`` is a backslash and five characters, ``\\ud83d\\ude00`` one emoji: both stored."""
    with httpx.Client(base_url=backend.url, timeout=30) as c:
        content = '{"title": "Pair \\ud83d\\ude00", "content": "a literal \\\\u0000 is fine"}'
        r = c.post("/api/documents", content=content.encode(), headers={"content-type": "application/json"})
        assert r.status_code == 201, r.text
        doc = c.get(f"/api/documents/{r.json()['id']}").json()
        assert doc["title"] == "Pair \U0001F600" and doc["passages"][0]["text"].endswith("a literal \\u0000 is fine")


def test_uploaded_files_are_cleaned_not_refused(backend):
    with httpx.Client(base_url=backend.url, timeout=30) as c:
        # By hand: httpx would percent-encode the NUL in the file name.
        body = (b'--b\r\nContent-Disposition: form-data; name="file"; filename="notes\x00.txt"\r\n'
                b"Content-Type: text/plain\r\n\r\nplain\x00 notes about\x00 flaps\r\n"
                b'--b\r\nContent-Disposition: form-data; name="title"\r\n\r\nFlaps\x00\r\n--b--\r\n')
        r = c.post("/api/documents", content=body, headers={"content-type": "multipart/form-data; boundary=b"})
        assert r.status_code == 201, r.text
        doc = c.get(f"/api/documents/{r.json()['id']}").json()
        assert doc["title"] == "Flaps" and doc["filename"] == "notes.txt"
        assert doc["passages"][0]["text"] == "plain notes about flaps"
        files = {"file": ("lone.json", b'{"content": "half \\ud800 a pair"}', "application/json")}
        r = c.post("/api/documents", files=files)
        assert r.status_code == 201, r.text
        assert c.get(f"/api/documents/{r.json()['id']}").json()["passages"][0]["text"] == "half \ufffd a pair"


async def test_a_websocket_message_with_a_nul_is_an_error_event_and_the_socket_stays(backend):
    async with connect(f"ws://127.0.0.1:{backend.port}/api/chat/ws") as ws:
        await ws.send('{"type": "message", "content": "a\\u0000b"}')
        error = json.loads(await ws.recv())
        assert error["type"] == "error" and error["content"]["code"] == "VALIDATION_ERROR", error
        assert error["content"]["details"][0]["field"] == "content"
        await ws.send('{"type": "stop"}')  # still open: a stop with nothing running is silent
        await ws.send('{"type": "message", "content": "x", "model": "nope"}')
        assert json.loads(await ws.recv())["content"]["code"] == "INVALID_MODEL"
