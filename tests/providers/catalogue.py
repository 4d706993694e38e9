"""Harness for the fault catalogue (issue 19): a real channel router, built from settings the
way the app builds it, whose channels reach the real upstream (``llama_cpp.server``) through
fault proxies the test owns.

Every catalogue test runs under two profiles (docs/upstreams.md, "Fault by fault"):

- ``defaults``: ``[failover]`` as documented;
- ``retries2-timeout30``: ``max_retries = 2`` and ``deadline = 30``, the profile of a gateway
  set to "2 retries, 30 s timeout".

Only times are shortened, the same for both, so the suite stays fast: cooldowns of 1–4 s
instead of 30–600 s, and the faults' own delays (a Retry-After of 2 s, a first token 3 s
late, an outage of a few seconds) with channels whose deadlines are set to a few seconds
where the fault is about them. A healthy channel keeps a generous first-token deadline: on a
loaded 2-core machine the upstream's first token can take seconds. Conduct is checked by
counts (the proxies' connections are the attempts) and by lower bounds on spacing; upper
bounds on time are generous ceilings.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

from hubbub.core.events import Finish, ServedBy, TextDelta, UsageReport
from hubbub.core.types import Message, ProviderRequest, SamplingParams, Usage
from hubbub.errors import HubbubError
from hubbub.providers.channels import ChannelRouter
from hubbub.providers.registry import ModelRegistry
from hubbub.providers.upstreams import register_upstreams
from hubbub.settings import Settings
from upstream import FaultProxy

PROFILES: dict[str, dict[str, Any]] = {
    "defaults": {},
    "retries2-timeout30": {"max_retries": 2, "deadline": 30},
}
TIMES: dict[str, Any] = {"cooldown_seconds": 1.0, "max_cooldown_seconds": 4.0, "first_token_timeout": 30.0}
PRICING = {"prompt": 0.5, "completion": 1.5}
STORY = "Tell me a short story about a cat."


def channel(name: str, proxy: FaultProxy | str, provider: dict[str, Any] | None = None, **knobs: Any) -> dict:
    """A ``[[channels]]`` entry with its own ``[[providers]]`` entry (``provider``: its options)."""
    url = proxy if isinstance(proxy, str) else proxy.url
    return {"name": name, "url": url, "provider_options": provider or {}, **knobs}


@asynccontextmanager
async def routed(profile: str, *channels: dict, model: dict[str, Any] | None = None,
                 **failover: Any) -> AsyncIterator[ChannelRouter]:
    """The router of one model ``m`` served by ``channels`` (earlier ones first, by priority)."""
    providers, entries = [], []
    for i, ch in enumerate(channels):
        ch = dict(ch)
        url, options = ch.pop("url"), ch.pop("provider_options")
        providers.append({"name": f"p-{ch['name']}", "base_url": url, **options})
        entries.append({"model": "m", "provider": f"p-{ch['name']}", "priority": 100 - i, **ch})
    settings = Settings(
        providers=providers, channels=entries,
        models=[{"id": "m", "context_length": 2048, "pricing": PRICING, **(model or {})}],
        failover={**TIMES, **PROFILES[profile], **failover},
    )
    registry = ModelRegistry("m")
    made = register_upstreams(settings, registry, None)
    router = registry.get("m").provider
    assert isinstance(router, ChannelRouter)
    try:
        yield router
    finally:
        for provider in made:
            await provider.aclose()


@dataclass
class Outcome:
    """What one request through the router gave, and how long it took."""

    events: list[Any] = field(default_factory=list)
    error: HubbubError | None = None
    seconds: float = 0.0

    @property
    def text(self) -> str:
        return "".join(e.text for e in self.events if isinstance(e, TextDelta))

    @property
    def served(self) -> list[str]:
        """The channels that answered, in order (``ServedBy``)."""
        return [e.channel for e in self.events if isinstance(e, ServedBy)]

    @property
    def served_by(self) -> ServedBy:
        return [e for e in self.events if isinstance(e, ServedBy)][-1]

    @property
    def usage(self) -> Usage:
        reports = [e for e in self.events if isinstance(e, UsageReport)]
        assert len(reports) == 1, self.events
        return reports[0].usage

    @property
    def finish(self) -> str | None:
        finishes = [e.reason for e in self.events if isinstance(e, Finish)]
        return finishes[-1] if finishes else None

    @property
    def cost(self) -> float:
        """What the request is billed: its usage at the prices of the channel that answered."""
        return self.served_by.cost(self.usage)


async def route(router: ChannelRouter, max_tokens: int = 6, content: str = STORY, **params: Any) -> Outcome:
    request = ProviderRequest(model="m", messages=[Message("user", content)],
                              params=SamplingParams(temperature=0.0, max_tokens=max_tokens, **params))
    outcome = Outcome()
    started = time.monotonic()
    try:
        async for event in router.stream(request):
            outcome.events.append(event)
    except HubbubError as exc:
        outcome.error = exc
    outcome.seconds = time.monotonic() - started
    return outcome


def health(router: ChannelRouter, name: str) -> dict[str, Any]:
    return next(c for c in router.snapshot() if c["name"] == name)


def attempts(proxy: FaultProxy) -> int:
    """Requests the proxy passed on or answered: a kept-alive connection carries several."""
    return sum(max(1, len(c.request_bodies())) for c in proxy.connections)


async def closed(proxy: FaultProxy, seconds: float = 5.0) -> bool:
    """Wait until every connection the proxy saw was closed by hubbub's side."""
    for _ in range(int(seconds / 0.02)):
        if all(c.client_closed_at is not None for c in proxy.connections):
            return True
        await asyncio.sleep(0.02)
    return False


def gaps(proxy: FaultProxy) -> list[float]:
    """Seconds between consecutive attempts (connections) a proxy saw."""
    opened = [c.opened_at for c in proxy.connections]
    return [b - a for a, b in zip(opened, opened[1:])]
