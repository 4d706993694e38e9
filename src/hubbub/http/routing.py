"""The route class every dialect router uses.

It does three things for each request, in one place, so routers stay thin:
authenticates the caller and applies its key's rate limits (``admit``), reads the
body under the size limit (413 in the dialect's shape), and turns any
error — the core's ``HubbubError``, FastAPI's ``RequestValidationError`` for
malformed JSON or wrong types, or an unexpected exception — into the dialect's
own body and status via its single ``render_error`` function.

A route listed in ``fastpath.FAST_ROUTES`` has an endpoint that takes nothing but the
``Request`` (it reads its body with ``json_body``): the route calls it without FastAPI's
per-request machinery and exposes that as ``direct``, which the app serves straight from
the edge (``DirectRoutes``, inside the app's middleware): see ``fastpath.py``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import typing
from typing import Any, Awaitable, Callable, TypeVar

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection

from hubbub.http import idempotency
from hubbub.http.fastpath import FAST_ROUTES
from hubbub.auth import require_admin
from hubbub.errors import (
    FieldProblem,
    HubbubError,
    InvalidRequest,
    PayloadTooLarge,
    RateLimited,
    RequestTimeout,
    Unauthorized,
    Unavailable,
)
from hubbub.http.text import check_json_body, check_target
from hubbub.limits import KeyQuota, Quota, current_key
from hubbub.storage.outage import unavailable

log = logging.getLogger(__name__)

ErrorRenderer = Callable[[Exception, Request], Response]
Handler = Callable[[Request], Awaitable[Response]]
M = TypeVar("M", bound=BaseModel)


async def read_body_limited(request: Request, limit: int) -> None:
    """Read the body once, refusing more than ``limit`` bytes (413) or a body that takes longer
    than ``body_timeout_seconds`` (408: a slow client holds nothing for ever); FastAPI reuses the
    cached body. A JSON body with a string no backend can store is a 400 (``http/text.py``)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(limit)
    parts: list[bytes] = []

    async def read() -> None:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(limit)
            parts.append(chunk)

    if request.scope.get("hubbub.body_complete"):  # already received whole (http/server.py): no timer
        await read()
    else:
        timeout = request.app.state.settings.body_timeout_seconds
        try:
            async with asyncio.timeout(timeout):
                await read()
        except TimeoutError:
            raise RequestTimeout(timeout) from None
    request._body = b"".join(parts)  # Starlette's own cache of the body
    check_json_body(request._body, request.headers.get("content-type"))


async def authenticate(request: HTTPConnection, admin_only: bool = False) -> None:
    """Who asks (request.state: ``principal``, ``owner``); 401/403 before anything else is read.
    A NUL in the path or query is refused here too, before any lookup uses it."""
    principal = await request.app.state.container.auth.authenticate(request)
    request.state.principal = principal
    request.state.owner = principal.owner
    if admin_only:
        require_admin(principal)
    check_target(request)


async def apply_limits(request: HTTPConnection) -> None:
    """The authenticated key's rate limits (429)."""
    key = request.state.principal.key
    if key is not None:
        quota = Quota(key.rpm, key.tpm, key.daily_tokens)
        current_key.set(KeyQuota(key.id, quota))
        await request.app.state.container.limiter.check(f"key:{key.id}", quota)


async def admit(request: HTTPConnection, admin_only: bool = False) -> None:
    """Authenticate, apply the key's rate limits, and remember who asked (request.state)."""
    await authenticate(request, admin_only)
    await apply_limits(request)


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

    ``admit_in_handler``: the route only authenticates (before reading the body: an unknown caller
    gets its 401 without sending one) and the handler applies the rate limits itself
    (``POST /api/chat`` must first see the body to know which dialect's shape a 429 takes).
    ``idempotent``: its POST routes honour ``Idempotency-Key`` (see ``hubbub.http.idempotency``)."""
    class DialectRoute(APIRoute):
        direct: Handler | None = None  # set for a route on the fast path (fastpath.py)

        def get_route_handler(self) -> Callable:
            fast = any((method, self.path) in FAST_ROUTES for method in self.methods or ())
            if fast:
                if not _takes_only_request(self.endpoint):
                    raise TypeError(f"{self.path} is on the fast path (http/fastpath.py), so its endpoint must be "
                                    "`async def f(request: Request) -> Response`")
                handler = self.endpoint
            else:
                handler = super().get_route_handler()

            async def route_handler(request: Request) -> Response:
                try:
                    await (authenticate if admit_in_handler else admit)(request, admin_only)
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
                    outage = unavailable(exc)  # a database or Redis that is down: 503, not 500
                    if outage is None:
                        log.exception("unhandled error on %s", request.url.path)
                    else:
                        log.warning("%s on %s: %r", outage.message, request.url.path, exc)
                    return render_error(outage or exc, request)

            if handler is self.endpoint:
                self.direct = route_handler
            return route_handler

    return APIRouter(route_class=DialectRoute, **kwargs)


def _takes_only_request(endpoint: Callable[..., Any]) -> bool:
    """``async def f(request: Request) -> Response`` (a ``Response`` itself, nothing to serialize)."""
    if not inspect.iscoroutinefunction(endpoint) or len(inspect.signature(endpoint).parameters) != 1:
        return False
    hints = typing.get_type_hints(endpoint)
    returns = hints.get("return")
    return (hints.get("request") is Request and isinstance(returns, type) and issubclass(returns, Response))


def json_body(request: Request, model: type[M]) -> M:
    """The request's body (already read by the route) as ``model``, by FastAPI's rules: JSON when
    the content type is JSON or absent, errors as its ``RequestValidationError``; one pass from
    bytes to model (pydantic parses the JSON itself)."""
    raw = request._body  # read under the size limit by the route (``read_body_limited``)
    if not raw:
        raise RequestValidationError([{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}])
    content_type = request.headers.get("content-type")
    if content_type is not None:
        media = content_type.partition(";")[0].strip().lower()
        if not (media == "application/json" or (media.startswith("application/") and media.endswith("+json"))):
            raise RequestValidationError([{"type": "model_attributes_type", "loc": ("body",),
                                           "msg": "Input should be a valid dictionary or object to extract fields from",
                                           "input": raw.decode("utf-8", "replace")}])
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in errors]) from None


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON schema with its ``$defs`` inlined, to embed in an OpenAPI request body."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return walk(defs[ref.rsplit("/", 1)[1]])
            return {key: walk(value) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(value) for value in node]
        return node

    return walk(schema)


def body_doc(*models: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` documenting a JSON request body of one of ``models`` (for endpoints that
    read their body themselves, so FastAPI cannot see it)."""
    schemas = [inline_schema(m) for m in models]
    schema = schemas[0] if len(schemas) == 1 else {"anyOf": schemas}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def error_response(body: Any, status: int, exc: Exception, *, challenge: bool = False) -> JSONResponse:
    """A dialect's error body and status, with the headers that go with the error: ``Retry-After``
    on a rate limit and on a backend outage (503); ``WWW-Authenticate`` on a 401 where the dialect's shape has it (``challenge``).
    Every dialect's ``render_error`` ends here, so no dialect forgets them."""
    headers: dict[str, str] = {}
    if isinstance(exc, (RateLimited, Unavailable)):
        headers["Retry-After"] = str(exc.retry_after)
    elif challenge and isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(body, status_code=status, headers=headers or None)


def request_id(request: Request) -> str:
    return getattr(request.state, "request_id", "") or ""
