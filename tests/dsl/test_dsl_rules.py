"""Normalisation and validation: invalid proposals are repaired or rejected, never passed on (issue 7)."""

from __future__ import annotations

import jsonschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hubbub.dsl import merge as mg
from hubbub.dsl.normalize import normalize
from hubbub.dsl.schema import FIELD_TYPES, REL_TYPES, Dsl, Field, Relationship, proposal_schema, proposal_to_dsl
from hubbub.dsl.validate import WIRE_SCHEMA, problems


def test_repairs_names_types_and_relationships():
    raw = Dsl.from_dict({
        "entities": {
            "blog_posts": {"fields": {"Title": {"type": "str", "required": True}, "author": {"type": "string"},
                                      "view_count": {"type": "int"}, "published": "bool", "ID": "int"}},
            "users": {"fields": {"email": {"type": "varchar", "unique": True}, "role": {"type": "enum"},
                                 "meta": {"type": "object"}}},
            "Tag": {"fields": {"name": {"type": "enum", "values": ["A", "a", "In Progress"]}}},
        },
        "relationships": [
            {"from": "BlogPost", "to": "users", "type": "many_to_one", "name": "author"},
            {"from": "users", "to": "blog_posts", "type": "one-to-many"},  # the same link, said the other way
            {"from": "BlogPost", "to": "Ghost", "type": "many-to-one"},  # names no entity
            {"from": "BlogPost", "to": "Tag", "type": "sideways"},  # no such kind
            {"from": "BlogPost", "to": "Tag", "type": "m2m"},
        ],
    })
    dsl = normalize(raw)
    assert problems(dsl) == []
    assert set(dsl.entities) == {"BlogPost", "User", "Tag"}
    post = dsl.entities["BlogPost"]
    assert list(post)[0] == "id" and post["id"].type == "uuid"
    assert post["title"].type == "string" and post["viewCount"].type == "integer" and post["published"].type == "boolean"
    assert "author" not in post and post["authorId"].type == "uuid"  # the plain field became the link's key
    assert dsl.entities["User"]["email"].unique and dsl.entities["User"]["meta"].type == "json"
    assert dsl.entities["User"]["role"].values == ["admin", "user"]  # an enum without values gets sensible ones
    assert dsl.entities["Tag"]["name"].values == ["a", "in_progress"]
    kinds = {(r.source, r.target, r.type, r.name) for r in dsl.relationships}
    assert kinds == {("BlogPost", "User", "many-to-one", "author"), ("User", "BlogPost", "many-to-one", None),
                     ("BlogPost", "Tag", "many-to-many", None)} or \
        ("BlogPost", "Tag", "many-to-many", None) in kinds and all(k[1] != "Ghost" for k in kinds)


def test_an_enum_with_no_known_values_becomes_a_string():
    dsl = normalize(Dsl.from_dict({"entities": {"Room": {"fields": {"kind": {"type": "enum"}}}}, "relationships": []}))
    assert dsl.entities["Room"]["kind"].type == "string" and problems(dsl) == []


def test_duplicate_fields_merge():
    dsl = normalize(Dsl.from_dict({"entities": {"Task": {"fields": {"due_date": "date", "dueDate": "string",
                                                                     "DueDate": "text"}}}, "relationships": []}))
    assert [f for f in dsl.entities["Task"] if f.lower() == "duedate"] == ["dueDate"]
    assert dsl.entities["Task"]["dueDate"].type == "date"


def test_validation_names_every_broken_rule():
    bad = Dsl(
        entities={"posts": {"title": Field("strin")}, "Tag": {"id": Field("uuid", True), "kind": Field("enum")},
                  "Note": {"id": Field("uuid", True), "Body": Field("text"), "body": Field("text")}},
        relationships=[Relationship("Tag", "Ghost", "many-to-one"), Relationship("Tag", "Note", "sideways"),
                       Relationship("Note", "Tag", "many-to-one")],
        phase="done", readiness=140, confidence=2.0,
    )
    found = "\n".join(problems(bad))
    for expected in ("'posts' is not a singular PascalCase", "posts has no uuid id", "unknown type 'strin'",
                     "enum Tag.kind has no values", "Note.Body is not a camelCase", "is a duplicate",
                     "names 'Ghost'", "unknown type 'sideways'", "no uuid foreign key Note.tagId",
                     "phase 'done'", "readiness", "confidence"):
        assert expected in found, expected


