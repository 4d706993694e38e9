"""Validation: the rules API.md §2 puts on a DSL, checked before anything is stored or streamed.

``problems(dsl)`` lists every broken rule (empty: valid). ``WIRE_SCHEMA`` is the
same contract as a JSON schema, for clients and tests.
"""

from __future__ import annotations

import re
from typing import Any

from hubbub.dsl import merge as mg
from hubbub.dsl.schema import FIELD_TYPES, PHASES, REL_TYPES, Dsl
from hubbub.dsl.text import pascal

_ENTITY = re.compile(r"^[A-Z][A-Za-z0-9]*$")
_FIELD = re.compile(r"^[a-z][A-Za-z0-9]*$")


def problems(dsl: Dsl) -> list[str]:
    """Every way ``dsl`` breaks the contract, as readable sentences."""
    out: list[str] = []
    for name, fields in dsl.entities.items():
        if not _ENTITY.match(name) or pascal(name) != name:
            out.append(f"entity {name!r} is not a singular PascalCase name")
        id_field = fields.get("id")
        if id_field is None or id_field.type != "uuid":
            out.append(f"entity {name} has no uuid id")
        seen: set[str] = set()
        for fname, spec in fields.items():
            if not _FIELD.match(fname):
                out.append(f"field {name}.{fname} is not a camelCase name")
            if fname.lower() in seen:
                out.append(f"field {name}.{fname} is a duplicate")
            seen.add(fname.lower())
            if spec.type not in FIELD_TYPES:
                out.append(f"field {name}.{fname} has unknown type {spec.type!r}")
            if spec.type == "enum" and (not spec.values or not all(isinstance(v, str) and v for v in spec.values)):
                out.append(f"enum {name}.{fname} has no values")
            if spec.type == "enum" and spec.values and len(set(spec.values)) != len(spec.values):
                out.append(f"enum {name}.{fname} repeats a value")
    keys: set[Any] = set()
    for rel in dsl.relationships:
        label = f"{rel.source} -> {rel.target}"
        if rel.type not in REL_TYPES:
            out.append(f"relationship {label} has unknown type {rel.type!r}")
        for end in (rel.source, rel.target):
            if end not in dsl.entities:
                out.append(f"relationship {label} names {end!r}, which is not an entity")
        key = (mg.rel_key(rel), rel.name)
        if key in keys:
            out.append(f"relationship {label} is a duplicate")
        keys.add(key)
        if rel.type in ("many-to-one", "one-to-one") and rel.source in dsl.entities:
            fk = dsl.entities[rel.source].get(mg.fk_name(rel))
            if fk is None or fk.type != "uuid":
                out.append(f"relationship {label} has no uuid foreign key {rel.source}.{mg.fk_name(rel)}")
    if dsl.phase not in PHASES:
        out.append(f"phase {dsl.phase!r} is not one of {', '.join(PHASES)}")
    if not (isinstance(dsl.readiness, int) and 0 <= dsl.readiness <= 100):
        out.append("readiness is not an integer in 0..100")
    if not (isinstance(dsl.confidence, (int, float)) and 0.0 <= dsl.confidence <= 1.0):
        out.append("confidence is not a number in 0..1")
    return out


_FIELD_SCHEMA = {
    "type": "object",
    "required": ["type", "required"],
    "properties": {
        "type": {"enum": list(FIELD_TYPES)},
        "required": {"type": "boolean"},
        "unique": {"type": "boolean"},
        "default": {},
        "values": {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1},
    },
    "additionalProperties": False,
    "if": {"properties": {"type": {"const": "enum"}}},
    "then": {"required": ["type", "required", "values"]},
    "else": {"not": {"required": ["values"]}},
}

WIRE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "hubbub builder DSL",
    "type": "object",
    "required": ["entities", "relationships", "phase", "readiness", "confidence"],
    "properties": {
        "entities": {
            "type": "object",
            "propertyNames": {"pattern": "^[A-Z][A-Za-z0-9]*$"},
            "additionalProperties": {
                "type": "object",
                "required": ["fields"],
                "properties": {
                    "fields": {
                        "type": "object",
                        "required": ["id"],
                        "propertyNames": {"pattern": "^[a-z][A-Za-z0-9]*$"},
                        "additionalProperties": _FIELD_SCHEMA,
                    }
                },
                "additionalProperties": False,
            },
        },
        "relationships": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["from", "to", "type"],
                "properties": {
                    "from": {"type": "string"},
                    "to": {"type": "string"},
                    "type": {"enum": list(REL_TYPES)},
                    "name": {"type": "string", "minLength": 1},
                },
                "additionalProperties": False,
            },
        },
        "phase": {"enum": list(PHASES)},
        "readiness": {"type": "integer", "minimum": 0, "maximum": 100},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
    },
    "additionalProperties": False,
}
