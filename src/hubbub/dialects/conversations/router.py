"""The conversations dialect (API.md §3): stored conversations per user, group and preset.

``POST /api/chat`` is shared with the builder dialect, so it is routed by
``hubbub/dispatch.py``, which validates the body and calls ``send`` here.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request, Response
from fastapi.responses import JSONResponse

from hubbub.core.turns import Turn
from hubbub.core.types import Conversation
from hubbub.dialects.conversations import adapter
from hubbub.dialects.conversations.protocol import ConversationChatRequest
from hubbub.http.deps import get_container, get_owner
from hubbub.http.routing import dialect_router, request_id
from hubbub.http.sse import SSEResponse, last_event_id
from hubbub.errors import NotFound

router = dialect_router(adapter.render_error, tags=["conversations"], idempotent=True)


async def send(body: ConversationChatRequest, request: Request) -> Response:
    """One turn, answered as JSON once it is done (the turn itself outlives the request)."""
    container = get_container(request)
    turn = await adapter.start_turn(container.turns, container.settings, body, get_owner(request), request_id(request))
    return JSONResponse(await adapter.reply_body(container.turns, turn))


@router.post("/api/chat/stream", summary="Send a message; the answer streams as SSE",
             responses={200: {"content": {"text/event-stream": {}}, "description": "start, content…, end"}})
async def send_stream(body: ConversationChatRequest, request: Request) -> Response:
    """With ``Last-Event-ID`` and a ``conversationId`` this is a reconnect: no new message is
    sent; the conversation's latest answer continues after that event id."""
    container = get_container(request)
    after = last_event_id(request)
    if after is not None and body.conversationId:
        conv = await _conversation(request, body.conversationId)
        key = await container.turns.latest_generation(conv.id)
        if key is not None:
            turn = Turn(conv.id, key)
            return SSEResponse(adapter.sse_stream(container.turns, turn, after),
                               container.settings.sse_ping_seconds)
    turn = await adapter.start_turn(container.turns, container.settings, body, get_owner(request), request_id(request))
    return SSEResponse(adapter.sse_stream(container.turns, turn), container.settings.sse_ping_seconds)


@router.get("/api/conversations", summary="List conversations, most recently updated first")
async def list_conversations(
    request: Request,
    userId: str | None = None,  # noqa: N803 - wire name
    groupId: str | None = None,  # noqa: N803 - wire name
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=2**62)] = 0,
) -> JSONResponse:
    convs, total = await get_container(request).conversations.list(
        kind=adapter.KIND, owner=get_owner(request), user_id=userId, group_id=groupId, limit=limit, offset=offset
    )
    return JSONResponse(adapter.list_body(convs, total))


async def _conversation(request: Request, conversation_id: str) -> Conversation:
    conv = await get_container(request).conversations.get(conversation_id, get_owner(request), kind=adapter.KIND)
    if conv is None:
        raise NotFound("conversation", conversation_id)
    return conv


@router.get("/api/conversations/{conversation_id}", summary="A conversation with its messages")
async def get_conversation(conversation_id: str, request: Request) -> JSONResponse:
    conv = await _conversation(request, conversation_id)
    messages = await get_container(request).conversations.messages(conv.id)
    return JSONResponse(adapter.detail_body(conv, messages))


@router.delete("/api/conversations/{conversation_id}", summary="Delete a conversation (stopping its generation)")
async def delete_conversation(conversation_id: str, request: Request) -> JSONResponse:
    conv = await _conversation(request, conversation_id)
    container = get_container(request)
    await container.turns.stop(conv.id)  # so no answer lands in a deleted conversation
    await container.conversations.delete(conv.id)
    return JSONResponse({"success": True})


@router.post("/api/conversations/{conversation_id}/clear", summary="Remove every message, keeping the id")
async def clear_conversation(conversation_id: str, request: Request) -> JSONResponse:
    conv = await _conversation(request, conversation_id)
    container = get_container(request)
    await container.turns.stop(conv.id)
    await container.conversations.clear(conv.id)
    return JSONResponse({"success": True, "message": "Context cleared"})


@router.post("/api/conversations/{conversation_id}/stop", summary="Stop the running generation, keeping its text")
async def stop_conversation(conversation_id: str, request: Request) -> JSONResponse:
    conv = await _conversation(request, conversation_id)
    await get_container(request).turns.stop(conv.id)
    return JSONResponse({"success": True})
