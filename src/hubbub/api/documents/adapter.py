"""Documents wire <-> core, and the one error mapper.

API.md leaves the error shape open; this route uses the structured shape
``{"error": {"code", "message", "details"?, "requestId"?}}`` with lower-case codes:
400 ``invalid_request`` (``details``: ``[{"field", "message"}]``), 401 ``unauthorized``,
403 ``forbidden``, 404 ``not_found``, 413 ``payload_too_large`` (``maxBytes``),
415 ``unsupported_media_type``, 429 ``rate_limited`` (+ ``Retry-After``), 500 ``internal_error``,
503 ``service_unavailable`` (database or Redis down, + ``Retry-After``).
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from hubbub.http.routing import error_response, request_id
from hubbub.http.validation import problems
from hubbub.errors import HubbubError, InvalidRequest, PayloadTooLarge, Unavailable
from hubbub.rag.chunk import Chunk
from hubbub.rag.store import DocumentInfo, Hit


def document_body(info: DocumentInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "title": info.title,
        "chunks": info.chunk_count,
        "filename": info.filename,
        "mediaType": info.media_type,
        "sizeBytes": info.size_bytes,
        "createdAt": info.created_at,
    }


def passage_body(chunk: Chunk) -> dict[str, Any]:
    return {"index": chunk.ordinal, "heading": chunk.heading, "text": chunk.text, "tokens": chunk.tokens}


def result_body(hit: Hit) -> dict[str, Any]:
    return {"documentId": hit.document_id, "title": hit.title, "text": hit.text, "score": hit.score}


def error_body(exc: Exception, rid: str) -> tuple[int, dict[str, Any]]:
    if isinstance(exc, RequestValidationError):
        exc = InvalidRequest("Invalid request", problems(exc))
    if isinstance(exc, HubbubError) and (exc.status < 500 or isinstance(exc, Unavailable)):
        error: dict[str, Any] = {"code": exc.code.lower(), "message": exc.message}
        if isinstance(exc, InvalidRequest) and exc.details:
            error["details"] = [{"field": p.field, "message": p.message} for p in exc.details]
        if isinstance(exc, PayloadTooLarge):
            error["maxBytes"] = exc.limit
        return exc.status, {"error": error}
    return 500, {"error": {"code": "internal_error", "message": "Internal error", "requestId": rid}}


def render_error(exc: Exception, request: Request) -> JSONResponse:
    status, body = error_body(exc, request_id(request))
    return error_response(body, status, exc)


