"""A JSON schema of about 100 KiB (257 nested objects with typed, bounded members), for the tests
and the benchmark of grammar building off the event loop (issue 15)."""

from __future__ import annotations

import json
from typing import Any


def big_schema(target_bytes: int = 100 * 1024) -> dict[str, Any]:
    props: dict[str, Any] = {}
    i = 0
    while True:
        props[f"field_{i}"] = {
            "type": "object", "description": f"A nested record number {i} with several typed members",
            "properties": {"name": {"type": "string", "maxLength": 40},
                           "count": {"type": "integer", "minimum": 0, "maximum": 999},
                           "kind": {"type": "string", "enum": ["alpha", "beta", "gamma", "delta"]},
                           "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3}},
            "required": ["name", "kind"]}
        i += 1
        schema = {"type": "object", "properties": props, "required": list(props)[:3]}
        if len(json.dumps(schema)) >= target_bytes:
            return schema
