"""``create_app(settings)``: builds everything, explicitly (STYLE.md §8)."""

from __future__ import annotations

import logging
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import AsyncIterator

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from hubbub import __version__
from hubbub.core.service import ChatService, InputLimits
from hubbub.core.turns import TurnRunner
from hubbub.core.types import ModelInfo
from hubbub.middleware import RequestIdMiddleware
from hubbub.providers.base import Provider
from hubbub.providers.registry import ModelRegistry
from hubbub.settings import EMBEDDED_MODEL_ID, Settings
from hubbub.storage.db import create_engine, migrate
from hubbub.storage.repositories import BotRepository, ConversationRepository, UsageRepository
from hubbub.streams.memory import MemoryStreamHub

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
    hub: MemoryStreamHub
    turns: TurnRunner
    providers: list[Provider] = field(default_factory=list)


async def build_registry(settings: Settings) -> ModelRegistry:
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
    for model in settings.models:
        if model.provider == "embedded":
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
    return registry


async def build_container(settings: Settings) -> Container:
    engine = create_engine(settings.resolved_database_url)
    await migrate(engine)
    conversations = ConversationRepository(engine)
    interrupted = await conversations.interrupt_streaming()
    if interrupted:
        log.warning("marked %d messages left streaming by a previous process as interrupted", interrupted)
    bots, usage = BotRepository(engine), UsageRepository(engine)
    registry = await build_registry(settings)
    limits = InputLimits(max_messages=settings.max_messages, max_tokens=settings.max_tokens_cap)
    service = ChatService(registry, bots, usage, limits)
    await service.ensure_default_bot()
    hub = MemoryStreamHub()
    turns = TurnRunner(
        service,
        conversations,
        hub,
        flush_interval=settings.flush_interval_seconds,
        on_disconnect=settings.on_disconnect,
    )
    return Container(settings, engine, registry, service, conversations, bots, usage, hub, turns,
                     registry.providers())


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        container = await build_container(settings)
        app.state.container = container
        log.info(
            "hubbub %s ready on http://%s:%d — default model %s, database %s",
            __version__,
            settings.host,
            settings.port,
            settings.default_model,
            container.engine.url.render_as_string(hide_password=True),
        )
        try:
            yield
        finally:
            await container.service.drain()
            for provider in container.providers:
                await provider.aclose()
            await container.hub.aclose()
            await container.engine.dispose()

    app = FastAPI(
        title="hubbub",
        version=__version__,
        summary="A self-hosted chat API server: one core, five HTTP dialects.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.add_middleware(RequestIdMiddleware)

    from hubbub import ops
    from hubbub.dialects import dispatch
    from hubbub.dialects.bento import router as bento
    from hubbub.dialects.bots import router as bots
    from hubbub.dialects.builder import router as builder
    from hubbub.dialects.conversations import router as conversations
    from hubbub.dialects.openai import router as openai

    app.include_router(ops.router)
    app.include_router(openai.router)
    app.include_router(bento.router, prefix=settings.bento_prefix)
    app.include_router(dispatch.router)
    app.include_router(builder.router)
    app.include_router(conversations.router)
    app.include_router(bots.router)
    return app