def test_the_wire_schema_accepts_a_normalised_dsl_and_rejects_junk():
    dsl = normalize(Dsl.from_dict({"entities": {"Post": {"fields": {"status": {"type": "enum", "values": ["draft"]}}}},
                                   "relationships": []}))
    jsonschema.Draft202012Validator(WIRE_SCHEMA).validate(dsl.to_dict())
    junk = dsl.to_dict()
    junk["entities"]["Post"]["fields"]["status"]["type"] = "varchar"
    assert not jsonschema.Draft202012Validator(WIRE_SCHEMA).is_valid(junk)


def test_the_proposal_schema_is_small_and_strict():
    small, rich = proposal_schema(), proposal_schema(rich=True)
    jsonschema.Draft202012Validator.check_schema(small)
    field = small["properties"]["entities"]["items"]["properties"]["fields"]["items"]
    assert set(field["properties"]) == {"name", "type"} and field["additionalProperties"] is False
    assert field["properties"]["type"]["enum"] == list(FIELD_TYPES)
    rel = rich["properties"]["relationships"]["items"]
    assert rel["properties"]["type"]["enum"] == list(REL_TYPES) and "name" in rel["properties"]
    parsed = proposal_to_dsl({"entities": [{"name": "Post", "fields": [{"name": "title", "type": "string"}]}],
                              "relationships": [{"from": "Post", "to": "User", "type": "many-to-one"}]})
    assert parsed.entities["Post"]["title"].type == "string" and parsed.relationships[0].target == "User"


def test_merge_rules_keep_the_model_consistent():
    dsl = Dsl()
    for name in ("Post", "User"):
        mg.ensure_entity(dsl, name)
    assert mg.add_relationship(dsl, "User", "Post", "one-to-many")  # stored from the side with the key
    assert [(r.source, r.target, r.type) for r in dsl.relationships] == [("Post", "User", "many-to-one")]
    assert not mg.add_relationship(dsl, "Post", "User", "many-to-one")  # duplicate
    assert not mg.add_relationship(dsl, "Post", "Ghost", "many-to-one")  # unknown entity
    mg.add_relationship(dsl, "User", "Post", "many-to-one")  # many each way
    assert [(r.source, r.target, r.type) for r in dsl.relationships] == [("User", "Post", "many-to-many")]


# Arbitrary junk, shaped roughly like what a model might write: normalising it always yields a valid DSL.
_names = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
_specs = st.one_of(
    st.text(max_size=10),
    st.fixed_dictionaries({"type": st.one_of(st.sampled_from(FIELD_TYPES + ("int", "str", "object")), st.text(max_size=6))},
                          optional={"required": st.booleans(), "unique": st.booleans(),
                                    "values": st.lists(st.one_of(st.text(max_size=6), st.integers()), max_size=4),
                                    "default": st.one_of(st.none(), st.integers(), st.text(max_size=4), st.booleans())}),
    st.integers(), st.none(),
)
_raw = st.fixed_dictionaries({
    "entities": st.dictionaries(_names, st.fixed_dictionaries({"fields": st.dictionaries(_names, _specs, max_size=5)}),
                                max_size=5),
    "relationships": st.lists(st.fixed_dictionaries({
        "from": _names, "to": _names,
        "type": st.one_of(st.sampled_from(REL_TYPES + ("has many", "1:1", "m2m")), st.text(max_size=8)),
    }, optional={"name": st.one_of(st.none(), _names)}), max_size=6),
})


_WIRE = jsonschema.Draft202012Validator(WIRE_SCHEMA)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_raw)
def test_normalising_anything_gives_a_valid_dsl(raw):
    dsl = normalize(Dsl.from_dict(raw))
    assert problems(dsl) == []
    _WIRE.validate(dsl.to_dict())
    assert problems(normalize(dsl)) == [] and normalize(dsl).model_dict() == dsl.model_dict()  # idempotent
