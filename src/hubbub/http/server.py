"""uvicorn as hubbub runs it: the limits a slow or hostile client meets before the app sees it.

uvicorn times out idle keep-alive connections (``timeout_keep_alive``) but not a connection
that sends its request line and headers slowly, or never finishes them: such a connection was
held for ever (issue 22). ``HeaderTimeout`` adds that timer to uvicorn's own HTTP protocol
classes: from the first byte of a request (or the moment the connection opens) its headers
must be complete within ``header_timeout_seconds``, else the client gets ``408`` and the
connection is closed; and they may take at most ``max_header_bytes`` (``431``). The body has its own deadline in the app (``body_timeout_seconds``,
``http/routing.read_body_limited``), where the route's dialect shapes the 408.

WebSocket messages get the HTTP body limit (``ws_max_size`` = ``max_body_bytes``: a bigger
message closes the socket with 1009 before it is buffered whole).

The settings and their defaults are listed in docs/security.md.
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn

from hubbub.settings import Settings

def _plain(status: bytes, body: bytes) -> bytes:
    return (b"HTTP/1.1 %s\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n%s" % (status, len(body), body))


_TIMEOUT_RESPONSE = _plain(b"408 Request Timeout", b"Request headers not received in time")
_TOO_LARGE_RESPONSE = _plain(b"431 Request Header Fields Too Large", b"Request headers too large")


class HeaderTimeout:
    """Mixed into a uvicorn HTTP protocol class (``httptools`` or ``h11``): a timer that runs
    while a request's headers are incomplete, and a count of the bytes they took so far (the
    httptools parser has no limit of its own). Both classes keep the request being served in
    ``cycle``, which changes exactly when a request's headers are complete."""

    header_timeout: float = 10.0
    max_header_bytes: int = 64 * 1024
    _header_timer: asyncio.TimerHandle | None = None
    _header_bytes: int = 0
    _seen_cycle: Any = None

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)  # type: ignore[misc]
        transport = self.transport  # type: ignore[attr-defined]
        if transport.get_protocol() is not self:  # upgraded to a WebSocket: no longer ours to time
            self._disarm()
            return
        cycle = self.cycle  # type: ignore[attr-defined]
        if cycle is not None and not cycle.more_body:
            # The whole body is in: the app reads it without arming the body timer (a hot path).
            cycle.scope["hubbub.body_complete"] = True
        if cycle is not self._seen_cycle:  # a request's headers are complete
            self._seen_cycle = cycle
            self._disarm()
            return
        if (cycle is None or cycle.response_complete) and self._header_timer is None:
            self._arm()  # bytes of the next request, its headers not complete yet
        if self._header_timer is not None:  # these bytes were (part of) headers still incomplete
            self._header_bytes += len(data)
            if self._header_bytes > self.max_header_bytes:
                self._refuse(_TOO_LARGE_RESPONSE)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]

    def _arm(self) -> None:
        loop = asyncio.get_running_loop()
        self._header_timer = loop.call_later(self.header_timeout, self._headers_too_slow)
        self._header_bytes = 0

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        self._refuse(_TIMEOUT_RESPONSE)

    def _refuse(self, response: bytes) -> None:
        """Answer ``response`` and close, unless a response is under way (then just close)."""
        self._disarm()
        transport = self.transport  # type: ignore[attr-defined]
        if transport.is_closing():
            return
        cycle = self.cycle  # type: ignore[attr-defined]
        if cycle is None or cycle.response_complete:
            transport.write(response)
        transport.close()


def http_protocol(header_timeout: float, max_header_bytes: int) -> type[asyncio.Protocol]:
    """uvicorn's own choice of HTTP protocol (httptools if installed, else h11), with the header
    timer and size limit."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as Base
    except ImportError:  # pragma: no cover - httptools is a dependency
        from uvicorn.protocols.http.h11_impl import H11Protocol as Base  # type: ignore[assignment]
    return type("HubbubHTTPProtocol", (HeaderTimeout, Base),
                {"header_timeout": header_timeout, "max_header_bytes": max_header_bytes})


def uvicorn_config(app: Any, settings: Settings, **overrides: Any) -> uvicorn.Config:
    """The uvicorn configuration ``hubbub serve`` (and the test servers) run the app with.

    ``log_config=None``: uvicorn's own lines go through the handler ``logs.configure`` set up
    (same format, secrets masked); its access log is off, the app logs one line per request
    with the request id (``http/middleware.py``)."""
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "log_config": None,
        "access_log": False,
        "http": http_protocol(settings.header_timeout_seconds, settings.max_header_bytes),
        "h11_max_incomplete_event_size": settings.max_header_bytes,
        "timeout_keep_alive": settings.keep_alive_seconds,
        "ws_max_size": settings.max_body_bytes,
        **overrides,
    }
    return uvicorn.Config(app, **options)
