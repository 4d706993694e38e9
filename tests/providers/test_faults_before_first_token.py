"""The fault catalogue of issue 19, faults that strike before the first token (1–7, 12, 13, 15):
each one produced by a fault proxy in front of the real upstream, asserting the outcome and
the conduct (attempts, their spacing, the time bound, who answered, what is billed), under
both profiles of ``catalogue.py``. docs/upstreams.md tabulates the same faults."""

from __future__ import annotations

import asyncio
import time
from typing import Iterator

import pytest

from catalogue import PRICING, STORY, attempts, channel, closed, gaps, health, route, routed
from hubbub.errors import ChannelUnavailable, ContextTooLong, InvalidRequest
from hubbub.providers.faults import estimate_prompt_tokens
from hubbub.core.types import Message
from upstream import FaultProxy, LlamaServer

PROMPT_TOKENS = estimate_prompt_tokens([Message("user", STORY)])  # llama_cpp.server streams no usage


def billed_as(outcome, proxy, pricing=PRICING) -> None:  # noqa: ANN001
    """The request is billed for what the channel behind ``proxy`` sent, at ``pricing``; nothing else."""
    usage = outcome.usage
    assert usage.completion_tokens == proxy.connections[-1].content_chunks(-1) > 0  # the last response
    assert usage.prompt_tokens == PROMPT_TOKENS
    assert outcome.cost == pytest.approx((usage.prompt_tokens * pricing["prompt"]
                                          + usage.completion_tokens * pricing["completion"]) / 1000)


# 1 -------------------------------------------------------------------------------------------------


async def test_01_a_429_with_retry_after_once_is_waited_out_on_the_same_channel(fp, profile):
    primary, fallback = fp["primary"], fp["fallback"]
    primary.set("status", status=429, retry_after="2", times=1)
    async with routed(profile, channel("main", primary), channel("backup", fallback)) as router:
        outcome = await route(router)
        assert outcome.error is None and outcome.text and outcome.served == ["main"]
        assert attempts(primary) == 2 and attempts(fallback) == 0
        assert gaps(primary)[0] >= 2.0  # the Retry-After, honoured
        billed_as(outcome, primary)
        stats = health(router, "main")
        assert stats["errors"]["rate_limited"] == 1 and stats["state"] == "healthy"


# 2 -------------------------------------------------------------------------------------------------


async def test_02_a_persistent_429_without_retry_after_fails_over_and_is_never_hammered(fp, profile):
    primary, fallback = fp["primary"], fp["fallback"]
    primary.set("status", status=429)
    async with routed(profile, channel("main", primary), channel("backup", fallback),
                      cooldown_seconds=4, max_cooldown_seconds=8) as router:
        for _ in range(4):
            outcome = await route(router, max_tokens=2)
            assert outcome.error is None and outcome.served == ["backup"]
        # One 429, then the channel cools down (75–100 % of 4 s: jittered) and nobody asks it.
        assert attempts(primary) == 1 and attempts(fallback) == 4
        billed_as(outcome, fallback)
        await asyncio.sleep(max(0.0, primary.connections[0].opened_at + 4.05 - time.monotonic()))
        outcome = await route(router, max_tokens=2)  # the probe: refused again
        assert outcome.served == ["backup"] and attempts(primary) == 2
        assert gaps(primary)[0] >= 3.0
        # The next cooldown is twice as long (jittered): it grows once per period.
        assert health(router, "main")["cooldownRemaining"] >= 5.5
        outcome = await route(router, max_tokens=2)
        assert outcome.served == ["backup"] and attempts(primary) == 2


# 3 -------------------------------------------------------------------------------------------------


async def test_03_a_500_once_is_retried_on_the_same_channel_after_a_backoff(fp, profile):
    primary, fallback = fp["primary"], fp["fallback"]
    primary.set("status", status=500, times=1)
    async with routed(profile, channel("main", primary), channel("backup", fallback)) as router:
        outcome = await route(router)
        assert outcome.error is None and outcome.served == ["main"]
        assert attempts(primary) == 2 and attempts(fallback) == 0
        assert gaps(primary)[0] >= 0.25  # backoff_seconds (0.5) × 50–100 %
        billed_as(outcome, primary)
        assert health(router, "main")["state"] == "healthy"


async def test_03_with_max_retries_0_a_500_fails_over_at_once(fp, profile):
    primary, fallback = fp["primary"], fp["fallback"]
    primary.set("status", status=500, times=1)
    async with routed(profile, channel("main", primary, max_retries=0), channel("backup", fallback)) as router:
        outcome = await route(router)
        assert outcome.served == ["backup"] and attempts(primary) == 1 and attempts(fallback) == 1
        billed_as(outcome, fallback)


