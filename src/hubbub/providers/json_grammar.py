"""JSON Schema -> llama.cpp grammar (GBNF), on top of llama-cpp-python's converter.

Two gaps in the converter that ships with llama-cpp-python 0.3.x are closed here,
because "the output validates against the schema, every time" depends on them:

* its string ``char`` rule admits raw control characters (a newline inside a
  string), which is invalid JSON — we exclude ``\\x00-\\x1F`` and ``\\x7F``;
* it ignores ``minimum``/``maximum`` on integers — we emit an exact digit-range
  grammar for them (the classic split of [lo, hi] into ranges of equal length).

Bounds on non-integer numbers are not enforced by the grammar (documented).

Tool calls (``tool_calls_gbnf``) are also *bounded*: a free string is at most ``MAX_STRING``
characters unless its schema's ``maxLength`` says otherwise, an array at most ``MAX_ITEMS`` items
unless ``maxItems`` does, a free-form object (no ``properties``) at most ``MAX_ITEMS`` members
nested at most ``MAX_DEPTH`` deep, and no additional properties are generated where ``properties``
are listed. A forced call then always closes within a small token budget: a 135M model otherwise
wanders in an unbounded string until ``max_tokens`` cuts it (issue 16). Every bounded output is
still valid against the schema, since the bounds only narrow what it allows
(docs/tool-calling.md, "The grammar's bounds").
"""

from __future__ import annotations

import json
import math
from typing import Any

_MAX_DIGITS = 15
MAX_STRING = 32  # characters of a tool-call string without maxLength (docs/tool-calling.md)
MAX_ITEMS = 8  # items of a tool-call array without maxItems; members of a free-form object
MAX_DEPTH = 2  # nesting of a free-form value (an object or array of objects or arrays of scalars)
_FORMATS = ("date", "time", "date-time", "uuid", "uuid1", "uuid2", "uuid3", "uuid4", "uuid5")
_LOOSE_CHAR = r'char ::= [^"\\] |'
_STRICT_CHAR = r'char ::= [^"\\\x7F\x00-\x1F] |'


def _fill_nines(n: int, k: int) -> int:
    s = str(n)
    return int(s[:-k] + "9" * k) if k < len(s) else int("9" * k)


def _split(lo: int, hi: int) -> list[tuple[int, int]]:
    """Split [lo, hi] (0 <= lo <= hi) into sub-ranges whose bounds have equal length and
    differ in one digit position followed only by 0..9 positions."""
    stops = {hi}
    k = 1
    stop = _fill_nines(lo, k)
    while lo <= stop <= hi:
        stops.add(stop)
        k += 1
        stop = _fill_nines(lo, k)
    k = 1
    stop = (hi + 1) - (hi + 1) % 10**k - 1
    while lo < stop <= hi:
        stops.add(stop)
        k += 1
        stop = (hi + 1) - (hi + 1) % 10**k - 1
    out, start = [], lo
    for s in sorted(stops):
        out.append((start, s))
        start = s + 1
    return out


def _range_pattern(start: int, stop: int) -> str:
    parts = []
    for a, b in zip(str(start), str(stop)):
        parts.append(f'"{a}"' if a == b else f"[{a}-{b}]")
    return " ".join(parts)


def _nonnegative(lo: int, hi: int | None) -> str:
    if hi is None:
        digits = len(str(lo))
        alts = [_range_pattern(a, b) for a, b in _split(lo, 10**digits - 1)]
        if digits < _MAX_DIGITS:
            alts.append(f"[1-9] [0-9]{{{digits},{_MAX_DIGITS - 1}}}")
        return " | ".join(alts)
    return " | ".join(_range_pattern(a, b) for a, b in _split(lo, hi))


def int_range_rule(lo: int | None, hi: int | None) -> str:
    """GBNF alternatives matching exactly the integers in [lo, hi] (either end may be open)."""
    alts = []
    if lo is None or lo < 0:
        smallest = 1 if hi is None or hi >= 0 else -hi
        largest = None if lo is None else -lo
        alts.append(f'"-" ({_nonnegative(smallest, largest)})')
    if hi is None or hi >= 0:
        alts.append(_nonnegative(max(lo, 0) if lo is not None else 0, hi))
    return " | ".join(f"({a})" for a in alts)


def _int_bounds(schema: dict[str, Any]) -> tuple[int | None, int | None] | None:
    keys = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
    if schema.get("type") != "integer" or not any(k in schema for k in keys):
        return None
    lo = hi = None
    if isinstance(schema.get("minimum"), (int, float)):
        lo = math.ceil(schema["minimum"])
    if isinstance(schema.get("exclusiveMinimum"), (int, float)):
        lo = max(lo if lo is not None else -math.inf, math.floor(schema["exclusiveMinimum"]) + 1)
    if isinstance(schema.get("maximum"), (int, float)):
        hi = math.floor(schema["maximum"])
    if isinstance(schema.get("exclusiveMaximum"), (int, float)):
        hi = min(hi if hi is not None else math.inf, math.ceil(schema["exclusiveMaximum"]) - 1)
    return (None if lo is None else int(lo)), (None if hi is None else int(hi))


_SHAPING = {"type", "properties", "items", "prefixItems", "enum", "const", "anyOf", "oneOf", "allOf", "$ref",
            "pattern", "format", "additionalProperties"}


