"""The health of one channel: counters, latency, and the cooldown that sets a failing one aside.

A channel is ``healthy``; after a failure it is ``degraded`` until a success; after
``failure_threshold`` consecutive failures it is in ``cooldown`` for ``cooldown_seconds``,
doubling each time it fails again right after one (capped by ``max_cooldown_seconds``).
An upstream that says how long to wait (429, or 503 with ``Retry-After``) is believed at
once: the channel cools down for exactly that long (capped the same way). When a cooldown
ends the channel is tried again; one more failure cools it down again, a success heals it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from hubbub.providers.faults import FailureKind
from hubbub.settings import FailoverConfig

_KINDS: tuple[str, ...] = ("connect", "timeout", "rate_limited", "server_error", "stream_broken", "rejected")
_EWMA = 0.2  # weight of the newest sample in the moving average of time to first token


@dataclass
class ChannelHealth:
    policy: FailoverConfig
    clock: Callable[[], float] = time.monotonic
    requests: int = 0
    successes: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    cooldowns: int = 0  # how many cooldowns in a row without a success (for the doubling)
    cooldown_until: float = 0.0
    errors: dict[str, int] = field(default_factory=lambda: {k: 0 for k in _KINDS})
    first_token_ms: float | None = None  # moving average
    last_first_token_ms: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None  # epoch seconds

    def available(self) -> bool:
        return self.clock() >= self.cooldown_until

    @property
    def state(self) -> str:
        if not self.available():
            return "cooldown"
        return "degraded" if self.consecutive_failures else "healthy"

    def started(self) -> None:
        self.requests += 1

    def first_token(self, seconds: float) -> None:
        ms = seconds * 1000.0
        self.last_first_token_ms = ms
        self.first_token_ms = ms if self.first_token_ms is None else (1 - _EWMA) * self.first_token_ms + _EWMA * ms

    def succeeded(self) -> None:
        self.successes += 1
        self.consecutive_failures = 0
        self.cooldowns = 0

    def failed(self, kind: FailureKind, details: str, retry_after: float | None = None) -> None:
        self.failures += 1
        self.consecutive_failures += 1
        self.errors[kind] = self.errors.get(kind, 0) + 1
        self.last_error, self.last_error_at = details, time.time()
        cap = self.policy.max_cooldown_seconds
        if retry_after is not None:
            self._cool(min(retry_after, cap))
        elif kind == "rate_limited" or self.consecutive_failures >= self.policy.failure_threshold:
            self._cool(min(self.policy.cooldown_seconds * (2 ** self.cooldowns), cap))

    def _cool(self, seconds: float) -> None:
        self.cooldowns += 1
        self.cooldown_until = max(self.cooldown_until, self.clock() + seconds)

    def reset(self) -> None:
        """Forget failures and cooldown (an operator's "try it now")."""
        self.consecutive_failures = self.cooldowns = 0
        self.cooldown_until = 0.0

    def snapshot(self) -> dict[str, Any]:
        """The wire shape of ``GET /api/channels`` (camelCase, like the other /api routes)."""
        remaining = max(0.0, self.cooldown_until - self.clock())
        return {
            "state": self.state,
            "cooldownRemaining": round(remaining, 3) if remaining else None,
            "requests": self.requests,
            "successes": self.successes,
            "failures": self.failures,
            "consecutiveFailures": self.consecutive_failures,
            "errors": dict(self.errors),
            "latencyMs": {
                "firstToken": _round(self.first_token_ms),
                "lastFirstToken": _round(self.last_first_token_ms),
            },
            "lastError": self.last_error,
            "lastErrorAt": int(self.last_error_at * 1000) if self.last_error_at else None,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
