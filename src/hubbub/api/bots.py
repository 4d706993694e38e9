"""Bot management at ``/api/bots`` (API.md §4): admin keys only (any caller on an open server).

Decisions: ``GET /api/bots`` is ``{"bots": [...]}`` oldest first; ``DELETE`` answers 204;
the ``default`` bot can be edited but neither deleted nor given another slug (409);
timestamps are epoch milliseconds.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse

from hubbub.core.service import DEFAULT_BOT_SLUG, ChatService
from hubbub.core.types import Bot
from hubbub.dialects.bots import adapter, protocol
from hubbub.dialects.bots.v1 import V1ValidationError, error, request_body
from hubbub.http.deps import Owner, Service
from hubbub.http.routing import dialect_router
from hubbub.errors import Conflict, Forbidden, ModelNotFound

router = dialect_router(adapter.render_error, prefix="/api/bots", tags=["bots"])


def _may_change(bot: Bot, owner: str | None) -> None:
    """Bots made by an admin key are global: every key may use them, only admins change them.
    A user key's bots are its own (other user keys get 404 for them, via the lookup)."""
    if bot.owner is None and owner is not None:
        raise Forbidden("Only an admin key can change a global bot")


def _check_model(service: ChatService, values: dict[str, Any]) -> None:
    if values.get("model"):
        try:
            service.model(values["model"])
        except ModelNotFound as exc:
            raise adapter.UnknownBotModel(exc.model, exc.available) from None


def _check_max_tokens(service: ChatService, wire: dict[str, Any]) -> None:
    """A bot may not ask for more than the server's cap, or every chat with it would fail."""
    cap = service.limits.max_tokens
    if wire.get("maxTokens") is not None and wire["maxTokens"] > cap:
        raise V1ValidationError([error(("body", "maxTokens"), f"ensure this value is less than or equal to {cap}",
                                       "value_error.number.not_le", {"limit_value": cap})])


async def _wire(request: Request, service: ChatService, creating: bool) -> dict[str, Any]:
    wire = protocol.parse_bot(await request.body(), request.headers.get("content-type"), creating)
    _check_max_tokens(service, wire)
    values = adapter.bot_values(wire)
    _check_model(service, values)
    return values


@router.post("", summary="Create a bot", status_code=201, openapi_extra=request_body(protocol.BOT_CREATE))
async def create_bot(request: Request, service: Service, owner: Owner) -> Response:
    values = await _wire(request, service, creating=True)
    bot = await service.bots.create(Bot(uid="", owner=owner, **values))
    return JSONResponse(adapter.bot_body(bot), status_code=201)


@router.get("", summary="List bots")
async def list_bots(service: Service, owner: Owner) -> dict:
    return {"bots": [adapter.bot_body(b) for b in await service.bots.list(owner)]}


@router.get("/{ident}", summary="Get a bot by uid or slug")
async def get_bot(ident: str, service: Service, owner: Owner) -> dict:
    return adapter.bot_body(await service.bot(ident, owner))


@router.patch("/{ident}", summary="Update a bot", openapi_extra=request_body(protocol.BOT_PATCH))
async def update_bot(ident: str, request: Request, service: Service, owner: Owner) -> dict:
    bot = await service.bot(ident, owner)
    _may_change(bot, owner)
    values = await _wire(request, service, creating=False)
    if bot.slug == DEFAULT_BOT_SLUG and values.get("slug", bot.slug) != bot.slug:
        raise Conflict("The default bot's slug cannot be changed")
    if values:
        await service.bots.update(bot.uid, **values)
    return adapter.bot_body(await service.bot(bot.uid, owner))


@router.delete("/{ident}", summary="Delete a bot", status_code=204)
async def delete_bot(ident: str, service: Service, owner: Owner) -> Response:
    bot = await service.bot(ident, owner)
    _may_change(bot, owner)
    if bot.slug == DEFAULT_BOT_SLUG:
        raise Conflict("The default bot cannot be deleted")
    await service.bots.delete(bot.uid)
    return Response(status_code=204)
