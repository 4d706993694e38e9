"""The DSL through the builder dialect (issue 7): a real server, real SQLite, the real embedded model.

Replies are kept short (``max_tokens_cap``); the extraction's own model call is
bounded by the extractor's token and time limits. Where a test needs exact text
(the phase at every turn, the prompt the model was given), a scripted provider
replies and the extraction runs on the analysis alone (that provider has no JSON
schema support).
"""

from __future__ import annotations

import json
import uuid

import jsonschema
import pytest

from hubbub.core.types import Conversation
from hubbub.dsl.extractor import DslExtractor
from hubbub.dsl.validate import WIRE_SCHEMA
from hubbub.providers.base import Capabilities
from support import ScriptedProvider, collect_sse, register_scripted

CAP = 6


@pytest.fixture(autouse=True)
def short_replies(server, monkeypatch):
    monkeypatch.setattr(server.settings, "max_tokens_cap", CAP)
    extractor = next(h for h in server.container.turns.hooks if isinstance(h, DslExtractor))
    monkeypatch.setattr(extractor, "timeout", 8.0)  # bounded work per turn on a small CI box
    return extractor


def scripted(server, reply: str = "Noted.") -> tuple[str, ScriptedProvider]:
    model = f"scripted-{uuid.uuid4().hex[:8]}"
    provider = ScriptedProvider(reply)
    register_scripted(server, model, provider)
    return model, provider


async def turn(client, text: str, chat_id: str | None = None, **extra) -> tuple[str, list[dict]]:
    body = {"messages": [{"role": "user", "content": text}], **extra}
    if chat_id:
        body["chatId"] = chat_id
    r, events = await collect_sse(client, "POST", "/api/chat", json=body)
    assert r.status_code == 200, r.text
    return r.headers["x-chat-id"], [e.json() for e in events]


def dsl_and_phase(events: list[dict]) -> tuple[dict, str]:
    types = [e["type"] for e in events]
    assert types[0] == "chat" and types[-3:] == ["dsl", "phase", "done"], types
    dsl, phase = events[-3]["content"], events[-2]["content"]
    jsonschema.Draft202012Validator(WIRE_SCHEMA).validate(dsl)
    assert dsl["phase"] == phase
    return dsl, phase


def links(dsl: dict) -> set[tuple[str, str, str]]:
    return {(r["from"], r["type"], r["to"]) for r in dsl["relationships"]}


APPS = {
    "blog": (["I need a blog with posts, authors, and comments"],
             {"Post", "Comment", "Author"}, {("Post", "many-to-one", "Author"), ("Comment", "many-to-one", "Post")}),
    "task manager": (["I want to build a task manager.",
                      "Projects have many tasks. Each task has a title, a due date, a priority and a status.",
                      "Tasks are assigned to users, and users belong to a team."],
                     {"Project", "Task", "User", "Team"},
                     {("Task", "many-to-one", "Project"), ("Task", "many-to-one", "User"), ("User", "many-to-one", "Team")}),
    "shop": (["An online shop with products, categories, customers and orders.",
              "An order has many order items; each order item references a product and has a quantity."],
             {"Product", "Category", "Customer", "Order", "OrderItem"},
             {("Order", "many-to-one", "Customer"), ("OrderItem", "many-to-one", "Order"),
              ("OrderItem", "many-to-one", "Product")}),
}


@pytest.mark.parametrize("app", list(APPS))
async def test_apps_through_the_embedded_model(client, app):
    turns, entities, expected_links = APPS[app]
    chat_id = None
    for text in turns:
        chat_id, events = await turn(client, text, chat_id)
        assert any(e["type"] == "text" for e in events)
        dsl, phase = dsl_and_phase(events)
    assert entities <= set(dsl["entities"])
    assert expected_links <= links(dsl)
    for fields in dsl["entities"].values():
        assert fields["fields"]["id"] == {"type": "uuid", "required": True}
    assert phase in ("proposing", "refining")
    assert 0 < dsl["readiness"] <= 80 and 0 < dsl["confidence"] <= 1
    stored = (await client.get(f"/api/chat/{chat_id}")).json()
    assert stored["dsl"] == dsl and stored["phase"] == phase


