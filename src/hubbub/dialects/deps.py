"""FastAPI dependencies as ``Annotated`` aliases: the one way a router reaches the core."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from hubbub.core.service import ChatService
from hubbub.core.turns import TurnRunner
from hubbub.settings import Settings

if TYPE_CHECKING:
    from hubbub.app import Container


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


Service = Annotated[ChatService, Depends(get_service)]
Turns = Annotated[TurnRunner, Depends(get_turns)]
AppSettings = Annotated[Settings, Depends(get_settings)]
Owner = Annotated[str | None, Depends(get_owner)]
