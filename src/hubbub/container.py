"""The container: everything a request may need, built once per app by ``build_container``.

Not a service locator: routes reach it through ``http/deps.py`` and pass each core
piece only what it needs; the core never sees it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from hubbub.auth import Authenticator
from hubbub.core.embeddings import EmbeddingService
from hubbub.core.service import ChatService, InputLimits
from hubbub.core.turns import TurnRunner
from hubbub.core.types import ModelInfo
from hubbub.http.idempotency import IdempotencyStore, build_store
from hubbub.limits import Limiter, MemoryLimits, Quota, RedisLimits
from hubbub.metrics import Metrics, counter, gauge
from hubbub.providers.base import Provider
from hubbub.providers.kinds import provider_kinds
from hubbub.providers.registry import ModelRegistry
from hubbub.providers.upstreams import register_upstreams
from hubbub.rag.service import RagService, build_embedder
from hubbub.settings import EMBEDDED_MODEL_ID, Settings
from hubbub.storage.db import create_engine, migrate
from hubbub.storage.keys import KeyRepository
from hubbub.storage.repositories import BotRepository, ConversationRepository, UsageRepository
from hubbub.storage.responses import ResponseRepository
from hubbub.streams.base import StreamHub
from hubbub.streams.memory import MemoryStreamHub
from hubbub.streams.redis import RedisStreamHub

log = logging.getLogger("hubbub")


@dataclass
class Container:
    """Everything a request may need, built once per app in the lifespan."""

    settings: Settings
    engine: AsyncEngine
    registry: ModelRegistry
    service: ChatService
    conversations: ConversationRepository
    bots: BotRepository
    usage: UsageRepository
    hub: StreamHub
    turns: TurnRunner
    providers: list[Provider] = field(default_factory=list)
    keys: KeyRepository | None = None
    auth: Authenticator | None = None
    limiter: Limiter | None = None
    idempotency: IdempotencyStore | None = None
    rag: RagService | None = None
    responses: ResponseRepository | None = None  # the Responses API's stored responses
    redis: Any = None  # the one ``redis.asyncio.Redis`` of the app, when ``redis_url`` is set
    embeddings: EmbeddingService | None = None  # /v1/embeddings (core/embeddings.py)


async def build_registry(settings: Settings) -> tuple[ModelRegistry, list[Provider]]:
    """The model catalog (each provider's built-in models, the ``[[models]]`` aliases of the
    embedded model, the channel-served upstream models) and every provider it uses, each once
    (the app closes them at shutdown). Every provider is made by its kind (``providers/kinds.py``)."""
    registry = ModelRegistry(settings.default_model)
    embedded: Provider | None = None
    if settings.embedded.enabled:
        kind = provider_kinds()["embedded"]
        embedded = await asyncio.to_thread(kind.build, settings.embedded, None)  # loads the weights
        for info in kind.builtin_models(embedded):
            registry.register(info, embedded)
    with_channels = {c.model for c in settings.channels}
    for model in settings.models:
        if model.provider == "embedded" and model.id not in with_channels:
            if embedded is None:
                raise ValueError(f"model {model.id} uses the embedded provider, which is disabled")
            n_ctx = registry.get(EMBEDDED_MODEL_ID).info.context_length
            registry.register(
                ModelInfo(
                    id=model.id,
                    name=model.name or model.id,
                    context_length=min(model.context_length or n_ctx, n_ctx),
                    pricing_prompt=model.pricing.prompt,
                    pricing_completion=model.pricing.completion,
                    created=int(time.time()),
                    default_max_tokens=model.default_max_tokens or settings.embedded.default_max_tokens,
                ),
                embedded,
            )
    upstream = register_upstreams(settings, registry, embedded)
    return registry, [*([embedded] if embedded is not None else []), *upstream]


def live_metrics(container: "Container") -> Any:
    """Metric families read at scrape time from the running parts."""
    yield counter("hubbub_rate_limit_refusals", "Requests refused by a rate limit or quota",
                  container.limiter.refusals if container.limiter else 0)
    for provider in container.providers:
        if hasattr(provider, "queued"):
            yield gauge("hubbub_embedded_queue_depth", "Requests waiting for the embedded model", provider.queued)
            yield gauge("hubbub_embedded_batch_sequences", "Requests the embedded model is decoding together",
                        provider.running)
    from prometheus_client.core import CounterMetricFamily

    from hubbub.providers.upstreams import routers

    errors = CounterMetricFamily("hubbub_upstream_errors", "Failed upstream attempts per channel", labels=["channel"])
    for router in routers(container.registry):
        for channel in router.snapshot():
            errors.add_metric([channel["name"]], channel["failures"])
    yield errors


def build_redis(settings: Settings) -> Any:
    """The app's one Redis client, shared by the stream hub, idempotency and the rate limiter;
    None without ``redis_url``. Its pool is bounded (``redis_max_connections``) and blocking: a
    burst waits up to ``redis_pool_timeout_seconds`` for a connection instead of failing at once.
    Connections are named ``hubbub:<pid>:<id>`` (``CLIENT LIST`` tells replicas apart)."""
    if not settings.redis_url:
        return None
    from redis.asyncio import BlockingConnectionPool, Redis

    pool = BlockingConnectionPool.from_url(
        settings.redis_url, max_connections=settings.redis_max_connections,
        timeout=settings.redis_pool_timeout_seconds, client_name=f"hubbub:{os.getpid()}:{uuid.uuid4().hex[:8]}",
    )
    return Redis.from_pool(pool)


async def build_container(settings: Settings, metrics: Metrics | None = None) -> Container:
    engine = create_engine(settings.resolved_database_url)
    await migrate(engine)
    conversations = ConversationRepository(engine)
    interrupted = await conversations.interrupt_streaming()
    if interrupted:
        log.warning("marked %d messages left streaming by a previous process as interrupted", interrupted)
    bots, usage = BotRepository(engine), UsageRepository(engine)
    registry, providers = await build_registry(settings)
    limits = InputLimits(max_messages=settings.max_messages, max_tokens=settings.max_tokens_cap)
    redis = build_redis(settings)
    backend = RedisLimits(redis) if redis is not None else MemoryLimits()
    limiter = Limiter(backend, Quota(settings.user_rpm, settings.user_tpm, settings.user_daily_tokens))
    service = ChatService(registry, bots, usage, limits, limiter, metrics)
    gguf = None
    if settings.embedded.enabled and settings.embedded.embeddings:
        from hubbub.providers.gguf_embedder import from_config

        gguf = from_config(settings.embedded, EMBEDDED_MODEL_ID)
    rag = RagService(engine, settings.rag, build_embedder(settings.rag, embedded=gguf, registry=registry))
    local_provider = registry.get(EMBEDDED_MODEL_ID).provider if settings.embedded.enabled else None
    # /v1/embeddings: the RAG embedder by its name, the GGUF for embedded models, upstreams that embed.
    embeddings = EmbeddingService(registry, {rag.embedder.name: rag.embedder} if rag.embedder is not None else {},
                                  local=gguf, local_provider=local_provider, max_inputs=settings.max_embedding_inputs,
                                  chat=service)
    service.retriever = rag
    await service.ensure_default_bot()
    hub: StreamHub = MemoryStreamHub()
    if redis is not None:  # the hub closes the client at shutdown: app.py stops it after its users
        hub = RedisStreamHub(redis, live_ttl=settings.stream_live_ttl_seconds, close_client=True)
    turns = TurnRunner(
        service,
        conversations,
        hub,
        flush_interval=settings.flush_interval_seconds,
        on_disconnect=settings.on_disconnect,
    )
    from hubbub.dsl.extractor import DslExtractor

    # the builder's DSL; with the registry it starts each turn's proposal before the answer (docs/dsl.md)
    turns.hooks.append(DslExtractor(conversations, record_usage=service.record_usage, registry=registry))
    keys = KeyRepository(engine)
    return Container(settings, engine, registry, service, conversations, bots, usage, hub, turns, providers,
                     keys=keys, auth=Authenticator(keys), limiter=limiter, idempotency=build_store(hub), rag=rag,
                     responses=ResponseRepository(engine, settings.response_retention_days), redis=redis,
                     embeddings=embeddings)
