"""The extractor's combination rules: who leads, what is kept, what is repaired (issue 7).

A scripted provider with the ``json_schema`` capability stands in for a model where a
test needs an exact proposal; the real embedded model is exercised in
``test_dsl_proposal.py`` and ``test_dsl_builder.py``.
"""

from __future__ import annotations

import json
from typing import Any

from hubbub.core.events import Finish, TextDelta, UsageReport
from hubbub.core.types import Message, ModelInfo, Usage, UsageRecord
from hubbub.dsl.analysis import analyze
from hubbub.dsl.extractor import DslExtractor, _adopt_grounded, new_user_messages
from hubbub.dsl.normalize import normalize
from hubbub.dsl.phase import readiness
from hubbub.dsl.schema import Dsl, Field
from hubbub.dsl.validate import problems
from hubbub.providers.registry import CatalogEntry
from hubbub.providers.base import Capabilities


class JsonModel:
    """Answers every request with ``answer`` (JSON text), recording what it was asked."""

    capabilities = Capabilities(json_schema=True)

    def __init__(self, answer: Any, name: str = "upstream") -> None:
        self.answer = answer if isinstance(answer, str) else json.dumps(answer)
        self.name = name
        self.requests: list[Any] = []

    async def stream(self, request):  # noqa: ANN001
        self.requests.append(request)
        yield TextDelta(self.answer)
        yield UsageReport(Usage(100, 20))
        yield Finish("stop")


def entry(provider: Any, model_id: str = "m") -> CatalogEntry:
    return CatalogEntry(ModelInfo(model_id, model_id, 8192, pricing_prompt=1.0), provider, model_id)


def chat(*user_turns: str) -> list[Message]:
    out: list[Message] = []
    for turn in user_turns:
        out += [Message("user", turn), Message("assistant", "Noted.")]
    return out


BLOG_PROPOSAL = {
    "entities": [
        {"name": "Post", "fields": [{"name": "title", "type": "string", "required": True, "unique": False, "values": []},
                                    {"name": "slug", "type": "string", "required": True, "unique": True, "values": []},
                                    {"name": "status", "type": "enum", "required": True, "unique": False,
                                     "values": ["draft", "published"]}]},
        {"name": "User", "fields": [{"name": "email", "type": "string", "required": True, "unique": True, "values": []}]},
        {"name": "Comment", "fields": [{"name": "body", "type": "text", "required": True, "unique": False, "values": []}]},
        {"name": "Tag", "fields": [{"name": "name", "type": "string", "required": True, "unique": True, "values": []}]},
    ],
    "relationships": [
        {"from": "Post", "to": "User", "type": "many-to-one", "name": "author"},
        {"from": "Comment", "to": "Post", "type": "many-to-one", "name": ""},
        {"from": "Post", "to": "Tag", "type": "many-to-many", "name": ""},
    ],
}


async def test_a_strong_model_leads():
    model = JsonModel(BLOG_PROPOSAL)
    recorded: list[UsageRecord] = []

    async def record(rec: UsageRecord) -> None:
        recorded.append(rec)

    extractor = DslExtractor(None, record_usage=record)  # type: ignore[arg-type]
    result = await extractor.extract(None, None, chat("Create a blog system"), entry(model))
    dsl = result.dsl
    assert set(dsl.entities) == {"Post", "User", "Comment", "Tag"}  # the model's entities, not the analysis'
    assert dsl.entities["Post"]["slug"].unique and dsl.entities["Post"]["authorId"].type == "uuid"
    assert dsl.entities["Post"]["status"].values == ["draft", "published"]
    assert {(r.source, r.target, r.type, r.name) for r in dsl.relationships} == {
        ("Post", "User", "many-to-one", "author"), ("Comment", "Post", "many-to-one", None),
        ("Post", "Tag", "many-to-many", None)}
    assert dsl.phase == "proposing" and problems(dsl) == []
    request = model.requests[0]  # one constrained, greedy request with the rich schema
    fmt = request.params.response_format
    assert fmt.type == "json_schema" and "values" in json.dumps(fmt.schema) and request.params.temperature == 0.0
    assert recorded and recorded[0].prompt_tokens == 100 and recorded[0].cost > 0  # the extraction is billed


async def test_a_strong_model_keeps_what_the_user_did_not_remove():
    previous = normalize(analyze(None, ["Each post has a title. Each comment belongs to a post. Users follow users."]).dsl)
    lazy = {"entities": [{"name": "Post", "fields": [{"name": "title", "type": "string", "required": True,
                                                      "unique": False, "values": []}]}], "relationships": []}
    extractor = DslExtractor(None)  # type: ignore[arg-type]
    kept = await extractor.extract(previous, "proposing", chat("Each post has a title.", "Thanks."), entry(JsonModel(lazy)))
    assert {"Post", "Comment", "User"} <= set(kept.dsl.entities)  # the model forgot them; the user did not drop them
    dropped = await extractor.extract(previous, "proposing", chat("Each post has a title.", "Drop comments."),
                                      entry(JsonModel(lazy)))
    assert "Comment" not in dropped.dsl.entities and dropped.dsl.phase == "refining"


async def test_an_acceptance_keeps_the_model_as_shown():
    previous = normalize(analyze(None, ["Each post has a title. Each comment belongs to a post."]).dsl)
    eager = JsonModel(BLOG_PROPOSAL)  # a model that would rather propose something bigger
    result = await DslExtractor(None).extract(previous, "proposing", chat("Posts and comments.", "Looks good!"),  # type: ignore[arg-type]
                                              entry(eager))
    assert result.dsl.phase == "ready" and result.dsl.model_dict() == previous.model_dict()
    assert result.dsl.readiness == readiness(previous, True) == 95  # Comment has no label field: 5 points short


