"""JSON Schema -> llama.cpp grammar (GBNF), on top of llama-cpp-python's converter.

Two gaps in the converter that ships with llama-cpp-python 0.3.x are closed here,
because "the output validates against the schema, every time" depends on them:

* its string ``char`` rule admits raw control characters (a newline inside a
  string), which is invalid JSON — we exclude ``\\x00-\\x1F`` and ``\\x7F``;
* it ignores ``minimum``/``maximum`` on integers — we emit an exact digit-range
  grammar for them (the classic split of [lo, hi] into ranges of equal length).

Bounds on non-integer numbers are not enforced by the grammar (documented).
"""

from __future__ import annotations

import json
import math
from typing import Any

_MAX_DIGITS = 15
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


def _converter() -> Any:
    from llama_cpp.llama_grammar import SchemaConverter

    class _Converter(SchemaConverter):
        def visit(self, node: Any, name: str) -> str:
            bounds = _int_bounds(node) if isinstance(node, dict) else None
            if bounds is not None:
                lo, hi = bounds
                if lo is not None and hi is not None and lo > hi:
                    raise ValueError(f"integer range {lo}..{hi} is empty")
                return self._add_rule(name or "root", f'({int_range_rule(lo, hi)}) " "?')
            return super().visit(node, name)

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
    tool's parameters schema (by the same converter and fixes as ``schema_to_gbnf``)."""
    converter = _converter()
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
