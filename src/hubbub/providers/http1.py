"""A lean HTTP/1.1 client for the upstream hot path: a keep-alive pool of asyncio
protocols, each parsing its responses with httptools (llhttp, the parser in Node.js).

Why not aiohttp or httpx: every proxied request passes through here, and a general
client's per-request machinery (request and response objects, header multidicts, URL
objects, cookie jars, tracing hooks, timers, a coroutine wake-up per received chunk)
cost ~300 µs of CPU per request on the reference box, against ~90 µs for this one
(``bench/overhead.py`` measures the whole path). It does what talking to a chat
completions endpoint needs and no more:

- one request at a time per connection, ``Content-Length`` bodies, responses framed by
  ``Content-Length``, chunked transfer coding or the end of the connection;
- a pool per origin, at most ``max_connections`` at once (waiting longer than
  ``pool_timeout`` for a free one fails as ``busy``: a local limit, not the upstream's
  fault); idle connections are reused for ``keepalive`` seconds, most recent first;
- a request on a reused connection that the server closed without a word is sent again
  once, on a new connection, **only when the upstream cannot have started on it** (issue
  19): the close came within ``_IDLE_RACE`` of the request (the server closed the idle
  connection as we reused it) or before the request was all written. A close later than
  that may follow real work (a generation begun, a charge made): it fails instead, and the
  channel router decides. Every re-send is logged;
- TLS (``https``), with the caller's ``ssl.SSLContext``; a forward proxy (``http://``
  proxy URL, with optional user:password): absolute-form requests for ``http`` targets,
  a ``CONNECT`` tunnel for ``https`` ones;
- ``gzip``/``deflate`` bodies are inflated (none is asked for: no ``Accept-Encoding``);
- back-pressure: a response whose reader falls behind by more than 256 KB pauses the socket;
- bounded against a hostile upstream (issue 22): the header block (``max_header_bytes``, counted
  as it arrives, before the parser has a whole line) and the number of header lines
  (``max_headers``); same-name headers are joined once, at the end of the block (a list per
  name, never a string rebuilt per line); interim ``1xx`` responses are skipped (at most
  ``_MAX_INTERIM``), never taken for the answer; a compressed body is inflated at most
  ``_INFLATE_STEP`` bytes per read, so a caller's own bound (``read(limit)``, an event
  size) holds however well the bytes compress.

A response not read to its end when released (the client went away, the stream broke,
a stall timed out) closes its connection at once, synchronously, so the upstream sees the
disconnect and can stop generating; a cancelled reader leaves nothing behind.

Failures raise ``HTTPFailure``: ``kind`` ``connect`` (no response began: refused, reset,
TLS, DNS), ``timeout`` (connecting), ``busy`` (no free connection within ``pool_timeout``),
``broken`` (the connection failed after the response began, or the bytes were not HTTP, or
were more than the bounds allow).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import logging
import ssl
import time
import zlib
from typing import Callable, Literal
from urllib.parse import unquote, urlsplit

import httptools

FailureKind = Literal["connect", "timeout", "busy", "broken"]

log = logging.getLogger(__name__)

_PAUSE_AT = 256 * 1024  # buffered response bytes at which reading pauses
_RESUME_AT = 64 * 1024
# A close this soon after the request was sent on a reused connection is the server's idle
# close crossing our request (its FIN was in flight): it cannot have started on the request.
_IDLE_RACE = 0.25
_MAX_INTERIM = 8  # interim (1xx) responses skipped before the answer; more is not HTTP we serve
_INFLATE_STEP = 256 * 1024  # most inflated bytes one read returns


class HTTPFailure(Exception):
    def __init__(self, kind: FailureKind, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


class _Connection(asyncio.Protocol):
    """One connection; the state of the response in flight lives here (one at a time)."""

    def __init__(self, max_header_bytes: int = 64 * 1024, max_headers: int = 100) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reused = False
        self.idle_since = 0.0
        self.sent_at = 0.0  # when the request in flight was handed to the socket
        self.closed_at = 0.0  # when the server closed (EOF or reset)
        self.unsent = 0  # request bytes still buffered here when the server closed
        self._max_header_bytes = max_header_bytes
        self._max_headers = max_headers
        self._waiter: asyncio.Future[None] | None = None
        self._start_response()

    def _start_response(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.status = 0
        self.headers: dict[str, str] = {}
        self._lines: dict[str, list[str]] = {}  # header values by name, joined when the block ends
        self._head_bytes = 0  # bytes received before the header block ended (status line included)
        self._header_count = 0
        self._interim = 0  # 1xx responses skipped
        self._in_interim = False
        self.headers_done = False
        self.complete = False
        self.keep_alive = False
        self.received = False  # any byte of this response
        self.error: HTTPFailure | None = None
        self.chunks: collections.deque[bytes] = collections.deque()
        self.buffered = 0
        self.paused = False

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.complete:  # bytes nobody asked for (no request in flight): not a connection to keep
            self.close()
            return
        self.received = True
        if not self.headers_done:
            # Counted as they come: httptools keeps a header line whole until it ends, so an
            # endless one would grow there unseen (checked below, one read past the bound at most).
            self._head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if self.error is None:
                self._fail(HTTPFailure("broken", f"not a valid HTTP response ({exc})"))
            else:
                self.close()
            return
        if not self.headers_done and self._head_bytes > self._max_header_bytes:
            self._fail(HTTPFailure("broken", f"response headers larger than {self._max_header_bytes} bytes"))
            return
        if self.buffered > _PAUSE_AT and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        if self.transport is not None:
            self.unsent = self.transport.get_write_buffer_size()
        self.closed_at = asyncio.get_running_loop().time()
        return False  # close the transport: a half-closed upstream sends nothing more

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed_at:
            self.closed_at = asyncio.get_running_loop().time()
        self.closed = True
        if self.headers_done and not self.complete and self._ends_with_connection():
            self.complete = True  # a body framed by the end of the connection
        elif not self.complete and self.error is None:
            what = type(exc).__name__ if exc else "closed by the server"
            when = "while the response came" if self.received else "before the response"
            self.error = HTTPFailure("broken" if self.headers_done else "connect", f"connection {what} {when}")
        self._wake()

    # -- httptools callbacks ------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self._max_headers:
            self.error = HTTPFailure("broken", f"more than {self._max_headers} response headers")
            raise ValueError("too many headers")  # stops the parser; data_received closes the connection
        key = name.decode("latin-1").lower()
        values = self._lines.get(key)
        if values is None:
            self._lines[key] = [value.decode("latin-1")]
        else:
            values.append(value.decode("latin-1"))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            # An interim response (100 Continue, 103 Early Hints): the answer is still to come.
            self._interim += 1
            self._in_interim = True
            self._lines.clear()
            self._header_count = 0
            if self._interim > _MAX_INTERIM:
                self.error = HTTPFailure("broken", f"more than {_MAX_INTERIM} interim responses")
                raise ValueError("too many interim responses")
            return
        self.status = status
        self.headers = {k: v[0] if len(v) == 1 else ", ".join(v) for k, v in self._lines.items()}
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)

    def on_message_complete(self) -> None:
        if self._in_interim:
            self._in_interim = False
            return
        self.complete = True
        self.keep_alive = self.parser.should_keep_alive()

    # -- used by the pool and the response ----------------------------------------------------

    def _ends_with_connection(self) -> bool:
        return "content-length" not in self.headers and "chunked" not in self.headers.get("transfer-encoding", "")

    def _fail(self, error: HTTPFailure) -> None:
        self.error = error
        self.close()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def until(self, ready: Callable[[], bool], kind: FailureKind) -> None:
        """Wait until ``ready()``; the connection's error, or a close first, raises (a close as
        ``kind``: what a close means depends on how far the response got)."""
        while not ready():
            if self.error is not None:
                raise self.error
            if self.closed:
                what = "while the response came" if kind == "broken" else "before the response"
                raise HTTPFailure(kind, f"connection closed {what}")
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def send(self, data: bytes) -> None:
        self._start_response()
        assert self.transport is not None
        self.transport.write(data)
        self.sent_at = asyncio.get_running_loop().time()

    def could_have_started(self) -> bool:
        """After a close with no byte of response: may the server have begun on the request?
        Not when part of it was still unsent here, nor when the close crossed it (``_IDLE_RACE``)."""
        if self.unsent:
            return False
        return self.closed_at - self.sent_at > _IDLE_RACE

    def take(self) -> bytes:
        data = self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)
        self.chunks.clear()
        self.buffered = 0
        if self.paused and self.transport is not None and not self.closed:
            self.paused = False
            self.transport.resume_reading()
        return data

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()
        self._wake()


class Response:
    """The status and headers of a response; its body comes with ``read_chunk`` / ``read``.
    ``release`` (always call it; ``with`` does) gives the connection back or closes it."""

    def __init__(self, pool: "Pool", conn: _Connection) -> None:
        self._pool = pool
        self._conn: _Connection | None = conn
        self.status = conn.status
        self.headers = conn.headers
        encoding = conn.headers.get("content-encoding", "").strip().lower()
        self._inflate = zlib.decompressobj(zlib.MAX_WBITS | 32) if encoding in ("gzip", "deflate") else None
        self._deflated = b""  # compressed bytes received but not inflated yet (``_INFLATE_STEP``)

    async def read_chunk(self) -> bytes:
        """What has arrived of the body since the last call, waiting for some; ``b""`` at its end.
        A compressed body comes inflated, at most ``_INFLATE_STEP`` bytes a call."""
        conn = self._conn
        if conn is None:
            return b""
        if self._inflate is not None:
            return await self._read_inflated(conn)
        if not conn.chunks:
            await conn.until(lambda: bool(conn.chunks) or conn.complete, "broken")
            if not conn.chunks:
                return b""
        return conn.take()

    async def _read_inflated(self, conn: _Connection) -> bytes:
        inflate = self._inflate
        assert inflate is not None
        while True:
            if not self._deflated:
                if not conn.chunks:
                    await conn.until(lambda: bool(conn.chunks) or conn.complete, "broken")
                    if not conn.chunks:
                        self._inflate = None
                        return inflate.flush(_INFLATE_STEP)
                self._deflated = conn.take()
            try:
                data = inflate.decompress(self._deflated, _INFLATE_STEP)
            except zlib.error as exc:
                raise HTTPFailure("broken", f"the compressed body is corrupt ({exc})") from None
            self._deflated = inflate.unconsumed_tail
            if data:
                return data

    @property
    def at_eof(self) -> bool:
        return self._conn is None or (self._conn.complete and not self._conn.chunks and not self._deflated)

    async def read(self, limit: int | None = None) -> bytes:
        """The body to its end, or its first ``limit`` bytes (and then ``at_eof`` is False): reading
        stops there, so no body costs more memory than ``limit`` and one read."""
        parts: list[bytes] = []
        size = 0
        while chunk := await self.read_chunk():
            parts.append(chunk)
            size += len(chunk)
            if limit is not None and size >= limit:
                return b"".join(parts)[:limit]
        return b"".join(parts)

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._pool._release(conn)

    def __enter__(self) -> "Response":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class Pool:
    """Connections to one origin (``scheme://host:port``)."""

    def __init__(self, origin: str, *, max_connections: int = 1000, connect_timeout: float = 10.0,
                 pool_timeout: float | None = None, keepalive: float = 4.0,
                 ssl_context: ssl.SSLContext | None = None, proxy: str | None = None,
                 user_agent: str = "hubbub", max_header_bytes: int = 64 * 1024, max_headers: int = 100) -> None:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {origin!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.tls = parts.scheme == "https"
        self._ssl = (ssl_context or ssl.create_default_context()) if self.tls else None
        default_port = self.port == (443 if self.tls else 80)
        host = f"[{self.host}]" if ":" in self.host else self.host
        self._authority = host if default_port else f"{host}:{self.port}"
        self._origin = f"{parts.scheme}://{self._authority}"
        self._proxy = _Proxy(proxy) if proxy else None
        self._absolute = self._proxy is not None and not self.tls  # absolute-form requests to the proxy
        self._fixed_headers = f"Host: {self._authority}\r\nUser-Agent: {user_agent}\r\nAccept: */*\r\n"
        if self._absolute and self._proxy and self._proxy.authorization:
            self._fixed_headers += f"Proxy-Authorization: {self._proxy.authorization}\r\n"
        self._max = max_connections
        self._slots = asyncio.Semaphore(max_connections)
        self._waiting: set[asyncio.Task[object] | None] = set()  # tasks waiting for a free connection
        self._connect_timeout = connect_timeout
        self._pool_timeout = connect_timeout if pool_timeout is None else pool_timeout
        self._limits = (max_header_bytes, max_headers)
        self._keepalive = keepalive
        self._idle: collections.deque[_Connection] = collections.deque()
        self._open: set[_Connection] = set()
        self._closed = False

    async def request(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
                      ) -> Response:
        """Send the request and wait for the response's status and headers."""
        if self._closed:
            raise HTTPFailure("connect", "the client is closed")
        target = self._origin + path if self._absolute else path
        extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        data = (f"{method} {target} HTTP/1.1\r\n{self._fixed_headers}{extra}"
                f"Content-Length: {len(body)}\r\n\r\n").encode("latin-1") + body
        if self._slots.locked():
            task = asyncio.current_task()
            self._waiting.add(task)
            try:
                async with asyncio.timeout(self._pool_timeout):
                    await self._slots.acquire()
            except TimeoutError:
                raise HTTPFailure("busy", f"all {self._max} connections busy for {self._pool_timeout:g}s") from None
            finally:
                self._waiting.discard(task)
        else:
            await self._slots.acquire()  # free: returns at once
        try:
            conn = self._take_idle()
            if conn is not None:
                conn.send(data)
                try:
                    return await self._response(conn)
                except HTTPFailure as exc:
                    if conn.received:
                        raise
                    if conn.could_have_started():
                        waited = conn.closed_at - conn.sent_at
                        log.warning("%s closed a reused connection %.2fs after the request, before any response: "
                                    "not sent again (it may have started on it)", self._origin, waited)
                        raise HTTPFailure("connect", f"connection closed {waited:.1f}s after the request, "
                                                     "before any response") from exc
                    # The server closed this idle connection as we reused it: once more, on a new one.
                    log.info("%s closed an idle connection as it was reused: request sent again", self._origin)
            conn = await self._connect()
            conn.send(data)
            return await self._response(conn)
        except BaseException:
            self._slots.release()
            raise

    async def _response(self, conn: _Connection) -> Response:
        try:
            await conn.until(lambda: conn.headers_done, "connect")
        except BaseException:
            self._discard(conn)
            raise
        return Response(self, conn)

    def _take_idle(self) -> _Connection | None:
        now = time.monotonic()
        idle = self._idle
        while idle and (idle[0].closed or now - idle[0].idle_since > self._keepalive):
            self._discard(idle.popleft())  # the oldest, unused for too long
        while self._idle:
            conn = self._idle.pop()  # the most recently used: the least likely to be closed by now
            if conn.closed or now - conn.idle_since > self._keepalive:
                self._discard(conn)
                continue
            conn.reused = True
            return conn
        return None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        proxy = self._proxy
        host, port = (proxy.host, proxy.port) if proxy else (self.host, self.port)
        try:
            async with asyncio.timeout(self._connect_timeout):
                if proxy is not None and self.tls:
                    conn = await self._tunnel(loop, proxy)
                else:
                    ctx = self._ssl if self.tls else None
                    _, conn = await loop.create_connection(self._new_connection, host, port, ssl=ctx,
                                                           server_hostname=self.host if ctx else None)
        except TimeoutError:
            raise HTTPFailure("timeout", f"no connection within {self._connect_timeout:g}s") from None
        except HTTPFailure:
            raise
        except (OSError, ssl.SSLError) as exc:
            raise HTTPFailure("connect", f"{type(exc).__name__}: {exc}") from None
        if self._closed:
            conn.close()
            raise HTTPFailure("connect", "the client is closed")
        self._open.add(conn)
        return conn

    async def _tunnel(self, loop: asyncio.AbstractEventLoop, proxy: "_Proxy") -> _Connection:
        """A ``CONNECT`` tunnel through the proxy, then TLS to the origin inside it."""
        transport, tunnel = await loop.create_connection(_Connection, proxy.host, proxy.port)
        auth = f"Proxy-Authorization: {proxy.authorization}\r\n" if proxy.authorization else ""
        target = f"{self.host}:{self.port}"
        tunnel.send(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{auth}\r\n".encode("latin-1"))
        try:  # a CONNECT answer has no body: its headers are all of it
            await tunnel.until(lambda: tunnel.headers_done, "connect")
        except HTTPFailure:
            transport.close()
            raise HTTPFailure("connect", "the proxy closed the connection") from None
        if not 200 <= tunnel.status < 300:
            transport.close()
            raise HTTPFailure("connect", f"the proxy refused the tunnel ({tunnel.status})")
        conn = self._new_connection()
        assert self._ssl is not None
        tls = await loop.start_tls(transport, conn, self._ssl, server_hostname=self.host)
        if tls is None:
            raise HTTPFailure("connect", "TLS could not start in the proxy tunnel")
        conn.connection_made(tls)
        return conn

    def _new_connection(self) -> _Connection:
        return _Connection(*self._limits)

    def waiting(self, task: asyncio.Task[object] | None) -> bool:
        """Is ``task`` waiting for a free connection (a local limit, not the upstream's slowness)?"""
        return task in self._waiting

    def _release(self, conn: _Connection) -> None:
        self._slots.release()
        if conn.complete and conn.keep_alive and not conn.closed and not conn.chunks and not self._closed:
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
        else:
            self._discard(conn)

    def _discard(self, conn: _Connection) -> None:
        conn.close()
        self._open.discard(conn)

    async def aclose(self) -> None:
        self._closed = True
        for conn in list(self._open):
            self._discard(conn)
        self._idle.clear()


class _Proxy:
    def __init__(self, url: str) -> None:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"only http:// forward proxies are supported, not {url!r}")
        self.host, self.port = parts.hostname, parts.port or 80
        self.authorization: str | None = None
        if parts.username is not None:
            user_pass = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            self.authorization = "Basic " + base64.b64encode(user_pass.encode()).decode("ascii")
