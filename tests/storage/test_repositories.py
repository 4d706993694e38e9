"""The same storage tests on SQLite and on PostgreSQL: migrations, repositories, core types out."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect

from hubbub.core.ids import new_id
from hubbub.core.types import Bot, Conversation, StoredMessage, UsageRecord
from hubbub.errors import Conflict
from hubbub.storage.db import create_engine, migrate
from hubbub.storage.repositories import BotRepository, ConversationRepository, UsageRepository


@pytest.fixture(params=["sqlite", "postgres"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    else:
        url = request.getfixturevalue("pg_database")
    eng = create_engine(url)
    await migrate(eng)
    await migrate(eng)  # idempotent: a second start changes nothing
    yield eng
    async with eng.begin() as conn:
        for table in ("usage", "messages", "conversations", "bots", "api_keys"):
            await conn.exec_driver_sql(f"DELETE FROM {table}")
    await eng.dispose()


async def test_migrations_create_every_table(engine):
    async with engine.connect() as conn:
        names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert {"conversations", "messages", "bots", "api_keys", "usage", "alembic_version"} <= names


async def test_sqlite_runs_in_wal_mode(tmp_path):
    eng = create_engine(f"sqlite:///{tmp_path / 'wal.db'}")
    await migrate(eng)
    async with eng.connect() as conn:
        mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
    await eng.dispose()
    assert mode == "wal"


async def _conversation(repo: ConversationRepository, **kw) -> Conversation:
    return await repo.create(Conversation(id=new_id("conv_"), **kw))


async def test_conversation_roundtrip_returns_core_types(engine):
    repo = ConversationRepository(engine)
    conv = await _conversation(repo, kind="conversation", user_id="u1", group_id="g1", preset="default")
    got = await repo.get(conv.id)
    assert isinstance(got, Conversation)
    assert (got.user_id, got.group_id, got.preset, got.kind) == ("u1", "g1", "default", "conversation")
    msgs = [StoredMessage(id=new_id("msg_"), conversation_id=conv.id, role="user", content="hello"),
            StoredMessage(id=new_id("msg_"), conversation_id=conv.id, role="assistant", content="", status="streaming")]
    await repo.add_messages(conv.id, msgs)
    await repo.update_message(msgs[1].id, content="hi there", status="complete", prompt_tokens=5, completion_tokens=2)
    stored = await repo.messages(conv.id)
    assert [type(m) for m in stored] == [StoredMessage, StoredMessage]
    assert [(m.role, m.content, m.status) for m in stored] == [("user", "hello", "complete"),
                                                              ("assistant", "hi there", "complete")]
    assert stored[1].completion_tokens == 2 and stored[1].created_at > 0


async def test_list_filters_paginates_and_counts(engine):
    repo = ConversationRepository(engine)
    ids = []
    for i in range(5):
        conv = await _conversation(repo, kind="conversation", user_id="alice" if i % 2 == 0 else "bob", group_id="g")
        await repo.add_messages(conv.id, [StoredMessage(id=new_id("m"), conversation_id=conv.id, role="user",
                                                        content=f"message {i}")])
        ids.append(conv.id)
    page, total = await repo.list(kind="conversation", user_id="alice", limit=2, offset=0)
    assert total == 3 and len(page) == 2
    assert page[0].id == ids[4] and page[0].message_count == 1 and page[0].last_message == "message 4"
    rest, _ = await repo.list(kind="conversation", user_id="alice", limit=2, offset=2)
    assert [c.id for c in rest] == [ids[0]]
    latest = await repo.find_latest("conversation", "bob", "g", None, None)
    assert latest is not None and latest.id == ids[3]


async def test_clear_and_delete(engine):
    repo = ConversationRepository(engine)
    conv = await _conversation(repo, kind="conversation")
    await repo.add_messages(conv.id, [StoredMessage(id=new_id("m"), conversation_id=conv.id, role="user", content="x")])
    await repo.clear(conv.id)
    assert await repo.messages(conv.id) == [] and await repo.get(conv.id) is not None
    assert await repo.delete(conv.id) is True
    assert await repo.get(conv.id) is None and await repo.delete(conv.id) is False


async def test_ownership_filter(engine):
    repo = ConversationRepository(engine)
    conv = await _conversation(repo, kind="chat", owner="key-a")
    assert await repo.get(conv.id, owner="key-a") is not None
    assert await repo.get(conv.id, owner="key-b") is None
    assert await repo.get(conv.id) is not None  # admin / open server


async def test_streaming_rows_become_interrupted(engine):
    repo = ConversationRepository(engine)
    conv = await _conversation(repo, kind="chat")
    msg = StoredMessage(id=new_id("m"), conversation_id=conv.id, role="assistant", content="partial",
                        status="streaming")
    await repo.add_messages(conv.id, [msg])
    assert await repo.interrupt_streaming() == 1
    assert (await repo.messages(conv.id))[0].status == "interrupted"
    assert (await repo.messages(conv.id))[0].content == "partial"


async def test_bots_unique_slug_and_lookup_by_uid_or_slug(engine):
    repo = BotRepository(engine)
    bot = await repo.create(Bot(uid="", slug="taxson", name="Taxson", system_prompt="Taxes.", temperature=0.2))
    assert len(bot.uid) == 36
    assert (await repo.get("taxson")).uid == bot.uid
    assert (await repo.get(bot.uid)).slug == "taxson"
    with pytest.raises(Conflict):
        await repo.create(Bot(uid="", slug="taxson", name="Again"))
    await repo.update(bot.uid, name="Tax Son", temperature=None)
    again = await repo.get("taxson")
    assert again.name == "Tax Son" and again.temperature is None
    ensured = await repo.ensure(Bot(uid="", slug="taxson", name="ignored"))
    assert ensured.uid == bot.uid
    assert await repo.delete(bot.uid) and await repo.get("taxson") is None


async def test_usage_summary_per_model_and_day(engine):
    repo = UsageRepository(engine)
    for model, p, c in [("m1", 10, 5), ("m1", 1, 1), ("m2", 3, 4)]:
        await repo.record(UsageRecord(model=model, prompt_tokens=p, completion_tokens=c, cost=0.5, owner="k",
                                      request_id="r"))
    rows = await repo.summary(owner="k")
    by_model = {r["model"]: r for r in rows}
    assert by_model["m1"]["promptTokens"] == 11 and by_model["m1"]["completionTokens"] == 6
    assert by_model["m1"]["requests"] == 2 and by_model["m1"]["cost"] == pytest.approx(1.0)
    assert by_model["m2"]["totalTokens"] == 7
    assert await repo.summary(owner="other") == []
    assert await repo.count("r") == 3


async def test_every_part_of_a_message_round_trips(engine):
    """Typed parts are stored losslessly (issue 15); a text-only message stays text alone."""
    from hubbub.core.types import ImagePart, ReasoningPart, TextPart, ToolCall, ToolResult

    repo = ConversationRepository(engine)
    conv = await repo.create(Conversation(id=new_id("conv_"), kind="conversation"))
    parts = (
        ReasoningPart("Let me think", signature="EqQBCkYIBxgCKkD/opaque==", redacted=None),
        ReasoningPart(redacted="ErUBCkYIAxgCIkB+redacted"),
        TextPart("Looking it up. "),
        ToolCall("call_1", "get_weather", '{"city": "Oslo", "days": [1, 2]}'),
    )
    rows = [
        StoredMessage(id=new_id("msg_"), conversation_id=conv.id, role="user", content="Look: ",
                      parts=(TextPart("Look: "), ImagePart("https://example.test/cat.png", "high"))),
        StoredMessage(id=new_id("msg_"), conversation_id=conv.id, role="assistant", content="Looking it up. ",
                      parts=parts),
        StoredMessage(id=new_id("msg_"), conversation_id=conv.id, role="tool", content="",
                      parts=(ToolResult("call_1", (TextPart("Sunny"),), is_error=True),)),
        StoredMessage(id=new_id("msg_"), conversation_id=conv.id, role="user", content="Thanks"),
    ]
    await repo.add_messages(conv.id, rows)
    back = await repo.messages(conv.id)
    assert [m.as_message() for m in back] == [m.as_message() for m in rows]
    assert back[3].parts is None and back[3].as_message().parts == (TextPart("Thanks"),)
    # A streaming answer's final parts are written with its final update.
    await repo.update_message(back[3].id, content="Thanks", status="complete",
                              parts=(TextPart("Thanks"), ToolCall("c2", "f", "{}")))
    assert (await repo.messages(conv.id))[3].parts == (TextPart("Thanks"), ToolCall("c2", "f", "{}"))
