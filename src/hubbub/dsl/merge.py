"""Edits on a DSL, and the rules that keep it consistent while it changes.

Every change the analysis or a model proposal makes goes through these few
functions, so the invariants live in one place:

* a one-to-many ``A -> B`` is stored as many-to-one ``B -> A`` (the side that
  holds the foreign key is ``from``);
* adding many-to-many between two entities replaces a many-to-one between them
  with the same name ("a task can have many assignees"), and adding a
  many-to-one replaces a many-to-many ("an order has only one customer");
  a many-to-one each way is a many-to-many;
* dropping an entity drops its relationships and the foreign-key fields they
  put on other entities.
"""

from __future__ import annotations

from typing import Any, Hashable

from hubbub.dsl.schema import Dsl, Field, Relationship
from hubbub.dsl.text import camel, lower_first

Key = tuple[Hashable, ...]


def fk_name(rel: Relationship) -> str:
    """The foreign-key field a many-to-one/one-to-one puts on ``from``: ``authorId``, ``postId``."""
    base = rel.name or ("parent" if rel.source == rel.target else lower_first(rel.target))
    return camel(base) + "Id"


def fk_fields(dsl: Dsl) -> dict[str, set[str]]:
    """Entity -> the names of its foreign-key fields."""
    out: dict[str, set[str]] = {}
    for rel in dsl.relationships:
        if rel.type in ("many-to-one", "one-to-one"):
            out.setdefault(rel.source, set()).add(fk_name(rel))
    return out


def attribute_fields(dsl: Dsl, entity: str) -> list[str]:
    """Fields that describe the entity: not ``id``, not a foreign key."""
    fks = fk_fields(dsl).get(entity, set())
    return [f for f in dsl.entities.get(entity, {}) if f != "id" and f not in fks]


def rel_key(rel: Relationship) -> Key:
    """Identity of a link for comparison: many-to-many and one-to-one are unordered."""
    if rel.type in ("many-to-many", "one-to-one"):
        a, b = sorted((rel.source, rel.target))
        return ("rel", a, b, rel.type)
    if rel.type == "one-to-many":
        return ("rel", rel.target, rel.source, "many-to-one")
    return ("rel", rel.source, rel.target, rel.type)


def element_keys(dsl: Dsl) -> set[Key]:
    """Entities, attribute fields and relationships: what readiness and confidence count."""
    keys: set[Key] = {("entity", name) for name in dsl.entities}
    for name in dsl.entities:
        keys |= {("field", name, f) for f in attribute_fields(dsl, name)}
    keys |= {rel_key(r) for r in dsl.relationships}
    return keys


def linked(dsl: Dsl, a: str, b: str, type_: str | None = None) -> bool:
    """Is there a link between ``a`` and ``b`` (of kind ``type_`` when given)?"""
    return any({r.source, r.target} == {a, b} and (type_ is None or r.type == type_) for r in dsl.relationships)


def child_of(dsl: Dsl, child: str, parent: str) -> bool:
    """Does ``child`` have a many-to-one link to ``parent``?"""
    return any(r.source == child and r.target == parent and r.type == "many-to-one" for r in dsl.relationships)


def ensure_entity(dsl: Dsl, name: str) -> bool:
    if not name or name in dsl.entities:
        return False
    dsl.entities[name] = {"id": Field("uuid", required=True)}
    return True


def set_field(dsl: Dsl, entity: str, name: str, spec: Field, *, override: bool = False) -> bool:
    """Add ``name`` to ``entity`` (created if needed); an existing field changes only with ``override``."""
    if not name or name == "id":
        return False
    ensure_entity(dsl, entity)
    fields = dsl.entities[entity]
    existing = fields.get(name)
    if existing is not None and (not override or existing == spec):
        return False
    fields[name] = spec
    return True


def _remove_rel(dsl: Dsl, rel: Relationship) -> None:
    dsl.relationships.remove(rel)
    if rel.type in ("many-to-one", "one-to-one"):
        fk = fk_name(rel)
        still = any(fk_name(r) == fk and r.source == rel.source for r in dsl.relationships
                    if r.type in ("many-to-one", "one-to-one"))
        if not still:
            dsl.entities.get(rel.source, {}).pop(fk, None)


