"""The builder dialect (API.md §2): stored chats streamed as typed SSE events.

``POST /api/chat`` is shared with the conversations dialect, so it is routed by
``hubbub/dispatch.py``, which validates the body and calls ``send`` here.
"""

from __future__ import annotations

from fastapi import Query, Request, Response
from fastapi.responses import JSONResponse

from hubbub.dialects.builder import adapter
from hubbub.dialects.builder.protocol import BuilderChatRequest
from hubbub.http.deps import get_container, get_owner
from hubbub.http.routing import dialect_router, request_id
from hubbub.http.sse import SSEResponse, last_event_id
from hubbub.errors import NotFound

router = dialect_router(adapter.render_error, prefix="/api/chat", tags=["builder"])


async def send(body: BuilderChatRequest, request: Request) -> Response:
    """One builder turn: start it (errors before any output get their status), then stream it.

    The generation belongs to the chat, not to this response: a client that goes
    away leaves it running (``on_disconnect``) and can read the result later.
    """
    container = get_container(request)
    turn = await adapter.start_turn(container.turns, container.settings, body, get_owner(request), request_id(request))
    return SSEResponse(
        adapter.sse_stream(container.turns, turn.conversation_id, body.enableDSL, generation=turn.message_id),
        container.settings.sse_ping_seconds,
        headers={"X-Chat-Id": turn.conversation_id},
    )


async def _chat(request: Request, chat_id: str):  # noqa: ANN202
    conv = await get_container(request).conversations.get(chat_id, get_owner(request), kind=adapter.KIND)
    if conv is None:
        raise NotFound("chat", chat_id)
    return conv


@router.get("/{chat_id}", summary="A builder chat: messages, DSL, phase and status")
async def get_chat(chat_id: str, request: Request) -> JSONResponse:
    conv = await _chat(request, chat_id)
    messages = await get_container(request).conversations.messages(conv.id)
    return JSONResponse(adapter.chat_body(conv, messages))


@router.get("/{chat_id}/stream", summary="Resume a chat's stream: history, then live events (Last-Event-ID aware)")
async def resume(chat_id: str, request: Request) -> Response:
    conv = await _chat(request, chat_id)
    container = get_container(request)
    return SSEResponse(adapter.resume_stream(container.turns, conv, last_event_id(request)),
                       container.settings.sse_ping_seconds, headers={"X-Chat-Id": conv.id})


@router.get("/{chat_id}/dsl", summary="The chat's data model as json, jsonschema, sql (PostgreSQL DDL) or mermaid")
async def export_dsl(chat_id: str, request: Request, fmt: str = Query("json", alias="format")) -> Response:
    adapter.check_dsl_format(fmt)
    conv = await _chat(request, chat_id)
    body, media_type = adapter.dsl_export(conv, fmt)
    return Response(body, media_type=media_type)


@router.post("/{chat_id}/stop", summary="Stop the chat's running generation, keeping the partial answer")
async def stop_chat(chat_id: str, request: Request) -> JSONResponse:
    conv = await _chat(request, chat_id)
    stopped = await get_container(request).turns.stop(conv.id)
    return JSONResponse({"stopped": stopped})
