"""The builder's DSL (API.md §2): types, wire form, and the JSON schema the model decodes into.

The wire form is the one API.md fixes::

    {"entities": {"<Name>": {"fields": {"<field>": {"type", "required", "unique"?, "default"?, "values"?}}}},
     "relationships": [{"from", "to", "type", "name"?}],
     "phase", "readiness", "confidence"}

In memory a DSL is a ``Dsl``: entities map to ordered ``{field name: Field}``
dicts. The model never writes that shape directly: it writes the *proposal*
shape below (lists instead of maps with free keys), which a grammar can
constrain tightly and a 135M model can follow.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

FIELD_TYPES = ("uuid", "string", "text", "integer", "number", "boolean", "date", "datetime", "enum", "json")
REL_TYPES = ("one-to-one", "one-to-many", "many-to-one", "many-to-many")
PHASES = ("clarifying", "proposing", "refining", "ready")


class _NoDefault:
    """"No default" (``None`` is a valid default); a singleton that survives copying."""

    def __repr__(self) -> str:
        return "NO_DEFAULT"

    def __copy__(self) -> "_NoDefault":
        return self

    def __deepcopy__(self, memo: dict) -> "_NoDefault":
        return self

    def __reduce__(self) -> str:
        return "NO_DEFAULT"


NO_DEFAULT: Any = _NoDefault()


@dataclass
class Field:
    type: str
    required: bool = False
    unique: bool = False
    default: Any = NO_DEFAULT
    values: list[str] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "required": self.required}
        if self.unique:
            out["unique"] = True
        if self.default is not NO_DEFAULT:
            out["default"] = self.default
        if self.type == "enum":
            out["values"] = list(self.values or [])
        return out


@dataclass
class Relationship:
    source: str  # "from" on the wire
    target: str  # "to"
    type: str
    name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"from": self.source, "to": self.target, "type": self.type}
        if self.name:
            out["name"] = self.name
        return out

    def key(self) -> tuple[str, str, str, str | None]:
        return (self.source, self.target, self.type, self.name)


@dataclass
class Dsl:
    entities: dict[str, dict[str, Field]] = field(default_factory=dict)
    relationships: list[Relationship] = field(default_factory=list)
    phase: str = "clarifying"
    readiness: int = 0
    confidence: float = 0.0

    def copy(self) -> "Dsl":
        return copy.deepcopy(self)

    def model_dict(self) -> dict[str, Any]:
        """Entities and relationships only (what a change compares)."""
        return {
            "entities": {n: {"fields": {f: spec.to_dict() for f, spec in fs.items()}} for n, fs in self.entities.items()},
            "relationships": [r.to_dict() for r in self.relationships],
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self.model_dict(), "phase": self.phase, "readiness": self.readiness, "confidence": self.confidence}

    @classmethod
    def from_dict(cls, data: Any) -> "Dsl":
        """Read a stored or proposed wire-form DSL leniently: junk entries are skipped, never raised."""
        dsl = cls()
        if not isinstance(data, dict):
            return dsl
        entities = data.get("entities")
        if isinstance(entities, dict):
            for name, body in entities.items():
                fields = body.get("fields") if isinstance(body, dict) else None
                dsl.entities[str(name)] = {
                    str(f): _field(spec) for f, spec in (fields.items() if isinstance(fields, dict) else ())
                }
        for rel in data.get("relationships") or []:
            if isinstance(rel, dict) and isinstance(rel.get("from"), str) and isinstance(rel.get("to"), str):
                dsl.relationships.append(
                    Relationship(rel["from"], rel["to"], str(rel.get("type", "")), rel.get("name") or None)
                )
        if data.get("phase") in PHASES:
            dsl.phase = data["phase"]
        if isinstance(data.get("readiness"), (int, float)):
            dsl.readiness = int(data["readiness"])
        if isinstance(data.get("confidence"), (int, float)):
            dsl.confidence = float(data["confidence"])
        return dsl


def _field(spec: Any) -> Field:
    if isinstance(spec, str):
        return Field(spec)
    if not isinstance(spec, dict):
        return Field("string")
    values = spec.get("values")
    return Field(
        type=str(spec.get("type", "string")),
        required=bool(spec.get("required", False)),
        unique=bool(spec.get("unique", False)),
        default=spec["default"] if "default" in spec else NO_DEFAULT,
        values=[str(v) for v in values] if isinstance(values, list) else None,
    )


# -- the proposal the model decodes into ----------------------------------------

_NAME = {"type": "string", "pattern": "^[A-Z][A-Za-z0-9]{0,31}$"}
_FIELD_NAME = {"type": "string", "pattern": "^[a-z][A-Za-z0-9]{0,31}$"}


def proposal_schema(rich: bool = False, max_items: int = 8) -> dict[str, Any]:
    """JSON schema for the model's answer.

    The small form (names and types only) is what a tiny model can fill well in
    a few hundred tokens; ``rich`` adds ``required``/``unique``/``values`` and a
    relationship ``name`` for strong models. ``maxItems`` and name patterns keep
    a looping model from running on and keep names identifier-shaped.
    """
    field_props: dict[str, Any] = {"name": _FIELD_NAME, "type": {"enum": list(FIELD_TYPES)}}
    rel_props: dict[str, Any] = {"from": _NAME, "to": _NAME, "type": {"enum": list(REL_TYPES)}}
    if rich:
        field_props |= {
            "required": {"type": "boolean"},
            "unique": {"type": "boolean"},
            "values": {"type": "array", "items": {"type": "string", "maxLength": 40}, "maxItems": 12},
        }
        rel_props["name"] = {"type": "string", "maxLength": 40}

    def obj(props: dict[str, Any]) -> dict[str, Any]:
        return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}

    entity = obj({"name": _NAME, "fields": {"type": "array", "items": obj(field_props), "maxItems": max_items}})
    return obj({
        "entities": {"type": "array", "items": entity, "maxItems": max_items},
        "relationships": {"type": "array", "items": obj(rel_props), "maxItems": max_items},
    })


def proposal_to_dsl(data: Any) -> Dsl:
    """A (possibly partial) proposal as a ``Dsl``; anything malformed is skipped."""
    dsl = Dsl()
    if not isinstance(data, dict):
        return dsl
    for ent in data.get("entities") or []:
        if not isinstance(ent, dict) or not isinstance(ent.get("name"), str):
            continue
        fields = dsl.entities.setdefault(ent["name"], {})
        for f in ent.get("fields") or []:
            if isinstance(f, dict) and isinstance(f.get("name"), str):
                fields.setdefault(f["name"], _field(f))
    for rel in data.get("relationships") or []:
        if isinstance(rel, dict) and isinstance(rel.get("from"), str) and isinstance(rel.get("to"), str):
            dsl.relationships.append(Relationship(rel["from"], rel["to"], str(rel.get("type", "")), rel.get("name") or None))
    return dsl
