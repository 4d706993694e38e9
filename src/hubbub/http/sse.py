"""Server-sent events framing shared by the dialects.

Each event is ``data: <json>\\n\\n`` (with ``id: <n>`` first on stored chats).
A ``: ping`` comment goes out after ``ping_seconds`` of silence so proxies keep
idle streams open. Headers per API.md "Streaming".
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, AsyncIterator

import orjson
from starlette.requests import HTTPConnection
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from hubbub.errors import FieldProblem, InvalidRequest

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
DONE = b"data: [DONE]\n\n"
PING = b": ping\n\n"


class Last(bytes):
    """A stream's last chunk: ``SSEResponse`` sends it together with the end of the body, in one
    write (otherwise the end is a write, and a wake-up of the client, of its own)."""

    __slots__ = ()


MAX_EVENT_ID = 2**63 - 1  # Redis stream ids and the database's BIGINT both stop here


def last_event_id(request: HTTPConnection) -> int | None:
    """The ``Last-Event-ID`` a reconnecting client sent (None when it sent none, or an empty one).

    Our ids are ASCII decimal sequence numbers, so anything else — other digits (``"²"``,
    ``"١٢"``), signs, a number past ``MAX_EVENT_ID`` — is a 400 in the route's dialect shape
    (it was a 500, or a Redis error); not "no id", which would replay or, on the conversations
    route, send the message again (docs/api-decisions.md)."""
    value = request.headers.get("last-event-id", "").strip()
    if not value:
        return None
    if value.isascii() and value.isdigit() and len(value) <= 19 and int(value) <= MAX_EVENT_ID:
        return int(value)
    raise InvalidRequest(details=[FieldProblem(
        "Last-Event-ID", f"must be an event id this server sent: a decimal number up to {MAX_EVENT_ID}",
        "value_error", ("header", "Last-Event-ID"))])


def frame(data: Any, event_id: int | None = None) -> bytes:
    body = b"data: " + orjson.dumps(data) + b"\n\n"
    if event_id is None:
        return body
    return b"id: " + str(event_id).encode() + b"\n" + body


class SSEResponse(StreamingResponse):
    """An event stream: ``chunks`` (framed bytes) sent as they come, ``: ping`` when quiet.

    Why its own ``__call__`` (Starlette's would work, at a price paid per stream and per
    event): Starlette runs the body and a disconnect listener as two tasks of an anyio task
    group, and pings need something that can wait for the next chunk with a timeout; doing
    that per chunk (a task, a waiter and a timer for every event, as this module once did)
    cost 11-14 µs of event-loop CPU per event with 500-1000 streams, about four times what
    the rest of the response costs. Here the request's own task iterates ``chunks`` and sends
    each one; one watcher task per stream waits for the client to leave and then cancels
    that iteration (so the generation stops, as with Starlette), and one timer, re-armed at
    most once per ``ping_seconds``, sends a ping when nothing went out for that long.
    An event costs a clock read; a stream, one task and one timer.
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        chunks: AsyncIterator[bytes],
        ping_seconds: float = 15.0,
        headers: dict[str, str] | None = None,
        status_code: int = 200,
    ) -> None:
        super().__init__(chunks, status_code=status_code, headers={**SSE_HEADERS, **(headers or {})},
                         media_type="text/event-stream")
        self.ping_seconds = ping_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        stream = _Stream(send, self.ping_seconds)
        watcher = stream.loop.create_task(stream.watch(receive))
        try:
            end = b""
            async for chunk in self.body_iterator:
                if type(chunk) is Last:
                    end = chunk
                    break
                await stream.send(chunk)
            stream.streaming = False
            await stream.finish()
            await send({"type": "http.response.body", "body": bytes(end), "more_body": False})
        except asyncio.CancelledError:
            # The watcher cancelled us because the client left: the response simply ends, as
            # Starlette's does. Any other cancellation (shutdown) goes on up.
            if not (stream.gone and stream.task.uncancel() == 0):
                raise
        finally:
            stream.streaming = False
            watcher.cancel()
            stream.stop_pings()
            close = getattr(self.body_iterator, "aclose", None)
            if close is not None:  # left early (a failed send): the generation must stop
                with contextlib.suppress(RuntimeError):
                    await close()
        if self.background is not None:
            await self.background()


class _Stream:
    """One ``SSEResponse`` being sent: when it last sent an event, and its ping timer."""

    __slots__ = ("loop", "task", "_send", "_ping", "_last", "_due", "_timer", "_busy", "_pinging",
                 "streaming", "gone")

    def __init__(self, send: Send, ping_seconds: float) -> None:
        self.loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        self.task = task
        self._send = send
        self._ping = ping_seconds
        self._last = self.loop.time()  # when the last event went out
        self._busy = False  # an event is being sent (a slow client can hold a send up)
        self._pinging: asyncio.Task[None] | None = None  # a ping being sent, by its own short task
        self.streaming = True
        self.gone = False  # the client left
        self._due = self._last + ping_seconds
        self._timer: asyncio.TimerHandle | None = self.loop.call_at(self._due, self._tick)

    async def send(self, chunk: bytes) -> None:
        if self._pinging is not None:  # never two sends at once: a ping goes out whole, first
            await self._pinging
        self._busy = True
        try:
            await self._send({"type": "http.response.body", "body": chunk, "more_body": True})
        finally:
            self._busy = False
            self._last = self.loop.time()

    async def finish(self) -> None:
        """Stop pinging; returns once no ping is being sent (the last message must come last)."""
        self.stop_pings()
        if self._pinging is not None:
            await self._pinging

    def _tick(self) -> None:
        """The timer: a ping when no event went out for ``ping_seconds``, else wait out the rest.

        Events do not touch the timer (that would cost a timer per event); it re-arms itself
        from the time of the last event when it finds one was sent meanwhile."""
        self._timer = None
        if not self.streaming:
            return
        quiet = self._last + self._ping <= self._due
        if quiet and not self._busy and self._pinging is None:
            self._pinging = self.loop.create_task(self._send_ping())
        self._due = self._due + self._ping if quiet else self._last + self._ping
        self._timer = self.loop.call_at(self._due, self._tick)

    async def _send_ping(self) -> None:
        try:
            await self._send({"type": "http.response.body", "body": PING, "more_body": True})
        except Exception:  # the client is gone: the watcher, or the next event's send, ends the stream
            pass
        finally:
            self._pinging = None

    def stop_pings(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def watch(self, receive: Receive) -> None:
        """Wait for the client to leave, then cancel the response's iteration of its chunks
        (closing them: the generation stops)."""
        try:
            while (await receive())["type"] != "http.disconnect":
                pass
        except Exception:  # the server cannot tell us more: treat it as the client gone
            pass
        self.gone = True
        if self.streaming:
            self.task.cancel()
