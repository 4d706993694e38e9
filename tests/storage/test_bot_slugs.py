"""Bot slugs are unique per owner (issue 22, Low: "bot slugs global across keys"): a user key
creating a slug another user key already has used to get 409, which told it that bot existed.
On SQLite and PostgreSQL, including a database that already had bots before the migration."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from hubbub.core.types import Bot
from hubbub.errors import Conflict
from hubbub.storage.db import MIGRATIONS_DIR, create_engine, migrate
from hubbub.storage.repositories import BotRepository
from support import start_server


async def _upgrade(engine, target: str) -> None:  # noqa: ANN001
    from alembic import command
    from alembic.config import Config

    def run(sync_conn) -> None:  # noqa: ANN001
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        cfg.attributes["connection"] = sync_conn
        command.upgrade(cfg, target)

    async with engine.begin() as conn:
        await conn.run_sync(run)


async def _admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(user="postgres", host="127.0.0.1", port=5432, database="test")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def old_engine(request: pytest.FixtureRequest, tmp_path: Path):
    """A database of its own at revision 0002 (slugs globally unique) holding a global and a user's bot."""
    database = None
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    else:
        request.getfixturevalue("pg_url")  # skips (or fails under CI) without PostgreSQL
        database = f"hubbub_slugs_{uuid.uuid4().hex[:10]}"
        await _admin(f'CREATE DATABASE "{database}"')
        url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{database}"
    engine = create_engine(url)
    await _upgrade(engine, "0002")
    async with engine.begin() as conn:
        for uid, slug, owner in (("u-global", "shared", None), ("u-alice", "alices", "key_alice")):
            await conn.execute(text(
                "INSERT INTO bots (uid, slug, name, system_prompt, rag_enabled, description, owner, created_at, "
                "updated_at) VALUES (:uid, :slug, :slug, '', false, '', :owner, 1, 1)"),
                {"uid": uid, "slug": slug, "owner": owner})
    yield engine
    await engine.dispose()
    if database is not None:
        await _admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


async def test_the_migration_keeps_bots_and_scopes_slugs_to_their_owner(old_engine):
    await migrate(old_engine)
    await migrate(old_engine)  # idempotent
    repo = BotRepository(old_engine)
    assert (await repo.get("shared", "key_bob")).uid == "u-global"
    assert (await repo.get("alices", "key_alice")).uid == "u-alice"
    assert await repo.get("alices", "key_bob") is None
    # Bob may use Alice's slug: he cannot see her bot, so he must not learn of it by a 409.
    bobs = await repo.create(Bot(uid="", slug="alices", name="Bob's", owner="key_bob"))
    assert (await repo.get("alices", "key_bob")).uid == bobs.uid
    assert (await repo.get("alices", "key_alice")).uid == "u-alice"
    with pytest.raises(Conflict):  # his own slug twice
        await repo.create(Bot(uid="", slug="alices", name="Again", owner="key_bob"))
    with pytest.raises(Conflict):  # a global bot's slug: he sees that one anyway
        await repo.create(Bot(uid="", slug="shared", name="Mine", owner="key_bob"))
    with pytest.raises(Conflict):  # two global bots
        await repo.create(Bot(uid="", slug="shared", name="Another", owner=None))
    # An admin may make a global bot with a slug some user has; each user still gets their own.
    glob = await repo.create(Bot(uid="", slug="alices", name="Global", owner=None))
    assert (await repo.get("alices", None)).uid == glob.uid
    assert (await repo.get("alices", "key_alice")).uid == "u-alice"
    with pytest.raises(Conflict):  # renaming onto a global slug
        await repo.update(bobs.uid, slug="shared")
    await repo.update(bobs.uid, slug="bobs")
    assert (await repo.get("bobs", "key_bob")).name == "Bob's"


async def test_two_user_keys_may_pick_the_same_slug_over_http(tmp_path):
    srv = start_server(tmp_path, embedded={"enabled": False})
    try:
        alice = srv.call(srv.container.keys.create("alice"))[1]
        bob = srv.call(srv.container.keys.create("bob"))[1]
        srv.container.auth.forget()
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            for key, name in ((alice, "Alice's"), (bob, "Bob's")):
                r = c.post("/api/bots", json={"slug": "helper", "name": name}, headers={"X-API-Key": key})
                assert r.status_code == 201, r.text
            for key, name in ((alice, "Alice's"), (bob, "Bob's")):
                assert c.get("/api/bots/helper", headers={"X-API-Key": key}).json()["name"] == name
                r = c.post("/api/bots", json={"slug": "helper", "name": "again"}, headers={"X-API-Key": key})
                assert r.status_code == 409, r.text
            r = c.post("/api/bots", json={"slug": "default", "name": "mine"}, headers={"X-API-Key": bob})
            assert r.status_code == 409  # the global default bot, which every key sees
    finally:
        srv.stop()