async def test_an_invalid_proposal_is_repaired_before_it_is_used():
    junk = {"entities": {"blog_posts": {"fields": {"Title": "str", "id": "int"}}},
            "relationships": [{"from": "blog_posts", "to": "Ghost", "type": "has many"}]}
    model = JsonModel({"entities": [{"name": "blog_posts", "fields": [{"name": "Title", "type": "str"}]},
                                    {"name": "users", "fields": []}],
                       "relationships": [{"from": "blog_posts", "to": "Ghost", "type": "many-to-one"},
                                         {"from": "users", "to": "blog_posts", "type": "one-to-many"}]})
    extractor = DslExtractor(None)  # type: ignore[arg-type]
    result = await extractor.extract(None, None, chat("A blog."), entry(model))
    assert problems(result.dsl) == []
    assert set(result.dsl.entities) == {"BlogPost", "User"}
    assert result.dsl.entities["BlogPost"]["title"].type == "string"
    assert [(r.source, r.target, r.type) for r in result.dsl.relationships] == [("BlogPost", "User", "many-to-one")]
    assert Dsl.from_dict(junk).entities  # (the junk shape itself is readable, never raised on)


async def test_a_proposal_that_cannot_be_parsed_falls_back_to_the_analysis():
    extractor = DslExtractor(None)  # type: ignore[arg-type]
    result = await extractor.extract(None, None, chat("Each task has a title and a due date."), entry(JsonModel("}{")))
    assert set(result.dsl.entities) == {"Task"} and result.proposal is None
    assert result.dsl.confidence <= 0.5  # one source of evidence only


def test_an_invalid_candidate_is_never_returned():
    base = normalize(analyze(None, ["Each task has a title."]).dsl)
    broken = base.copy()
    broken.entities["Task"]["title"] = Field("varchar")
    assert DslExtractor._valid(broken, base, None).model_dict() == base.model_dict()
    worse = base.copy()
    worse.entities["bad name"] = {}
    assert DslExtractor._valid(worse, worse, None).model_dict() == Dsl().model_dict()


async def test_a_weak_model_only_adds_what_the_users_words_support():
    weak = JsonModel({"entities": [{"name": "Task", "fields": [{"name": "title", "type": "string"},
                                                               {"name": "salary", "type": "number"}]},
                                   {"name": "Blog", "fields": []}],
                      "relationships": [{"from": "Task", "to": "Blog", "type": "many-to-many"}]}, name="embedded")
    extractor = DslExtractor(None)  # type: ignore[arg-type]
    assert not extractor.is_strong(entry(weak))
    result = await extractor.extract(None, None, chat("Tasks with a title, please."), entry(weak))
    assert set(result.dsl.entities) == {"Task"}  # "Blog" appears nowhere in the user's words
    assert "title" in result.dsl.entities["Task"] and "salary" not in result.dsl.entities["Task"]
    assert result.dsl.relationships == []
    assert weak.requests[0].params.response_format.type == "json_schema"
    assert "values" not in json.dumps(weak.requests[0].params.response_format.schema)  # the small schema


def test_grounded_adoption_uses_entity_candidates():
    replay = analyze(None, ["Users can browse products by categories."])
    base = normalize(replay.dsl)
    proposal = normalize(Dsl.from_dict({"entities": {"Category": {"fields": {"name": "string"}},
                                                     "Warehouse": {"fields": {}}}, "relationships": []}))
    adopted = _adopt_grounded(base, proposal, replay)
    assert "Warehouse" not in adopted.entities
    assert ("Category" in adopted.entities) == ("Category" in replay.candidates)


async def test_without_json_schema_support_no_model_request_is_made():
    class Plain(JsonModel):
        capabilities = Capabilities()

    model = Plain(BLOG_PROPOSAL)
    result = await DslExtractor(None).extract(None, None, chat("A blog with posts and comments."), entry(model))  # type: ignore[arg-type]
    assert model.requests == [] and {"Post", "Comment"} <= set(result.dsl.entities)


def test_strength_rules():
    extractor = DslExtractor(None, strong_models=["tiny-upstream-but-trusted"], weak_models=["small-upstream"])  # type: ignore[arg-type]
    assert extractor.is_strong(entry(JsonModel({})))
    assert not extractor.is_strong(entry(JsonModel({}), "small-upstream"))
    assert not extractor.is_strong(entry(JsonModel({}, name="embedded")))
    assert extractor.is_strong(entry(JsonModel({}, name="embedded"), "tiny-upstream-but-trusted"))


def test_new_user_messages():
    messages = [Message("system", "s"), Message("user", "a"), Message("assistant", "x"), Message("user", "b"),
                Message("user", "c"), Message("assistant", "y")]
    assert new_user_messages(messages) == ["b", "c"]
    assert new_user_messages(messages[:-1]) == ["b", "c"]
    assert new_user_messages([Message("user", "only")]) == ["only"]


async def test_a_fault_in_the_reader_keeps_the_model_instead_of_failing_the_turn(monkeypatch):
    extractor = DslExtractor(None)  # type: ignore[arg-type]
    first = await extractor.extract(None, None, chat("Each task has a title."), entry(JsonModel("}{")))

    def broken(*_: Any) -> Any:
        raise IndexError("a reader bug")

    monkeypatch.setattr("hubbub.dsl.extractor.analyze", broken)
    again = await extractor.extract(first.dsl, first.dsl.phase, chat("Each task has a title.", "And (projects"),
                                    entry(JsonModel("}{")))
    assert set(again.dsl.entities) == {"Task"} and problems(again.dsl) == []
