"""Exports: JSON Schema, Mermaid, and PostgreSQL DDL that actually runs on the test PostgreSQL (issue 7)."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import asyncpg
import jsonschema
import pytest

from hubbub.dsl.analysis import analyze
from hubbub.dsl.export import json_schema, mermaid, render, sql
from hubbub.dsl.normalize import normalize
from hubbub.dsl.schema import Dsl

EVAL = Path(__file__).resolve().parents[2] / "bench" / "dsl_eval.json"


def extracted(*turns: str) -> Dsl:
    dsl = None
    for turn in turns:
        dsl = normalize(analyze(dsl, [turn]).dsl)
    assert dsl is not None
    return dsl


# Reserved words as names, a self-reference, a self many-to-many, two links to one table, defaults of every kind.
TRICKY = normalize(Dsl.from_dict({
    "entities": {
        "User": {"fields": {"email": {"type": "string", "required": True, "unique": True},
                            "role": {"type": "enum", "values": ["admin", "o'brien"], "default": "admin"},
                            "active": {"type": "boolean", "required": True, "default": False},
                            "settings": {"type": "json", "default": {"theme": "dark"}},
                            "ownedGroupId": {"type": "uuid", "required": False}}},
        "Order": {"fields": {"total": {"type": "number", "default": 0}, "select": {"type": "string"},
                             "placedAt": {"type": "datetime"}, "due": {"type": "date"}, "notes": {"type": "text"},
                             "count": {"type": "integer", "default": 1}}},
        "Group": {"fields": {"name": {"type": "string", "required": True}}},
        "Message": {"fields": {"body": {"type": "text"}}},
    },
    "relationships": [
        {"from": "Order", "to": "User", "type": "many-to-one"},
        {"from": "Group", "to": "Group", "type": "many-to-one"},
        {"from": "User", "to": "User", "type": "many-to-many", "name": "follows"},
        {"from": "User", "to": "Group", "type": "many-to-many"},
        {"from": "Message", "to": "User", "type": "many-to-one", "name": "sender"},
        {"from": "Message", "to": "User", "type": "many-to-one", "name": "recipient"},
        {"from": "User", "to": "Group", "type": "one-to-one", "name": "ownedGroup"},
    ],
}))


async def run_ddl(pg_database: str, ddl: str) -> list[str]:
    """Run ``ddl`` in a fresh schema of the session's PostgreSQL database; returns the tables it made."""
    url = pg_database.replace("postgresql+asyncpg://", "postgresql://")
    schema = f"t_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        await conn.execute(f'SET search_path TO "{schema}"')
        await conn.execute(ddl)
        rows = await conn.fetch("SELECT table_name FROM information_schema.tables WHERE table_schema = $1", schema)
        return sorted(r["table_name"] for r in rows)
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


@pytest.mark.postgres
async def test_sql_for_every_evaluation_case_runs_on_postgresql(pg_database):
    cases = json.loads(EVAL.read_text())
    assert len(cases) >= 25
    for case in cases:
        dsl = extracted(*case["turns"])
        tables = await run_ddl(pg_database, sql(dsl))
        assert set(tables) >= {re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower() for name in dsl.entities}, case["id"]


@pytest.mark.postgres
async def test_tricky_sql_runs_and_enforces_the_model(pg_database):
    ddl = sql(TRICKY)
    assert '"order"' in ddl and '"group"' in ddl and '"user"' in ddl  # reserved words are quoted
    tables = await run_ddl(pg_database, ddl)
    assert {"user", "order", "group", "message", "user_follows", "user_group"} <= set(tables)
    url = pg_database.replace("postgresql+asyncpg://", "postgresql://")
    schema = f"t_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"; SET search_path TO "{schema}"')
        await conn.execute(ddl)
        uid = await conn.fetchval('INSERT INTO "user" (email) VALUES ($1) RETURNING id', "a@example.com")
        row = await conn.fetchrow('SELECT role, active, settings FROM "user" WHERE id = $1', uid)
        assert (row["role"], row["active"], json.loads(row["settings"])) == ("admin", False, {"theme": "dark"})
        with pytest.raises(asyncpg.CheckViolationError):  # enum values are enforced
            await conn.execute('INSERT INTO "user" (email, role) VALUES ($1, $2)', "b@example.com", "root")
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute('INSERT INTO "user" (email) VALUES ($1)', "a@example.com")
        with pytest.raises(asyncpg.ForeignKeyViolationError):  # links are enforced
            await conn.execute('INSERT INTO "order" (user_id) VALUES ($1)', uuid.uuid4())
        await conn.execute('INSERT INTO "order" (user_id) VALUES ($1)', uid)
        assert await conn.fetchval('SELECT "count" FROM "order"') == 1
        await conn.execute('INSERT INTO user_follows (user_id, follows_id) VALUES ($1, $1)', uid)
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


def test_json_schema_describes_records():
    schema = json_schema(extracted("I need a blog with posts, authors, and comments. Posts have many tags."))
    jsonschema.Draft202012Validator.check_schema(schema)
    post = {"id": str(uuid.uuid4()), "title": "Hello", "authorId": str(uuid.uuid4()), "tagIds": []}
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    validator.validate({"Post": [post]})
    assert not validator.is_valid({"Post": [{**post, "id": "not-a-uuid"}]})
    assert not validator.is_valid({"Post": [{"id": str(uuid.uuid4())}]})  # title and authorId are required
    assert "References Author.id" in json.dumps(schema["$defs"]["Post"])


def test_json_schema_of_enums_and_types():
    schema = json_schema(TRICKY)
    user = schema["$defs"]["User"]["properties"]
    assert user["role"] == {"enum": ["admin", "o_brien"], "default": "admin"}
    assert user["email"]["type"] == "string" and schema["$defs"]["Order"]["properties"]["placedAt"]["format"] == "date-time"


def test_mermaid_er_diagram():
    text = mermaid(extracted("I need a blog with posts, authors, and comments"))
    lines = text.splitlines()
    assert lines[0] == "erDiagram"
    assert "    Post {" in lines and "        uuid id PK" in lines and "        uuid authorId FK" in lines
    assert '    Post }o--|| Author : "has"' in lines and '    Comment }o--|| Post : "has"' in lines
    for line in lines[1:]:  # every line is an entity block line, an attribute or a relationship
        assert re.fullmatch(r"    \w+ \{|    \}|        \w+ \w+( (PK|FK|UK)(,(PK|FK|UK))*)?( \"[^\"]*\")?"
                            r"|    \w+ (\}o|\|o|\|\|)--(\|\||o\||o\{) \w+ : \"[^\"]+\"", line), line


def test_mermaid_marks_cardinalities_and_optional_links():
    text = mermaid(TRICKY)
    assert '    User }o--o{ User : "follows"' in text
    assert '    Group }o--|| Group : "has"' in text
    assert "        string email UK" in text and 'enum role "admin, o_brien"' in text


def test_render_rejects_unknown_formats():
    assert render(Dsl(), "json").startswith("{") and "erDiagram" in render(Dsl(), "mermaid")
    with pytest.raises(ValueError):
        render(Dsl(), "yaml")
