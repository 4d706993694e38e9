"""The fault catalogue of issue 19, faults that strike once the answer has begun (8–11, 14), and
the ``max_tokens`` an upstream ignores (issue 22): each produced by a fault proxy in front of
the real upstream, under both profiles of ``catalogue.py``."""

from __future__ import annotations

import pytest

from catalogue import STORY, attempts, channel, closed, health, route, routed
from hubbub.core.types import Message
from hubbub.errors import ChannelUnavailable, UpstreamError
from hubbub.providers.faults import estimate_prompt_tokens

PROMPT_TOKENS = estimate_prompt_tokens([Message("user", STORY)])


def continued(outcome, first, then) -> str:  # noqa: ANN001
    """``outcome``'s text is what ``first`` streamed before it broke plus what ``then`` continued
    with, ``then`` having been asked to continue exactly that; returns the prefix."""
    prefix = first.connections[0].streamed_text()
    assert prefix, "the fault should come after some text"
    asked = then.connections[-1].request_bodies()[0]
    assert asked["messages"][-1] == {"role": "assistant", "content": prefix}
    continuation = then.connections[-1].streamed_text()
    assert continuation and outcome.text == prefix + continuation
    return prefix


# 8 -------------------------------------------------------------------------------------------------


async def test_08_a_stream_cut_mid_answer_is_continued_on_the_next_channel(fp, profile):
    primary, fallback = fp["primary"], fp["fallback"]
    primary.set("cut", cut_after=650)
    async with routed(profile, channel("main", primary), channel("backup", fallback)) as router:
        outcome = await route(router, max_tokens=12)
        assert outcome.error is None and outcome.finish in ("stop", "length")
        continued(outcome, primary, fallback)
        # Never the same channel again once text went out, whatever max_retries says.
        assert attempts(primary) == 1 and attempts(fallback) == 1
        assert outcome.served == ["main", "backup"]
        # Billed: both parts' completion tokens (one per chunk: the upstream sends no usage), at the
        # answering channel's prices; what the fallback was asked is what was left of the budget.
        before, after = primary.connections[0].content_chunks(), fallback.connections[0].content_chunks()
        assert outcome.usage.completion_tokens == before + after
        assert fallback.connections[0].request_bodies()[0]["max_tokens"] == 12 - before
        assert health(router, "main")["errors"]["stream_broken"] == 1


async def test_08_usage_after_a_continuation_is_the_providers_count_where_it_sends_one(fp, profile):
    primary, fallback = fp["primary"], fp["fallback"]
    primary.set("cut", cut_after=650)
    # The fallback answers whole, with the upstream's own usage.
    async with routed(profile, channel("main", primary),
                      channel("backup", fallback, {"stream": False})) as router:
        outcome = await route(router, max_tokens=12)
        assert outcome.error is None and outcome.served == ["main", "backup"]
        reported = fallback.connections[0].answer()["usage"]
        before = primary.connections[0].content_chunks()
        assert outcome.usage.prompt_tokens == reported["prompt_tokens"]  # not hubbub's estimate
        assert outcome.usage.prompt_tokens != PROMPT_TOKENS
        assert outcome.usage.completion_tokens == before + reported["completion_tokens"]


# 9 -------------------------------------------------------------------------------------------------


async def test_09_a_stream_that_stalls_is_continued_on_the_next_channel_not_the_same(fp, profile):
    primary, fallback = fp["primary"], fp["fallback"]
    for _ in range(3):  # on a starved machine the first token itself may come late: try again
        primary.set("cut", cut_after=650, hold=True)  # some text, then silence with the connection open
        fallback.set("pass")
        async with routed(profile, channel("main", primary, timeout=2),
                          channel("backup", fallback)) as router:
            outcome = await route(router, max_tokens=12)
            stats = health(router, "main")
        if primary.connections[0].cut:
            break
    assert outcome.error is None and outcome.seconds >= 2.0
    continued(outcome, primary, fallback)
    assert attempts(primary) == 1 and attempts(fallback) == 1
    assert outcome.served == ["main", "backup"]
    assert stats["lastError"] == "main: no next token within 2s" and stats["errors"]["timeout"] == 1
    assert await closed(primary)  # the stalled connection was closed


# 10 ------------------------------------------------------------------------------------------------


