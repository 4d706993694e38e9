"""A bot's default tools in storage (migration 0006), on SQLite and PostgreSQL: stored, read back
as core ``ToolSpec``\\ s, replaced and cleared (issue 16)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hubbub.core.types import Bot, ToolSpec
from hubbub.storage.db import create_engine, migrate
from hubbub.storage.repositories import BotRepository

WEATHER = ToolSpec("get_weather", "The weather in a city",
                   {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}, True)
TIME = ToolSpec("get_time", "", {"type": "object", "properties": {}})


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
        await conn.exec_driver_sql("DELETE FROM bots")
    await eng.dispose()


async def test_a_bots_tools_are_stored_read_back_replaced_and_cleared(engine):
    repo = BotRepository(engine)
    made = await repo.create(Bot(uid="", slug="tooled", name="Tooled", tools=(WEATHER, TIME)))
    got = await repo.get("tooled")
    assert got is not None and got.tools == (WEATHER, TIME) and got.uid == made.uid
    assert isinstance(got.tools[0], ToolSpec) and got.tools[0].strict is True and got.tools[1].strict is None
    await repo.update(made.uid, tools=(TIME,))
    assert (await repo.get(made.uid)).tools == (TIME,)
    await repo.update(made.uid, tools=None)
    assert (await repo.get(made.uid)).tools is None
    async with engine.connect() as conn:  # no tools is SQL NULL, not a JSON null
        assert (await conn.exec_driver_sql("SELECT count(*) FROM bots WHERE tools IS NULL")).scalar() == 1


async def test_a_bot_without_tools_has_none(engine):
    repo = BotRepository(engine)
    await repo.create(Bot(uid="", slug="plain", name="Plain"))
    assert (await repo.get("plain")).tools is None
    assert [b.tools for b in await repo.list()] == [None]
