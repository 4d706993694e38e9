"""``GET /api/channels``: each upstream channel's state, latency and error counts (docs/upstreams.md).

TODO(auth): this route is for admins. It is a plain router for now, so it is as open as
the server; when API keys land, build it with the dialect route class that authenticates
(``dialect_router(render_error, admin_only=True)``) — the ``Owner`` dependency below is
where the caller's identity arrives (``None`` for an admin or an open server).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from hubbub.dialects.deps import Owner
from hubbub.providers.upstreams import routers

router = APIRouter(prefix="/api", tags=["operations"])


@router.get("/channels", summary="Upstream channels: state, latency, error counts (admin)")
async def list_channels(request: Request, owner: Owner) -> dict[str, Any]:
    registry = request.app.state.container.registry
    return {"channels": [c for r in routers(registry) for c in r.snapshot()]}
