"""Phase, readiness and confidence: computed from the DSL and the evidence, never made up.

Phase (a state machine over turns)::

    clarifying --(the model becomes proposable)--> proposing
    proposing/refining/ready --(the user changes the model)--> refining
    proposing/refining --(the user accepts, the model validates)--> ready
    any --(the model stops being proposable)--> clarifying

*Proposable* means there is something to show: at least two entities, or one
entity with at least one attribute (a field that is not ``id`` or a foreign
key) that the user's words or the model support — typical fields filled in from
domain knowledge alone do not count ("I need a task manager" is still
clarifying). A turn that both accepts and changes the model is a change
(refining): the user has not seen the changed model yet.

Readiness (0..100) is the weighted share of completeness checks that pass; see
``readiness``. *Supported* elements are those the user's words state or the
model proposed; once the user accepts the model, all of it is. Confidence (0..1) is the mean support of the DSL's elements by
two independent sources, the user's own words and the model; see ``confidence``.
"""

from __future__ import annotations

from hubbub.dsl import merge as mg
from hubbub.dsl.schema import Dsl
from hubbub.dsl.text import plural, words

LABEL_FIELDS = {"name", "title", "email", "username", "label", "subject", "code", "number", "slug", "sku", "isbn"}

# Weights of the readiness checks (they sum to 100).
W_ENTITY, W_SEVERAL, W_ATTRIBUTES, W_LABEL, W_CONNECTED, W_ACCEPTED = 15, 10, 30, 10, 15, 20


def described(dsl: Dsl, entity: str, supported: set[mg.Key] | None) -> bool:
    """Has ``entity`` an attribute the evidence supports (any attribute when ``supported`` is None)?"""
    fields = mg.attribute_fields(dsl, entity)
    return bool(fields) if supported is None else any(("field", entity, f) in supported for f in fields)


def proposable(dsl: Dsl, supported: set[mg.Key] | None = None) -> bool:
    return len(dsl.entities) >= 2 or any(described(dsl, e, supported) for e in dsl.entities)


def next_phase(previous: str | None, dsl: Dsl, *, changed: bool, accepted: bool, valid: bool,
               supported: set[mg.Key] | None = None) -> str:
    if not proposable(dsl, supported):
        return "clarifying"
    if previous in (None, "clarifying"):
        return "proposing"
    if changed:
        return "refining"
    if accepted and valid:
        return "ready"
    return previous


def _shares(dsl: Dsl, supported: set[mg.Key] | None) -> tuple[float, float, float]:
    names = list(dsl.entities)
    if not names:
        return 0.0, 0.0, 0.0

    def fields(e: str) -> list[str]:
        return [f for f in mg.attribute_fields(dsl, e) if supported is None or ("field", e, f) in supported]

    with_attributes = sum(1 for e in names if fields(e))
    with_label = sum(1 for e in names if any(_is_label(f) for f in fields(e)))
    linked = {r.source for r in dsl.relationships} | {r.target for r in dsl.relationships}
    connected = 1.0 if len(names) == 1 else sum(1 for e in names if e in linked) / len(names)
    return with_attributes / len(names), with_label / len(names), connected


def _is_label(field: str) -> bool:
    return field in LABEL_FIELDS or field.lower().endswith(("name", "title"))


def readiness(dsl: Dsl, accepted: bool, supported: set[mg.Key] | None = None) -> int:
    """How complete the model is, in points out of 100:

    * 15 — at least one entity; 10 — at least two;
    * 30 × the share of entities with at least one attribute field;
    * 10 × the share of entities with a human-readable label (``name``, ``title``, ``email``…);
    * 15 × the share of entities linked to another (all of them when there is only one);
    * 20 — the user accepted the model (phase ``ready``).

    With ``supported``, only fields the user stated or the model proposed count as
    attributes (typical fields assumed from domain knowledge do not, until the user
    accepts the model).
    """
    if not dsl.entities:
        return 0
    attrs, label, connected = _shares(dsl, None if accepted else supported)
    score = W_ENTITY + (W_SEVERAL if len(dsl.entities) >= 2 else 0)
    score += W_ATTRIBUTES * attrs + W_LABEL * label + W_CONNECTED * connected
    score += W_ACCEPTED if accepted else 0
    return max(0, min(100, round(score)))


def confidence(dsl: Dsl, text: dict[mg.Key, str], model: Dsl | None) -> float:
    """Mean support of the DSL's elements (entities, attribute fields, relationships).

    Each element scores the mean of two sources: the text analysis (1 when the
    user's words state it, 0.5 when it is only a typical default, 0 when the text
    does not support it) and the model's proposal for this turn (1 when the model
    proposed it too, else 0). Without a model proposal the model's half is 0, so
    one source alone gives at most 0.5. No elements: 0.
    """
    keys = mg.element_keys(dsl)
    if not keys:
        return 0.0
    proposed = mg.element_keys(model) if model is not None else set()
    total = 0.0
    for key in keys:
        how = text.get(key)
        by_text = 1.0 if how == "stated" else 0.5 if how == "inferred" else 0.0
        total += (by_text + (1.0 if key in proposed else 0.0)) / 2
    return round(total / len(keys), 2)


def questions(dsl: Dsl, limit: int = 3, supported: set[mg.Key] | None = None) -> list[str]:
    """The questions whose answers would raise readiness the most, most valuable first
    (an entity with only assumed fields still gets asked about)."""
    if not dsl.entities:
        return ["What are the main things your app needs to keep track of (for example users, orders or posts)?"]
    out: list[str] = []
    bare = [e for e in dsl.entities if not described(dsl, e, supported)]
    for entity in bare[:2]:
        out.append(f"What information does {_a(_spoken(entity))} have (for example a name, a status or a date)?")
    if len(dsl.entities) == 1:
        only = _spoken(next(iter(dsl.entities)))
        out.append(f"Besides {plural(only)}, what else does the app store, and who uses it?")
    else:
        linked = {r.source for r in dsl.relationships} | {r.target for r in dsl.relationships}
        loose = [e for e in dsl.entities if e not in linked]
        for entity in loose[:2]:
            other = next((e for e in dsl.entities if e != entity), entity)
            out.append(f"How does {_a(_spoken(entity))} relate to the rest — does it belong to "
                       f"{_a(_spoken(other))}, or can {_a(_spoken(other))} have many {plural(_spoken(entity))}?")
    labelless = [e for e in dsl.entities if e not in bare and not any(_is_label(f) for f in mg.attribute_fields(dsl, e))]
    for entity in labelless[:1]:
        out.append(f"How should {_a(_spoken(entity))} be named or identified (a name, a title, a number)?")
    return out[:limit]


def _spoken(entity: str) -> str:
    return " ".join(words(entity))


def _a(noun: str) -> str:
    return ("an " if noun[:1] in "aeiou" else "a ") + noun
