"""bots routes (API.md §4): ``POST /chat`` and ``POST /v1/chat``, plus bot management (``admin``)."""

from __future__ import annotations

from fastapi import Request, Response
from fastapi.responses import JSONResponse

from hubbub.core.service import ChatRequest, bot_params, bot_tools
from hubbub.core.types import SamplingParams
from hubbub.dialects.bots import adapter, protocol
from hubbub.dialects.bots.v1 import request_body
from hubbub.http.deps import AppSettings, Owner, Service
from hubbub.http.sources import sources_header
from hubbub.http.routing import dialect_router, request_id
from hubbub.http.sse import SSEResponse

router = dialect_router(adapter.render_error, tags=["bots"], idempotent=True)

_RESPONSES = {
    200: {
        "description": "`{\"content\": \"...\"}` with `stream: false`; an SSE stream of `{\"content\"}` "
                       "objects ending in `[DONE]` with `stream: true`",
        "content": {"application/json": {}, "text/event-stream": {}},
    },
    404: {"description": "Bot not found"},
    422: {"description": "Validation error (pydantic v1 shape)"},
}


# The body is validated by hand (``v1``) so a 422 reads as the seed's pydantic-v1 app wrote it;
# ``openapi_extra`` still declares it for /docs.
@router.post("/chat", summary="Chat with a bot", openapi_extra=request_body(protocol.CHAT), responses=_RESPONSES)
@router.post("/v1/chat", summary="Chat with a bot", openapi_extra=request_body(protocol.CHAT),
             responses=_RESPONSES)
async def chat(request: Request, service: Service, settings: AppSettings, owner: Owner) -> Response:
    body = protocol.parse_chat(await request.body(), request.headers.get("content-type"))
    bot = await service.bot(body.bot, owner)
    # RAG (API.md §6): a bot with ragEnabled answers from the owner's documents; the
    # documents used are listed in X-Rag-Sources (as on bento), outside the documented body.
    chat_request = ChatRequest(
        messages=body.messages,
        params=bot_params(SamplingParams(), bot, explicit=set()),
        bot=bot,  # the core prepends its system prompt and uses its model
        owner=owner,
        user_id=body.user_id,
        request_id=request_id(request),
        rag=bot.rag_enabled,
        # The bot's default tools, offered with auto; a call the model makes comes back in
        # ``toolCalls`` (OpenAI's shape), the only place this text wire has (docs/tool-calling.md).
        tools=bot_tools(None, bot),
    )
    generation = await service.open_stream(chat_request)
    headers = {"X-Rag-Sources": sources_header(generation.sources)} if bot.rag_enabled else None
    if body.stream:
        return SSEResponse(adapter.content_stream(generation), settings.sse_ping_seconds, headers=headers)
    await generation.collect()
    calls = adapter.calls_or_error(generation) if generation.tool_calls else {}
    return JSONResponse({"content": generation.text, **calls}, headers=headers)


