"""Operational routes: /healthz, /readyz and /metrics."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from hubbub.auth import require_admin
from hubbub.errors import HubbubError
from hubbub.storage.db import ping
from hubbub.storage.outage import unavailable

log = logging.getLogger(__name__)
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
        except Exception as exc:  # the key lookup needs the database: down is a 503, not a 500
            outage = unavailable(exc)
            if outage is None:
                raise
            return JSONResponse({"detail": outage.message}, status_code=outage.status,
                                headers={"Retry-After": str(outage.retry_after)})
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)


@router.get("/readyz", summary="Readiness: database (and Redis, when configured) reachable, default model loaded")
async def readyz(request: Request) -> JSONResponse:
    """503 while any backend the requests need is unreachable, so a load balancer takes the
    replica out; the body says which (``redis`` only when Redis is configured)."""
    container = getattr(request.app.state, "container", None)
    settings = request.app.state.settings
    if container is None:
        return JSONResponse({"status": "starting", "database": False, "model": False}, status_code=503)
    checks = [_within(ping(container.engine))]
    if settings.redis_url:
        checks.append(_within(_redis_ping(settings.redis_url)))
    results = await asyncio.gather(*checks)
    body: dict[str, Any] = {"database": results[0]}
    if settings.redis_url:
        body["redis"] = results[1]
    body["model"] = container.registry.default_model in container.registry.ids()
    ok = all(body.values())
    return JSONResponse({"status": "ok" if ok else "unavailable", **body}, status_code=200 if ok else 503)


PROBE_SECONDS = 5.0  # a backend that does not answer a probe in this long is down for readiness


async def _within(check: Awaitable[bool]) -> bool:
    try:
        return await asyncio.wait_for(check, PROBE_SECONDS)
    except TimeoutError:
        log.warning("readiness probe timed out after %.0fs", PROBE_SECONDS)
        return False


async def _redis_ping(url: str) -> bool:
    """A connection of its own per probe: the probe must not wait behind (or use up) the pools the
    requests use, and a probe every few seconds costs one connection setup."""
    from redis.asyncio import Redis

    client = Redis.from_url(url, socket_connect_timeout=PROBE_SECONDS, socket_timeout=PROBE_SECONDS)
    try:
        return bool(await client.ping())
    except Exception:  # readiness reports, it does not raise
        log.warning("Redis ping failed", exc_info=True)
        return False
    finally:
        await client.aclose()
