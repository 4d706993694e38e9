"""``POST /v1/embeddings``: its wire model and body (issue 21; docs/api-decisions.md "Embeddings").

Kept apart from ``protocol.py``/``adapter.py`` (the chat wire, which the sampler work changes)
so the two merge cleanly; the same rules apply: unknown fields ignored, every number bounded,
bad input a 400 in OpenAI's shape naming the field.
"""

from __future__ import annotations

import base64
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hubbub.core.embeddings import Embeddings
from hubbub.errors import FieldProblem, InvalidRequest

INT32_MAX = 2**31 - 1


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1)
    # A string or a list of strings. Token arrays (lists of integers) are OpenAI's too, but token
    # ids of OpenAI's tokenizer mean nothing to another model: a 400 naming them (texts()).
    input: str | list[Any]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1, le=INT32_MAX)
    user: str | None = None


def texts(body: EmbeddingRequest) -> list[str]:
    """The inputs as texts; token arrays and other types are refused by name."""
    if isinstance(body.input, str):
        return [body.input]
    out: list[str] = []
    for i, item in enumerate(body.input):
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, (int, list)) and not isinstance(item, bool):
            raise InvalidRequest("Token arrays are not supported", [FieldProblem(
                "input" if isinstance(item, int) else f"input.{i}",
                "token arrays are not supported: send the text (docs/api-decisions.md, \"Embeddings\")")])
        else:
            raise InvalidRequest("Invalid input", [FieldProblem(f"input.{i}", "must be a string")])
    return out


def body(result: Embeddings, encoding_format: str) -> dict[str, Any]:
    """OpenAI's ``list`` of ``embedding`` objects: floats, or with ``base64`` the little-endian
    float32 bytes of each vector, base64-encoded (what the official SDKs decode)."""
    data = []
    for i, row in enumerate(result.vectors):
        vector: Any = (base64.b64encode(row.astype("<f4").tobytes()).decode("ascii") if encoding_format == "base64"
                       else row.tolist())
        data.append({"object": "embedding", "index": i, "embedding": vector})
    return {"object": "list", "data": data, "model": result.model,
            "usage": {"prompt_tokens": result.prompt_tokens, "total_tokens": result.prompt_tokens}}
