"""A DSL as JSON, JSON Schema, PostgreSQL DDL or a Mermaid ER diagram.

SQL (PostgreSQL 13+): one table per entity, named in snake_case (``OrderItem``
-> ``order_item``), every identifier quoted (``order`` and ``user`` are reserved
words). ``id`` is ``uuid PRIMARY KEY DEFAULT gen_random_uuid()``; enums are
``text`` with a ``CHECK``; foreign keys are added after all tables exist (so
cycles and self-references work); many-to-many becomes a join table
``<a>_<b>`` with a composite primary key. The script runs in one transaction.

Types: uuid -> uuid, string -> varchar(255), text -> text, integer -> integer,
number -> numeric, boolean -> boolean, date -> date, datetime -> timestamptz,
enum -> text + CHECK, json -> jsonb.
"""

from __future__ import annotations

import json
from typing import Any

from hubbub.dsl import merge as mg
from hubbub.dsl.schema import NO_DEFAULT, Dsl, Field, Relationship
from hubbub.dsl.text import camel, singular, snake

FORMATS = ("json", "jsonschema", "sql", "mermaid")
MEDIA_TYPES = {
    "json": "application/json",
    "jsonschema": "application/schema+json",
    "sql": "application/sql; charset=utf-8",
    "mermaid": "text/plain; charset=utf-8",
}

_SQL_TYPES = {
    "uuid": "uuid", "string": "varchar(255)", "text": "text", "integer": "integer", "number": "numeric",
    "boolean": "boolean", "date": "date", "datetime": "timestamptz", "enum": "text", "json": "jsonb",
}
_PG_MAX_IDENT = 63


def render(dsl: Dsl, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(dsl.to_dict(), indent=2)
    if fmt == "jsonschema":
        return json.dumps(json_schema(dsl), indent=2)
    if fmt == "sql":
        return sql(dsl)
    if fmt == "mermaid":
        return mermaid(dsl)
    raise ValueError(f"unknown format {fmt!r}")


# -- JSON Schema -------------------------------------------------------------------

_JSON_TYPES: dict[str, dict[str, Any]] = {
    "uuid": {"type": "string", "format": "uuid"}, "string": {"type": "string", "maxLength": 255},
    "text": {"type": "string"}, "integer": {"type": "integer"}, "number": {"type": "number"},
    "boolean": {"type": "boolean"}, "date": {"type": "string", "format": "date"},
    "datetime": {"type": "string", "format": "date-time"}, "json": {},
}


def json_schema(dsl: Dsl) -> dict[str, Any]:
    """A JSON Schema (2020-12) with one ``$defs`` entry per entity, describing one record of it."""
    defs: dict[str, Any] = {}
    fks = {(r.source, mg.fk_name(r)): r.target for r in dsl.relationships if r.type in ("many-to-one", "one-to-one")}
    for name, fields in dsl.entities.items():
        props: dict[str, Any] = {}
        for fname, spec in fields.items():
            prop = {"enum": list(spec.values or [])} if spec.type == "enum" else dict(_JSON_TYPES[spec.type])
            if spec.default is not NO_DEFAULT:
                prop["default"] = spec.default
            if (name, fname) in fks:
                prop["description"] = f"References {fks[(name, fname)]}.id"
            props[fname] = prop
        for rel in dsl.relationships:
            if rel.type == "many-to-many" and name in (rel.source, rel.target):
                other = rel.target if rel.source == name else rel.source
                named = rel.name if rel.name and rel.source == name else None
                key = camel(singular(named) if named else other) + "Ids"
                if key not in props:
                    props[key] = {"type": "array", "items": {"type": "string", "format": "uuid"},
                                  "description": f"Ids of the {other} records linked many-to-many", "uniqueItems": True}
        required = [f for f, spec in fields.items() if spec.required]
        defs[name] = {"type": "object", "properties": props, "required": required, "additionalProperties": False}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Data model",
        "$defs": defs,
        "type": "object",
        "properties": {name: {"type": "array", "items": {"$ref": f"#/$defs/{name}"}} for name in dsl.entities},
        "additionalProperties": False,
    }


def _lower(name: str) -> str:
    return name[:1].lower() + name[1:]


# -- SQL -------------------------------------------------------------------------------


def _ident(name: str) -> str:
    return '"' + name[:_PG_MAX_IDENT].replace('"', '""') + '"'


def _literal(value: Any, spec: Field) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if spec.type == "json":
        return "'" + json.dumps(value).replace("'", "''") + "'::jsonb"
    return None


def _tables(dsl: Dsl) -> dict[str, str]:
    """Entity -> table name, unique after snake-casing and truncation."""
    out: dict[str, str] = {}
    used: set[str] = set()
    for name in dsl.entities:
        base = snake(name)[:_PG_MAX_IDENT - 4] or "entity"
        table, n = base, 2
        while table in used:
            table, n = f"{base}_{n}", n + 1
        used.add(table)
        out[name] = table
    return out


