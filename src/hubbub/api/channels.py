"""``GET /api/channels`` (admin): each upstream channel's state, latency and error counts
(docs/upstreams.md). Errors use the management routes' ``{"detail": ...}`` shape."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from hubbub.api.admin import render_error
from hubbub.http.routing import dialect_router
from hubbub.providers.upstreams import routers

router = dialect_router(render_error, prefix="/api", tags=["operations"], admin_only=True)


@router.get("/channels", summary="Upstream channels: state, latency, error counts (admin)")
async def list_channels(request: Request) -> dict[str, Any]:
    registry = request.app.state.container.registry
    return {"channels": [c for r in routers(registry) for c in r.snapshot()]}
