"""Channels against a real upstream through the fault proxy (issue 4): failover before and after
the first token, cooldowns, all channels down in every dialect, cancel reaching the upstream."""

from __future__ import annotations

import asyncio
import time

import pytest

from support import collect_sse, sse_events
from upstream import FALLBACK_PRICING

STORY = [{"role": "user", "content": "Tell me a short story about a cat."}]


@pytest.fixture(autouse=True)
def clean(upstream_hub, proxies):  # noqa: ANN001
    """Every test starts with passing proxies and healthy channels."""
    for name in ("a", "b", "c", "d"):
        proxies[name].set("pass")

    async def reset() -> None:
        for provider in upstream_hub.container.registry.providers():
            if hasattr(provider, "reset"):
                provider.reset()

    upstream_hub.call(reset())


async def _channels(hub) -> dict[str, dict]:  # noqa: ANN001
    return {c["name"]: c for c in (await hub.get("/api/channels")).json()["channels"]}


def _more(before: dict, after: dict, channel: str, kind: str) -> int:
    """How many more ``kind`` errors ``channel`` has counted between two snapshots."""
    return after[channel]["errors"][kind] - before[channel]["errors"][kind]


async def _ask(hub, model: str = "up-pair", max_tokens: int = 4, **extra) -> str:  # noqa: ANN001, ANN003
    r = await hub.post("/v1/chat/completions", json={"model": model, "messages": STORY, "max_tokens": max_tokens,
                                                       "temperature": 0, **extra})
    assert r.status_code == 200, r.text
    return r.json()["choices"][0]["message"]["content"]


# -- before the first token ------------------------------------------------------------------------


@pytest.mark.parametrize("fault,kind,state", [({"mode": "status", "status": 500}, "server_error", "degraded"),
                                              ({"mode": "status", "status": 502}, "server_error", "degraded"),
                                              ({"mode": "status", "status": 429}, "rate_limited", "cooldown"),
                                              ({"mode": "refuse"}, "connect", "degraded")])
async def test_failure_before_the_first_token_moves_to_the_next_channel(hub, proxies, fault, kind, state):
    a, b = proxies["a"], proxies["b"]
    a.set(**fault)
    before = await _channels(hub)
    text = await _ask(hub)
    # A 5xx or a failed connect is tried once more (max_retries = 1, the default); a 429 never.
    tries = 1 if kind == "rate_limited" else 2
    assert text and len(a.connections) == tries and len(b.connections) == 1
    assert b.connections[0].streamed_text() == text
    stats = await _channels(hub)
    # A 429 without Retry-After cools the channel down at once (for cooldown_seconds).
    assert _more(before, stats, "pair-a", kind) == tries and stats["pair-a"]["state"] in (state, "degraded")
    assert stats["pair-a"]["consecutiveFailures"] == tries
    assert stats["pair-b"]["state"] == "healthy" and stats["pair-b"]["latencyMs"]["lastFirstToken"] > 0


async def test_a_stalled_upstream_times_out_and_fails_over(hub, proxies):
    stall = proxies["stall"]
    stall.connections = []
    before = await _channels(hub)
    started = time.monotonic()
    assert await _ask(hub, "up-stall")
    assert 1.0 <= time.monotonic() - started < 10
    # hubbub gave up on the stalled connection: the proxy saw it closed.
    assert stall.connections and stall.connections[0].client_closed_at is not None
    assert _more(before, await _channels(hub), "stall-a", "timeout") == 1


async def test_429_cools_the_channel_down_for_retry_after_then_it_is_tried_again(hub, proxies):
    a, b = proxies["a"], proxies["b"]
    # B fails at once too, so the requests end quickly and the cooldown is observed inside it.
    a.set("status", status=429, retry_after="2")
    b.set("status", status=500)
    before = await _channels(hub)
    refused_at = time.monotonic()
    r = await hub.post("/v1/chat/completions", json={"model": "up-pair", "messages": STORY, "max_tokens": 1})
    assert r.status_code == 503
    after = await _channels(hub)
    stats = after["pair-a"]
    # Retry-After 2 is more than this hub waits out (max_retry_after_wait = 1): A cools down, B is
    # tried (twice: a 500 is retried once).
    assert stats["state"] == "cooldown" and 1 < stats["cooldownRemaining"] <= 2
    assert _more(before, after, "pair-a", "rate_limited") == 1 and len(b.connections) == 2
    r = await hub.post("/v1/chat/completions", json={"model": "up-pair", "messages": STORY, "max_tokens": 1})
    assert r.status_code == 503 and len(a.connections) == 1 and len(b.connections) == 3  # A was not asked
    assert time.monotonic() - refused_at < 2, "too slow to observe the cooldown"
    a.set("pass")
    b.set("pass")
    await asyncio.sleep(max(0.0, refused_at + 2.05 - time.monotonic()))
    await _ask(hub, max_tokens=1)
    assert len(a.connections) == 1 and len(b.connections) == 0
    assert (await _channels(hub))["pair-a"]["state"] == "healthy"


