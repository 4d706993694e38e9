"""No self-inflicted outages (issue 22, High 2 and 3, Medium 5): a channel's cooldown grows once per
period and a success ends it; hubbub's own limits (a full connection pool) and its own errors
(a request it cannot encode) never count against an upstream; no number of failures overflows
the cooldown. The health rules with a fake clock, then the same through real fault proxies."""

from __future__ import annotations

import asyncio
import contextlib
import time
from contextlib import aclosing

import pytest

from catalogue import channel, health, route, routed
from hubbub.core.types import Message, ProviderRequest, SamplingParams
from hubbub.errors import InvalidRequest
from hubbub.providers.health import ChannelHealth
from hubbub.settings import FailoverConfig


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _health(**policy: float) -> tuple[ChannelHealth, Clock]:
    clock = Clock()
    return ChannelHealth(FailoverConfig(**{"failure_threshold": 3, "cooldown_seconds": 30,
                                           "max_cooldown_seconds": 600, **policy}), clock), clock


def test_a_burst_of_failures_costs_one_cooldown_not_the_maximum():
    h, clock = _health()
    for _ in range(8):  # eight concurrent requests failing in the same instant
        h.failed("server_error", "503")
    assert h.state == "cooldown" and h.snapshot()["cooldownRemaining"] == 30
    assert h.consecutive_failures == 8 and h.cooldowns == 1


def test_a_success_ends_the_cooldown_at_once():
    h, clock = _health()
    for _ in range(3):
        h.failed("server_error", "503")
    assert not h.available()
    h.succeeded()  # an attempt begun before the cooldown, answering after it began
    assert h.available() and h.state == "healthy" and h.snapshot()["cooldownRemaining"] is None


def test_the_cooldown_grows_once_per_period_up_to_its_cap():
    h, clock = _health(max_cooldown_seconds=100)
    for _ in range(3):
        h.failed("timeout", "slow")
    seen = []
    for _ in range(5):
        seen.append(h.snapshot()["cooldownRemaining"])
        h.failed("timeout", "still slow")  # during the period: nothing changes
        assert h.snapshot()["cooldownRemaining"] == seen[-1]
        clock.now += seen[-1]  # the period ends; the probe fails
        h.started()
        assert h.probing and not h.available()  # one probe at a time
        h.failed("timeout", "probe")
        h.ended()
    assert seen == [30, 60, 100, 100, 100]


def test_retry_after_is_believed_and_a_success_does_not_cut_it_short():
    h, clock = _health()
    h.failed("rate_limited", "429", retry_after=5)
    h.succeeded()
    assert h.state == "cooldown" and h.snapshot()["cooldownRemaining"] == 5
    clock.now += 5
    assert h.available() and h.cooldowns == 0  # a Retry-After never grows the next cooldown


def test_no_number_of_retry_after_answers_overflows_the_cooldown():
    h, clock = _health(max_cooldown_seconds=120)
    for _ in range(1100):  # 1,024 and more Retry-After answers without a success
        h.failed("rate_limited", "429", retry_after=1)
        clock.now += 1
    h.failed("server_error", "500")  # then one without: 2 ** 1100 overflowed a float here
    clock.now += 200
    for _ in range(1100):
        h.failed("server_error", "500")
        clock.now += 200  # each cooldown ends, the next failure grows it: still capped
    assert h.snapshot()["cooldownRemaining"] is None and h.cooldowns <= 64
    h.failed("server_error", "500")
    assert h.snapshot()["cooldownRemaining"] == 120


# -- through real fault proxies ----------------------------------------------------------------------


async def test_many_concurrent_failures_cool_a_real_channel_for_one_period(fp, profile):
    primary, fallback = fp["primary"], fp["fallback"]
    primary.set("status", status=503)
    async with routed(profile, channel("main", primary, max_retries=0), channel("backup", fallback),
                      cooldown_seconds=3, max_cooldown_seconds=600) as router:
        outcomes = await asyncio.gather(*(route(router, max_tokens=1) for _ in range(8)))
        ended = time.monotonic()
        assert [(o.error, o.served) for o in outcomes] == [(None, ["backup"])] * 8
        assert len(primary.connections) == 8
        h = router.channels[0].health
        # One period of cooldown_seconds (3 s), not 3 × 2 ** 5 = 96 s: eight failures, one period.
        assert h.cooldowns == 1 and h.cooldown_until <= ended + 3.0


async def test_a_full_connection_pool_is_not_the_upstreams_failure(fp, profile):
    primary, fallback = fp["primary"], fp["fallback"]
    primary.set("pass", body_delay=2.0)  # the one connection stays busy for 2 s
    pool = {"max_connections": 1, "pool_timeout": 0.5}
    async with routed(profile, channel("main", primary, pool), channel("backup", fallback)) as router:
        first = asyncio.ensure_future(route(router, max_tokens=2))
        await asyncio.sleep(0.3)
        second = await route(router, max_tokens=2)  # no free connection within 0.5 s: the next channel
        assert second.error is None and second.served == ["backup"]
        assert (await first).served == ["main"]
        stats = health(router, "main")
        assert stats["failures"] == 0 and stats["state"] == "healthy"
        assert sum(stats["errors"].values()) == 0


async def test_a_first_token_deadline_spent_waiting_for_a_pooled_connection_is_not_a_timeout(fp, profile):
    primary, fallback = fp["primary"], fp["fallback"]
    primary.set("pass", body_delay=3.0)
    pool = {"max_connections": 1, "pool_timeout": 30}
    async with routed(profile, channel("main", primary, pool, first_token_timeout=1.5),
                      channel("backup", fallback)) as router:
        provider = router.channels[0].provider
        request = ProviderRequest("m", [Message("user", "Hi")], SamplingParams(max_tokens=2))
        async with aclosing(provider.stream(request)) as held:  # someone else holds the one connection
            holding = asyncio.ensure_future(anext(held))
            await asyncio.sleep(0.3)
            outcome = await route(router, max_tokens=2)
            holding.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await holding
        assert outcome.error is None and outcome.served == ["backup"]
        stats = health(router, "main")
        assert stats["failures"] == 0 and stats["errors"]["timeout"] == 0


async def test_a_request_hubbub_cannot_encode_never_counts_against_the_channel(fp, profile):
    primary, fallback = fp["primary"], fp["fallback"]
    async with routed(profile, channel("main", primary), channel("backup", fallback)) as router:
        for _ in range(3):
            outcome = await route(router, max_tokens=2, seed=2 ** 64)  # past what JSON encoders take
            assert isinstance(outcome.error, InvalidRequest) and outcome.error.status == 400
        assert len(primary.connections) == 0 and len(fallback.connections) == 0
        assert health(router, "main")["failures"] == 0
        outcome = await route(router, max_tokens=2)  # everyone else's requests: served as before
        assert outcome.error is None and outcome.served == ["main"]


async def test_a_channel_after_1100_retry_afters_still_fails_over(fp, profile):
    primary, fallback = fp["primary"], fp["fallback"]
    primary.set("status", status=500)
    async with routed(profile, channel("main", primary, max_retries=0), channel("backup", fallback)) as router:
        h = router.channels[0].health
        for _ in range(1100):
            h.failed("rate_limited", "429", retry_after=0)
        outcome = await route(router, max_tokens=2)
        assert outcome.error is None and outcome.served == ["backup"]
        assert health(router, "main")["cooldownRemaining"] <= 4.0
