"""The JSON-schema grammar closes the converter's gaps: integer bounds and control characters."""

from __future__ import annotations

import random
import re

import pytest

from hubbub.providers.json_grammar import int_range_rule, schema_to_gbnf


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
