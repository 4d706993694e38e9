"""/v1/chat/completions and /v1/models."""

from __future__ import annotations

from fastapi import Request, Response

from hubbub.core.service import ChatRequest, bot_params
from hubbub.http.deps import Service, get_owner
from hubbub.http.sources import sources_json
from hubbub.dialects.openai import adapter
from hubbub.dialects.openai.protocol import ChatCompletionRequest
from hubbub.http.routing import body_doc, dialect_router, json_body, request_id
from hubbub.http.sse import SSEResponse

router = dialect_router(adapter.render_error, prefix="/v1", tags=["openai"], idempotent=True)


@router.post("/chat/completions", summary="Create a chat completion (OpenAI-compatible)",
             openapi_extra=body_doc(ChatCompletionRequest))
async def chat_completions(request: Request) -> Response:
    # Only the request: the hottest path skips FastAPI's per-request work (http/routing.py).
    body = json_body(request, ChatCompletionRequest)
    container = request.app.state.container
    service, owner = container.service, get_owner(request)
    params, explicit = adapter.to_params(body)
    bot = await service.bot(body.model[1:], owner) if body.model.startswith("@") else None
    chat = ChatRequest(
        messages=adapter.to_messages(body),
        model=None if bot else body.model,
        params=bot_params(params, bot, explicit),
        bot=bot,
        owner=owner,
        user_id=body.user,
        request_id=request_id(request),
        rag=body.rag or bool(bot and bot.rag_enabled),
        tools=adapter.to_tools(body),
    )
    n = adapter.choices_asked(body, container.settings.max_choices)
    generation, *others = await service.open_streams(chat, n)
    logprobs = params.logprobs
    # RAG: the documents used ride in a top-level `rag_sources` (response, first chunk); clients ignore it.
    extra = {"rag_sources": sources_json(generation.sources)} if chat.rag else {}
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        # Who answers is known once the first token is (issue 19): the channel then, for the stream.
        model, headers = adapter.served(generation, body.model)
        chunks = (adapter.choices_stream([generation, *others], model, include_usage, extra, logprobs=logprobs)
                  if others else adapter.chunk_stream(generation, model, include_usage, extra, logprobs=logprobs))
        return SSEResponse(chunks, container.settings.sse_ping_seconds, headers=headers)
    for gen in (generation, *others):
        await gen.collect()
    model, headers = adapter.served(generation, body.model)
    body_out = {**adapter.completion_body(generation, model, others, logprobs=logprobs), **extra}
    return Response(adapter.dumps(body_out), media_type="application/json", headers=headers)


@router.get("/models", summary="List models (OpenAI-compatible)")
async def list_models(service: Service) -> Response:
    data = [adapter.model_body(m) for m in service.models()]
    return Response(adapter.dumps({"object": "list", "data": data}), media_type="application/json")
