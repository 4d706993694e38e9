"""Operational routes: /healthz and /readyz."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from hubbub.storage.db import ping

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


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
