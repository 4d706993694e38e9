"""The upstream HTTP/1.1 client (providers/http1.py) against real sockets: small asyncio
servers that answer in the framings real upstreams use, a forward proxy (absolute-form
and CONNECT), and TLS with a certificate made by ``openssl`` for the test."""

from __future__ import annotations

import asyncio
import gzip
import shutil
import ssl
import subprocess
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

import pytest

from hubbub.providers.http1 import HTTPFailure, Pool

Handler = Callable[[bytes, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Server:
    """A raw HTTP server: reads each request (head and Content-Length body), hands it to ``handler``."""

    def __init__(self, handler: Handler, tls: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.tls = tls
        self.connections = 0
        self.requests: list[bytes] = []
        self.closed = asyncio.Event()  # a client connection ended
        self.server: asyncio.Server | None = None

    async def start(self) -> "Server":
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    @property
    def origin(self) -> str:
        return f"{'https' if self.tls else 'http'}://{'localhost' if self.tls else '127.0.0.1'}:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length)
                self.requests.append(head + body)
                await self.handler(head + body, reader, writer)
                if writer.is_closing():
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            self.closed.set()

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()


@asynccontextmanager
async def served(handler: Handler, **pool_options: Any) -> AsyncIterator[tuple[Server, Pool]]:
    """A ``Server`` running ``handler`` and a ``Pool`` to it, both closed afterwards."""
    server = await Server(handler).start()
    pool = Pool(server.origin, **pool_options)
    try:
        yield server, pool
    finally:
        await pool.aclose()
        await server.stop()


def reply(body: bytes, *, status: str = "200 OK", headers: str = "") -> Handler:
    async def handler(request: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n{headers}\r\n".encode() + body)
        await writer.drain()
    return handler


async def test_a_connection_is_kept_alive_and_reused():
    async with served(reply(b"hello")) as (server, pool):
        for _ in range(3):
            with await pool.request("POST", "/v1/x", b"{}", {"Content-Type": "application/json"}) as response:
                assert response.status == 200
                assert await response.read() == b"hello"
        assert server.connections == 1
        head = server.requests[0].decode()
        assert head.startswith("POST /v1/x HTTP/1.1\r\n")
        assert f"Host: 127.0.0.1:{server.port}\r\n" in head and "Content-Length: 2\r\n" in head


async def test_chunked_and_connection_framed_bodies_and_gzip():
    async def chunked(request, reader, writer):
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for part in (b"data: a\n\n", b"data: b\n\n"):
            writer.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            await writer.drain()
        writer.write(b"0\r\n\r\n")

    async def until_close(request, reader, writer):
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it")
        await writer.drain()
        writer.close()

    packed = gzip.compress(b'{"ok": true}')
    for handler, expected in ((chunked, b"data: a\n\ndata: b\n\n"), (until_close, b"all of it"),
                              (reply(packed, headers="Content-Encoding: gzip\r\n"), b'{"ok": true}')):
        async with served(handler) as (_, pool):
            with await pool.request("POST", "/", b"") as response:
                assert await response.read() == expected
                assert response.at_eof


async def test_an_idle_connection_the_server_closed_is_replaced_once():
    async def answer_then_close(request, reader, writer):
        # Keep-alive by the headers, then closed without a word: what a server does at its idle timeout.
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.close()

    async with served(answer_then_close) as (server, pool):
        with await pool.request("POST", "/", b"1") as response:
            assert await response.read() == b"ok"
        await asyncio.sleep(0.2)  # the server has closed the pooled connection by now
        with await pool.request("POST", "/", b"2") as response:
            assert await response.read() == b"ok"
        assert server.connections == 2


async def test_releasing_an_unfinished_response_closes_the_connection_at_once():
    async def endless(request, reader, writer):
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await writer.drain()
        await reader.read()  # until the client hangs up

    async with served(endless) as (server, pool):
        response = await pool.request("POST", "/", b"")
        assert await response.read_chunk() == b"first"
        response.release()
        await asyncio.wait_for(server.closed.wait(), 0.1)


async def test_failures_say_what_failed():
    closed_port = Server(reply(b""))
    await closed_port.start()
    origin = closed_port.origin
    await closed_port.stop()
    await asyncio.sleep(0.05)
    with pytest.raises(HTTPFailure) as refused:
        await Pool(origin).request("POST", "/", b"")
    assert refused.value.kind == "connect"

    async def cut(request, reader, writer):
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this")
        await writer.drain()
        writer.transport.abort()

    async def garbage(request, reader, writer):
        writer.write(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
        await writer.drain()

    for handler, kind in ((cut, "broken"), (garbage, "broken")):
        async with served(handler) as (_, pool):
            with pytest.raises(HTTPFailure) as failed:
                with await pool.request("POST", "/", b"") as response:
                    await response.read()
            assert failed.value.kind == kind


async def test_waiting_for_a_free_connection_is_bounded_and_said_to_be_local():
    async def slow(request, reader, writer):
        await asyncio.sleep(1)
        await reply(b"late")(request, reader, writer)

    async with served(slow, max_connections=1, pool_timeout=0.2) as (_, pool):
        busy = asyncio.ensure_future(pool.request("POST", "/", b""))
        await asyncio.sleep(0.05)
        waiting = asyncio.ensure_future(pool.request("POST", "/", b""))
        await asyncio.sleep(0.05)
        assert pool.waiting(waiting) and not pool.waiting(busy)  # what the router asks on a timeout
        with pytest.raises(HTTPFailure) as failed:
            await waiting
        # "busy", not "timeout": no free connection is hubbub's own limit, never the upstream's failure.
        assert failed.value.kind == "busy" and not pool.waiting(waiting)
        busy.cancel()


class ForwardProxy:
    """A forward proxy: absolute-form requests are relayed; ``CONNECT`` opens a tunnel."""

    def __init__(self) -> None:
        self.seen: list[bytes] = []

    async def start(self) -> "ForwardProxy":
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://user:p%40ss@127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        self.seen.append(head)
        method, target, _ = head.split(b"\r\n", 1)[0].split(b" ")
        if method == b"CONNECT":
            host, port = target.decode().rsplit(":", 1)
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", int(port))
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            port = int(target.decode().split("/")[2].rsplit(":", 1)[1])
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
            up_writer.write(head)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer), return_exceptions=True)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: no certificate for the TLS test")
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


async def test_through_a_forward_proxy_plain_and_tls(tls_files):
    proxy = await ForwardProxy().start()
    plain = await Server(reply(b"plain")).start()
    pool = Pool(plain.origin, proxy=proxy.url)
    with await pool.request("POST", "/v1/chat/completions", b"{}") as response:
        assert await response.read() == b"plain"
    first = proxy.seen[-1].decode()
    assert first.startswith(f"POST {plain.origin}/v1/chat/completions HTTP/1.1\r\n")
    assert "Proxy-Authorization: Basic dXNlcjpwQHNz\r\n" in first  # user:p@ss
    await pool.aclose()

    cert, key = tls_files
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    secure = await Server(reply(b"secret"), tls=server_ctx).start()
    client_ctx = ssl.create_default_context(cafile=str(cert))
    direct = Pool(secure.origin, ssl_context=client_ctx)
    with await direct.request("POST", "/", b"") as response:
        assert await response.read() == b"secret"
    await direct.aclose()
    tunnelled = Pool(secure.origin, ssl_context=client_ctx, proxy=proxy.url)
    with await tunnelled.request("POST", "/", b"") as response:
        assert await response.read() == b"secret"
    assert proxy.seen[-1].startswith(f"CONNECT localhost:{secure.port} HTTP/1.1\r\n".encode())
    await tunnelled.aclose()
    with pytest.raises(HTTPFailure) as untrusted:  # the default trust store does not know this certificate
        await Pool(secure.origin).request("POST", "/", b"")
    assert untrusted.value.kind == "connect"
    await secure.stop()
    await plain.stop()


# -- a hostile upstream (issue 22, Medium 9) and the re-send rule (issue 19) -------------------------


async def test_a_flood_of_headers_is_refused_after_max_headers():
    async def flood(request, reader, writer):
        writer.write(b"HTTP/1.1 200 OK\r\n" + b"X-Flood: a\r\n" * 40_000 + b"Content-Length: 0\r\n\r\n")
        await writer.drain()

    async with served(flood) as (_, pool):
        with pytest.raises(HTTPFailure) as failed:
            await pool.request("POST", "/", b"")
    assert failed.value.kind == "broken" and failed.value.detail == "more than 100 response headers"


async def test_an_endless_header_line_is_refused_after_max_header_bytes():
    written = 0

    async def endless(request, reader, writer):
        nonlocal written
        writer.write(b"HTTP/1.1 200 OK\r\nX-Endless: ")
        for _ in range(10_000):  # 640 MB if nobody stops it
            writer.write(b"a" * 65536)
            written += 65536
            await writer.drain()

    async with served(endless, max_header_bytes=16 * 1024) as (server, pool):
        with pytest.raises(HTTPFailure) as failed:
            await pool.request("POST", "/", b"")
        await asyncio.wait_for(server.closed.wait(), 10)
    assert failed.value.kind == "broken" and "headers larger than 16384 bytes" in failed.value.detail
    assert written < 16 * 1024 * 1024  # hubbub hung up early (socket buffers hold what is in flight)


async def test_same_name_headers_are_joined_once():
    headers = "".join(f"X-Part: {i}\r\n" for i in range(90))
    async with served(reply(b"ok", headers=headers)) as (_, pool):
        with await pool.request("POST", "/", b"") as response:
            assert response.headers["x-part"] == ", ".join(str(i) for i in range(90))
            assert await response.read() == b"ok"


async def test_interim_responses_are_skipped_not_taken_for_the_answer():
    async def interim(request, reader, writer):
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>; rel=preload\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.05)
        await reply(b'{"answer": 42}', headers="X-Final: yes\r\n")(request, reader, writer)

    async with served(interim) as (server, pool):
        for _ in range(2):  # and the connection stays usable
            with await pool.request("POST", "/", b"") as response:
                assert response.status == 200 and response.headers.get("x-final") == "yes"
                assert "link" not in response.headers
                assert await response.read() == b'{"answer": 42}'
        assert server.connections == 1

    async def endless_interim(request, reader, writer):
        for _ in range(50):
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await writer.drain()

    async with served(endless_interim) as (_, pool):
        with pytest.raises(HTTPFailure) as failed:
            await pool.request("POST", "/", b"")
    assert failed.value.kind == "broken" and "interim" in failed.value.detail


async def test_a_compressed_body_is_inflated_a_bounded_step_at_a_time():
    bomb = gzip.compress(b"\0" * (200 * 1024 * 1024), compresslevel=9)  # 200 KB that inflate to 200 MiB
    assert len(bomb) < 300 * 1024
    async with served(reply(bomb, headers="Content-Encoding: gzip\r\n")) as (_, pool):
        with await pool.request("POST", "/", b"") as response:
            sizes = [len(await response.read_chunk()) for _ in range(8)]
            assert max(sizes) <= 256 * 1024 and sum(sizes) > 0
        with await pool.request("POST", "/", b"") as response:
            body = await response.read(limit=1024 * 1024)
            assert len(body) == 1024 * 1024 and not response.at_eof  # the other 199 MiB never inflated


async def test_a_reused_connection_closed_long_after_the_request_is_not_sent_again(caplog):
    async def answer_then_hold_and_close(request, reader, writer):
        if b"first" in request:
            await reply(b"ok")(request, reader, writer)
            return
        await asyncio.sleep(1.0)  # the upstream may have started on it: a generation, a charge…
        writer.close()

    async with served(answer_then_hold_and_close) as (server, pool):
        with await pool.request("POST", "/", b"first") as response:
            assert await response.read() == b"ok"
        with pytest.raises(HTTPFailure) as failed:
            await pool.request("POST", "/", b"second")
    assert failed.value.kind == "connect" and "after the request" in failed.value.detail
    assert [r.endswith(b"second") for r in server.requests] == [False, True]  # sent once, never again
    assert any("not sent again" in r.getMessage() for r in caplog.records)


async def test_a_reused_connection_closed_as_it_was_reused_is_sent_again_and_logged(caplog):
    caplog.set_level("INFO", logger="hubbub.providers.http1")
    seen: dict[int, int] = {}

    async def close_the_second_at_once(request, reader, writer):
        n = seen[id(writer)] = seen.get(id(writer), 0) + 1
        if n == 2:  # the server's idle close, crossing the reused connection's request
            writer.close()
            return
        await reply(b"ok")(request, reader, writer)

    async with served(close_the_second_at_once) as (server, pool):
        with await pool.request("POST", "/", b"1") as response:
            assert await response.read() == b"ok"
        with await pool.request("POST", "/", b"2") as response:
            assert await response.read() == b"ok"
        assert server.connections == 2 and len(server.requests) == 3
    assert any("sent again" in r.getMessage() for r in caplog.records)
