"""Management routes: API keys (admin) and usage reports (API.md §7, issue: keys and limits).

Errors here use FastAPI's plain shape, ``{"detail": "..."}``, with the usual statuses.
"""

from __future__ import annotations

from typing import Any

from fastapi import Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from hubbub.http.deps import get_container
from hubbub.http.routing import dialect_router, error_response, request_id
from hubbub.http.validation import problems
from hubbub.errors import HubbubError, NotFound
from hubbub.storage.keys import ApiKey


def render_error(exc: Exception, request: Request) -> JSONResponse:
    if isinstance(exc, RequestValidationError):
        detail: Any = [{"field": p.field, "message": p.message} for p in problems(exc)]
        return JSONResponse({"detail": detail}, status_code=422)
    if isinstance(exc, HubbubError):
        return error_response({"detail": exc.message}, exc.status, exc, challenge=True)
    return JSONResponse({"detail": "Internal error", "requestId": request_id(request)}, status_code=500)


keys_router = dialect_router(render_error, prefix="/api/keys", tags=["keys"], admin_only=True)
usage_router = dialect_router(render_error, prefix="/api/usage", tags=["usage"])


# The limits are stored in INTEGER columns (PostgreSQL: 32 bits); a larger number used to fail in
# the database as a 500 (issue 22). 2^31 - 1 requests a minute is "no limit" in practice.
LIMIT_MAX = 2**31 - 1


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1, max_length=255)
    admin: bool = False
    rpm: int | None = Field(default=None, ge=1, le=LIMIT_MAX)
    tpm: int | None = Field(default=None, ge=1, le=LIMIT_MAX)
    dailyTokens: int | None = Field(default=None, ge=1, le=LIMIT_MAX)


def key_body(key: ApiKey) -> dict[str, Any]:
    return {"id": key.id, "name": key.name, "prefix": key.prefix, "admin": key.is_admin, "rpm": key.rpm,
            "tpm": key.tpm, "dailyTokens": key.daily_tokens, "createdAt": key.created_at,
            "revoked": key.revoked_at is not None}


@keys_router.post("", status_code=201, summary="Create an API key (the key is shown once)")
async def create_key(body: KeyCreate, request: Request) -> JSONResponse:
    container = get_container(request)
    key, plaintext = await container.keys.create(body.name, admin=body.admin, rpm=body.rpm, tpm=body.tpm,
                                                 daily_tokens=body.dailyTokens)
    container.auth.forget()
    return JSONResponse({**key_body(key), "key": plaintext}, status_code=201)


@keys_router.get("", summary="List API keys (never the keys themselves)")
async def list_keys(request: Request) -> dict[str, Any]:
    return {"keys": [key_body(k) for k in await get_container(request).keys.list()]}


@keys_router.delete("/{key_id}", status_code=204, summary="Revoke an API key")
async def revoke_key(key_id: str, request: Request) -> Response:
    container = get_container(request)
    if not await container.keys.revoke(key_id):
        raise NotFound("key", key_id)
    container.auth.forget()
    return Response(status_code=204)


@usage_router.get("", summary="Tokens and cost per model and day")
async def usage_report(
    request: Request,
    userId: str | None = Query(default=None, max_length=255),
    from_: str | None = Query(default=None, alias="from", pattern=r"^\d{4}-\d{2}-\d{2}$"),
    to: str | None = Query(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$"),
) -> dict[str, Any]:
    """A user key sees its own usage; an admin key (or an open server) sees everyone's."""
    owner = request.state.owner
    rows = await get_container(request).usage.summary(owner=owner, user_id=userId, day_from=from_, day_to=to)
    return {"usage": rows, "totals": {
        "promptTokens": sum(r["promptTokens"] for r in rows),
        "completionTokens": sum(r["completionTokens"] for r in rows),
        "totalTokens": sum(r["totalTokens"] for r in rows),
        "cost": sum(r["cost"] for r in rows),
    }}