def _same_name(a: str | None, b: str | None, target: str) -> bool:
    def norm(n: str | None) -> str:
        from hubbub.dsl.text import singular

        return singular((n or target).lower()) if n else lower_first(target).lower()

    return norm(a) == norm(b)


def add_relationship(dsl: Dsl, source: str, target: str, type_: str, name: str | None = None) -> bool:
    """Add a link between existing entities, applying the replacement rules in the module docstring."""
    if type_ == "one-to-many":
        source, target, type_, name = target, source, "many-to-one", None
    if source not in dsl.entities or target not in dsl.entities:
        return False
    if name and name.lower() == lower_first(target).lower():
        name = None
    rel = Relationship(source, target, type_, name)
    if any(rel_key(r) == rel_key(rel) and _same_name(r.name, name, r.target) for r in dsl.relationships):
        return False
    if type_ == "many-to-many":
        for r in list(dsl.relationships):
            if {r.source, r.target} == {source, target} and r.type == "many-to-one" \
                    and _same_name(r.name, name, r.target):
                _remove_rel(dsl, r)
    elif type_ == "many-to-one":
        for r in list(dsl.relationships):
            if {r.source, r.target} == {source, target} and r.type == "many-to-many" \
                    and _same_name(r.name, name, target):
                _remove_rel(dsl, r)
        reverse = [r for r in dsl.relationships if r.source == target and r.target == source
                   and r.type == "many-to-one" and source != target and not r.name and not name]
        if reverse:  # many each way
            _remove_rel(dsl, reverse[0])
            rel = Relationship(source, target, "many-to-many")
    dsl.relationships.append(rel)
    return True


def drop_relationships(dsl: Dsl, a: str, b: str, name: str | None = "*") -> bool:
    """Drop the links between ``a`` and ``b`` (only those named like ``name`` unless ``"*"``)."""
    found = [r for r in dsl.relationships if {r.source, r.target} == {a, b}
             and (name == "*" or _same_name(r.name, name, r.target))]
    for r in found:
        _remove_rel(dsl, r)
    return bool(found)


def drop_entity(dsl: Dsl, name: str) -> bool:
    if name not in dsl.entities:
        return False
    for r in [r for r in dsl.relationships if name in (r.source, r.target)]:
        _remove_rel(dsl, r)
    del dsl.entities[name]
    return True


def drop_field(dsl: Dsl, entity: str, name: str) -> bool:
    fields = dsl.entities.get(entity)
    if not fields or name not in fields or name == "id":
        return False
    for r in [r for r in dsl.relationships if r.source == entity and fk_name(r) == name]:
        dsl.relationships.remove(r)
    del fields[name]
    return True


def rename_entity(dsl: Dsl, old: str, new: str) -> bool:
    if old not in dsl.entities or not new or new in dsl.entities:
        return False
    dsl.entities = {(new if k == old else k): v for k, v in dsl.entities.items()}
    for r in dsl.relationships:
        oldfk = fk_name(r) if r.type in ("many-to-one", "one-to-one") else None
        r.source = new if r.source == old else r.source
        r.target = new if r.target == old else r.target
        if oldfk and oldfk != fk_name(r) and oldfk in dsl.entities[r.source]:
            fields = dsl.entities[r.source]
            dsl.entities[r.source] = {(fk_name(r) if k == oldfk else k): v for k, v in fields.items()}
    return True


def rename_field(dsl: Dsl, entity: str, old: str, new: str) -> bool:
    fields = dsl.entities.get(entity)
    if not fields or old not in fields or not new or new in fields or old == "id":
        return False
    dsl.entities[entity] = {(new if k == old else k): v for k, v in fields.items()}
    return True


def entities_with_field(dsl: Dsl, name: str) -> list[str]:
    return [e for e, fields in dsl.entities.items() if name in fields]


def union(base: Dsl, extra: Dsl) -> Dsl:
    """``base`` plus what ``extra`` has and ``base`` lacks (``base`` wins every conflict)."""
    out = base.copy()
    for name, fields in extra.entities.items():
        ensure_entity(out, name)
        for f, spec in fields.items():
            out.entities[name].setdefault(f, spec)
    for rel in extra.relationships:
        if not linked(out, rel.source, rel.target):
            add_relationship(out, rel.source, rel.target, rel.type, rel.name)
    return out


def as_plain(dsl: Dsl) -> dict[str, Any]:
    return dsl.model_dict()