def sql(dsl: Dsl) -> str:
    """PostgreSQL DDL for ``dsl`` (see the module docstring)."""
    tables = _tables(dsl)
    columns: dict[str, dict[str, str]] = {}
    out = ["-- Generated by hubbub from the builder DSL.", "BEGIN;", ""]
    for name, fields in dsl.entities.items():
        used: set[str] = set()
        cols = columns.setdefault(name, {})
        lines = []
        for fname, spec in fields.items():
            col = snake(fname) or "field"
            while col in used:
                col += "_"
            used.add(col)
            cols[fname] = col
            if fname == "id":
                lines.append(f"  {_ident(col)} uuid PRIMARY KEY DEFAULT gen_random_uuid()")
                continue
            parts = [_ident(col), _SQL_TYPES[spec.type]]
            if spec.required:
                parts.append("NOT NULL")
            if spec.unique:
                parts.append("UNIQUE")
            if spec.default is not NO_DEFAULT and spec.default is not None:
                literal = _literal(spec.default, spec)
                if literal is not None:
                    parts.append(f"DEFAULT {literal}")
            if spec.type == "enum" and spec.values:
                allowed = ", ".join(_literal(v, spec) or "''" for v in spec.values)
                parts.append(f"CHECK ({_ident(col)} IN ({allowed}))")
            lines.append("  " + " ".join(parts))
        out.append(f"CREATE TABLE {_ident(tables[name])} (\n" + ",\n".join(lines) + "\n);")
        out.append("")
    joins: set[str] = set(tables.values())
    for rel in dsl.relationships:
        if rel.type in ("many-to-one", "one-to-one"):
            out.append(_foreign_key(rel, tables, columns, dsl))
        elif rel.type == "many-to-many":
            out.append(_join_table(rel, tables, joins))
        elif rel.type == "one-to-many":  # normalised DSLs have none; kept for DSLs built by hand
            flipped = Relationship(rel.target, rel.source, "many-to-one")
            if mg.fk_name(flipped) in dsl.entities.get(rel.target, {}):
                out.append(_foreign_key(flipped, tables, columns, dsl))
    out += ["", "COMMIT;", ""]
    return "\n".join(out)


def _foreign_key(rel: Relationship, tables: dict[str, str], columns: dict[str, dict[str, str]], dsl: Dsl) -> str:
    fk = mg.fk_name(rel)
    col = columns.get(rel.source, {}).get(fk)
    if col is None:
        return f"-- {rel.source} -> {rel.target}: no foreign-key field {fk}"
    required = dsl.entities[rel.source][fk].required
    constraint = _ident(f"{tables[rel.source]}_{col}_fkey"[:_PG_MAX_IDENT])
    on_delete = "CASCADE" if required else "SET NULL"
    return (f"ALTER TABLE {_ident(tables[rel.source])} ADD CONSTRAINT {constraint} FOREIGN KEY ({_ident(col)}) "
            f"REFERENCES {_ident(tables[rel.target])} (\"id\") ON DELETE {on_delete};")


def _join_table(rel: Relationship, tables: dict[str, str], used: set[str]) -> str:
    a, b = tables[rel.source], tables[rel.target]
    name = f"{a}_{snake(rel.name)}" if rel.name else f"{a}_{b}"
    name = name[:_PG_MAX_IDENT - 4]
    base, n = name, 2
    while name in used:
        name, n = f"{base}_{n}", n + 1
    used.add(name)
    left = f"{a}_id"
    right = f"{snake(rel.name)}_id" if rel.name else f"{b}_id"
    if right == left:
        right = f"related_{right}"
    return (
        f"CREATE TABLE {_ident(name)} (\n"
        f"  {_ident(left)} uuid NOT NULL REFERENCES {_ident(a)} (\"id\") ON DELETE CASCADE,\n"
        f"  {_ident(right)} uuid NOT NULL REFERENCES {_ident(b)} (\"id\") ON DELETE CASCADE,\n"
        f"  PRIMARY KEY ({_ident(left)}, {_ident(right)})\n);"
    )


# -- Mermaid ----------------------------------------------------------------------------

_CARDINALITY = {
    # (from side, to side) as Mermaid crow's-foot ends, read "from ... to"
    "many-to-one": ("}o", "||"),
    "one-to-one": ("|o", "||"),
    "one-to-many": ("||", "o{"),
    "many-to-many": ("}o", "o{"),
}


def mermaid(dsl: Dsl) -> str:
    """A Mermaid ``erDiagram``: entities with typed attributes (PK, FK, UK), links with crow's feet."""
    fks = mg.fk_fields(dsl)
    lines = ["erDiagram"]
    for name, fields in dsl.entities.items():
        lines.append(f"    {name} {{")
        for fname, spec in fields.items():
            keys = []
            if fname == "id":
                keys.append("PK")
            if fname in fks.get(name, set()):
                keys.append("FK")
            if spec.unique and fname != "id":
                keys.append("UK")
            comment = f' "{", ".join(spec.values or [])}"' if spec.type == "enum" and spec.values else ""
            lines.append(f"        {spec.type} {fname}{(' ' + ','.join(keys)) if keys else ''}{comment}")
        lines.append("    }")
    for rel in dsl.relationships:
        left, right = _CARDINALITY.get(rel.type, ("}o", "o{"))
        if rel.type in ("many-to-one", "one-to-one") and not dsl.entities.get(rel.source, {}).get(mg.fk_name(rel), Field("uuid", True)).required:
            right = "o|"
        label = (rel.name or "has").replace('"', "'")
        lines.append(f'    {rel.source} {left}--{right} {rel.target} : "{label}"')
    return "\n".join(lines) + "\n"
