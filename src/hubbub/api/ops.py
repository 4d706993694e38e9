"""Operational routes: /healthz, /readyz and /metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from hubbub.auth import require_admin
from hubbub.errors import HubbubError
from hubbub.storage.db import ping

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/metrics", summary="Prometheus metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}})
async def metrics(request: Request) -> Response:
    """With API keys configured, an admin key is needed (Prometheus can send a bearer token)."""
    container = getattr(request.app.state, "container", None)
    if container is not None:
        try:
            require_admin(await container.auth.authenticate(request))
        except HubbubError as exc:
            return JSONResponse({"detail": exc.message}, status_code=exc.status)
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)


@router.get("/readyz", summary="Readiness: database reachable, default model loaded")
async def readyz(request: Request) -> JSONResponse:
    container = getattr(request.app.state, "container", None)
    if container is None:
        return JSONResponse({"status": "starting", "database": False, "model": False}, status_code=503)
    db_ok = await ping(container.engine)
    model_ok = container.registry.default_model in container.registry.ids()
    ok = db_ok and model_ok
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "database": db_ok, "model": model_ok},
        status_code=200 if ok else 503,
    )
