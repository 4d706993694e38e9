"""/v1/chat/completions, /v1/completions, /v1/embeddings, /v1/models and /v1/models/{id}."""

from __future__ import annotations

from fastapi import Request, Response

from hubbub.core.service import ChatRequest, bot_params
from hubbub.errors import ModelNotFound
from hubbub.http.deps import Service, get_owner
from hubbub.http.sources import sources_json
import asyncio

from hubbub.dialects.openai import adapter, completions as legacy, embeddings as embeddings_wire
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
        tools=adapter.to_tools(body, bot.tools if bot else None),  # a bot's default tools, as its prompt
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


@router.get("/models/{model_id:path}", summary="Retrieve a model (OpenAI-compatible)")
async def get_model(model_id: str, service: Service) -> Response:
    # Model ids may hold slashes (``meta-llama/Llama-3``): the rest of the path is the id.
    if not model_id:  # ``/v1/models/``: no id, not the default model
        raise ModelNotFound(model_id, service.registry.ids())
    return Response(adapter.dumps(adapter.model_body(service.model(model_id))), media_type="application/json")


@router.post("/embeddings", summary="Create embeddings (OpenAI-compatible)",
             openapi_extra=body_doc(embeddings_wire.EmbeddingRequest))
async def create_embeddings(request: Request) -> Response:
    body = json_body(request, embeddings_wire.EmbeddingRequest)
    texts = embeddings_wire.texts(body)
    result = await request.app.state.container.embeddings.embed(
        body.model, texts, body.dimensions, owner=get_owner(request), user_id=body.user, request_id=request_id(request))
    return Response(adapter.dumps(embeddings_wire.body(result, body.encoding_format)), media_type="application/json")


@router.post("/completions", summary="Create a text completion (legacy OpenAI-compatible)",
             openapi_extra=body_doc(legacy.CompletionRequest))
async def completions(request: Request) -> Response:
    body = json_body(request, legacy.CompletionRequest)
    texts = legacy.prompts(body)
    container = request.app.state.container
    service, owner = container.service, get_owner(request)
    params, _ = legacy.to_params(body)

    async def open_one(i: int):  # noqa: ANN202
        return await service.open_stream(ChatRequest(messages=[], model=body.model, params=params, owner=owner,
                                                     user_id=body.user, request_id=request_id(request),
                                                     prompt=texts[i]))

    if body.stream:
        first = await open_one(0)  # errors before any output get their status
        model, headers = adapter.served(first, body.model)
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return SSEResponse(legacy.chunk_stream(first, open_one, texts, body.echo, model, include_usage,
                                               adapter.error_body),
                           container.settings.sse_ping_seconds, headers=headers)
    # Every prompt at once (the embedded model batches them); if one cannot start, the others stop.
    opened = await asyncio.gather(*(open_one(i) for i in range(len(texts))), return_exceptions=True)
    failed = next((g for g in opened if isinstance(g, BaseException)), None)
    if failed is not None:
        for g in opened:
            if not isinstance(g, BaseException):
                await g.settle()
        raise failed
    gens = [g for g in opened if not isinstance(g, BaseException)]
    await asyncio.gather(*(g.collect() for g in gens))
    model, headers = adapter.served(gens[0], body.model)
    out = legacy.completion_body(gens, texts, body.echo, model)
    return Response(adapter.dumps(out), media_type="application/json", headers=headers)
