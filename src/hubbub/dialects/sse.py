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

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
DONE = b"data: [DONE]\n\n"
PING = b": ping\n\n"


def last_event_id(request: HTTPConnection) -> int | None:
    """The ``Last-Event-ID`` a reconnecting client sent, when it is one of our sequence numbers."""
    value = request.headers.get("last-event-id", "").strip()
    return int(value) if value.isdigit() else None


def frame(data: Any, event_id: int | None = None) -> bytes:
    body = b"data: " + orjson.dumps(data) + b"\n\n"
    if event_id is None:
        return body
    return b"id: " + str(event_id).encode() + b"\n" + body


async def with_pings(chunks: AsyncIterator[bytes], ping_seconds: float) -> AsyncIterator[bytes]:
    """Interleave ``: ping`` comments into ``chunks`` whenever it is quiet for ``ping_seconds``."""
    pending: asyncio.Future[bytes] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(chunks))
            done, _ = await asyncio.wait((pending,), timeout=ping_seconds)
            if not done:
                yield PING
                continue
            task, pending = pending, None
            try:
                chunk = task.result()
            except StopAsyncIteration:
                return
            yield chunk
    finally:
        if pending is not None and not pending.done():
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
        with contextlib.suppress(RuntimeError):
            await chunks.aclose()  # type: ignore[attr-defined]


class SSEResponse(StreamingResponse):
    media_type = "text/event-stream"

    def __init__(
        self,
        chunks: AsyncIterator[bytes],
        ping_seconds: float = 15.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(
            with_pings(chunks, ping_seconds),
            headers={**SSE_HEADERS, **(headers or {})},
            media_type="text/event-stream",
        )
