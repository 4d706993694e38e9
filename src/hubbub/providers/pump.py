"""Reading an upstream in a task of its own, so that a cancel really closes its connection.

Why this exists (it looks like needless indirection): when a client disconnects,
Starlette cancels the request through an anyio cancel scope, and anyio re-delivers
that cancellation at every ``await`` until the task is done. httpx (httpcore) cleans
up an unfinished response by awaiting a lock before it closes the socket, so in the
request's task that cleanup is itself cancelled: the upstream connection stays open,
the upstream keeps generating, and the pool counts the connection as in use for good.

Here the upstream is read by a separate task that is cancelled exactly once, when
this iterator is closed: httpcore's shielded cleanup then completes and the socket
is closed at once. A small bounded queue keeps back-pressure (a slow client slows
the upstream read instead of buffering the whole answer).

Used by the Anthropic provider (its SDK runs on httpx). The OpenAI-compatible provider
needs none of this: its client (``http1.py``) closes an unfinished response synchronously.
"""

from __future__ import annotations

import asyncio
from typing import AsyncIterator, TypeVar

T = TypeVar("T")

_END = object()


async def in_own_task(source: AsyncIterator[T], tasks: set[asyncio.Task[None]], maxsize: int = 16) -> AsyncIterator[T]:
    """Yield what ``source`` yields (and raise what it raises), iterating it in its own task.

    ``tasks`` keeps the running tasks referenced (and lets their owner see them).
    """
    queue: asyncio.Queue[tuple[object, BaseException | None]] = asyncio.Queue(maxsize)

    async def pump() -> None:
        try:
            async for item in source:
                await queue.put((item, None))
        except Exception as exc:  # handed to the reader, who raises it in its own task
            await queue.put((_END, exc))
            return
        await queue.put((_END, None))

    task = asyncio.get_running_loop().create_task(pump())
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    try:
        while True:
            item, error = await queue.get()
            if error is not None:
                raise error
            if item is _END:
                return
            yield item  # type: ignore[misc]
    finally:
        # Not awaited: a cancelled reader must not wait; the task closes the upstream by itself.
        task.cancel()
