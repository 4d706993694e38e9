"""Rate limits and quotas: requests/minute, tokens/minute, tokens/day.

Per API key (the key's own limits) and per end user (``userId``, ``user_id``,
``user``; limits from settings). Windows are sliding logs of (time, amount), so
a limit of 10/minute admits exactly 10 in any 60 s — no boundary bursts.

Two backends behind one interface: in memory (one replica) and Redis, where
each check is one atomic Lua script (one round trip, Redis' own clock), so the
limit is exact across replicas. Token limits are checked before a request
(refused once the window is used up) and charged afterwards with the real
prompt + completion tokens.
"""

from __future__ import annotations

import math
import time
import uuid
from collections import deque
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from hubbub.errors import RateLimited

MINUTE_MS = 60_000
DAY_MS = 86_400_000

@dataclass(frozen=True)
class Quota:
    rpm: int | None = None
    tpm: int | None = None
    daily_tokens: int | None = None


@dataclass(frozen=True)
class KeyQuota:
    key_id: str
    quota: Quota


# The API key of the request being served (set by the dialect route class). Background
# work spawned by the request (a stored-chat turn) inherits it, so its tokens are charged
# to the right key even after the client went away.
current_key: ContextVar[KeyQuota | None] = ContextVar("hubbub_current_key", default=None)


class LimitBackend(Protocol):
    async def take(self, key: str, amount: int, limit: int, window_ms: int) -> int:
        """Add ``amount`` if the window's total stays <= ``limit``; return 0, else ms until it would.
        ``amount=0`` only checks that the total is below ``limit``."""

    async def add(self, key: str, amount: int, window_ms: int) -> None:
        """Charge ``amount`` unconditionally."""

    async def aclose(self) -> None: ...


class MemoryLimits:
    def __init__(self) -> None:
        self._logs: dict[str, deque[tuple[int, int]]] = {}

    def _log(self, key: str, now: int, window_ms: int) -> deque[tuple[int, int]]:
        log = self._logs.setdefault(key, deque())
        while log and log[0][0] <= now - window_ms:
            log.popleft()
        return log

    async def take(self, key: str, amount: int, limit: int, window_ms: int) -> int:
        now = int(time.time() * 1000)
        log = self._log(key, now, window_ms)
        total = sum(a for _, a in log)
        if (amount == 0 and total < limit) or (amount > 0 and total + amount <= limit):
            if amount:
                log.append((now, amount))
            return 0
        need = total + amount - limit + (1 if amount == 0 else 0)
        for ts, a in log:
            need -= a
            if need <= 0:
                return max(ts + window_ms - now, 1)
        return window_ms

    async def add(self, key: str, amount: int, window_ms: int) -> None:
        if amount > 0:
            now = int(time.time() * 1000)
            self._log(key, now, window_ms).append((now, amount))
        if len(self._logs) > 100_000:  # drop idle keys
            now = int(time.time() * 1000)
            for k in [k for k, v in self._logs.items() if not v or v[-1][0] <= now - DAY_MS]:
                del self._logs[k]

    async def aclose(self) -> None:
        self._logs.clear()


_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local key, amount, limit, window = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local entries = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
local total = 0
for i = 1, #entries, 2 do total = total + tonumber(string.match(entries[i], ':(%d+)$')) end
if (amount == 0 and total < limit) or (amount > 0 and total + amount <= limit) then
  if amount > 0 then
    redis.call('ZADD', key, now, ARGV[4] .. ':' .. amount)
    redis.call('PEXPIRE', key, window)
  end
  return 0
end
local need = total + amount - limit
if amount == 0 then need = need + 1 end
for i = 1, #entries, 2 do
  need = need - tonumber(string.match(entries[i], ':(%d+)$'))
  if need <= 0 then return math.max(tonumber(entries[i + 1]) + window - now, 1) end
end
return window
"""

_ADD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
redis.call('ZADD', KEYS[1], now, ARGV[3] .. ':' .. ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return 0
"""


class RedisLimits:
    """On the app's one Redis client (``container.py``), which it borrows: closing the
    limiter leaves the client to its owner."""

    def __init__(self, redis: Any, prefix: str = "hubbub:limit:") -> None:
        self._redis = redis
        self._prefix = prefix
        self._take = self._redis.register_script(_TAKE)
        self._add = self._redis.register_script(_ADD)

    async def take(self, key: str, amount: int, limit: int, window_ms: int) -> int:
        return int(await self._take(keys=[self._prefix + key], args=[amount, limit, window_ms, uuid.uuid4().hex]))

    async def add(self, key: str, amount: int, window_ms: int) -> None:
        if amount > 0:
            await self._add(keys=[self._prefix + key], args=[amount, window_ms, uuid.uuid4().hex])

    async def aclose(self) -> None:
        pass


def _seconds(ms: int) -> int:
    return max(1, math.ceil(ms / 1000))


def _until_utc_midnight_ms() -> int:
    now = datetime.now(timezone.utc)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return int((midnight - now).total_seconds() * 1000)


class Limiter:
    """Checks and charges quotas for a subject (``key:<id>`` or ``user:<id>``)."""

    def __init__(self, backend: LimitBackend, user_quota: Quota | None = None) -> None:
        self.backend = backend
        self.user_quota = user_quota or Quota()
        self.refusals = 0

    async def check(self, subject: str, quota: Quota) -> None:
        """Count one request against ``quota``; ``RateLimited`` if any part of it is used up."""
        day = datetime.now(timezone.utc).strftime("%Y-%m-%d")
        if quota.daily_tokens is not None:
            if await self.backend.take(f"{subject}:day:{day}", 0, quota.daily_tokens, DAY_MS):
                self._refuse(_until_utc_midnight_ms(), "Daily token quota exceeded")
        if quota.tpm is not None:
            wait = await self.backend.take(f"{subject}:tpm", 0, quota.tpm, MINUTE_MS)
            if wait:
                self._refuse(wait, "Token rate limit exceeded")
        if quota.rpm is not None:
            wait = await self.backend.take(f"{subject}:rpm", 1, quota.rpm, MINUTE_MS)
            if wait:
                self._refuse(wait, "Rate limit exceeded")

    async def charge(self, subject: str, quota: Quota, tokens: int) -> None:
        if tokens <= 0:
            return
        if quota.tpm is not None:
            await self.backend.add(f"{subject}:tpm", tokens, MINUTE_MS)
        if quota.daily_tokens is not None:
            day = datetime.now(timezone.utc).strftime("%Y-%m-%d")
            await self.backend.add(f"{subject}:day:{day}", tokens, DAY_MS)

    async def check_user(self, user_id: str | None) -> None:
        if user_id and self.user_quota != Quota():
            await self.check(f"user:{user_id}", self.user_quota)

    async def charge_user(self, user_id: str | None, tokens: int) -> None:
        if user_id and self.user_quota != Quota():
            await self.charge(f"user:{user_id}", self.user_quota, tokens)

    def _refuse(self, wait_ms: int, message: str) -> None:
        self.refusals += 1
        seconds = _seconds(wait_ms)
        raise RateLimited(seconds, f"{message}. Please wait {seconds} seconds.")

    async def aclose(self) -> None:
        await self.backend.aclose()
