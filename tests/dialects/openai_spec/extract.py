"""Extract the OpenAI response schemas hubbub is validated against from OpenAI's OpenAPI document.

    python tests/dialects/openai_spec/extract.py path/to/openapi.yaml > tests/dialects/openai_spec/schemas.json

Source: https://github.com/openai/openai-openapi, ``openapi.yaml`` at commit ``COMMIT`` (below).
It keeps the component schemas in ``ROOTS`` and everything they ``$ref``, drops prose
(``description``, ``example``, ``x-oai*``, ``title``, ``deprecated``, ``default``) and turns
OpenAPI 3.0's ``nullable: true`` into JSON Schema (``type: [T, "null"]``, ``null`` in an ``enum``),
so ``jsonschema`` validates with the document's own ``#/components/schemas/...`` references.

The input may be the whole document or an excerpt holding at least ``ROOTS`` and their closure
(the vendored file was made from the component schemas read through the project's library
index, prose left out). Corrections for known errors of the document at that commit are not made
here: ``test_openai_schema.py`` applies them, each with its reason, so the data stays the source's.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import yaml

REPO, PATH, COMMIT = "openai/openai-openapi", "openapi.yaml", "006e34bedf5bc884774aa8550715f4f4daef3334"
ROOTS = ["CreateChatCompletionResponse", "CreateChatCompletionStreamResponse", "CreateCompletionResponse",
         "CreateEmbeddingResponse", "Model", "ListModelsResponse", "ErrorResponse"]
_PROSE = {"description", "example", "title", "deprecated", "default"}
_PREFIX = "#/components/schemas/"


def convert(node: Any) -> Any:
    """One schema node, prose dropped and ``nullable`` made JSON Schema."""
    if isinstance(node, list):
        return [convert(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: convert(v) for k, v in node.items() if k not in _PROSE and not k.startswith("x-oai") and k != "nullable"}
    if node.get("nullable") is True:
        if "type" in out:
            out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        else:  # a $ref or a oneOf made nullable
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def refs(node: Any) -> set[str]:
    if isinstance(node, list):
        return set().union(*(refs(n) for n in node)) if node else set()
    if not isinstance(node, dict):
        return set()
    found = {node["$ref"][len(_PREFIX):]} if isinstance(node.get("$ref"), str) else set()
    return found.union(*(refs(v) for v in node.values()))


def extract(document: dict[str, Any]) -> dict[str, Any]:
    schemas = document["components"]["schemas"]
    wanted, todo = {}, list(ROOTS)
    while todo:
        name = todo.pop()
        if name in wanted:
            continue
        wanted[name] = schemas[name]
        todo.extend(refs(schemas[name]))
    return {
        "$comment": f"Extracted by tests/dialects/openai_spec/extract.py from https://github.com/{REPO} "
                    f"{PATH} at commit {COMMIT}; component schemas {', '.join(ROOTS)} and their $refs (MIT license).",
        "source": {"repo": REPO, "path": PATH, "commit": COMMIT},
        "components": {"schemas": {name: convert(wanted[name]) for name in sorted(wanted)}},
    }


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as f:
        print(json.dumps(extract(yaml.safe_load(f)), indent=1, sort_keys=False))
