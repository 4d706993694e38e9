"""``create_app(settings)``: builds everything, explicitly (STYLE.md §8)."""

from __future__ import annotations

import logging
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

from fastapi import APIRouter, FastAPI
from starlette.types import ASGIApp
from sqlalchemy.ext.asyncio import AsyncEngine

from hubbub import __version__
from hubbub.core.service import ChatService, InputLimits
from hubbub.core.turns import TurnRunner
from hubbub.core.types import ModelInfo
from hubbub.auth import Authenticator
from hubbub.idempotency import IdempotencyStore, build_store
from hubbub.limits import Limiter, MemoryLimits, Quota, RedisLimits
from hubbub.metrics import Metrics, counter, gauge
from hubbub.middleware import DirectRoutes, RequestMiddleware
from hubbub.providers.base import Provider
from hubbub.providers.registry import ModelRegistry
from hubbub.rag.service import RagService, build_embedder
from hubbub.settings import EMBEDDED_MODEL_ID, Settings
from hubbub.storage.db import create_engine, migrate
from hubbub.storage.keys import KeyRepository
from hubbub.storage.repositories import BotRepository, ConversationRepository, UsageRepository
from hubbub.streams.base import StreamHub
from hubbub.streams.memory import MemoryStreamHub
from hubbub.streams.redis import RedisStreamHub

log = logging.getLogger("hubbub")
logging.getLogger("alembic").setLevel(logging.WARNING)


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


async def build_registry(settings: Settings) -> tuple[ModelRegistry, list[Provider]]:
    """The model catalog (the embedded model, its aliases, the channel-served upstream models)
    and every provider it uses, each once (the app closes them at shutdown)."""
    registry = ModelRegistry(settings.default_model)
    embedded = None
    if settings.embedded.enabled:
        from hubbub.providers.embedded import EmbeddedProvider

        started = time.perf_counter()
        embedded = await EmbeddedProvider.load(settings.embedded)
        log.info(
            "loaded embedded model %s from %s in %.2fs (context %d tokens)",
            EMBEDDED_MODEL_ID,
            embedded.model.path,
            time.perf_counter() - started,
            embedded.model.n_ctx,
        )
        registry.register(
            ModelInfo(
                id=EMBEDDED_MODEL_ID,
                name="SmolLM2 135M Instruct (embedded)",
                context_length=embedded.model.n_ctx,
                owned_by="hubbub",
                created=int(time.time()),
            ),
            embedded,
        )
    with_channels = {c.model for c in settings.channels}
    for model in settings.models:
        if model.provider == "embedded" and model.id not in with_channels:
            if embedded is None:
                raise ValueError(f"model {model.id} uses the embedded provider, which is disabled")
            registry.register(
                ModelInfo(
                    id=model.id,
                    name=model.name or model.id,
                    context_length=min(model.context_length or embedded.model.n_ctx, embedded.model.n_ctx),
                    pricing_prompt=model.pricing.prompt,
                    pricing_completion=model.pricing.completion,
                    created=int(time.time()),
                ),
                embedded,
            )
    from hubbub.providers.upstreams import register_upstreams

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
    backend = RedisLimits(settings.redis_url) if settings.redis_url else MemoryLimits()
    limiter = Limiter(backend, Quota(settings.user_rpm, settings.user_tpm, settings.user_daily_tokens))
    service = ChatService(registry, bots, usage, limits, limiter, metrics)
    rag = RagService(engine, settings.rag, build_embedder(settings.rag))
    service.retriever = rag
    await service.ensure_default_bot()
    hub: StreamHub = RedisStreamHub(settings.redis_url) if settings.redis_url else MemoryStreamHub()
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
                     keys=keys, auth=Authenticator(keys), limiter=limiter, idempotency=build_store(settings), rag=rag)


class HubbubApp(FastAPI):
    """FastAPI with hubbub's edge outside its middleware stack: ``RequestMiddleware`` (request id,
    access line, request count) around ``DirectRoutes`` (the routes served without the framework's
    per-request work), then FastAPI's own stack for everything else."""

    def __init__(self, *, metrics: Metrics, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.metrics = metrics
        self.direct_routes: dict[tuple[str, str], Any] = {}

    def include(self, router: APIRouter, prefix: str = "") -> None:
        """``include_router``, noting the router's direct routes (``dialects/routing.py``)."""
        self.include_router(router, prefix=prefix)
        for route in router.routes:
            if getattr(route, "direct", None) is not None and "{" not in route.path:
                for method in route.methods:
                    self.direct_routes[(method, prefix + route.path)] = route

    def build_middleware_stack(self) -> ASGIApp:
        return RequestMiddleware(DirectRoutes(super().build_middleware_stack(), self.direct_routes), self.metrics)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        container = await build_container(settings, metrics)
        metrics.add_live(lambda: live_metrics(container))
        app.state.container = container
        log.info(
            "hubbub %s ready on http://%s:%d — default model %s, database %s",
            __version__,
            settings.host,
            settings.port,
            settings.default_model,
            container.engine.url.render_as_string(hide_password=True),
        )
        container.turns.listen()
        try:
            yield
        finally:
            await container.turns.shutdown(settings.shutdown_grace_seconds)
            await container.service.drain()
            for provider in container.providers:
                await provider.aclose()
            await container.hub.aclose()
            if container.rag is not None:
                await container.rag.aclose()
            if container.idempotency is not None:
                await container.idempotency.aclose()
            if container.limiter is not None:
                await container.limiter.aclose()
            await container.engine.dispose()

    app = HubbubApp(
        metrics=metrics,
        title="hubbub",
        version=__version__,
        summary="A self-hosted chat API server: one core, five HTTP dialects.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics

    from hubbub import channels_api, ops
    from hubbub.dialects import admin, dispatch
    from hubbub.dialects.bento import router as bento
    from hubbub.dialects.bots import router as bots
    from hubbub.dialects.builder import router as builder
    from hubbub.dialects.builder import ws as builder_ws
    from hubbub.dialects.conversations import router as conversations
    from hubbub.dialects.openai import router as openai

    app.include(ops.router)
    app.include(openai.router)
    app.include(bento.router, prefix=settings.bento_prefix)
    app.include(dispatch.router)
    app.include(builder.router)
    app.include(builder_ws.router)
    app.include(conversations.router)
    app.include(bots.router)
    app.include(admin.keys_router)
    app.include(admin.usage_router)
    app.include(channels_api.router)
    from hubbub.dialects.documents import router as documents

    app.include(documents.router)
    from hubbub.web import router as web

    app.include(web.router)  # `/` and `/static/...`: the chat page (docs/web.md)
    return app
