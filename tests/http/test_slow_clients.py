"""Slow clients hold nothing for ever (issue 22, Medium 11): headers must be complete within
``header_timeout_seconds`` (uvicorn had no such timer: a half-sent request line was held for
ever), a body within ``body_timeout_seconds`` (408 in the route's dialect shape), a WebSocket
without a key must authenticate within ``ws_auth_timeout_seconds``, and ``POST /api/chat``
answers an unknown caller's 401 before reading the body (it read up to 1 MiB first).

Bounds are events, not speed: each wait has a generous ceiling far above the configured second.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from support import start_server

CEILING = 30  # seconds: a wait that ends only by the server's timeout, far above the 1 s configured


@pytest.fixture(scope="module")
def impatient(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("slow"), embedded={"enabled": False}, header_timeout_seconds=1,
                       body_timeout_seconds=1, ws_auth_timeout_seconds=1)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("slow-keyed"), embedded={"enabled": False}, ws_auth_timeout_seconds=1)
    srv.key = srv.call(srv.container.keys.create("k"))[1]
    srv.container.auth.forget()
    yield srv
    srv.stop()


async def exchange(port: int, *parts: bytes, pause: float = 0.0) -> bytes:
    """Send ``parts`` (``pause`` between them), then read until the server closes or CEILING passes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        try:
            for part in parts:
                writer.write(part)
                await writer.drain()
                await asyncio.sleep(pause)
        except ConnectionError:  # the server answered and closed while we were still sending
            pass
        async with asyncio.timeout(CEILING):
            return await reader.read()  # up to EOF: the server closed the connection
    finally:
        writer.close()


@pytest.mark.parametrize("sent", [b"", b"GET /healthz HTTP/1.1\r\nHost: x\r\n", b"POST /api/ch"],
                         ids=["nothing", "half the headers", "half the request line"])
async def test_incomplete_headers_are_408_and_the_connection_is_closed(impatient, sent):
    answer = await exchange(impatient.port, sent)
    assert answer.startswith(b"HTTP/1.1 408 "), answer


async def test_a_kept_alive_connection_gets_the_same_header_timeout(impatient):
    answer = await exchange(impatient.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", b"GET /healthz HTTP/1.1\r\n",
                            pause=0.2)
    assert answer.startswith(b"HTTP/1.1 200 ") and b"HTTP/1.1 408 " in answer, answer


@pytest.mark.parametrize(("path", "shape"), [
    ("/v1/chat/completions", lambda b: b["error"]["code"] == "request_timeout"),
    ("/api/bento/chat/stream", lambda b: "did not arrive" in b["error"]),
    ("/api/chat", lambda b: b["error"]["code"] == "REQUEST_TIMEOUT"),
    ("/chat", lambda b: "did not arrive" in b["detail"]),
])
async def test_a_body_slower_than_the_timeout_is_408_in_the_dialect_shape(impatient, path, shape):
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
            .encode())
    answer = await exchange(impatient.port, head, b'{"messages": [')
    status, _, rest = answer.partition(b"\r\n")
    assert status.startswith(b"HTTP/1.1 408 "), answer
    assert shape(json.loads(rest.split(b"\r\n\r\n", 1)[1])), answer


async def test_post_api_chat_answers_401_before_reading_the_body(keyed):
    """Headers only, a 1 MiB body announced and never sent: the 401 comes anyway, in the shape
    both dialects of the route share (the body, unread, cannot say which one it is)."""
    for auth in (b"", b"Authorization: Bearer hb_wrong\r\n"):
        head = (b"POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + auth +
                b"Content-Length: 1048576\r\n\r\n")
        reader, writer = await asyncio.open_connection("127.0.0.1", keyed.port)
        try:
            writer.write(head)
            await writer.drain()
            async with asyncio.timeout(CEILING):
                status = await reader.readline()
                headers = await reader.readuntil(b"\r\n\r\n")
                length = int(next(line.split(b":")[1] for line in headers.split(b"\r\n")
                                  if line.lower().startswith(b"content-length")))
                body = json.loads(await reader.readexactly(length))
        finally:
            writer.close()
        assert status.startswith(b"HTTP/1.1 401 "), status
        assert body == {"success": False, "error": {"code": "UNAUTHORIZED", "message": "Unauthorized"}}
    async with httpx.AsyncClient(base_url=keyed.url, timeout=30, headers={"X-API-Key": keyed.key}) as c:
        r = await c.post("/api/chat", json={"message": "hi", "model": "nope"})
        assert r.status_code == 400 and r.json()["success"] is False  # with the key: the body is read


async def test_a_websocket_without_a_key_must_authenticate_in_time(keyed):
    async with connect(f"ws://127.0.0.1:{keyed.port}/api/chat/ws") as ws:
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(CEILING):
                await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    async with connect(f"ws://127.0.0.1:{keyed.port}/api/chat/ws") as ws:  # a message that is not auth
        await ws.send(json.dumps({"type": "message", "content": "hi"}))
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd.code == 4401


async def test_headers_larger_than_the_limit_are_431_and_the_connection_is_closed(impatient):
    """httptools keeps whatever headers it parsed: without a limit, one request could grow them
    for as long as the header timeout allows."""
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
    # One write: had the server closed while more of it was still arriving, the client would get a
    # reset instead of the answer.
    answer = await exchange(impatient.port, head + b"".join(b"X-Pad-%d: %s\r\n" % (i, b"a" * 1000) for i in range(80)))
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    big_but_fine = head + b"Connection: close\r\nX-Pad: " + b"a" * 30_000 + b"\r\n\r\n"
    assert (await exchange(impatient.port, big_but_fine)).startswith(b"HTTP/1.1 200 ")
