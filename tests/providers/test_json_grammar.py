"""The JSON-schema grammar closes the converter's gaps: integer bounds and control characters; the
tool-call grammar bounds strings, arrays and free-form values so a forced call always ends."""

from __future__ import annotations

import json
import random
import re

import pytest

from hubbub.providers.json_grammar import MAX_ITEMS, MAX_STRING, int_range_rule, schema_to_gbnf, tool_calls_gbnf


def _as_regex(rule: str) -> re.Pattern[str]:
    return re.compile("^(" + rule.replace('"', "").replace(" ", "") + ")$")


def _cases() -> list[tuple[int | None, int | None]]:
    rng = random.Random(7)
    fixed = [(0, 120), (5, 5), (0, 0), (1, 999), (17, 4321), (-50, 50), (-120, -3), (None, 10), (3, None),
             (None, None), (-7, None), (99, 100), (100, 1000), (421, 839)]
    randoms = []
    for _ in range(60):
        lo = rng.randint(-2000, 2000)
        randoms.append((lo, rng.randint(lo, 3000)))
    return fixed + randoms


@pytest.mark.parametrize(("lo", "hi"), _cases())
def test_int_range_rule_matches_exactly_the_range(lo, hi):
    rx = _as_regex(int_range_rule(lo, hi))
    for n in range(-3000, 3001):
        assert bool(rx.match(str(n))) == ((lo is None or n >= lo) and (hi is None or n <= hi)), n
    assert not rx.match("007")


def test_strings_exclude_control_characters():
    grammar = schema_to_gbnf({"type": "object", "properties": {"s": {"type": "string"}}, "required": ["s"]})
    assert r"\x00-\x1F" in grammar


def test_exclusive_bounds_and_empty_range():
    grammar = schema_to_gbnf({"type": "integer", "exclusiveMinimum": 1, "exclusiveMaximum": 4})
    rule = grammar.split("root ::= ")[1].splitlines()[0]
    rx = _as_regex(rule.replace('" "?', "").strip())
    assert [n for n in range(-5, 10) if rx.match(str(n))] == [2, 3]
    with pytest.raises(ValueError):
        schema_to_gbnf({"type": "integer", "minimum": 5, "maximum": 1})


# -- tool calls: bounded strings, arrays and free-form values (issue 16) -------------------------

def _gbnf_regex(grammar: str) -> re.Pattern[str]:
    """The bounded tool-call grammars are not recursive, so each one is a regular expression:
    every rule is written out in place. Handles what the converter emits (literals, classes,
    groups, ``? * + {m,n} |``)."""
    rules = dict(line.split(" ::= ", 1) for line in grammar.splitlines())
    token = re.compile(r'"(?:\\.|[^"\\])*"|\[(?:\\.|[^\]\\])*\]|\{\d+(?:,\d*)?\}|[A-Za-z0-9-]+|[()|?*+]|\s+')

    def expand(name: str, seen: tuple[str, ...]) -> str:
        assert name not in seen, f"recursive rule {name}"
        out = []
        for t in token.findall(rules[name]):
            if t.isspace():
                continue
            if t.startswith('"'):
                out.append(re.escape(re.sub(r"\\(x[0-9a-fA-F]{2}|.)", lambda m: (
                    chr(int(m.group(1)[1:], 16)) if m.group(1).startswith("x") and len(m.group(1)) == 3
                    else {"n": "\n", "r": "\r", "t": "\t"}.get(m.group(1), m.group(1))), t[1:-1])))
            elif t.startswith(("[", "{")):
                out.append(t)
            elif t in "()|?*+":
                out.append(t.replace("(", "(?:"))
            else:
                out.append("(?:" + expand(t, seen + (name,)) + ")")
        return "".join(out)

    return re.compile(expand("root", ()), re.DOTALL)


def _call_regex(schema: dict) -> re.Pattern[str]:
    from hubbub.providers import tool_calls

    text = tool_calls_gbnf([("f", schema)], tool_calls.HEAD, tool_calls.SEPARATOR, tool_calls.TAIL,
                           tool_calls.CALL_OPEN, tool_calls.CALL_MIDDLE, tool_calls.CALL_CLOSE, parallel=False)
    return _gbnf_regex(text)


def _call(arguments: object) -> str:
    return '<tool_call>[{"name": "f", "arguments": ' + json.dumps(arguments, separators=(",", ":")) + "}]</tool_call>"


def _obj(**properties: dict) -> dict:
    return {"type": "object", "properties": properties, "required": list(properties)}


def test_a_tool_call_string_is_bounded_unless_the_schema_says_otherwise():
    free = _call_regex(_obj(s={"type": "string"}))
    assert free.fullmatch(_call({"s": "x" * MAX_STRING}))
    assert not free.fullmatch(_call({"s": "x" * (MAX_STRING + 1)}))
    longer = _call_regex(_obj(s={"type": "string", "maxLength": 100}))
    assert longer.fullmatch(_call({"s": "x" * 100})) and not longer.fullmatch(_call({"s": "x" * 101}))
    at_least = _call_regex(_obj(s={"type": "string", "minLength": 80}))
    assert at_least.fullmatch(_call({"s": "x" * 80})) and not at_least.fullmatch(_call({"s": "x" * 81}))
    nullable = _call_regex(_obj(s={"type": ["string", "null"]}))
    assert nullable.fullmatch(_call({"s": None})) and not nullable.fullmatch(_call({"s": "x" * (MAX_STRING + 1)}))
    enum = _call_regex(_obj(s={"type": "string", "enum": ["a" * 70]}))  # an enum is taken as written
    assert enum.fullmatch(_call({"s": "a" * 70}))


def test_a_tool_call_array_is_bounded_unless_the_schema_says_otherwise():
    free = _call_regex(_obj(a={"type": "array", "items": {"type": "integer"}}))
    assert free.fullmatch(_call({"a": list(range(MAX_ITEMS))}))
    assert not free.fullmatch(_call({"a": list(range(MAX_ITEMS + 1))}))
    more = _call_regex(_obj(a={"type": "array", "items": {"type": "integer"}, "maxItems": 12}))
    assert more.fullmatch(_call({"a": list(range(12))})) and not more.fullmatch(_call({"a": list(range(13))}))
    untyped = _call_regex(_obj(a={"type": "array"}))
    assert untyped.fullmatch(_call({"a": [1, "x", {"k": True}, [None]]}))
    assert not untyped.fullmatch(_call({"a": list(range(MAX_ITEMS + 1))}))
    assert not untyped.fullmatch(_call({"a": [[[1]]]}))  # deeper than MAX_DEPTH


def test_free_form_values_are_bounded_and_listed_properties_get_no_extras():
    anything = _call_regex(_obj(v={}, o={"type": "object"}))
    assert anything.fullmatch(_call({"v": [{"k": 1}], "o": {"a": ["b", None]}}))
    assert not anything.fullmatch(_call({"v": [[[1]]], "o": {}}))  # deeper than MAX_DEPTH
    assert not anything.fullmatch(_call({"v": "x" * (MAX_STRING + 1), "o": {}}))
    assert not anything.fullmatch(_call({"v": 1, "o": {str(i): i for i in range(MAX_ITEMS + 1)}}))
    typed = _call_regex(_obj(m={"type": "object", "additionalProperties": {"type": "integer", "maximum": 9}}))
    assert typed.fullmatch(_call({"m": {"a": 1, "b": 9}})) and not typed.fullmatch(_call({"m": {"a": 10}}))
    listed = _call_regex({"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": True})
    assert listed.fullmatch(_call({"a": 1})) and not listed.fullmatch(_call({"a": 1, "b": 2}))