async def test_a_channel_that_keeps_failing_is_cooled_down(hub, proxies):
    a, b = proxies["a"], proxies["b"]
    # No Retry-After: the configured threshold (3 failures) and cooldown (1 s) apply. B fails
    # too, so each request ends at once (503) and the cooldown is observed well inside its second.
    a.set("status", status=503)
    b.set("status", status=500)
    for _ in range(3):
        r = await hub.post("/v1/chat/completions", json={"model": "up-pair", "messages": STORY, "max_tokens": 1})
        assert r.status_code == 503
    cooled_at = time.monotonic()
    stats = await _channels(hub)
    assert stats["pair-a"]["state"] == "cooldown" and stats["pair-a"]["consecutiveFailures"] == 3
    r = await hub.post("/v1/chat/completions", json={"model": "up-pair", "messages": STORY, "max_tokens": 1})
    assert r.status_code == 503 and len(a.connections) == 3 and len(b.connections) == 3  # nobody was asked
    assert time.monotonic() - cooled_at < 1, "too slow to observe the cooldown"
    a.set("pass")
    b.set("pass")
    await asyncio.sleep(max(0.0, cooled_at + 1.05 - time.monotonic()))
    await _ask(hub, max_tokens=1)
    assert len(a.connections) == 1 and len(b.connections) == 0
    assert (await _channels(hub))["pair-a"]["consecutiveFailures"] == 0


# -- after the first token -------------------------------------------------------------------------


def _check_continued(proxies, text: str, first: str = "a") -> None:  # noqa: ANN001
    """``text`` is what the ``first`` channel sent before the cut plus what channel B continued with."""
    a, b = proxies[first], proxies["b"]
    assert a.connections[0].cut
    prefix = a.connections[0].streamed_text()
    assert prefix, "the cut should come after some text"
    asked = b.connections[0].request_bodies()[0]
    assert asked["messages"][-1] == {"role": "assistant", "content": prefix}
    continuation = b.connections[0].streamed_text()
    assert text == prefix + continuation
    assert len(continuation) > 0