def _free_form(schema: dict[str, Any]) -> bool:
    """Whether ``schema`` allows any value (nothing shapes it) or any object (member names unlisted)."""
    if not _SHAPING & schema.keys():
        return True
    if schema.get("type") != "object" or "properties" in schema:
        return False
    return not ({"allOf", "anyOf", "oneOf", "$ref", "enum", "const"} & schema.keys())


def _bound(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with a length on a free string and an item count on an array (``MAX_STRING``,
    ``MAX_ITEMS``), and no additional properties beside listed ones: each only narrows it."""
    kind = schema.get("type")
    if kind == "string" and "maxLength" not in schema and not (
            {"enum", "const", "pattern"} & schema.keys() or schema.get("format") in _FORMATS):
        return {**schema, "maxLength": max(MAX_STRING, schema.get("minLength", 0))}
    if kind == "array" and "prefixItems" not in schema and not isinstance(schema.get("items"), list):
        bounded = dict(schema)
        if "maxItems" not in schema:
            bounded["maxItems"] = max(MAX_ITEMS, schema.get("minItems", 0))
        return bounded
    if "properties" in schema and schema.get("additionalProperties", False) is not False:
        return {**schema, "additionalProperties": False}
    return schema


def _converter(bounded: bool = False) -> Any:
    from llama_cpp.llama_grammar import PRIMITIVE_RULES, SchemaConverter, _build_repetition

    class _Converter(SchemaConverter):
        def visit(self, node: Any, name: str) -> str:
            if bounded and isinstance(node, dict):
                if _free_form(node):
                    values = node.get("additionalProperties")
                    if isinstance(values, dict) and values:  # an object whose members all match a schema
                        return self._add_rule(name or "root", self._bounded_object(
                            self.visit(values, f"{name}{'-' if name else ''}value")))
                    return self._add_rule(name or "root", self._free_value(MAX_DEPTH, node.get("type")))
                if node.get("type") == "array" and not node.get("items") and "prefixItems" not in node:
                    return self._add_rule(name or "root", self._free_value(MAX_DEPTH, "array"))
                node = _bound(node)
            bounds = _int_bounds(node) if isinstance(node, dict) else None
            if bounds is not None:
                lo, hi = bounds
                if lo is not None and hi is not None and lo > hi:
                    raise ValueError(f"integer range {lo}..{hi} is empty")
                return self._add_rule(name or "root", f'({int_range_rule(lo, hi)}) " "?')
            return super().visit(node, name)

        def _bounded_string(self) -> str:
            char = self._add_primitive("char", PRIMITIVE_RULES["char"])
            return self._add_rule("bounded-string",
                                  r'"\"" ' + _build_repetition(char, 0, MAX_STRING) + r' "\"" space')

        def _bounded_object(self, value: str) -> str:
            member = f'{self._bounded_string()} ":" space {value}'
            return '"{" space ' + _build_repetition(f"({member})", 0, MAX_ITEMS, '"," space') + ' "}" space'

        def _free_value(self, depth: int, only: str | None = None) -> str:
            """Any JSON value (or, with ``only``, any object or any array), bounded: strings, item
            counts and nesting."""
            scalars = " | ".join([self._bounded_string()] + [
                self._add_primitive(kind, PRIMITIVE_RULES[kind]) for kind in ("number", "boolean", "null")])
            value = self._add_rule("free-value-0", scalars)
            for level in range(1, depth + 1):
                obj = self._add_rule(f"free-object-{level}", self._bounded_object(value))
                array = self._add_rule(f"free-array-{level}", '"[" space ' + _build_repetition(
                    value, 0, MAX_ITEMS, '"," space') + ' "]" space')
                if level == depth and only in ("object", "array"):
                    return obj if only == "object" else array
                value = self._add_rule(f"free-value-{level}", f"{scalars} | {obj} | {array}")
            return value

    return _Converter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)


def schema_to_gbnf(schema: dict[str, Any]) -> str:
    converter = _converter()
    resolved = converter.resolve_refs(json.loads(json.dumps(schema)), "request")
    converter.visit(resolved, "")
    return converter.format_grammar().replace(_LOOSE_CHAR, _STRICT_CHAR)


def tool_calls_gbnf(tools: list[tuple[str, dict[str, Any]]], head: str, separator: str, tail: str,
                    call_open: str, call_middle: str, call_close: str, parallel: bool) -> str:
    """A grammar for a list of tool calls: ``head`` call (``separator`` call)* ``tail`` (one call
    only when not ``parallel``), each call ``call_open`` NAME ``call_middle`` ARGUMENTS
    ``call_close``, where NAME is one of ``tools``' names and ARGUMENTS is JSON valid against that
    tool's parameters schema (by the same converter and fixes as ``schema_to_gbnf``), bounded as
    the module docstring says so that a forced call always ends."""
    converter = _converter(bounded=True)
    alternatives = []
    for i, (name, schema) in enumerate(tools):
        resolved = converter.resolve_refs(json.loads(json.dumps(schema)), f"tool-{i}")
        args = converter.visit(resolved, f"args-{i}")
        alternatives.append(converter._add_rule(
            f"call-{i}", f"{_literal(call_open + name + call_middle)} {args} {_literal(call_close)}"))
    converter._add_rule("call", " | ".join(alternatives))
    more = f" ({_literal(separator)} call)*" if parallel else ""
    converter._add_rule("root", f"{_literal(head)} call{more} {_literal(tail)}")
    return converter.format_grammar().replace(_LOOSE_CHAR, _STRICT_CHAR)


def _literal(text: str) -> str:
    """A GBNF string literal for ``text``."""
    return json.dumps(text)
