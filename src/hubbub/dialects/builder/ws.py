"""``GET /api/chat/ws``: the builder dialect over a WebSocket (API.md §2).

The client sends ``{"type": "message", "content", "chatId"?, "model"?, "enableDSL"?}``
or ``{"type": "stop"}``; the server sends the very objects the SSE route sends
(``chat``, ``text``…, ``dsl``, ``phase``, ``done``; ``error``), one JSON text
message each. A turn starts through the same ``adapter.start_turn`` as
``POST /api/chat`` and renders through the same ``adapter.event_body``, so the
two transports cannot drift apart.

One socket holds one chat: the first message creates it (or continues
``chatId``), later messages continue it. Messages are answered in order; one
that arrives while a reply streams waits for it, while ``stop`` acts at once.
A bad message gets an ``error`` object and the socket stays open.

Auth (docs/security.md): a header at the handshake (``Authorization``/``X-API-Key``),
or — for browsers, which cannot set headers there — a first message
``{"type": "auth", "key": "<key>"}`` sent within ``ws_auth_timeout_seconds``.
``?api_key=`` still works but is the least private way: a URL travels through
proxies and their logs (hubbub masks it in its own). The key is checked again per
message, so a revoked key stops working and each message counts against the key's
rate limits. Without a valid key the socket is accepted and closed with code 4401
(browsers see close codes, never a handshake's HTTP status).

Bounds, as on HTTP (issue 22): a message over ``max_body_bytes`` closes the socket
with 1009 (uvicorn does the same before the app sees it, ``http/server.py``); at
most ``ws_max_queued_messages`` messages wait for their answers, one more gets a
``RATE_LIMITED`` error and is not queued; strings no backend can store are refused
as over HTTP (``http/text.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import TYPE_CHECKING, Any, Literal

import orjson
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hubbub.core.turns import Turn
from hubbub.dialects.builder import adapter
from hubbub.dialects.builder.protocol import CHAT_ID_PATTERN, BuilderChatRequest, BuilderMessage
from hubbub.auth import presented_key
from hubbub.http.routing import admit, authenticate
from hubbub.http.text import check_value
from hubbub.errors import FieldProblem, InvalidRequest, RateLimited, Unauthorized, Unavailable
from hubbub.storage.outage import unavailable

if TYPE_CHECKING:
    from hubbub.container import Container

log = logging.getLogger(__name__)

router = APIRouter(tags=["builder"])

UNAUTHORIZED_CLOSE = 4401  # 4000-4999: application codes; 4401 mirrors HTTP 401
TOO_BIG_CLOSE = 1009  # RFC 6455: "a message that is too big for it to process"


class WsMessage(BaseModel):
    """A client's ``{"type": "message"}``; unknown fields are ignored, as everywhere."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["message"]
    content: str
    chatId: str | None = Field(default=None, pattern=CHAT_ID_PATTERN)
    model: str | None = Field(default=None, min_length=1, max_length=255)
    temperature: float = Field(default=0.3, ge=0, le=2)
    enableDSL: bool = True


def _parse(data: str | bytes) -> dict[str, Any]:
    try:
        payload = orjson.loads(data)
    except ValueError:
        raise InvalidRequest(details=[FieldProblem("body", "Message is not valid JSON")]) from None
    if not isinstance(payload, dict):
        raise InvalidRequest(details=[FieldProblem("body", "Message must be a JSON object")])
    if payload.get("type") not in ("message", "stop", "auth"):
        raise InvalidRequest(details=[FieldProblem("type", 'must be "message", "stop" or "auth"')])
    check_value(payload)
    return payload


def _size(data: str | bytes) -> int:
    return len(data) if isinstance(data, bytes) else len(data.encode("utf-8", "surrogatepass"))


def _auth_key(payload: dict[str, Any]) -> str | None:
    key = payload.get("key")
    return key.strip() or None if isinstance(key, str) else None


def to_request(message: WsMessage, chat_id: str | None) -> BuilderChatRequest:
    """The ``POST /api/chat`` body this message stands for (the socket's chat unless it names one)."""
    return BuilderChatRequest(
        messages=[BuilderMessage(role="user", content=message.content)],
        chatId=message.chatId or chat_id,
        model=message.model,
        temperature=message.temperature,
        enableDSL=message.enableDSL,
    )