async def test_every_phase_transition_over_one_chat(client, server):
    model, provider = scripted(server)
    chat_id, events = await turn(client, "I want to build a task manager.", model=model)
    dsl, phase = dsl_and_phase(events)
    assert phase == "clarifying" and "Task" in dsl["entities"]  # one entity, nothing said about it yet
    _, events = await turn(client, "Projects have many tasks. Each task has a title and a due date.", chat_id)
    dsl, phase = dsl_and_phase(events)
    assert phase == "proposing" and dsl["entities"]["Task"]["fields"]["dueDate"]["type"] == "date"
    _, events = await turn(client, "Add a priority to tasks.", chat_id)
    dsl, phase = dsl_and_phase(events)
    assert phase == "refining" and dsl["entities"]["Task"]["fields"]["priority"]["values"] == ["low", "medium", "high"]
    _, events = await turn(client, "Thanks, that helps.", chat_id)
    assert dsl_and_phase(events)[1] == "refining"  # neither a change nor an acceptance
    _, events = await turn(client, "Looks good, let's build it.", chat_id)
    ready, phase = dsl_and_phase(events)
    assert phase == "ready" and ready["readiness"] == 100 > dsl["readiness"]
    assert ready["entities"] == dsl["entities"]
    _, events = await turn(client, "Actually, drop projects.", chat_id)
    dsl, phase = dsl_and_phase(events)
    assert phase == "clarifying" or phase == "refining"
    assert "Project" not in dsl["entities"] and "projectId" not in dsl["entities"]["Task"]["fields"]
    _, events = await turn(client, "Each task also has many tags.", chat_id)
    assert dsl_and_phase(events)[1] in ("proposing", "refining")
    assert provider.requests and all(r.params.response_format is None for r in provider.requests)


async def test_clarifying_turns_ask_the_questions(client, server):
    model, provider = scripted(server, "What else?")
    chat_id, events = await turn(client, "I need a task management system", model=model)
    assert dsl_and_phase(events)[1] == "clarifying"
    system = [m.content for m in provider.requests[-1].messages if m.role == "system"]
    assert any("ask the user" in s and "What information does a task have" in s for s in system), system
    await turn(client, "Projects have many tasks; each task has a title.", chat_id)
    system = [m.content for m in provider.requests[-1].messages if m.role == "system"]
    assert any(s.startswith("The data model so far: ") and "Project(" in s for s in system), system
    stored = (await client.get(f"/api/chat/{chat_id}")).json()
    assert all(m["role"] != "system" for m in stored["messages"])  # the hint is never stored


class StrongModel(ScriptedProvider):
    """An upstream-like model: replies with text, and with a JSON proposal when a schema is asked for."""

    name = "upstream"
    capabilities = Capabilities(json_schema=True)

    def __init__(self, proposal: dict) -> None:
        super().__init__("Here is a model.")
        self.proposal = json.dumps(proposal)

    def pieces(self) -> list[str]:
        request = self.requests[-1] if self.requests else None
        if request is not None and request.params.response_format is not None:
            return [self.proposal]
        return super().pieces()


async def test_a_strong_model_leads_through_the_builder(client, server):
    proposal = {"entities": [
        {"name": "Post", "fields": [{"name": "title", "type": "string", "required": True, "unique": False, "values": []}]},
        {"name": "Author", "fields": [{"name": "email", "type": "string", "required": True, "unique": True, "values": []}]},
        {"name": "Comment", "fields": [{"name": "body", "type": "text", "required": True, "unique": False, "values": []}]},
    ], "relationships": [{"from": "Post", "to": "Author", "type": "many-to-one", "name": ""},
                         {"from": "Comment", "to": "Post", "type": "many-to-one", "name": ""}]}
    model = f"upstream-{uuid.uuid4().hex[:8]}"
    provider = StrongModel(proposal)
    register_scripted(server, model, provider)
    chat_id, events = await turn(client, "Create a blog system", model=model)
    dsl, phase = dsl_and_phase(events)
    assert phase == "proposing" and set(dsl["entities"]) == {"Post", "Author", "Comment"}
    assert dsl["entities"]["Author"]["fields"]["email"]["unique"] is True
    assert links(dsl) == {("Post", "many-to-one", "Author"), ("Comment", "many-to-one", "Post")}
    asked = [r for r in provider.requests if r.params.response_format is not None]
    assert len(asked) == 1 and asked[0].params.temperature == 0.0
    text = "".join(e["content"] for e in events if e["type"] == "text")
    assert text == "Here is a model."  # the proposal never reaches the chat


