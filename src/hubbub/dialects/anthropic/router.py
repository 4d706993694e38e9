"""``POST /v1/messages`` and ``POST /v1/messages/count_tokens`` (Anthropic's Messages API)."""

from __future__ import annotations

from fastapi import Request, Response

from hubbub.core.ids import new_id
from hubbub.core.service import ChatRequest, ChatService, bot_params
from hubbub.core.types import Bot, SamplingParams
from hubbub.dialects.anthropic import adapter
from hubbub.dialects.anthropic.events import event_stream
from hubbub.dialects.anthropic.protocol import CountTokensRequest, MessagesRequest
from hubbub.http.deps import get_owner
from hubbub.http.routing import body_doc, dialect_router, json_body, request_id
from hubbub.http.sse import SSEResponse

router = dialect_router(adapter.render_error, prefix="/v1", tags=["anthropic"], idempotent=True)


async def _bot(service: ChatService, model: str, owner: str | None) -> Bot | None:
    return await service.bot(model[1:], owner) if model.startswith("@") else None


@router.post("/messages", summary="Create a message (Anthropic Messages API)", openapi_extra=body_doc(MessagesRequest),
             responses={200: {"description": "a message, or with `stream` Anthropic's event stream",
                              "content": {"application/json": {}, "text/event-stream": {}}}})
async def messages(request: Request) -> Response:
    # Only the request: on the fast path like /v1/chat/completions (http/fastpath.py).
    body = json_body(request, MessagesRequest)
    adapter.refuse_unsupported(body)
    container = request.app.state.container
    service, owner, rid = container.service, get_owner(request), request_id(request)
    params, explicit = adapter.to_params(body)
    history, prefix = adapter.to_messages(body)
    bot = await _bot(service, body.model, owner)
    chat = ChatRequest(
        messages=history,
        model=None if bot else body.model,
        params=bot_params(params, bot, explicit),
        bot=bot,
        owner=owner,
        user_id=body.metadata.user_id if body.metadata else None,
        request_id=rid,
        rag=bool(bot and bot.rag_enabled),
        tools=adapter.to_tools(body),
    )
    if prefix:
        # A prefill: the answer continues it (the pipeline's answer prefix, as failover uses).
        prepared = await service.prepare(chat)
        prepared.provider_request.assistant_prefix = prefix
        generation = service.generate(prepared)
        await generation.prime()
    else:
        generation = await service.open_stream(chat)
    message_id = new_id("msg_")
    headers = {"request-id": rid} if rid else None
    if body.stream:
        return SSEResponse(event_stream(generation, body.model, message_id, rid), container.settings.sse_ping_seconds,
                           headers=headers)
    await generation.collect()
    return Response(adapter.dumps(adapter.message_body(generation, body.model, message_id)),
                    media_type="application/json", headers=headers)


@router.post("/messages/count_tokens", summary="Count the input tokens of a message (Anthropic Messages API)",
             openapi_extra=body_doc(CountTokensRequest))
async def count_tokens(request: Request) -> Response:
    """What ``POST /v1/messages`` would bill as input tokens: the same checks and the same count
    (the model's own tokenizer; an estimate for upstreams), without generating."""
    body = json_body(request, CountTokensRequest)
    adapter.refuse_unsupported(body)
    container = request.app.state.container
    service, owner = container.service, get_owner(request)
    history, prefix = adapter.to_messages(body)
    bot = await _bot(service, body.model, owner)
    params = SamplingParams(reasoning=adapter.to_reasoning(body))  # what the capability check needs
    chat = ChatRequest(messages=history, model=None if bot else body.model, params=params, bot=bot, owner=owner,
                       request_id=request_id(request), tools=adapter.to_tools(body))
    prepared = await service.prepare(chat)
    tokens = prepared.prompt_tokens
    if prefix:
        tokens += await prepared.entry.provider.count_text_tokens(prefix, prepared.entry.upstream_model)
    rid = request_id(request)
    return Response(adapter.dumps({"input_tokens": tokens}), media_type="application/json",
                    headers={"request-id": rid} if rid else None)
