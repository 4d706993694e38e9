"""The deterministic analysis of the user's words (issue 7): entities, fields, links and edits."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hubbub.dsl.analysis import accepts, analyze
from hubbub.dsl.normalize import normalize
from hubbub.dsl.schema import Dsl
from hubbub.dsl.text import camel, pascal, plural, singular
from hubbub.dsl.validate import problems


def run(*turns: str) -> Dsl:
    dsl = None
    for turn in turns:
        dsl = normalize(analyze(dsl, [turn]).dsl)
    assert dsl is not None and problems(dsl) == []
    return dsl


def links(dsl: Dsl) -> set[tuple[str, str, str]]:
    return {(r.source, r.type, r.target) for r in dsl.relationships}


@pytest.mark.parametrize(("word", "one"), [
    ("posts", "post"), ("categories", "category"), ("addresses", "address"), ("statuses", "status"),
    ("people", "person"), ("boxes", "box"), ("warehouses", "warehouse"), ("movies", "movie"), ("status", "status"),
    ("quizzes", "quiz"), ("class", "class"), ("courses", "course"),
])
def test_singular(word, one):
    assert singular(word) == one


def test_names_and_plurals():
    assert pascal("order items") == "OrderItem" and pascal("check-in") == "CheckIn" and pascal("posts") == "Post"
    assert camel("due date") == "dueDate" and camel("created_at") == "createdAt" and camel("ID") == "id"
    assert plural("category") == "categories" and plural("person") == "people" and plural("bus") == "buses"


def test_the_seeds_blog_example():
    """001_54ef0591118bf9b1.txt: Post, Comment and an author entity; Post->author and Comment->Post many-to-one."""
    dsl = run("I need a blog with posts, authors, and comments")
    assert {"Post", "Comment", "Author"} <= set(dsl.entities)
    assert ("Post", "many-to-one", "Author") in links(dsl)
    assert ("Comment", "many-to-one", "Post") in links(dsl)
    assert dsl.entities["Post"]["authorId"].type == "uuid" and dsl.entities["Comment"]["postId"].type == "uuid"
    for fields in dsl.entities.values():
        assert fields["id"].type == "uuid" and fields["id"].required


def test_fields_types_enums_from_field_words():
    dsl = run("Projects have many tasks. Each task has a title, a due date, a priority, a status and an email.")
    task = dsl.entities["Task"]
    assert task["title"].type == "string" and task["title"].required
    assert task["dueDate"].type == "date"
    assert task["priority"].type == "enum" and task["priority"].values == ["low", "medium", "high"]
    assert task["status"].type == "enum" and task["status"].values == ["todo", "in_progress", "done"]
    assert task["email"].unique
    assert ("Task", "many-to-one", "Project") in links(dsl)


def test_enum_values_named_by_the_user():
    dsl = run("Each deal belongs to a company, has an amount and a stage (lead, qualified, won or lost).")
    assert dsl.entities["Deal"]["stage"].values == ["lead", "qualified", "won", "lost"]
    assert dsl.entities["Deal"]["amount"].type == "number"
    assert ("Deal", "many-to-one", "Company") in links(dsl)


def test_has_many_belongs_to_and_verbs():
    dsl = run("A board has many threads. Each reply belongs to a thread. Customers place orders. "
              "Users can follow other users.")
    assert {("Thread", "many-to-one", "Board"), ("Reply", "many-to-one", "Thread"),
            ("Order", "many-to-one", "Customer"), ("User", "many-to-many", "User")} <= links(dsl)


def test_labels_are_many_to_many():
    dsl = run("Each post has a title and many tags.")
    assert ("Post", "many-to-many", "Tag") in links(dsl) or ("Tag", "many-to-many", "Post") in links(dsl)
    assert "tagId" not in dsl.entities["Post"]


def test_a_transaction_verb_goes_through_its_entity():
    dsl = run("A hotel booking app. Hotels have rooms, guests make bookings for a room with a check-in date.")
    assert {("Room", "many-to-one", "Hotel"), ("Booking", "many-to-one", "Guest"),
            ("Booking", "many-to-one", "Room")} <= links(dsl)
    assert dsl.entities["Booking"]["checkInDate"].type == "date"


def test_a_role_links_to_the_person_entity_with_a_name():
    dsl = run("Users belong to teams. Each task has a title and an assignee.")
    rel = next(r for r in dsl.relationships if r.source == "Task")
    assert (rel.target, rel.type, rel.name) == ("User", "many-to-one", "assignee")
    assert "assigneeId" in dsl.entities["Task"]


# -- incremental edits --------------------------------------------------------


def test_add_a_due_date_to_tasks():
    before = run("A todo app with projects and tasks. Each task has a title.")
    assert "dueDate" not in before.entities["Task"]
    after = normalize(analyze(before, ["Add a due date to tasks."]).dsl)
    assert after.entities["Task"]["dueDate"].type == "date"
    assert set(after.entities) == set(before.entities)  # the existing model changed, not a fresh one


def test_drop_tags_removes_the_entity_its_links_and_foreign_keys():
    before = run("Each post has a title, an author and many tags. Posts belong to a category.")
    assert "Tag" in before.entities
    after = normalize(analyze(before, ["drop tags"]).dsl)
    assert "Tag" not in after.entities
    assert all("Tag" not in (r.source, r.target) for r in after.relationships)
    assert ("Post", "many-to-one", "Category") in links(after) and "title" in after.entities["Post"]


def test_drop_a_field_from_one_entity():
    before = run("Each task has a title and a due date. Each project has a due date.")
    after = normalize(analyze(before, ["Remove the due date from tasks."]).dsl)
    assert "dueDate" not in after.entities["Task"] and "dueDate" in after.entities["Project"]


def test_a_task_can_have_many_assignees_turns_the_link_many_to_many():
    before = run("Tasks are assigned to users.")
    assert ("Task", "many-to-one", "User") in links(before) and "assigneeId" in before.entities["Task"]
    after = normalize(analyze(before, ["A task can have many assignees."]).dsl)
    assert ("Task", "many-to-many", "User") in links(after)
    assert ("Task", "many-to-one", "User") not in links(after) and "assigneeId" not in after.entities["Task"]


def test_only_one_turns_many_to_many_back():
    before = run("Each order has many customers.")
    assert any(r.type == "many-to-many" for r in before.relationships) or \
        ("Customer", "many-to-one", "Order") in links(before)
    after = normalize(analyze(before, ["An order can only have one customer."]).dsl)
    assert ("Order", "many-to-one", "Customer") in links(after)
    assert not any(r.type == "many-to-many" for r in after.relationships)


def test_rename_and_flags_and_values():
    before = run("Readers borrow books. Each reader has an email and a nickname. Each book has a status.")
    after = normalize(analyze(before, [
        "Rename readers to members. Make the nickname unique. The status can be available, loaned or lost.",
    ]).dsl)
    assert "Member" in after.entities and "Reader" not in after.entities
    assert after.entities["Member"]["nickname"].unique
    assert after.entities["Book"]["status"].values == ["available", "loaned", "lost"]
    assert any({r.source, r.target} == {"Member", "Book"} for r in after.relationships)


def test_negated_need_drops():
    before = run("Each task has a title, a due date and a priority.")
    after = normalize(analyze(before, ["Tasks don't need a priority."]).dsl)
    assert "priority" not in after.entities["Task"] and "dueDate" in after.entities["Task"]


def test_nothing_in_small_talk():
    assert run("Hello! How are you today?").entities == {}
    assert run("Say hello.").entities == {}


def test_provenance_marks_stated_and_inferred():
    result = analyze(None, ["I need a blog with posts, authors, and comments"])
    assert result.provenance[("entity", "Post")] == "stated"
    # The link from Comment to Post is domain knowledge, not something the user wrote.
    assert result.provenance[("rel", "Comment", "Post", "many-to-one")] == "inferred"
    assert result.provenance[("field", "Post", "title")] == "inferred"
    stated = analyze(None, ["Each comment belongs to a post and has a body."])
    assert stated.provenance[("rel", "Comment", "Post", "many-to-one")] == "stated"
    assert stated.provenance[("field", "Comment", "body")] == "stated"


@pytest.mark.parametrize("text", ["Looks good!", "That's it.", "let's build it", "Perfect, ship it", "yes", "LGTM"])
def test_acceptance(text):
    assert accepts(text)


@pytest.mark.parametrize("text", ["That doesn't look good", "Not quite right", "no, add tags", "Add a title",
                                  "It looks like a blog", "wait"])
def test_not_acceptance(text):
    assert not accepts(text)


def test_a_pasted_document_is_bounded():
    long = "Each task has a title. " * 5000
    dsl = normalize(analyze(None, [long]).dsl)
    assert set(dsl.entities) == {"Task"}


_PIECES = ("customers", "orders", "an order", "each", "has", "several", "products", "with", "a", "the", "(", ")",
           "(a", ",", ".", ":", "=", "+", "->", "—", "is", "sent", "in", "by", "one", "of", "our", "1+", "0..n",
           "w/", "judge's", "it's", "led", "don't", "need", "their", "own", "table", "per", "\n- ", "\n2) ", "lists",
           "quantities", "every", "part", "we", "buy", "for", "a date range", "records:", "like", "e.g.")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_PIECES), max_size=40))
def test_any_text_reads_into_a_valid_model(pieces):
    """Whatever the user types (an unclosed parenthesis, a stray dash): the reader never raises, and the model
    it gives normalises to a valid one."""
    dsl = normalize(analyze(None, [" ".join(pieces)]).dsl)
    assert problems(dsl) == []


def test_an_unclosed_parenthesis_in_a_list_is_read():
    dsl = run("An item has a title, a price, a condition (a  and pictures.")
    assert "Item" in dsl.entities and "title" in dsl.entities["Item"]