async def test_10_a_malformed_chunk_mid_stream_fails_that_channel_cleanly(fp, profile):
    primary, fallback = fp["primary"], fp["fallback"]
    primary.set("pass", garble_after=400)
    async with routed(profile, channel("main", primary), channel("backup", fallback)) as router:
        outcome = await route(router, max_tokens=12)
        assert outcome.error is None
        assert b"half" in primary.connections[0].response_body()  # the garbled event was sent
        assert "half" not in outcome.text  # and nothing of it reached the answer
        continued(outcome, primary, fallback)
        assert attempts(primary) == 1 and attempts(fallback) == 1
        assert health(router, "main")["lastError"] == "p-main: unreadable stream chunk"


# 11 ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("hold", [False, True], ids=["body-ends", "body-held-open"])
async def test_11_a_stream_without_done_finishes_promptly_with_usage(fp, profile, hold):
    primary, fallback = fp["primary"], fp["fallback"]
    primary.set("pass", drop_done=True, hold_end=hold)
    async with routed(profile, channel("main", primary, timeout=20), channel("backup", fallback)) as router:
        outcome = await route(router, max_tokens=6)
        assert outcome.error is None and outcome.finish == "length" and outcome.served == ["main"]
        assert b"[DONE]" not in primary.connections[0].response_body()
        assert attempts(primary) == 1 and attempts(fallback) == 0
        assert outcome.usage.completion_tokens == primary.connections[0].content_chunks() == 6
        # Not the 20 s between-token timeout: the answer was whole at its finish_reason.
        assert outcome.seconds < 12
        assert health(router, "main")["failures"] == 0


# 14 ------------------------------------------------------------------------------------------------


async def test_14_a_fallback_that_refuses_a_prefix_is_passed_over_for_one_that_continues(fp, profile):
    primary, fallback, third = fp["primary"], fp["fallback"], fp["third"]
    primary.set("cut", cut_after=650)
    fallback.set("pass", reject_prefill=True)
    async with routed(profile, channel("main", primary), channel("backup", fallback),
                      channel("last", third)) as router:
        outcome = await route(router, max_tokens=12)
        assert outcome.error is None
        continued(outcome, primary, third)
        assert attempts(fallback) == 1  # asked once, refused: not retried
        assert outcome.served == ["main", "last"]
        assert health(router, "backup")["failures"] == 0  # refusing a prefix is no failure


async def test_14_with_no_channel_left_the_error_is_the_cut_not_the_fallbacks_400(fp, profile):
    primary, fallback = fp["primary"], fp["fallback"]
    primary.set("cut", cut_after=650)
    fallback.set("pass", reject_prefill=True)
    async with routed(profile, channel("main", primary), channel("backup", fallback)) as router:
        outcome = await route(router, max_tokens=12)
    assert outcome.text == primary.connections[0].streamed_text() and outcome.text
    error = outcome.error
    assert isinstance(error, UpstreamError) and not isinstance(error, ChannelUnavailable)
    assert error.message == "upstream stream cut; no channel could continue"
    assert "backup refused to continue" in error.details and "prefill" in error.details


async def test_14_a_channel_declared_unable_to_continue_is_never_asked_to(fp, profile):
    primary, fallback, third = fp["primary"], fp["fallback"], fp["third"]
    primary.set("cut", cut_after=650)
    async with routed(profile, channel("main", primary), channel("backup", fallback, can_continue=False),
                      channel("last", third)) as router:
        outcome = await route(router, max_tokens=12)
        assert outcome.error is None and outcome.served == ["main", "last"]
        continued(outcome, primary, third)
        assert attempts(fallback) == 0


# issue 22: an upstream that ignores max_tokens ----------------------------------------------------


async def test_an_upstream_that_ignores_max_tokens_is_cut_at_the_requested_max_tokens(fp, profile):
    primary = fp["primary"]
    primary.set("pass", override={"max_tokens": 40})  # the upstream is asked for 40, whatever hubbub says
    async with routed(profile, channel("main", primary)) as router:
        outcome = await route(router, max_tokens=5)
    assert outcome.error is None and outcome.finish == "length"
    assert outcome.usage.completion_tokens == 5
    # The upstream sent more (hubbub read a sixth chunk before it cut); the answer is the first five.
    contents = [choice["delta"]["content"] for event in primary.connections[0].events()
                for choice in event.get("choices") or [] if choice.get("delta", {}).get("content")]
    assert len(contents) >= 6 and outcome.text == "".join(contents[:5])