# 4 -------------------------------------------------------------------------------------------------


async def test_04_a_persistent_503_fails_over_within_the_retry_budget_with_backoff(fp, profile):
    primary, fallback = fp["primary"], fp["fallback"]
    primary.set("status", status=503)
    retries = 2 if profile == "retries2-timeout30" else 1
    backup_pricing = {"prompt": 0.1, "completion": 0.2}
    async with routed(profile, channel("main", primary),
                      channel("backup", fallback, pricing=backup_pricing)) as router:
        outcome = await route(router)
        assert outcome.error is None and outcome.served == ["backup"]
        assert attempts(primary) == 1 + retries and attempts(fallback) == 1
        # Backoff between the tries: 0.5 s, then 1 s, each 50–100 % of it (never within 2 ms).
        for n, gap in enumerate(gaps(primary)):
            assert gap >= 0.25 * 2 ** n
        assert outcome.seconds < 10  # at most 1.5 s of backoff, then one answer: a generous ceiling
        billed_as(outcome, fallback, backup_pricing)  # the fallback's prices; the 503s cost nothing


# 5 -------------------------------------------------------------------------------------------------


async def test_05_a_connection_reset_before_the_headers_once_is_retried(fp, profile):
    primary, fallback = fp["primary"], fp["fallback"]
    primary.set("reset", times=1)
    async with routed(profile, channel("main", primary), channel("backup", fallback)) as router:
        outcome = await route(router)
        assert outcome.error is None and outcome.served == ["main"]
        assert attempts(primary) == 2 and attempts(fallback) == 0
        assert gaps(primary)[0] >= 0.25
        assert health(router, "main")["errors"]["connect"] == 1
        billed_as(outcome, primary)


# 6 -------------------------------------------------------------------------------------------------


async def test_06_no_response_at_all_gives_up_on_that_channel_and_fails_over(fp, profile):
    hole, fallback = fp["hole"], fp["fallback"]
    async with routed(profile, channel("main", hole, first_token_timeout=2),
                      channel("backup", fallback)) as router:
        outcome = await route(router)
        assert outcome.error is None and outcome.served == ["backup"]
        # A timeout is not retried on the same channel, whatever max_retries says.
        assert attempts(hole) == 1 and attempts(fallback) == 1
        assert outcome.seconds >= 2.0
        assert await closed(hole)  # hubbub hung up on it
        assert health(router, "main")["errors"]["timeout"] == 1
        billed_as(outcome, fallback)


