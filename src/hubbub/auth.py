"""Who is asking: API keys from ``Authorization: Bearer`` or ``X-API-Key``.

With no active key the server is open (and then binds loopback only, see cli.py).
With keys, every dialect route needs one; ``/healthz``, ``/readyz`` and the web
page never do. A user key owns what it creates and sees only that; an admin key
sees everything (its ``owner`` is None, the repositories' "any owner").

Lookups are cached for a few seconds, so a revoked key stops working within
``cache_seconds`` on every replica without a database query per request.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from starlette.requests import HTTPConnection

from hubbub.errors import Forbidden, Unauthorized
from hubbub.storage.keys import ApiKey, KeyRepository


@dataclass(frozen=True)
class Principal:
    key: ApiKey | None  # None: the server is open (no keys configured)

    @property
    def is_admin(self) -> bool:
        return self.key is None or self.key.is_admin

    @property
    def owner(self) -> str | None:
        """What new objects are owned by, and what lookups are filtered by (None: everything)."""
        return None if self.key is None or self.key.is_admin else self.key.id

    @property
    def key_id(self) -> str | None:
        return self.key.id if self.key else None


OPEN = Principal(None)


def presented_key(conn: HTTPConnection) -> str | None:
    header = conn.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    key = conn.headers.get("x-api-key", "").strip()
    if key:
        return key
    if conn.scope.get("type") == "websocket":
        # Browsers cannot set headers on a WebSocket handshake: such a client sends the key in its
        # first message (``{"type": "auth", "key"}``, kept in the socket's state) or, the older
        # way, as ``?api_key=`` (which is masked in every log line: logs.redact). docs/security.md.
        return getattr(conn.state, "api_key", None) or conn.query_params.get("api_key") or None
    return None


class Authenticator:
    def __init__(self, keys: KeyRepository, cache_seconds: float = 5.0) -> None:
        self._keys = keys
        self._ttl = cache_seconds
        self._open_until = 0.0
        self._open = True
        self._cache: dict[str, tuple[float, ApiKey | None]] = {}

    async def auth_enabled(self) -> bool:
        now = time.monotonic()
        if now >= self._open_until:
            self._open = await self._keys.active_count() == 0
            self._open_until = now + self._ttl
        return not self._open

    def forget(self) -> None:
        """Drop cached answers (after a key was created or revoked here)."""
        self._open_until = 0.0
        self._cache.clear()

    async def authenticate(self, conn: HTTPConnection) -> Principal:
        if not await self.auth_enabled():
            return OPEN
        token = presented_key(conn)
        if not token:
            raise Unauthorized()
        now = time.monotonic()
        cached = self._cache.get(token)
        if cached is not None and cached[0] > now:
            key = cached[1]
        else:
            key = await self._keys.find(token)
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[token] = (now + self._ttl, key)
        if key is None:
            raise Unauthorized()
        return Principal(key)


def require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise Forbidden()