async def test_without_enable_dsl_nothing_is_extracted(client, server):
    model, provider = scripted(server)
    chat_id, events = await turn(client, "I need a blog with posts and comments", model=model, enableDSL=False)
    assert [e["type"] for e in events] == ["chat", "text", "done"]
    assert all(m.role != "system" for m in provider.requests[-1].messages)
    stored = (await client.get(f"/api/chat/{chat_id}")).json()
    assert stored["dsl"] is None and stored["phase"] is None


async def test_exports(client, server):
    model, _ = scripted(server)
    chat_id, _ = await turn(client, "I need a blog with posts, authors, and comments", model=model)
    r = await client.get(f"/api/chat/{chat_id}/dsl")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    assert r.json() == (await client.get(f"/api/chat/{chat_id}")).json()["dsl"]
    r = await client.get(f"/api/chat/{chat_id}/dsl", params={"format": "jsonschema"})
    assert r.headers["content-type"].startswith("application/schema+json")
    jsonschema.Draft202012Validator.check_schema(r.json())
    assert set(r.json()["$defs"]) == {"Post", "Author", "Comment"}
    r = await client.get(f"/api/chat/{chat_id}/dsl", params={"format": "sql"})
    assert r.headers["content-type"].startswith("application/sql")
    assert 'CREATE TABLE "post"' in r.text and 'REFERENCES "author"' in r.text
    r = await client.get(f"/api/chat/{chat_id}/dsl", params={"format": "mermaid"})
    assert r.headers["content-type"].startswith("text/plain") and r.text.startswith("erDiagram\n")
    assert "Comment }o--|| Post" in r.text


@pytest.mark.postgres
async def test_the_exported_sql_runs(client, server, pg_database):
    import asyncpg

    model, _ = scripted(server)
    chat_id, _ = await turn(client, "An online shop with products, categories, customers and orders.", model=model)
    await turn(client, "An order has many order items; each order item references a product.", chat_id)
    ddl = (await client.get(f"/api/chat/{chat_id}/dsl", params={"format": "sql"})).text
    conn = await asyncpg.connect(pg_database.replace("postgresql+asyncpg://", "postgresql://"))
    schema = f"t_{uuid.uuid4().hex[:10]}"
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"; SET search_path TO "{schema}"')
        await conn.execute(ddl)
        assert await conn.fetchval("SELECT count(*) FROM information_schema.tables WHERE table_schema = $1", schema) == 5
    finally:
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await conn.close()


async def test_export_errors(client, server):
    r = await client.get("/api/chat/chat_doesnotexist/dsl")
    assert r.status_code == 404 and r.json()["error"]["code"] == "CHAT_NOT_FOUND"
    model, _ = scripted(server)
    chat_id, _ = await turn(client, "A blog with posts.", model=model)
    r = await client.get(f"/api/chat/{chat_id}/dsl", params={"format": "yaml"})
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "VALIDATION_ERROR" and error["details"][0]["field"] == "format"
    conv_id = f"conv_{uuid.uuid4().hex[:10]}"  # a conversations-dialect conversation is not a builder chat
    server.call(server.container.conversations.create(Conversation(id=conv_id, kind="conversation")))
    assert (await client.get(f"/api/chat/{conv_id}/dsl")).status_code == 404


async def test_a_chat_before_its_first_model_exports_an_empty_model(client, server):
    chat_id = f"chat_{uuid.uuid4().hex[:12]}"
    server.call(server.container.conversations.create(Conversation(id=chat_id, kind="chat")))
    body = (await client.get(f"/api/chat/{chat_id}/dsl")).json()
    assert body == {"entities": {}, "relationships": [], "phase": "clarifying", "readiness": 0, "confidence": 0.0}
    sql = (await client.get(f"/api/chat/{chat_id}/dsl", params={"format": "sql"})).text
    assert "CREATE TABLE" not in sql and "BEGIN;" in sql
    assert json.loads((await client.get(f"/api/chat/{chat_id}/dsl", params={"format": "jsonschema"})).text)["$defs"] == {}
