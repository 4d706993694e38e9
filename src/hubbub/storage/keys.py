"""API keys: stored as SHA-256 hashes, shown in full only once, at creation.

Keys are 256-bit random tokens, so a fast hash is enough: nobody can brute-force
the preimage, and lookups stay one indexed query.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncEngine

from hubbub.core.ids import new_id, now_ms
from hubbub.storage.tables import api_keys

KEY_PREFIX = "hb_"


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    prefix: str
    is_admin: bool
    rpm: int | None = None
    tpm: int | None = None
    daily_tokens: int | None = None
    created_at: int = 0
    revoked_at: int | None = None


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def _key(row: Row[Any]) -> ApiKey:
    return ApiKey(
        id=row.id, name=row.name, prefix=row.prefix, is_admin=bool(row.is_admin), rpm=row.rpm, tpm=row.tpm,
        daily_tokens=row.daily_tokens, created_at=row.created_at, revoked_at=row.revoked_at,
    )


class KeyRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create(
        self,
        name: str,
        *,
        admin: bool = False,
        rpm: int | None = None,
        tpm: int | None = None,
        daily_tokens: int | None = None,
    ) -> tuple[ApiKey, str]:
        """A new key and its plaintext (returned once; only the hash is stored)."""
        plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
        key = ApiKey(id=new_id("key_"), name=name, prefix=plaintext[:10], is_admin=admin, rpm=rpm, tpm=tpm,
                     daily_tokens=daily_tokens, created_at=now_ms())
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(api_keys).values(
                    id=key.id, name=name, key_hash=hash_key(plaintext), prefix=key.prefix, is_admin=admin,
                    rpm=rpm, tpm=tpm, daily_tokens=daily_tokens, created_at=key.created_at,
                )
            )
        return key, plaintext

    async def find(self, plaintext: str) -> ApiKey | None:
        stmt = select(api_keys).where(api_keys.c.key_hash == hash_key(plaintext), api_keys.c.revoked_at.is_(None))
        async with self._engine.connect() as conn:
            row = (await conn.execute(stmt)).first()
        return _key(row) if row else None

    async def get(self, key_id: str) -> ApiKey | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(api_keys).where(api_keys.c.id == key_id))).first()
        return _key(row) if row else None

    async def list(self) -> list[ApiKey]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(select(api_keys).order_by(api_keys.c.created_at))).all()
        return [_key(r) for r in rows]

    async def revoke(self, key_id: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(api_keys).where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=now_ms())
            )
        return result.rowcount > 0

    async def active_count(self) -> int:
        stmt = select(func.count()).select_from(api_keys).where(api_keys.c.revoked_at.is_(None))
        async with self._engine.connect() as conn:
            return int((await conn.execute(stmt)).scalar_one())
