"""``/api/documents`` (API.md §6): upload, list, get, delete, search. Bodies up to
``settings.max_document_bytes`` (default 20 MiB)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from hubbub.http.deps import Owner
from hubbub.api.documents import adapter
from hubbub.api.documents.protocol import DocumentIn, SearchIn
from hubbub.http.routing import dialect_router
from hubbub.errors import FieldProblem, InvalidRequest
from hubbub.rag.parse import clean
from hubbub.rag.service import RagService

router = dialect_router(adapter.render_error, prefix="/api/documents", tags=["documents"],
                        body_limit_setting="max_document_bytes")


def get_rag(request: Request) -> RagService:
    return request.app.state.container.rag


Rag = Annotated[RagService, Depends(get_rag)]

_UPLOAD = {"requestBody": {"content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary"}, "title": {"type": "string"}}}},
    "application/json": {"schema": DocumentIn.model_json_schema()},
}}}


async def _upload(request: Request, rag: RagService, owner: str | None):  # noqa: ANN202
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        try:
            form = await request.form()
        except (HTTPException, ValueError) as exc:  # malformed multipart, oversized field
            raise InvalidRequest("Invalid request", [FieldProblem("file", "malformed multipart body")]) from exc
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidRequest("Invalid request", [FieldProblem("file", "a file is required")])
        title = form.get("title")
        data = await upload.read()
        # Names and titles are cleaned like the file's text (rag/parse.py: no NUL reaches the database).
        return await rag.ingest_bytes(data, filename=clean(upload.filename) if upload.filename else None,
                                      content_type=upload.content_type, owner=owner,
                                      title=clean(title) if isinstance(title, str) else None)
    try:
        body = DocumentIn.model_validate_json(await request.body() or b"{}")
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from exc
    return await rag.ingest_text(body.title, body.content, owner)


@router.post("", status_code=201, summary="Upload a document (multipart `file`, or JSON {title, content})",
             openapi_extra=_UPLOAD)
async def upload(request: Request, rag: Rag, owner: Owner) -> JSONResponse:
    info = await _upload(request, rag, owner)
    return JSONResponse({"id": info.id, "title": info.title, "chunks": info.chunk_count}, status_code=201)


@router.get("", summary="List documents")
async def list_documents(rag: Rag, owner: Owner) -> dict:
    return {"documents": [adapter.document_body(d) for d in await rag.list(owner)]}


@router.post("/search", summary="Search documents")
async def search(body: SearchIn, rag: Rag, owner: Owner) -> dict:
    hits = await rag.search(body.query, owner, body.k, body.mode)
    return {"results": [adapter.result_body(h) for h in hits]}


@router.get("/{doc_id}", summary="A document and its passages")
async def get_document(doc_id: str, rag: Rag, owner: Owner) -> dict:
    info, chunks = await rag.get(doc_id, owner)
    return {**adapter.document_body(info), "passages": [adapter.passage_body(c) for c in chunks]}


@router.delete("/{doc_id}", status_code=204, summary="Delete a document")
async def delete_document(doc_id: str, rag: Rag, owner: Owner) -> Response:
    await rag.delete(doc_id, owner)
    return Response(status_code=204)
