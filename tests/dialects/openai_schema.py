"""Every ``/v1`` response body and stream chunk the OpenAI tests receive, validated against
OpenAI's published OpenAPI schemas (issue 21).

The schemas are vendored in ``openai_spec/schemas.json`` (source repository, path and commit in
its header; ``openai_spec/extract.py`` made it). ``RecordingTransport`` is an httpx transport
that keeps a copy of each ``/v1`` response as the test reads it; ``check`` validates what was
recorded: JSON bodies whole, event streams chunk by chunk (``[DONE]`` aside).

Corrections of the document at that commit, each a known error of it (the API and the official
SDKs say otherwise), are applied here rather than in the data:

- ``CreateEmbeddingResponse.object`` is ``list`` (the document said ``embedding``; openai-python's
  ``CreateEmbeddingResponse.object`` is ``Literal["list"]``, and later versions of the document agree).
- ``Embedding.embedding`` is a string (the vector's float32 bytes, base64) when the request asked for
  ``encoding_format: base64``, as the API sends it and the SDKs decode it (the document only
  describes the float array).
- A streamed ``text_completion`` chunk carries ``finish_reason: null`` until its last chunk, as
  OpenAI streams it (the document shares the non-streamed schema, where it is never null).
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jsonschema

DOCUMENT = json.loads((Path(__file__).parent / "openai_spec" / "schemas.json").read_text())


def _corrected() -> dict[str, Any]:
    doc = copy.deepcopy(DOCUMENT)
    schemas = doc["components"]["schemas"]
    schemas["CreateEmbeddingResponse"]["properties"]["object"]["enum"] = ["list"]
    vector = schemas["Embedding"]["properties"]["embedding"]
    schemas["Embedding"]["properties"]["embedding"] = {"anyOf": [vector, {"type": "string", "contentEncoding": "base64"}]}
    chunk = copy.deepcopy(schemas["CreateCompletionResponse"])
    reason = chunk["properties"]["choices"]["items"]["properties"]["finish_reason"]
    reason["type"], reason["enum"] = ["string", "null"], [*reason["enum"], None]
    schemas["CreateCompletionStreamChunk"] = chunk
    return doc


_DOC = _corrected()


def validate(name: str, instance: Any) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``instance`` is a valid ``name``."""
    schema = {"$ref": f"#/components/schemas/{name}", "components": _DOC["components"]}
    jsonschema.Draft202012Validator(schema).validate(instance)


def schema_for(method: str, path: str, status: int, streamed: bool) -> str | None:
    """The component a ``/v1`` response must match (None: not an OpenAI route: the bots dialect's
    ``/v1/chat``, Anthropic's ``/v1/messages``)."""
    if path == "/v1/chat" or path.startswith("/v1/messages"):
        return None
    if status >= 400:
        return "ErrorResponse"
    if method == "POST" and path == "/v1/chat/completions":
        return "CreateChatCompletionStreamResponse" if streamed else "CreateChatCompletionResponse"
    if method == "POST" and path == "/v1/completions":
        return "CreateCompletionStreamChunk" if streamed else "CreateCompletionResponse"
    if method == "POST" and path == "/v1/embeddings":
        return "CreateEmbeddingResponse"
    if method == "GET" and path == "/v1/models":
        return "ListModelsResponse"
    if method == "GET" and re.fullmatch(r"/v1/models/.+", path):
        return "Model"
    return None


@dataclass
class Recorded:
    method: str
    path: str
    status: int
    content_type: str
    body: bytes


class RecordingTransport(httpx.AsyncHTTPTransport):
    """An httpx transport that records every ``/v1`` response it delivers, body included."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.recorded: list[Recorded] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        if not request.url.path.startswith("/v1"):
            return response
        record = Recorded(request.method, request.url.path, response.status_code,
                          response.headers.get("content-type", ""), b"")
        self.recorded.append(record)
        inner = response.stream

        class Tee(httpx.AsyncByteStream):
            async def __aiter__(self):  # noqa: ANN204
                async for chunk in inner:  # type: ignore[union-attr]
                    record.body += chunk
                    yield chunk

            async def aclose(self) -> None:
                await inner.aclose()  # type: ignore[union-attr]

        return httpx.Response(response.status_code, headers=response.headers, stream=Tee(),
                              extensions=response.extensions)


def sse_payloads(body: bytes) -> list[str]:
    """The ``data`` of each event of a text/event-stream body."""
    out, data = [], []
    for line in body.decode().replace("\r\n", "\n").split("\n"):
        if line.startswith("data:"):
            data.append(line[5:].lstrip(" "))
        elif not line and data:
            out.append("\n".join(data))
            data = []
    if data:
        out.append("\n".join(data))
    return out


def check(recorded: list[Recorded]) -> int:
    """Validate every recorded response; returns how many bodies and chunks were checked."""
    checked = 0
    for r in recorded:
        streamed = r.content_type.startswith("text/event-stream")
        name = schema_for(r.method, r.path, r.status, streamed)
        if name is None or not r.body:
            continue
        where = f"{r.method} {r.path} ({r.status})"
        if not streamed:
            instances = [json.loads(r.body)]
        else:
            instances = [json.loads(p) for p in sse_payloads(r.body) if p != "[DONE]"]
        for instance in instances:
            # An error inside a stream (after its 200) is an error body, as OpenAI sends it.
            schema = "ErrorResponse" if streamed and "error" in instance else name
            try:
                validate(schema, instance)
            except jsonschema.ValidationError as exc:
                raise AssertionError(f"{where}: not a valid {schema}: {exc.message[:300]} at "
                                     f"{list(exc.absolute_path)}\n{json.dumps(instance)[:1000]}") from None
            checked += 1
    return checked
