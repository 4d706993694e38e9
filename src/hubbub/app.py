"""``create_app(settings)``: builds everything, explicitly (STYLE.md §8)."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from fastapi import APIRouter, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from starlette.exceptions import HTTPException as StarletteHTTPException
from fastapi.routing import APIRoute
from starlette.types import ASGIApp

from hubbub import __version__
from hubbub.container import build_container, live_metrics
from hubbub.dialects.anthropic.adapter import unmatched_route as anthropic_unmatched
from hubbub.dialects.openai.adapter import unmatched_route
from hubbub.http.fastpath import FAST_ROUTES
from hubbub.http.middleware import DirectRoutes, RequestMiddleware
from hubbub.metrics import Metrics
from hubbub.settings import Settings

log = logging.getLogger("hubbub")
logging.getLogger("alembic").setLevel(logging.WARNING)


class HubbubApp(FastAPI):
    """FastAPI with hubbub's edge: ``RequestMiddleware`` (request id, access line, request count)
    outermost, then any middleware added to the app, then ``DirectRoutes`` (the fast path,
    ``http/fastpath.py``), then FastAPI's own stack and router for everything else. Added
    middleware thus reaches every route, the fast ones included."""

    def __init__(self, *, metrics: Metrics, fast_path: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.metrics = metrics
        self.fast_path = fast_path
        self.direct_routes: dict[tuple[str, str], Any] = {}

    def include(self, router: APIRouter, prefix: str = "") -> None:
        """``include_router``, noting the router's fast-path routes."""
        self.include_router(router, prefix=prefix)
        for route in router.routes:
            if isinstance(route, APIRoute) and (route.methods or set()) & {m for m, _ in FAST_ROUTES}:
                for method in route.methods:
                    if (method, prefix + route.path) in FAST_ROUTES:
                        if getattr(route, "direct", None) is None:  # pragma: no cover - a fast route outside a dialect router
                            raise TypeError(f"{prefix + route.path} is listed in http/fastpath.py but its router "
                                            "is not made with http.routing.dialect_router")
                        self.direct_routes[(method, prefix + route.path)] = route

    def check_fast_path(self) -> None:
        """Every listed fast route exists (a typo would silently take the slow path)."""
        missing = sorted(FAST_ROUTES - set(self.direct_routes))
        if missing:
            raise RuntimeError(f"http/fastpath.py lists routes no router defines: {missing}")

    def build_middleware_stack(self) -> ASGIApp:
        added, self.user_middleware = self.user_middleware, []
        try:
            app = super().build_middleware_stack()  # the framework's own layers and the router
        finally:
            self.user_middleware = added
        if self.fast_path:
            app = DirectRoutes(app, self.direct_routes)
        for cls, args, kwargs in reversed(added):
            app = cls(app, *args, **kwargs)
        return RequestMiddleware(app, self.metrics)


def _unmatched(openai_error: Any, foreign: frozenset[str] = frozenset()) -> Any:
    """Starlette's 404 (no route) and 405 (wrong method), and any other ``HTTPException``: under
    ``/v1`` in OpenAI's error shape, elsewhere as FastAPI renders them. Both the fast path and
    the normal one end here, since ``DirectRoutes`` passes anything it does not serve on to the
    router (tests/http/test_fastpath.py checks they agree). ``foreign``: paths under ``/v1`` that
    belong to a dialect with its own error shape (the bots dialect's ``POST /v1/chat``), whose
    wrong methods keep FastAPI's ``{"detail": …}`` as that dialect's errors do. Under
    ``/v1/messages`` (the Anthropic dialect) in Anthropic's shape."""

    async def handler(request: Request, exc: Exception) -> Any:
        assert isinstance(exc, StarletteHTTPException)
        path = request.url.path
        if path == "/v1/messages" or path.startswith("/v1/messages/"):  # Anthropic's own shape
            return anthropic_unmatched(exc.status_code, request.method, path, exc.headers)
        if (path == "/v1" or path.startswith("/v1/")) and path not in foreign:
            return openai_error(exc.status_code, request.method, path, exc.headers)
        return await http_exception_handler(request, exc)

    return handler


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
            if container.embeddings is not None and container.embeddings.local is not None:
                await container.embeddings.local.aclose()  # type: ignore[attr-defined]
            if container.idempotency is not None:
                await container.idempotency.aclose()
            if container.limiter is not None:
                await container.limiter.aclose()
            await container.engine.dispose()

    app = HubbubApp(
        metrics=metrics,
        fast_path=settings.fast_path,
        title="hubbub",
        version=__version__,
        summary="A self-hosted chat API server: one core, five HTTP dialects.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics

    from hubbub.api import channels as channels_api, ops
    from hubbub import dispatch
    from hubbub.api import admin
    from hubbub.api import bots as bots_admin
    from hubbub.dialects.bento import router as bento
    from hubbub.dialects.bots import router as bots
    from hubbub.dialects.builder import router as builder
    from hubbub.dialects.builder import ws as builder_ws
    from hubbub.dialects.conversations import router as conversations
    from hubbub.dialects.openai import router as openai
    from hubbub.dialects.anthropic import router as anthropic
    from hubbub.dialects.responses import router as responses

    app.include(ops.router)
    app.include(openai.router)
    app.include(anthropic.router)
    app.include(responses.router)
    app.include(bento.router, prefix=settings.bento_prefix)
    app.include(dispatch.router)
    app.include(builder.router)
    app.include(builder_ws.router)
    app.include(conversations.router)
    app.include(bots.router)
    app.include(bots_admin.router)
    app.include(admin.keys_router)
    app.include(admin.usage_router)
    app.include(channels_api.router)
    from hubbub.api.documents import router as documents

    app.include(documents.router)
    from hubbub.web import router as web

    app.include(web.router)  # `/` and `/static/...`: the chat page (docs/web.md)
    bots_paths = frozenset(r.path for r in bots.router.routes if isinstance(r, APIRoute))
    app.add_exception_handler(StarletteHTTPException, _unmatched(unmatched_route, bots_paths))
    app.check_fast_path()
    return app
