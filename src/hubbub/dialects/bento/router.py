"""bento routes (API.md §1), mounted under ``settings.bento_prefix`` (default ``/api/bento``)."""

from __future__ import annotations

from fastapi import Request, Response

from hubbub.core.service import ChatRequest
from hubbub.dialects.bento import adapter
from hubbub.dialects.bento.protocol import BentoChatRequest
from hubbub.dialects.deps import AppSettings, Owner, Service
from hubbub.dialects.routing import dialect_router, request_id
from hubbub.dialects.sse import SSEResponse

router = dialect_router(adapter.render_error, tags=["bento"])

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
    # RAG (API.md §6): with body.ragEnabled, retrieved passages are put into `messages`
    # here and listed in the X-Rag-Sources header. Until rag/ lands the flag is accepted and has no effect.
    chat = ChatRequest(
        messages=messages,
        model=body.model,
        params=adapter.to_params(body),
        owner=owner,
        request_id=request_id(request),
    )
    # Errors before the first token raise here and become proper statuses (render_error).
    generation = await service.open_stream(chat)
    return SSEResponse(adapter.content_stream(generation), settings.sse_ping_seconds)


@router.get("/chat/models", summary="List models (bento)")
async def list_models(service: Service) -> dict:
    return {"models": [adapter.model_body(m) for m in service.models()]}
