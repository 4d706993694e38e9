"""FastAPI dependencies as ``Annotated`` aliases: the one way a router reaches the core."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from hubbub.core.service import ChatService
from hubbub.core.turns import TurnRunner
from hubbub.settings import Settings

if TYPE_CHECKING:
    from hubbub.container import Container


def get_container(request: Request) -> "Container":
    return request.app.state.container


def get_service(request: Request) -> ChatService:
    return request.app.state.container.service


def get_turns(request: Request) -> TurnRunner:
    return request.app.state.container.turns


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_owner(request: Request) -> str | None:
    """The API key id that owns what this request creates (None: open server or admin)."""
    return getattr(request.state, "owner", None)


# FastAPI runs a plain ``def`` dependency in a worker thread: three thread hops per request,
# the largest cost of a proxied request. These ``async def`` twins run on the event loop.
async def _service(request: Request) -> ChatService:
    return get_service(request)


async def _turns(request: Request) -> TurnRunner:
    return get_turns(request)


async def _settings(request: Request) -> Settings:
    return get_settings(request)


async def _owner(request: Request) -> str | None:
    return get_owner(request)


Service = Annotated[ChatService, Depends(_service)]
Turns = Annotated[TurnRunner, Depends(_turns)]
AppSettings = Annotated[Settings, Depends(_settings)]
Owner = Annotated[str | None, Depends(_owner)]
