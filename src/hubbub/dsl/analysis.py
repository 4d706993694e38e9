"""Deterministic analysis of what the user wrote: the DSL's backbone on a tiny model.

``analyze(previous, messages)`` reads the user's messages in order and edits a
copy of the previous DSL with what they say:

* entity mentions: the list after an app intro ("a blog with posts, authors
  and comments"), ``each``/``every`` X, subjects and objects of the patterns
  below, plural items of a field list; the app's own modifier ("a *task*
  manager") only when nothing else names an entity;
* fields: "each task has a title, a due date and a status (todo, done)",
  "with a rating", "add a due date to tasks";
* links: "has many", "belongs to", "is assigned to", "X of/for/per/in Y",
  verbs ("customers place orders", "users like posts", "guests book rooms"
  through a Booking when there is one);
* edits: "drop tags", "remove the due date from tasks", "rename X to Y",
  "make email unique", "status can be open, pending or closed";
* where the user said nothing: typical fields and parents from ``domain.KB``
  for entities introduced by this message (marked *inferred*, not *stated*).

Every element the analysis adds is recorded in ``provenance`` as ``stated`` or
``inferred``; the confidence score is computed from it (``phase.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hubbub.dsl import merge as mg
from hubbub.dsl.clauses import Clauses
from hubbub.dsl.edits import Edits
from hubbub.dsl.reader import MAX_CHARS, accepts
from hubbub.dsl.schema import Dsl
from hubbub.dsl.structure import Structure

__all__ = ["Analysis", "accepts", "analyze"]


@dataclass
class Analysis:
    dsl: Dsl
    provenance: dict[mg.Key, str] = field(default_factory=dict)  # element -> "stated" | "inferred"
    nouns: set[str] = field(default_factory=set)  # singular nouns the user wrote
    accepted: bool = False  # by the last message
    words: set[str] = field(default_factory=set)  # every word the user wrote (lowercase)
    candidates: set[str] = field(default_factory=set)  # entity names the wording suggests (plurals, "each X")
    dropped: set[str] = field(default_factory=set)  # entities the user removed
    superseded: set[mg.Key] = field(default_factory=set)  # guessed links the user's words later replaced


def analyze(previous: Dsl | None, messages: list[str]) -> Analysis:
    """Apply what ``messages`` (the user's, in order) say to a copy of ``previous``."""
    reader = _Reader(previous.copy() if previous else Dsl())
    for text in messages:
        reader.message(text[:MAX_CHARS])
    return Analysis(reader.dsl, reader.prov, reader.nouns, accepts(messages[-1]) if messages else False,
                    reader.words, reader.candidates | set(reader.dsl.entities), reader.dropped, reader.superseded)


class _Reader(Structure, Clauses, Edits):
    """The patterns (``Clauses``), the edits (``Edits``), the structural rules (``Structure``) and the
    bookkeeping (``reader.ReaderBase``)."""