class _Session:
    """One socket: its chat, the queue of messages to answer, and the reply streaming now."""

    def __init__(self, websocket: WebSocket, container: "Container") -> None:
        self.ws = websocket
        self.container = container
        self.chat_id: str | None = None
        self.max_bytes = container.settings.max_body_bytes
        self.queue: asyncio.Queue[WsMessage] = asyncio.Queue(container.settings.ws_max_queued_messages)
        self.busy = False  # a message is being started or its reply streamed
        self.turn: Turn | None = None  # the turn streaming now, once started
        self.stop_pending = False  # stop arrived while the next turn was queued or starting
        self.send_lock = asyncio.Lock()

    async def send(self, body: dict[str, Any]) -> None:
        async with self.send_lock:
            await self.ws.send_text(orjson.dumps(body).decode())

    async def send_error(self, exc: Exception) -> None:
        _, error = adapter.error_parts(exc, None)
        await self.send({"type": "error", "content": error})

    def spawn(self, coro: Any) -> None:
        # The app's task set, not the socket's: a stop sent just before closing still lands.
        self.container.service.spawn(coro)

    async def receive(self) -> None:
        """Read client messages until the socket closes; ``stop`` is handled here, at once."""
        while True:
            raw = await self.ws.receive()
            if raw["type"] == "websocket.disconnect":
                return
            data = raw.get("text") if raw.get("text") is not None else raw.get("bytes")
            if _size(data or b"") > self.max_bytes:
                await self.ws.close(TOO_BIG_CLOSE, f"Message larger than {self.max_bytes} bytes")
                return
            try:
                payload = _parse(data or b"")
                if payload["type"] == "stop":
                    self.stop()
                    continue
                if payload["type"] == "auth":  # a new key for the messages that follow
                    self.ws.state.api_key = _auth_key(payload)
                    await authenticate(self.ws)  # type: ignore[arg-type]
                    continue
                try:
                    message = WsMessage.model_validate(payload)
                except ValidationError as exc:
                    raise RequestValidationError(exc.errors(include_url=False)) from exc
                if self.queue.full():
                    raise RateLimited(1, f"At most {self.queue.maxsize} messages may wait for an answer "
                                         "on one socket; this one was not queued")
                self.queue.put_nowait(message)
            except Unauthorized:
                await self.ws.close(UNAUTHORIZED_CLOSE, "Unauthorized")
                return
            except (InvalidRequest, RequestValidationError, RateLimited) as exc:
                await self.send_error(exc)

    def stop(self) -> None:
        if self.turn is not None:
            self.spawn(self.container.turns.stop(self.turn.conversation_id))
        elif self.busy or not self.queue.empty():
            self.stop_pending = True  # the next turn is starting: stop it as soon as it has
        elif self.chat_id is not None:
            self.spawn(self.container.turns.stop(self.chat_id))  # e.g. a turn started over HTTP

    async def answer(self) -> None:
        """Answer queued messages one after another, streaming each reply's events."""
        while True:
            message = await self.queue.get()
            self.busy = True
            try:
                await self._answer(message)
            finally:
                self.busy, self.turn, self.stop_pending = False, None, False

    async def _answer(self, message: WsMessage) -> None:
        body = to_request(message, self.chat_id)
        try:
            await admit(self.ws)  # type: ignore[arg-type]  # per message: revocation and rate limits
            owner = getattr(self.ws.state, "owner", None)
            turn = await adapter.start_turn(self.container.turns, self.container.settings, body, owner, uuid.uuid4().hex)
        except Unauthorized:
            await self.ws.close(UNAUTHORIZED_CLOSE, "Unauthorized")
            raise WebSocketDisconnect(UNAUTHORIZED_CLOSE) from None
        except Exception as exc:  # the error's own code (INVALID_MODEL, RATE_LIMITED…); the socket stays
            exc = unavailable(exc) or exc  # a database or Redis that is down: SERVICE_UNAVAILABLE
            if adapter.error_parts(exc, None)[0] >= 500 and not isinstance(exc, Unavailable):
                log.exception("websocket turn failed to start")
            await self.send_error(exc)
            return
        self.chat_id, self.turn = turn.conversation_id, turn
        if self.stop_pending:
            self.spawn(self.container.turns.stop(turn.conversation_id))
        turns = self.container.turns
        # aclosing: a socket that goes away mid-reply closes the follower, which applies
        # ``on_disconnect`` exactly as an SSE client's disconnect does.
        async with contextlib.aclosing(turns.follow(turn.conversation_id, 0, turn.message_id)) as events:
            async for _, event in events:
                out = adapter.event_body(event, body.enableDSL)
                if out is not None:
                    await self.send(out)


async def _first_message_auth(websocket: WebSocket, container: "Container") -> None:
    """Wait (``ws_auth_timeout_seconds``) for ``{"type": "auth", "key"}`` and authenticate it;
    ``Unauthorized`` for anything else: another message, a bad key, silence."""
    settings = container.settings
    try:
        async with asyncio.timeout(settings.ws_auth_timeout_seconds):
            raw = await websocket.receive()
    except TimeoutError:
        raise Unauthorized() from None
    if raw["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(raw.get("code", 1000))
    data = raw.get("text") if raw.get("text") is not None else raw.get("bytes")
    if not data or _size(data) > settings.max_body_bytes:
        raise Unauthorized()
    try:
        payload = _parse(data)
    except InvalidRequest:
        raise Unauthorized() from None
    if payload["type"] != "auth" or _auth_key(payload) is None:
        raise Unauthorized()
    websocket.state.api_key = _auth_key(payload)
    await container.auth.authenticate(websocket)


@router.websocket("/api/chat/ws")
async def chat_ws(websocket: WebSocket) -> None:
    """The builder dialect over a WebSocket (see the module docstring)."""
    container = websocket.app.state.container
    try:
        if await container.auth.auth_enabled() and presented_key(websocket) is None:
            await websocket.accept()  # no key at the handshake: it must come in the first message
            await _first_message_auth(websocket, container)
        else:
            await container.auth.authenticate(websocket)
            await websocket.accept()
    except Unauthorized:
        if websocket.client_state == WebSocketState.CONNECTING:
            await websocket.accept()
        await websocket.close(UNAUTHORIZED_CLOSE, "Unauthorized")
        return
    except WebSocketDisconnect:
        return
    session = _Session(websocket, container)
    loop = asyncio.get_running_loop()
    reader, writer = loop.create_task(session.receive()), loop.create_task(session.answer())
    try:
        # The writer ends only when sending failed (the client is gone) or the key was revoked.
        await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (reader, writer):
            task.cancel()
        for task in (reader, writer):
            with contextlib.suppress(BaseException):
                await task
