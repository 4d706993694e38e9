"""The health of one channel: counters, latency, and the cooldown that sets a failing one aside.

A channel is ``healthy``; after a failure it is ``degraded`` until a success; after
``failure_threshold`` consecutive failures it is in ``cooldown`` for ``cooldown_seconds``.
When a cooldown ends the channel is **probed**: one request at a time may try it (the
others keep using the other channels); a success heals it at once, a failure cools it
down again for twice as long, up to ``max_cooldown_seconds``.

The cooldown grows once per *period*, not per failure (issue 22): failures of attempts that
began before a cooldown and end during it (a burst of concurrent requests) change nothing,
so eight failures in one second cost one ``cooldown_seconds``, not the maximum. A success
ends any cooldown the failures caused. The doubling's exponent is capped, so no number of
failures overflows it.

An upstream that says how long to wait (429, or 503 with ``Retry-After``) is believed: the
channel is set aside for exactly that long (capped the same way), whatever a success says
meanwhile, and that wait never grows the next cooldown. A 429 without ``Retry-After`` cools
the channel at once, for a jittered cooldown (so replicas and requests do not all come back
in the same instant).

``busy`` and ``internal`` failures (hubbub's own: ``faults.LOCAL_KINDS``) never reach here.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from hubbub.providers.faults import FailureKind
from hubbub.settings import FailoverConfig

_KINDS: tuple[str, ...] = ("connect", "timeout", "rate_limited", "server_error", "stream_broken", "rejected")
_EWMA = 0.2  # weight of the newest sample in the moving average of time to first token
_MAX_DOUBLINGS = 30  # 2 ** 30 × any sane cooldown is past every cap: the exponent stops there
_JITTER = 0.25  # a 429 without Retry-After cools for 75–100 % of the cooldown


@dataclass
class ChannelHealth:
    policy: FailoverConfig
    clock: Callable[[], float] = time.monotonic
    rng: random.Random = field(default_factory=random.Random)
    requests: int = 0
    successes: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    cooldowns: int = 0  # cooldown periods in a row without a success (the doubling's exponent)
    cooldown_until: float = 0.0  # from failures; a success ends it
    wait_until: float = 0.0  # from the upstream's Retry-After; only time ends it
    probing: bool = False  # a probe (the first try after a cooldown) is in flight
    errors: dict[str, int] = field(default_factory=lambda: {k: 0 for k in _KINDS})
    first_token_ms: float | None = None  # moving average
    last_first_token_ms: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None  # epoch seconds

    def available(self) -> bool:
        """May a request try it now: not cooling down, and no probe of it already in flight."""
        now = self.clock()
        return now >= self.cooldown_until and now >= self.wait_until and not self.probing

    def _cooling(self, now: float) -> bool:
        return now < self.cooldown_until or now < self.wait_until

    @property
    def state(self) -> str:
        if self._cooling(self.clock()):
            return "cooldown"
        return "degraded" if self.consecutive_failures else "healthy"

    def started(self) -> None:
        """An attempt begins; after a cooldown it is the probe, and the only one until it ends."""
        self.requests += 1
        if self.cooldowns and not self._cooling(self.clock()):
            self.probing = True

    def ended(self) -> None:
        """An attempt ended, however (success, failure, cancelled, the request's own error)."""
        self.probing = False

    def first_token(self, seconds: float) -> None:
        ms = seconds * 1000.0
        self.last_first_token_ms = ms
        self.first_token_ms = ms if self.first_token_ms is None else (1 - _EWMA) * self.first_token_ms + _EWMA * ms

    def succeeded(self) -> None:
        self.successes += 1
        self.consecutive_failures = 0
        self.cooldowns = 0
        self.cooldown_until = 0.0  # a success resets the channel, even one that began before the cooldown

    def failed(self, kind: FailureKind, details: str, retry_after: float | None = None) -> None:
        self.failures += 1
        self.consecutive_failures += 1
        self.errors[kind] = self.errors.get(kind, 0) + 1
        self.last_error, self.last_error_at = details, time.time()
        now = self.clock()
        cap = self.policy.max_cooldown_seconds
        if retry_after is not None:
            self.wait_until = max(self.wait_until, now + min(retry_after, cap))
            return
        if self._cooling(now):
            return  # an attempt begun before this cooldown: the period is already running
        if kind == "rate_limited" or self.cooldowns or self.consecutive_failures >= self.policy.failure_threshold:
            seconds = min(self.policy.cooldown_seconds * 2.0 ** min(self.cooldowns, _MAX_DOUBLINGS), cap)
            if kind == "rate_limited":
                seconds *= 1.0 - _JITTER * self.rng.random()
            self.cooldowns = min(self.cooldowns + 1, _MAX_DOUBLINGS)
            self.cooldown_until = now + seconds

    def reset(self) -> None:
        """Forget failures and cooldown (an operator's "try it now")."""
        self.consecutive_failures = self.cooldowns = 0
        self.cooldown_until = self.wait_until = 0.0
        self.probing = False

    def snapshot(self) -> dict[str, Any]:
        """The wire shape of ``GET /api/channels`` (camelCase, like the other /api routes)."""
        remaining = max(0.0, self.cooldown_until - self.clock(), self.wait_until - self.clock())
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