async def test_06_the_total_wait_never_exceeds_the_deadline(fp, profile):
    hole = fp["hole"]
    # Four black holes of 2.5 s each would take 10 s; the deadline (the profile's, scaled down
    # tenfold here) ends the request at 6 s (defaults) or 3 s (30 s profile), with a 503.
    deadline = {"defaults": 6.0, "retries2-timeout30": 3.0}[profile]
    holes = [channel(f"hole-{i}", hole, first_token_timeout=2.5) for i in range(4)]
    async with routed(profile, *holes, deadline=deadline) as router:
        outcome = await route(router)
    assert isinstance(outcome.error, ChannelUnavailable)
    assert deadline - 0.1 <= outcome.seconds < deadline + 2.5
    assert attempts(hole) == int(deadline // 2.5) + 1  # the last one cut short by the deadline
    assert await closed(hole)


# 7 -------------------------------------------------------------------------------------------------


async def test_07_a_first_token_later_than_the_channels_first_token_deadline_fails_over(fp, profile):
    primary, fallback = fp["primary"], fp["fallback"]
    primary.set("pass", body_delay=3.0)  # headers at once, the first token 3 s later
    async with routed(profile, channel("main", primary, first_token_timeout=1.5),
                      channel("backup", fallback)) as router:
        outcome = await route(router)
        assert outcome.error is None and outcome.served == ["backup"]
        assert attempts(primary) == 1 and attempts(fallback) == 1
        assert outcome.seconds >= 1.5
        assert health(router, "main")["lastError"] == "main: no first token within 1.5s"
        billed_as(outcome, fallback)


async def test_07_the_first_token_deadline_is_separate_from_the_silence_between_tokens(fp, profile):
    primary, fallback = fp["primary"], fp["fallback"]
    primary.set("pass", body_delay=3.0)
    # 1 s between tokens would end it; the first token has its own 10 s.
    async with routed(profile, channel("main", primary, first_token_timeout=10, timeout=1),
                      channel("backup", fallback)) as router:
        outcome = await route(router)
        assert outcome.error is None and outcome.served == ["main"] and outcome.seconds >= 3.0
        assert attempts(primary) == 1 and attempts(fallback) == 0
        billed_as(outcome, primary)


# 12 ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultProxy]:
    """The same model with a window of 512 tokens, behind a proxy of its own: the channel a
    long prompt does not fit (the catalogue's upstream has 2048)."""
    server = LlamaServer(tmp_path_factory.mktemp("llama-small") / "server.log", n_ctx=512).start()
    proxy = FaultProxy(server.port).start()
    yield proxy
    proxy.stop()
    server.stop()


async def test_12_a_context_length_400_moves_to_a_channel_with_a_larger_window(fp, profile, small_upstream):
    small, declared, big = small_upstream, fp["fallback"], fp["third"]
    small.set("pass")
    whole = {"stream": False}  # llama_cpp.server says a streamed prompt is too long with an empty 200
    long_prompt = "The cat sat on the mat and looked at the moon. " * 60  # about 720 tokens: > 512, < 2048
    async with routed(profile,
                      channel("small", small, whole),  # its window is not declared: its 400 says it
                      channel("declared", declared, context_length=512),
                      channel("big", big, first_token_timeout=60)) as router:  # the model's 2048
        outcome = await route(router, max_tokens=4, content=long_prompt)
        assert outcome.error is None and outcome.text and outcome.served == ["big"]
        # The 400 is not retried, and the channel as small as the first is passed over.
        assert attempts(small) == 1 and attempts(declared) == 0 and attempts(big) == 1
        assert b"context" in small.connections[0].response_body()
        assert health(router, "small")["failures"] == 0  # the request's size is no channel's failure

    # No channel large enough: the upstream's context-length error, as it said it.
    small.set("pass")
    async with routed(profile, channel("small", small, whole),
                      channel("declared", declared, context_length=512)) as router:
        outcome = await route(router, max_tokens=4, content=long_prompt)
        assert isinstance(outcome.error, ContextTooLong) and outcome.error.max_length == 512
        assert attempts(small) == 1 and attempts(declared) == 0


# 13 ------------------------------------------------------------------------------------------------


async def test_13_a_content_filter_400_is_not_retried_and_its_reason_passed_on(fp, profile):
    primary, fallback = fp["primary"], fp["fallback"]
    reason = "The response was filtered due to the prompt triggering our content management policy."
    primary.set("status", status=400, message=reason, code="content_filter")
    async with routed(profile, channel("main", primary), channel("backup", fallback)) as router:
        outcome = await route(router)
        assert isinstance(outcome.error, InvalidRequest) and reason in outcome.error.message
        assert attempts(primary) == 1 and attempts(fallback) == 0
        assert health(router, "main")["failures"] == 0 and not outcome.events


# 15 ------------------------------------------------------------------------------------------------


async def test_15_a_primary_down_then_back_serves_from_the_fallback_probes_and_returns(fp, profile):
    primary, fallback = fp["primary"], fp["fallback"]
    primary.set("status", status=503)
    outage = 2.5
    served: list[tuple[float, str]] = []
    async with routed(profile, channel("main", primary), channel("backup", fallback)) as router:
        loop = asyncio.get_running_loop()
        started = loop.time()
        attempts_in_outage = 0
        for i in range(20):
            if primary.fault.mode == "status" and loop.time() - started >= outage:
                attempts_in_outage = attempts(primary)
                primary.set("pass")  # the primary is healthy again
            outcome = await route(router, max_tokens=2)
            assert outcome.error is None, outcome.error
            served.append((loop.time() - started, outcome.served[-1]))
            await asyncio.sleep(max(0.0, started + 0.5 * (i + 1) - loop.time()))  # about 2 requests a second
        assert any(name == "backup" for _, name in served[:3])  # meanwhile: the fallback
        # Probed once per cooldown (1 s, then 2 s, 4 s…) during the outage, never per request.
        retries = 2 if profile == "retries2-timeout30" else 1
        assert attempts_in_outage <= 1 + retries + 1 + 3
        # Back on the primary within one cooldown period of its recovery (at most 4 s here).
        back = [t for t, name in served if name == "main" and t >= outage]
        assert back and back[0] <= outage + 4.0 + 2.0
        assert [name for _, name in served[-3:]] == ["main"] * 3
        assert health(router, "main")["state"] == "healthy"
