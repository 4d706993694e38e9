"""Usage records written in batches, off the request path (group commit).

One usage row per request, each in a transaction of its own, cost more CPU than the
rest of a proxied request together (SQLAlchemy's execution path plus three hops to
aiosqlite's thread, or a PostgreSQL round trip, per row). So records are queued and
inserted together, one transaction and one ``executemany`` per batch:

- ``submit`` (stateless chats: nothing waits for the row) queues the record; the batch
  is written ``delay`` seconds after the first record of it arrived, so under load a
  batch holds every record of that window, and at rest one request costs one write;
- ``write`` (stored chats, whose ``done`` event follows the row) queues the record and
  returns once the batch holding it is stored, starting that batch at once;
- ``flush`` writes whatever is queued (the app calls it at shutdown).

Each record's ``created_at`` is stamped when it is queued, not when it is written.
A failed batch is logged and dropped, as a failed single insert was: usage must never
break a chat.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

from hubbub.core.ids import now_ms
from hubbub.core.types import UsageRecord
from hubbub.storage.repositories import UsageRepository

log = logging.getLogger(__name__)


class UsageWriter:
    def __init__(self, repo: UsageRepository, delay: float = 0.1, max_batch: int = 1000) -> None:
        self._repo = repo
        self.delay = delay
        self.max_batch = max_batch
        self._pending: list[tuple[UsageRecord, asyncio.Future[None] | None]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        return len(self._pending)

    def submit(self, record: UsageRecord) -> None:
        """Queue ``record``; it is stored within about ``delay`` seconds."""
        self._pending.append((_stamped(record), None))
        if self._task is None and self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.delay, self._start)

    async def write(self, record: UsageRecord) -> None:
        """Queue ``record`` and return once it is stored (or its batch failed, which is logged)."""
        done = asyncio.get_running_loop().create_future()
        self._pending.append((_stamped(record), done))
        if self._task is None:
            self._start()
        # Shielded: a caller cancelled meanwhile does not take the record (or the batch) with it.
        await asyncio.shield(done)

    async def flush(self) -> None:
        """Store everything queued so far."""
        while self._pending or self._task is not None:
            if self._task is None:
                self._start()
            assert self._task is not None
            await asyncio.shield(self._task)

    def _start(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is None and self._pending:
            self._task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch = self._pending[: self.max_batch]
                del self._pending[: len(batch)]
                try:
                    await self._repo.record_many([record for record, _ in batch])
                except Exception:  # usage must never break a chat; it is logged for the operator
                    log.exception("could not record usage (%d records)", len(batch))
                for _, done in batch:
                    if done is not None and not done.done():
                        done.set_result(None)
                if not any(done is not None for _, done in self._pending):
                    break  # the rest waits for its own delay: more records join the batch
        finally:
            self._task = None
            if self._pending and self._timer is None:
                urgent = any(done is not None for _, done in self._pending)
                loop = asyncio.get_running_loop()
                self._timer = loop.call_later(0 if urgent else self.delay, self._start)


def _stamped(record: UsageRecord) -> UsageRecord:
    return record if record.created_at else replace(record, created_at=now_ms())
