"""UsageWriter: usage rows in batches, on real SQLite (the group commit of storage/usage_writer.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hubbub.core.types import UsageRecord
from hubbub.storage.db import create_engine, migrate
from hubbub.storage.repositories import UsageRepository
from hubbub.storage.usage_writer import UsageWriter


class CountingRepository(UsageRepository):
    """The real repository, counting the transactions (batches) it is asked for."""

    def __init__(self, engine) -> None:  # noqa: ANN001
        super().__init__(engine)
        self.batches: list[int] = []

    async def record_many(self, records: list[UsageRecord]) -> None:
        self.batches.append(len(records))
        await super().record_many(records)


@pytest.fixture
async def repo(tmp_path: Path):
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'usage.db'}")
    await migrate(engine)
    yield CountingRepository(engine)
    await engine.dispose()


def record(rid: str, tokens: int = 3) -> UsageRecord:
    return UsageRecord(model="m", prompt_tokens=tokens, completion_tokens=1, cost=0.0, request_id=rid)


async def test_submitted_records_are_stored_together_after_the_delay(repo):
    writer = UsageWriter(repo, delay=0.05)
    for i in range(20):
        writer.submit(record(f"r{i}"))
    assert await repo.count() == 0 and writer.pending == 20  # nothing on the request's path
    for _ in range(100):
        if await repo.count() == 20:
            break
        await asyncio.sleep(0.01)
    assert await repo.count() == 20
    assert repo.batches == [20]  # one transaction for all of them
    rows = await repo.summary()
    assert rows[0]["promptTokens"] == 60 and rows[0]["requests"] == 20


async def test_write_returns_once_stored_and_takes_the_queue_with_it(repo):
    writer = UsageWriter(repo, delay=10.0)  # a submitted record alone would wait 10 s
    writer.submit(record("early"))
    await writer.write(record("now"))
    assert await repo.count("now") == 1 and await repo.count("early") == 1
    assert repo.batches == [2]


async def test_flush_stores_everything_queued(repo):
    writer = UsageWriter(repo, delay=10.0)
    for i in range(5):
        writer.submit(record(f"f{i}"))
    await writer.flush()
    assert await repo.count() == 5 and writer.pending == 0


async def test_records_keep_the_time_they_were_queued(repo):
    writer = UsageWriter(repo, delay=0.2)
    writer.submit(record("stamped"))
    queued_at = writer._pending[0][0].created_at
    await writer.flush()
    async with repo._engine.connect() as conn:
        stored = (await conn.exec_driver_sql("SELECT created_at FROM usage WHERE request_id = 'stamped'")).scalar_one()
    assert stored == queued_at > 0


async def test_a_failed_batch_is_logged_and_does_not_block_the_next(repo, caplog):
    writer = UsageWriter(repo, delay=0.01)
    async with repo._engine.begin() as conn:  # the table is gone: the insert really fails
        await conn.exec_driver_sql("ALTER TABLE usage RENAME TO usage_away")
    await writer.write(record("lost"))  # returns all the same: usage never breaks a chat
    assert "could not record usage" in caplog.text
    async with repo._engine.begin() as conn:
        await conn.exec_driver_sql("ALTER TABLE usage_away RENAME TO usage")
    await writer.write(record("kept"))
    assert await repo.count("kept") == 1 and await repo.count("lost") == 0