async def test_a_stream_cut_mid_answer_continues_on_the_next_channel(hub, proxies):
    proxies["a"].set("cut", cut_after=650)
    before = await _channels(hub)
    body = {"model": "up-pair", "messages": STORY, "max_tokens": 12, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True}}
    r, events = await collect_sse(hub, "POST", "/v1/chat/completions", json=body)
    assert r.status_code == 200 and events[-1].data == "[DONE]"
    chunks = [e.json() for e in events[:-1]]
    assert all("error" not in c for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    _check_continued(proxies, text)
    content = [c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]
    from_a = proxies["a"].connections[0].streamed_text()
    n_from_a = next(i for i in range(len(content) + 1)
                    if "".join(c["choices"][0]["delta"]["content"] for c in content[:i]) == from_a)
    # What A already produced is taken off the budget; usage counts both parts (one token per chunk).
    assert proxies["b"].connections[0].request_bodies()[0]["max_tokens"] == 12 - n_from_a
    assert chunks[-1]["usage"]["completion_tokens"] == len(content)
    stats = await _channels(hub)
    assert _more(before, stats, "pair-a", "stream_broken") == 1
    assert stats["pair-b"]["successes"] - before["pair-b"]["successes"] == 1


async def _bot(hub) -> str:  # noqa: ANN001
    r = await hub.post("/api/bots", json={"slug": "up-pair-bot", "name": "Upstream", "model": "up-pair",
                                          "maxTokens": 12, "temperature": 0})
    assert r.status_code in (201, 409), r.text
    return "up-pair-bot"


async def _answer(hub, dialect: str) -> str:  # noqa: ANN001
    """One answer from ``dialect`` for the cut model; the stored-chat dialects also check the
    stored message is the whole answer."""
    if dialect == "openai":
        r = await hub.post("/v1/chat/completions", json={"model": "up-pair", "messages": STORY, "max_tokens": 12,
                                                           "temperature": 0})
        assert r.status_code == 200, r.text
        return r.json()["choices"][0]["message"]["content"]
    if dialect == "bento":
        r, events = await collect_sse(hub, "POST", "/api/bento/chat/stream",
                                      json={"model": "up-pair", "messages": STORY, "maxTokens": 12, "temperature": 0})
        assert r.status_code == 200 and events[-1].data == "[DONE]"
        assert all("error" not in e.json() for e in events[:-1])
        return "".join(e.json()["content"] for e in events[:-1])
    if dialect == "bots":
        r = await hub.post("/chat", json={"bot_slug": await _bot(hub), "prompt": STORY[0]["content"],
                                          "stream": False})
        assert r.status_code == 200, r.text
        return r.json()["content"]
    if dialect == "builder":
        r, events = await collect_sse(hub, "POST", "/api/chat", json={"model": "up-pair", "messages": STORY,
                                                                      "temperature": 0, "enableDSL": False})
        kinds = [e.json()["type"] for e in events]
        assert "error" not in kinds and kinds[-1] == "done"
        text = "".join(e.json()["content"] for e in events if e.json()["type"] == "text")
        chat = (await hub.get(f"/api/chat/{r.headers['X-Chat-Id']}")).json()
        assert chat["messages"][-1]["content"] == text
        return text
    assert dialect == "conversations"
    r, events = await collect_sse(hub, "POST", "/api/chat/stream",
                                  json={"message": STORY[0]["content"], "model": "up-pair", "userId": "cut-user"})
    kinds = [e.json()["type"] for e in events]
    assert "error" not in kinds and kinds[-1] == "end"
    text = "".join(e.json()["text"] for e in events if e.json()["type"] == "content")
    conv = events[0].json()["conversationId"]
    stored = (await hub.get(f"/api/conversations/{conv}")).json()["data"]["messages"]
    assert stored[-1]["role"] == "assistant" and stored[-1]["content"] == text
    return text


@pytest.mark.parametrize("dialect", ["openai", "bento", "bots", "builder", "conversations"])
async def test_every_dialect_gets_one_whole_answer_across_a_cut(hub, proxies, dialect):
    proxies["a"].set("cut", cut_after=650)
    text = await _answer(hub, dialect)
    _check_continued(proxies, text)


async def test_a_stream_that_stalls_mid_answer_continues_on_the_next_channel(hub, proxies):
    d, b = proxies["d"], proxies["b"]
    for _ in range(3):  # on a starved machine the first token itself may miss the 5 s: try again
        d.set("cut", cut_after=650, hold=True)  # some text, then silence (the channel's timeout is 5 s)
        b.set("pass")
        before = await _channels(hub)
        started = time.monotonic()
        r = await hub.post("/v1/chat/completions", json={"model": "up-midstall", "messages": STORY,
                                                           "max_tokens": 8, "temperature": 0})
        assert r.status_code == 200 and time.monotonic() - started >= 5.0
        if d.connections[0].cut:
            break
    _check_continued(proxies, r.json()["choices"][0]["message"]["content"], first="d")
    after = await _channels(hub)
    assert _more(before, after, "midstall-a", "timeout") == 1
    assert after["midstall-a"]["lastError"] == "midstall-a: no next token within 5s"
    for _ in range(100):  # the stalled connection was closed by hubbub
        if d.connections[0].client_closed_at is not None:
            break
        await asyncio.sleep(0.01)
    assert d.connections[0].client_closed_at is not None


async def test_the_embedded_model_continues_a_broken_answer_as_its_own(hub, proxies):
    c = proxies["c"]
    c.set("cut", cut_after=650)
    before = await _channels(hub)
    r, events = await collect_sse(hub, "POST", "/v1/chat/completions",
                                  json={"model": "up-local", "messages": STORY, "max_tokens": 16, "temperature": 0,
                                        "stream": True})
    assert r.status_code == 200 and events[-1].data == "[DONE]"
    chunks = [e.json() for e in events[:-1]]
    assert all("error" not in ch for ch in chunks)
    text = "".join(ch["choices"][0]["delta"].get("content") or "" for ch in chunks if ch["choices"])
    prefix = c.connections[0].streamed_text()
    assert c.connections[0].cut and prefix and text.startswith(prefix) and len(text) > len(prefix)
    assert (await _channels(hub))["local-embedded"]["successes"] - before["local-embedded"]["successes"] == 1


async def test_a_cut_with_no_channel_left_to_continue_is_an_in_stream_error(hub, proxies):
    proxies["a"].set("cut", cut_after=650)
    proxies["b"].set("cut", cut_after=650)
    body = {"model": "up-pair", "messages": STORY, "max_tokens": 12, "temperature": 0, "stream": True}
    r, events = await collect_sse(hub, "POST", "/v1/chat/completions", json=body)
    assert r.status_code == 200
    last = events[-1].json()
    # It says what failed (issue 19), not "Model error".
    assert last["error"]["type"] == "server_error"
    assert last["error"]["message"].startswith("upstream stream cut; no channel could continue")
    sent = "".join(e.json()["choices"][0]["delta"].get("content") or "" for e in events[:-1])
    assert sent == proxies["a"].connections[0].streamed_text() + proxies["b"].connections[0].streamed_text()
    # The other dialects say it too.
    proxies["a"].set("cut", cut_after=650)
    proxies["b"].set("cut", cut_after=650)
    r, events = await collect_sse(hub, "POST", "/api/bento/chat/stream",
                                  json={"model": "up-pair", "messages": STORY, "maxTokens": 12, "temperature": 0})
    assert events[-2].json()["error"] == "upstream stream cut; no channel could continue"


# -- hubbub's own errors (issue 22, High 3) ----------------------------------------------------------


async def test_a_request_hubbub_cannot_send_upstream_is_a_400_and_no_channels_failure(hub):
    before = await _channels(hub)
    for _ in range(3):  # three of these took the model offline for every key
        r = await hub.post("/v1/chat/completions", json={"model": "up-pair", "messages": STORY, "max_tokens": 2,
                                                           "seed": 2 ** 64})
        assert r.status_code == 400, r.text
        assert r.json()["error"]["type"] == "invalid_request_error"
    after = await _channels(hub)
    for name in ("pair-a", "pair-b"):
        assert after[name]["failures"] == before[name]["failures"] and after[name]["state"] == "healthy"
    assert await _ask(hub, max_tokens=1)


# -- who answered (issue 19, fault 16) --------------------------------------------------------------


async def _rows(upstream_hub, user: str) -> list[dict]:  # noqa: ANN001
    rows: list[dict] = []
    for _ in range(100):
        rows = upstream_hub.call(upstream_hub.container.usage.summary(user_id=user))
        if rows:
            break
        await asyncio.sleep(0.05)
    return rows


def _priced(prompt: int, completion: int, pricing: dict) -> float:
    return (prompt * pricing["prompt"] + completion * pricing["completion"]) / 1000


async def test_16_the_answer_names_the_model_and_channel_that_answered_and_bills_them(hub, proxies, upstream_hub):
    a, b = proxies["a"], proxies["b"]
    a.set("status", status=503)
    user = "served-user-1"
    r = await hub.post("/v1/chat/completions", json={"model": "up-served", "messages": STORY, "max_tokens": 4,
                                                       "temperature": 0, "user": user})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "fallback-model" and r.headers["x-hubbub-channel"] == "served-b"
    assert len(a.connections) == 2 and len(b.connections) == 1  # the 503 once retried, then the fallback
    reported = b.connections[0].answer()["usage"]  # the fallback's own count
    assert (body["usage"]["prompt_tokens"], body["usage"]["completion_tokens"]) == \
        (reported["prompt_tokens"], reported["completion_tokens"])
    rows = await _rows(upstream_hub, user)
    # One row: the failed attempts cost nothing; the fallback's tokens at the fallback's prices.
    assert len(rows) == 1 and rows[0]["requests"] == 1 and rows[0]["model"] == "up-served"
    assert (rows[0]["promptTokens"], rows[0]["completionTokens"]) == (reported["prompt_tokens"],
                                                                       reported["completion_tokens"])
    expected = _priced(reported["prompt_tokens"], reported["completion_tokens"], FALLBACK_PRICING)
    assert rows[0]["cost"] == pytest.approx(expected) and expected > 0


async def test_16_a_stream_says_who_answered_in_its_header_and_chunks(hub, proxies):
    proxies["a"].set("status", status=503)
    body = {"model": "up-served", "messages": STORY, "max_tokens": 4, "stream": True}
    r, events = await collect_sse(hub, "POST", "/v1/chat/completions", json=body)
    assert r.status_code == 200 and r.headers["x-hubbub-channel"] == "served-b"
    assert {e.json()["model"] for e in events[:-1]} == {"fallback-model"}
    # Served by the primary, the same request says so too.
    proxies["a"].set("pass")
    r = await hub.post("/v1/chat/completions", json={**body, "stream": False})
    assert r.json()["model"] == "up-served" and r.headers["x-hubbub-channel"] == "served-a"


async def test_16_a_stored_chat_is_billed_at_the_answering_channels_prices(hub, proxies, upstream_hub):
    proxies["a"].set("status", status=503)
    user = "served-user-2"
    r, events = await collect_sse(hub, "POST", "/api/chat/stream",
                                  json={"message": STORY[0]["content"], "model": "up-served", "userId": user})
    assert [e.json()["type"] for e in events][-1] == "end"
    reported = proxies["b"].connections[0].answer()["usage"]
    rows = await _rows(upstream_hub, user)
    assert len(rows) == 1 and rows[0]["completionTokens"] == reported["completion_tokens"]
    assert rows[0]["cost"] == pytest.approx(_priced(rows[0]["promptTokens"], rows[0]["completionTokens"],
                                                    FALLBACK_PRICING))


# -- nothing left ----------------------------------------------------------------------------------


async def test_all_channels_down_is_unavailable_in_every_dialect_within_the_timeout(hub):
    started = time.monotonic()
    r = await hub.post("/v1/chat/completions", json={"model": "up-down", "messages": STORY, "max_tokens": 4})
    # dead: refused twice (max_retries 1), then stalled: 1 s without a first token.
    assert time.monotonic() - started < 4
    assert r.status_code == 503
    assert r.json()["error"]["type"] == "server_error" and r.json()["error"]["code"] == "channel_unavailable"

    r = await hub.post("/api/chat", json={"message": "hi", "model": "up-down", "userId": "down-user"})
    assert r.status_code == 503
    assert r.json() == {"success": False, "error": {"code": "CHANNEL_UNAVAILABLE", "message": "No available channels"}}

    r, events = await collect_sse(hub, "POST", "/api/chat/stream", json={"message": "hi", "model": "up-down"})
    assert [e.json()["type"] for e in events] == ["start", "error"]
    assert events[-1].json()["code"] == "CHANNEL_UNAVAILABLE"

    r = await hub.post("/api/bento/chat/stream", json={"model": "up-down", "messages": STORY})
    assert r.status_code == 503 and r.json() == {"error": "Model error", "details": "No available channels"}

    r, events = await collect_sse(hub, "POST", "/api/chat", json={"model": "up-down", "messages": STORY})
    error = [e.json() for e in events if e.json()["type"] == "error"]
    assert error and error[0]["content"]["code"] == "CHANNEL_UNAVAILABLE"

    await hub.post("/api/bots", json={"slug": "down-bot", "name": "Down", "model": "up-down"})
    r = await hub.post("/chat", json={"bot_slug": "down-bot", "prompt": "hi", "stream": True})
    assert r.status_code == 503 and r.json() == {"detail": "No available channels"}
    stats = await _channels(hub)
    assert stats["down-dead"]["errors"]["connect"] >= 2 and stats["down-stalled"]["errors"]["timeout"] >= 1


# -- cancel ------------------------------------------------------------------------------------------


async def test_closing_the_client_stream_closes_the_upstream_connection_within_100ms(hub, proxies, upstream_hub):
    a = proxies["a"]
    user = "cancel-user-1"
    body = {"model": "up-pair", "messages": STORY, "max_tokens": 32, "stream": True, "user": user}
    async with hub.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        seen = 0
        async for event in sse_events(response):
            seen += bool(event.json()["choices"][0]["delta"].get("content"))
            if seen >= 3:
                break
        assert a.connections[0].client_closed_at is None, "the upstream answer should still be running"
        closed_at = time.monotonic()
    for _ in range(100):
        if a.connections[0].client_closed_at is not None:
            break
        await asyncio.sleep(0.005)
    gone = a.connections[0].client_closed_at
    assert gone is not None and gone - closed_at < 0.1, f"upstream closed {gone and gone - closed_at:.3f}s later"
    # What was generated before the disconnect is billed (estimated: the upstream never said).
    rows = []
    for _ in range(100):
        rows = upstream_hub.call(upstream_hub.container.usage.summary(user_id=user))
        if rows:
            break
        await asyncio.sleep(0.05)
    assert rows and rows[0]["model"] == "up-pair" and rows[0]["completionTokens"] >= 1 and rows[0]["cost"] > 0
    assert rows[0]["completionTokens"] < 32


def _upstream_errors(metrics_text: str, channel: str) -> float:
    prefix = f'hubbub_upstream_errors_total{{channel="{channel}"}} '
    return next((float(line.split()[-1]) for line in metrics_text.splitlines() if line.startswith(prefix)), 0.0)


async def test_upstream_errors_per_channel_are_on_metrics(hub, proxies):
    proxies["a"].set(mode="status", status=500)
    before = _upstream_errors((await hub.get("/metrics")).text, "pair-a")
    assert await _ask(hub)
    after = (await hub.get("/metrics")).text
    assert _upstream_errors(after, "pair-a") == before + 2  # the 500, and the retry's 500
    assert 'hubbub_upstream_errors_total{channel="pair-b"}' in after
