"""The wire form of the documents a RAG answer used (API.md §6), shared by the dialects that ground
answers: a top-level ``rag_sources`` (OpenAI) or the ``X-Rag-Sources`` header (bento, bots)."""

from __future__ import annotations

import json

from hubbub.core.types import Source


def sources_json(sources: list[Source]) -> list[dict[str, str]]:
    """The documents a RAG answer used, each once, best first: ``[{"documentId", "title"}]``."""
    seen: dict[str, dict[str, str]] = {}
    for source in sources:
        seen.setdefault(source.document_id, {"documentId": source.document_id, "title": source.title})
    return list(seen.values())


def sources_header(sources: list[Source]) -> str:
    """``X-Rag-Sources``: JSON, ASCII-only (non-ASCII titles as \\u escapes) so it is a valid header."""
    return json.dumps(sources_json(sources), ensure_ascii=True, separators=(",", ":"))
