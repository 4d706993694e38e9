"""The route class every dialect router uses.

It does three things for each request, in one place, so routers stay thin:
authenticates the caller and applies its key's rate limits (``admit``), reads the
body under the size limit (413 in the dialect's shape), and turns any
error — the core's ``HubbubError``, FastAPI's ``RequestValidationError`` for
malformed JSON or wrong types, or an unexpected exception — into the dialect's
own body and status via its single ``render_error`` function.
"""

from __future__ import annotations

import logging
from typing import Callable

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from hubbub import idempotency
from hubbub.auth import require_admin
from hubbub.errors import FieldProblem, HubbubError, InvalidRequest, PayloadTooLarge
from hubbub.limits import KeyQuota, Quota, current_key

log = logging.getLogger(__name__)

ErrorRenderer = Callable[[Exception, Request], Response]


async def read_body_limited(request: Request, limit: int) -> None:
    """Read the body once, refusing more than ``limit`` bytes; FastAPI reuses the cached body."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(limit)
    size = 0
    parts: list[bytes] = []
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(limit)
        parts.append(chunk)
    request._body = b"".join(parts)  # Starlette's own cache of the body


async def admit(request: Request, admin_only: bool = False) -> None:
    """Authenticate, apply the key's rate limits, and remember who asked (request.state)."""
    container = request.app.state.container
    principal = await container.auth.authenticate(request)
    request.state.principal = principal
    request.state.owner = principal.owner
    if admin_only:
        require_admin(principal)
    if principal.key is not None:
        key = principal.key
        quota = Quota(key.rpm, key.tpm, key.daily_tokens)
        current_key.set(KeyQuota(key.id, quota))
        await container.limiter.check(f"key:{key.id}", quota)


def dialect_router(
    render_error: ErrorRenderer,
    *,
    body_limit_setting: str = "max_body_bytes",
    admin_only: bool = False,
    admit_in_handler: bool = False,
    idempotent: bool = False,
    **kwargs,
) -> APIRouter:
    """An APIRouter whose routes admit, limit the body, and map errors with ``render_error``.

    ``admit_in_handler``: the handler calls ``admit`` itself (``POST /api/chat`` must first
    see the body to know which dialect's shape a 401 or 429 takes).
    ``idempotent``: its POST routes honour ``Idempotency-Key`` (see ``hubbub.idempotency``)."""
    class DialectRoute(APIRoute):
        def get_route_handler(self) -> Callable:
            handler = super().get_route_handler()

            async def route_handler(request: Request) -> Response:
                try:
                    if not admit_in_handler:
                        await admit(request, admin_only)
                    if request.method in ("POST", "PUT", "PATCH"):
                        limit = getattr(request.app.state.settings, body_limit_setting)
                        await read_body_limited(request, limit)
                    if idempotent and request.method == "POST":
                        return await idempotency.respond(request, lambda: handler(request))
                    return await handler(request)
                except (HubbubError, RequestValidationError) as exc:
                    return render_error(exc, request)
                except HTTPException as exc:
                    if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
                        # FastAPI's own "There was an error parsing the body" (undecodable bytes,
                        # JSON nested past the recursion limit): bad input in the dialect's shape.
                        problem = FieldProblem("body", "Request body is not valid JSON", "json_invalid", ("body",))
                        return render_error(InvalidRequest("Invalid request", [problem]), request)
                    raise
                except Exception as exc:  # never a bare 500: the dialect's shape, with the request id
                    log.exception("unhandled error on %s", request.url.path)
                    return render_error(exc, request)

            return route_handler

    return APIRouter(route_class=DialectRoute, **kwargs)


def request_id(request: Request) -> str:
    return getattr(request.state, "request_id", "") or ""
