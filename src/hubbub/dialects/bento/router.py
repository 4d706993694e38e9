"""bento routes (API.md §1), mounted under ``settings.bento_prefix`` (default ``/api/bento``)."""

from __future__ import annotations

from fastapi import Request, Response

from hubbub.core.service import ChatRequest
from hubbub.dialects.bento import adapter
from hubbub.dialects.bento.protocol import BentoChatRequest
from hubbub.http.deps import AppSettings, Owner, Service
from hubbub.http.sources import sources_header
from hubbub.http.routing import dialect_router, request_id
from hubbub.http.sse import SSEResponse

router = dialect_router(adapter.render_error, tags=["bento"], idempotent=True)

_STREAM = {
    200: {"description": "SSE: `data: {\"content\": \"...\"}` per delta, then `data: [DONE]`",
          "content": {"text/event-stream": {}}},
    400: {"description": "`{\"error\": \"Invalid request\", \"details\"}` or `\"Context length exceeded\"`"},
    404: {"description": "`{\"error\": \"Model not found\", \"availableModels\"}`"},
}


@router.post("/chat/stream", summary="Stream a chat reply (bento)", responses=_STREAM)
async def chat_stream(
    body: BentoChatRequest, request: Request, service: Service, settings: AppSettings, owner: Owner
) -> Response:
    messages = adapter.to_messages(body)
    # RAG (API.md §6): with ragEnabled the core puts the owner's best passages into the prompt;
    # the documents they came from are listed in the X-Rag-Sources header.
    chat = ChatRequest(
        messages=messages,
        model=body.model,
        params=adapter.to_params(body),
        owner=owner,
        request_id=request_id(request),
        rag=bool(body.ragEnabled),
    )
    # Errors before the first token raise here and become proper statuses (render_error).
    generation = await service.open_stream(chat)
    headers = {"X-Rag-Sources": sources_header(generation.sources)} if chat.rag else None
    return SSEResponse(adapter.content_stream(generation), settings.sse_ping_seconds, headers=headers)


@router.get("/chat/models", summary="List models (bento)")
async def list_models(service: Service) -> dict:
    return {"models": [adapter.model_body(m) for m in service.models()]}
