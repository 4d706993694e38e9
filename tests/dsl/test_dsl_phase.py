"""Phase transitions, readiness and confidence: computed, every rule exercised (issue 7)."""

from __future__ import annotations

import pytest

from hubbub.dsl import merge as mg
from hubbub.dsl.analysis import analyze
from hubbub.dsl.normalize import normalize
from hubbub.dsl.phase import confidence, next_phase, proposable, questions, readiness
from hubbub.dsl.schema import Dsl, Field


def model(*entities: str, fields: bool = True, link: bool = True) -> Dsl:
    dsl = Dsl()
    for name in entities:
        mg.ensure_entity(dsl, name)
        if fields:
            dsl.entities[name]["name"] = Field("string", True)
    if link and len(entities) >= 2:
        mg.add_relationship(dsl, entities[1], entities[0], "many-to-one")
        dsl.entities[entities[1]][f"{entities[0].lower()}Id"] = Field("uuid", True)
    return dsl


EMPTY, ONE_BARE, BLOG = Dsl(), model("Task", fields=False), model("User", "Post")


def test_proposable():
    assert not proposable(EMPTY) and not proposable(ONE_BARE)
    assert proposable(model("Task")) and proposable(model("A", "B", fields=False, link=False))


@pytest.mark.parametrize(("previous", "dsl", "changed", "accepted", "expected"), [
    (None, EMPTY, False, False, "clarifying"),  # nothing yet
    (None, ONE_BARE, True, False, "clarifying"),  # one entity, nothing about it: too little
    ("clarifying", ONE_BARE, False, True, "clarifying"),  # accepting nothing stays clarifying
    (None, BLOG, True, False, "proposing"),  # clarifying -> proposing: a model is on the table
    ("clarifying", BLOG, True, True, "proposing"),  # accepted in the message that introduced it: not seen yet
    ("proposing", BLOG, False, False, "proposing"),  # nothing changed, nothing accepted
    ("proposing", BLOG, True, False, "refining"),  # proposing -> refining: the user changes it
    ("refining", BLOG, True, False, "refining"),
    ("refining", BLOG, False, True, "ready"),  # refining -> ready: accepted and valid
    ("proposing", BLOG, False, True, "ready"),  # proposing -> ready
    ("refining", BLOG, True, True, "refining"),  # "looks good, but add tags": a change, not an acceptance
    ("ready", BLOG, False, False, "ready"),  # stays ready
    ("ready", BLOG, True, False, "refining"),  # ready -> refining: changed after acceptance
    ("ready", EMPTY, True, False, "clarifying"),  # everything dropped: back to clarifying
    ("refining", ONE_BARE, True, False, "clarifying"),
])
def test_transitions(previous, dsl, changed, accepted, expected):
    assert next_phase(previous, dsl, changed=changed, accepted=accepted, valid=True) == expected


def test_assumed_fields_alone_do_not_make_a_proposal():
    """'I need a task management system' (the seed): one entity whose fields are only typical ones."""
    task = model("Task")
    assert proposable(task) and not proposable(task, supported=set())
    assert next_phase(None, task, changed=True, accepted=False, valid=True, supported=set()) == "clarifying"
    assert next_phase(None, task, changed=True, accepted=False, valid=True,
                      supported={("field", "Task", "name")}) == "proposing"
    assert "What information does a task have" in " ".join(questions(task, supported=set()))


def test_ready_needs_a_valid_model():
    assert next_phase("refining", BLOG, changed=False, accepted=True, valid=False) == "refining"


def test_readiness_is_the_documented_sum():
    assert readiness(EMPTY, False) == 0
    assert readiness(ONE_BARE, False) == 15 + 0 + 0 + 0 + 15  # one entity, trivially connected
    assert readiness(model("Task"), False) == 15 + 30 + 10 + 15
    two_loose = model("A", "B", link=False)
    assert readiness(two_loose, False) == 15 + 10 + 30 + 10 + 0
    assert readiness(BLOG, False) == 80 and readiness(BLOG, True) == 100
    half = model("User", "Post")
    half.entities["Post"] = {"id": half.entities["Post"]["id"], "userId": half.entities["Post"]["userId"]}
    assert readiness(half, False) == 15 + 10 + 15 + 5 + 15  # Post has only a key: half the entities described
    assumed = readiness(BLOG, False, supported={("field", "User", "name")})  # Post's name was only assumed
    assert assumed == 15 + 10 + 15 + 5 + 15 and readiness(BLOG, True, supported=set()) == 100


def test_confidence_counts_agreement_between_text_and_model():
    dsl = normalize(analyze(None, ["Each comment belongs to a post and has a body."]).dsl)
    text = analyze(None, ["Each comment belongs to a post and has a body."]).provenance
    keys = mg.element_keys(dsl)
    stated = [k for k in keys if text.get(k) == "stated"]
    inferred = [k for k in keys if text.get(k) == "inferred"]
    expected_alone = (len(stated) * 1.0 + len(inferred) * 0.5) / 2 / len(keys)
    assert confidence(dsl, text, None) == round(expected_alone, 2)
    assert confidence(dsl, text, None) <= 0.5  # one source alone never claims more than half
    agreeing = confidence(dsl, text, dsl)  # a model that proposed exactly the same
    assert agreeing == round((len(stated) * 1.0 + len(inferred) * 0.5 + len(keys)) / 2 / len(keys), 2)
    assert agreeing > confidence(dsl, text, model("Unrelated"))
    assert confidence(EMPTY, {}, None) == 0.0


def test_questions_target_what_is_missing():
    assert "main things" in questions(EMPTY)[0]
    asked = " ".join(questions(ONE_BARE))
    assert "What information does a task have" in asked and "Besides tasks" in asked
    loose = model("Invoice", "Client", link=False)
    assert any("How does an invoice relate" in q or "How does a client relate" in q for q in questions(loose))
    assert questions(BLOG) == []  # complete enough: nothing to ask
