"""Normalisation: any DSL-ish input (a model's proposal, a stored DSL) into the canonical form.

* entity names: singular PascalCase (``order_items`` -> ``OrderItem``); duplicates merged;
* field names: camelCase (``due_date`` -> ``dueDate``); ``id`` first, ``uuid``, required;
* types: synonyms mapped onto API.md's list (``int`` -> ``integer``, ``timestamp`` ->
  ``datetime``); an ``enum`` gets its values from the user, else sensible defaults
  (``domain.ENUM_DEFAULTS``), else becomes a ``string``;
* relationships: kinds mapped onto API.md's list (``has many`` -> ``one-to-many``,
  stored as many-to-one from the other side); endpoints matched to entities
  (``posts`` -> ``Post``) or the relationship dropped; duplicates dropped;
* foreign keys: every many-to-one/one-to-one puts ``<name or target>Id`` (uuid) on
  ``from``; a plain field that duplicates a link (``Post.author: string``) goes.
"""

from __future__ import annotations

import re
from typing import Any

from hubbub.dsl import domain as dm
from hubbub.dsl import merge as mg
from hubbub.dsl.schema import FIELD_TYPES, NO_DEFAULT, REL_TYPES, Dsl, Field
from hubbub.dsl.text import camel, enum_value, lower_first, pascal, singular

_TYPE_SYNONYMS = {
    "str": "string", "varchar": "string", "char": "string", "email": "string", "url": "string", "phone": "string",
    "password": "string", "slug": "string", "int": "integer", "bigint": "integer", "smallint": "integer",
    "long": "integer", "float": "number", "double": "number", "decimal": "number", "money": "number",
    "numeric": "number", "real": "number", "currency": "number", "bool": "boolean", "timestamp": "datetime",
    "timestamptz": "datetime", "date-time": "datetime", "time": "datetime", "object": "json", "dict": "json",
    "map": "json", "array": "json", "list": "json", "jsonb": "json", "id": "uuid", "guid": "uuid",
    "objectid": "uuid", "reference": "uuid", "foreignkey": "uuid", "fk": "uuid", "longtext": "text",
    "markdown": "text", "html": "text", "richtext": "text", "enumeration": "enum", "choice": "enum",
    "select": "enum",
}
_REL_SYNONYMS = {
    "onetomany": "one-to-many", "1:n": "one-to-many", "1-n": "one-to-many", "1:many": "one-to-many",
    "hasmany": "one-to-many", "manytoone": "many-to-one", "n:1": "many-to-one", "belongsto": "many-to-one",
    "references": "many-to-one", "onetoone": "one-to-one", "1:1": "one-to-one", "hasone": "one-to-one",
    "manytomany": "many-to-many", "n:m": "many-to-many", "m:n": "many-to-many", "m2m": "many-to-many",
    "hasandbelongstomany": "many-to-many",
}


def field_type(raw: str) -> str | None:
    t = re.sub(r"[\s_()0-9]", "", str(raw).lower())
    if t in FIELD_TYPES:
        return t
    return _TYPE_SYNONYMS.get(t)


def rel_type(raw: str) -> str | None:
    t = str(raw).lower().strip()
    if t in REL_TYPES:
        return t
    return _REL_SYNONYMS.get(re.sub(r"[\s_\-]", "", t)) or _REL_SYNONYMS.get(t.replace(" ", ""))


def _default_ok(spec: Field) -> bool:
    d = spec.default
    if d is NO_DEFAULT:
        return True
    return {
        "boolean": isinstance(d, bool),
        "integer": isinstance(d, int) and not isinstance(d, bool),
        "number": isinstance(d, (int, float)) and not isinstance(d, bool),
        "enum": d in (spec.values or []),
        "string": isinstance(d, str), "text": isinstance(d, str),
        "json": True,
    }.get(spec.type, False)


def normalize(dsl: Dsl) -> Dsl:
    """A canonical copy of ``dsl`` (see the module docstring); never raises on odd input."""
    out = Dsl(phase=dsl.phase, readiness=dsl.readiness, confidence=dsl.confidence)
    for raw_name, fields in dsl.entities.items():
        name = pascal(raw_name)
        if not name:
            continue
        target = out.entities.setdefault(name, {"id": Field("uuid", required=True)})
        for raw_field, spec in fields.items():
            fname = camel(raw_field)
            if fname.lower() == "id" or not fname:
                continue
            if fname.endswith("ID"):
                fname = fname[:-2] + "Id"
            if fname.lower() in {f.lower() for f in target}:
                continue
            target[fname] = _field(name, fname, spec)
    by_lower = {n.lower(): n for n in out.entities}
    by_lower |= {singular(n.lower()): n for n in out.entities}
    for rel in dsl.relationships:
        kind = rel_type(rel.type)
        src = by_lower.get(pascal(rel.source).lower())
        dst = by_lower.get(pascal(rel.target).lower())
        if kind is None or src is None or dst is None:
            continue
        name = camel(rel.name) if rel.name else None
        if kind == "one-to-many":
            src, dst, kind, name = dst, src, "many-to-one", None
        if any(mg.rel_key(r) == mg.rel_key(_rel(src, dst, kind)) and (r.name or None) == name for r in out.relationships):
            continue
        mg.add_relationship(out, src, dst, kind, name)
    for rel in out.relationships:
        if rel.type not in ("many-to-one", "one-to-one"):
            continue
        fields = out.entities[rel.source]
        fk = mg.fk_name(rel)
        plain = rel.name or lower_first(rel.target)
        for dup in (camel(plain), camel(plain) + "ID"):
            if dup in fields and dup != fk and fields[dup].type in ("string", "uuid", "integer"):
                del fields[dup]
        if fk not in fields or fields[fk].type != "uuid":
            fields[fk] = Field("uuid", required=fields[fk].required if fk in fields else True,
                               unique=rel.type == "one-to-one")
        elif rel.type == "one-to-one":
            fields[fk].unique = True
    return out


def _rel(src: str, dst: str, kind: str):  # noqa: ANN202
    from hubbub.dsl.schema import Relationship

    return Relationship(src, dst, kind)


def _field(entity: str, name: str, spec: Field) -> Field:
    kind = field_type(spec.type) or "string"
    values = [enum_value(str(v)) for v in (spec.values or []) if enum_value(str(v))]
    values = list(dict.fromkeys(values))
    if kind == "enum" and not values:
        values = dm.enum_defaults(name, entity) or []
        if not values:
            kind = "string"
    if name.endswith("Id") and kind in ("string", "integer"):
        kind = "uuid"
    out = Field(kind, bool(spec.required), bool(spec.unique), spec.default, values if kind == "enum" else None)
    if out.type == "enum" and isinstance(out.default, str):
        out.default = enum_value(out.default)
    if not _default_ok(out):
        out.default = NO_DEFAULT
    return out


def to_wire(dsl: Dsl) -> dict[str, Any]:
    return dsl.to_dict()
