"""Stored responses on SQLite and PostgreSQL (issue 18): a chain's history root first, branches
that do not see each other, deletion, ownership, retention and its purge."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select, update

from hubbub.core.ids import new_id
from hubbub.core.types import Conversation, Message, StoredMessage, TextPart, ToolCall
from hubbub.storage.db import create_engine, migrate
from hubbub.storage.repositories import ConversationRepository
from hubbub.storage.responses import ResponseRepository, StoredResponse, responses
from hubbub.storage.tables import conversations, messages


@pytest.fixture(params=["sqlite", "postgres"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    else:
        url = request.getfixturevalue("pg_database")
    eng = create_engine(url)
    await migrate(eng)
    yield eng
    async with eng.begin() as conn:
        for table in ("responses", "messages", "conversations"):
            await conn.exec_driver_sql(f"DELETE FROM {table}")
    await eng.dispose()


async def _turn(engine, repo: ResponseRepository, said: str, answer: str, previous: str | None = None,
                owner: str | None = "key_a", parts: tuple | None = None) -> StoredResponse:
    """A stored response as the dialect makes one: its conversation, its row, its two messages."""
    rid = new_id("resp_")
    convs = ConversationRepository(engine)
    await convs.create(Conversation(id=rid, kind="response", owner=owner))
    resp = await repo.create(StoredResponse(id=rid, model="m", request={"model": "m"}, owner=owner,
                                            input_items=[{"id": "i", "type": "message"}], previous_id=previous))
    reply = new_id("msg_")
    await convs.add_messages(rid, [
        StoredMessage(id=new_id("msg_"), conversation_id=rid, role="user", content=said),
        StoredMessage(id=reply, conversation_id=rid, role="assistant", content=answer, parts=parts),
    ])
    await repo.set_channel(rid, reply)
    await repo.finish(rid, status="completed", output=[{"type": "message"}], usage={"total_tokens": 3},
                      completed_at=1)
    return resp


async def test_the_migration_adds_the_table(engine):
    async with engine.connect() as conn:
        columns = await conn.run_sync(lambda c: {col["name"] for col in inspect(c).get_columns("responses")})
    assert {"id", "owner", "previous_id", "status", "request", "input_items", "output", "channel",
            "expires_at"} <= columns


async def test_a_chain_reads_root_first_and_branches_stay_apart(engine):
    repo = ResponseRepository(engine)
    call = ToolCall("call_1", "f", '{"a":1}')
    root = await _turn(engine, repo, "one", "uno")
    left = await _turn(engine, repo, "two", "", root.id, parts=(TextPart("dos"), call))
    right = await _turn(engine, repo, "deux", "deux!", root.id)
    tip = await _turn(engine, repo, "three", "tres", left.id)
    assert await repo.history(tip.id) == [
        Message("user", "one"), Message("assistant", "uno"), Message("user", "two"),
        Message("assistant", [TextPart("dos"), call]), Message("user", "three"), Message("assistant", "tres")]
    assert await repo.history(right.id) == [Message("user", "one"), Message("assistant", "uno"),
                                            Message("user", "deux"), Message("assistant", "deux!")]
    got = await repo.get(left.id)
    assert (got.status, got.previous_id, got.usage, got.reply_status) == ("completed", root.id, {"total_tokens": 3},
                                                                          "complete")
    assert got.reply_parts == (TextPart("dos"), call)


async def test_an_empty_answer_is_left_out_of_the_history(engine):
    repo = ResponseRepository(engine)
    first = await _turn(engine, repo, "hello", "")
    assert await repo.history(first.id) == [Message("user", "hello")]


async def test_ownership_and_deletion(engine):
    repo = ResponseRepository(engine)
    root = await _turn(engine, repo, "one", "uno", owner="key_a")
    child = await _turn(engine, repo, "two", "dos", root.id, owner="key_a")
    assert await repo.get(root.id, "key_b") is None
    assert (await repo.get(root.id, "key_a")).id == root.id and (await repo.get(root.id)).id == root.id
    assert await repo.delete(root.id) and not await repo.delete(root.id)
    async with engine.connect() as conn:
        left = (await conn.execute(select(func.count()).select_from(messages)
                                   .where(messages.c.conversation_id == root.id))).scalar_one()
        convs = (await conn.execute(select(func.count()).select_from(conversations)
                                    .where(conversations.c.id == root.id))).scalar_one()
    assert (left, convs) == (0, 0), "its conversation and messages went with it"
    # A descendant keeps its own turn; its history now starts after the deleted link.
    assert await repo.history(child.id) == [Message("user", "two"), Message("assistant", "dos")]


async def test_retention_hides_then_purges_expired_responses(engine):
    repo = ResponseRepository(engine, retention_days=1, purge_every=0)
    old = await _turn(engine, repo, "old", "gone")
    new = await _turn(engine, repo, "new", "kept", old.id)
    assert new.expires_at - new.created_at == 86_400_000
    async with engine.begin() as conn:
        await conn.execute(update(responses).where(responses.c.id == old.id).values(expires_at=1))
    assert await repo.get(old.id) is None, "an expired response is gone for readers at once"
    assert await repo.history(new.id) == [Message("user", "new"), Message("assistant", "kept")]
    assert repo.purge_due()
    assert await repo.purge_expired(batch=1) == 1
    async with engine.connect() as conn:
        ids = set((await conn.execute(select(conversations.c.id))).scalars())
    assert old.id not in ids and new.id in ids
    forever = ResponseRepository(engine, retention_days=0)
    kept = await _turn(engine, forever, "x", "y")
    assert kept.expires_at is None and not forever.purge_due()
