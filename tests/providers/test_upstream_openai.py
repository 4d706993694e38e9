"""The OpenAI-compatible provider against a real upstream: llama-cpp-python's server (issue 4)."""

from __future__ import annotations

import asyncio

import httpx

from support import collect_sse
from upstream import PRICING, UPSTREAM_KEY

HI = [{"role": "user", "content": "Say hello to the user."}]


def _chunks(events):  # noqa: ANN001, ANN202
    return [e.json() for e in events if e.data != "[DONE]"]


def _text(chunks) -> str:  # noqa: ANN001
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))


async def _direct(llama, **body) -> dict:  # noqa: ANN001, ANN003
    async with httpx.AsyncClient(timeout=60) as c:
        r = await c.post(llama.url + "/v1/chat/completions", json=body)
    assert r.status_code == 200
    return r.json()


async def test_streaming_through_an_upstream_model(hub, llama):
    body = {"model": "up-direct", "messages": HI, "max_tokens": 8, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True}}
    r, events = await collect_sse(hub, "POST", "/v1/chat/completions", json=body)
    assert r.status_code == 200 and events[-1].data == "[DONE]"
    chunks = _chunks(events)
    content_chunks = [c for c in chunks if c.get("choices") and c["choices"][0]["delta"].get("content")]
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    # The same request straight to the upstream (greedy decoding) gives the same words.
    direct = await _direct(llama, model="x", messages=HI, max_tokens=8, temperature=0)
    assert _text(chunks) == direct["choices"][0]["message"]["content"]
    # llama-cpp-python's server sends no usage in streams: one token per content chunk, as documented.
    assert chunks[-1]["usage"]["completion_tokens"] == len(content_chunks) == 8


async def test_non_streaming_through_a_streaming_and_a_whole_answer_upstream(hub, llama):
    direct = await _direct(llama, model="x", messages=HI, max_tokens=6, temperature=0)
    for model in ("up-direct", "up-whole"):
        r = await hub.post("/v1/chat/completions", json={"model": model, "messages": HI, "max_tokens": 6,
                                                           "temperature": 0})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["choices"][0]["message"]["content"] == direct["choices"][0]["message"]["content"]
        assert body["choices"][0]["finish_reason"] == "length"
    # The whole-answer upstream reports usage itself: its numbers are passed on exactly.
    assert body["usage"] == direct["usage"]


async def test_catalog_entries_carry_context_length_and_pricing(hub):
    models = {m["id"]: m for m in (await hub.get("/v1/models")).json()["data"]}
    assert models["up-pair"]["context_length"] == 2048
    assert models["up-pair"]["pricing"] == PRICING
    assert models["up-direct"]["owned_by"] == "llama"
    bento = await hub.get("/api/bento/chat/models")
    if bento.status_code == 200:  # the bento dialect lists the same catalog
        entry = {m["id"]: m for m in bento.json()["models"]}["up-pair"]
        assert entry["contextLength"] == 2048 and entry["pricing"] == PRICING


async def test_usage_and_cost_are_recorded_for_upstream_models(hub, upstream_hub):
    user = "cost-user-1"
    r = await hub.post("/v1/chat/completions", json={"model": "up-direct", "messages": HI, "max_tokens": 4,
                                                       "user": user})
    assert r.status_code == 200
    usage = r.json()["usage"]
    rows = []
    for _ in range(100):
        rows = upstream_hub.call(upstream_hub.container.usage.summary(user_id=user))
        if rows:
            break
        await asyncio.sleep(0.05)
    assert len(rows) == 1 and rows[0]["model"] == "up-direct"
    assert (rows[0]["promptTokens"], rows[0]["completionTokens"]) == (usage["prompt_tokens"], usage["completion_tokens"])
    expected = (usage["prompt_tokens"] * PRICING["prompt"] + usage["completion_tokens"] * PRICING["completion"]) / 1000
    assert abs(rows[0]["cost"] - expected) < 1e-9 and expected > 0


async def test_the_upstreams_context_error_is_context_length_exceeded(hub):
    # up-bigctx claims 100000 tokens; the server behind it has 2048 and says so in its 400.
    long = [{"role": "user", "content": "hello " * 2100}]
    r = await hub.post("/v1/chat/completions", json={"model": "up-bigctx", "messages": long, "max_tokens": 8})
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "context_length_exceeded" and "2048" in error["message"]


async def test_key_from_the_environment_is_sent_and_never_shown(hub, proxies):
    keyed = proxies["keyed"]
    # The upstream echoes the key in its 400 (some do): the client must not see it.
    keyed.set("status", status=400, message=f"bad request from key {UPSTREAM_KEY}")
    r = await hub.post("/v1/chat/completions", json={"model": "up-keyed", "messages": HI, "max_tokens": 4})
    assert r.status_code == 400
    assert UPSTREAM_KEY not in r.text and "bad request from key ***" in r.json()["error"]["message"]
    sent = bytes(keyed.connections[0].request).decode()
    assert f"authorization: Bearer {UPSTREAM_KEY}".lower() in sent.lower()
    assert "x-title: hubbub-tests" in sent.lower()
    keyed.set("status", status=401, message=f"invalid key {UPSTREAM_KEY}")
    r = await hub.post("/v1/chat/completions", json={"model": "up-keyed", "messages": HI, "max_tokens": 4})
    assert r.status_code == 503 and UPSTREAM_KEY not in r.text
    channels = (await hub.get("/api/channels")).json()["channels"]
    keyed_channel = next(c for c in channels if c["model"] == "up-keyed")
    assert keyed_channel["errors"]["rejected"] == 1 and UPSTREAM_KEY not in str(keyed_channel)


async def test_requests_ask_the_upstream_for_usage_and_pass_sampling_on(hub, proxies):
    b = proxies["b"]
    b.set("pass")
    a = proxies["a"]
    a.set("pass")
    r = await hub.post("/v1/chat/completions", json={"model": "up-pair", "messages": HI, "max_tokens": 3,
                                                       "temperature": 0.2, "top_p": 0.5, "stop": ["\n\n"],
                                                       "seed": 11})
    assert r.status_code == 200
    sent = a.connections[0].request_bodies()[0]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert (sent["temperature"], sent["top_p"], sent["stop"], sent["seed"], sent["max_tokens"]) == \
        (0.2, 0.5, ["\n\n"], 11, 3)
    assert sent["model"] == "up-pair" and sent["messages"] == HI


async def test_legacy_completions_forward_to_an_upstream_that_serves_them(hub, llama):
    """``completions = true``: /v1/completions goes to the upstream's own /completions, streamed or
    whole, with the same greedy text; a provider without it is a 400 naming ``model`` (issue 21)."""
    body = {"prompt": "The capital of France is", "max_tokens": 6, "temperature": 0}
    async with httpx.AsyncClient(timeout=60) as c:
        direct = (await c.post(llama.url + "/v1/completions", json={"model": "x", **body})).json()
    expected = direct["choices"][0]["text"]
    whole = await hub.post("/v1/completions", json={"model": "up-legacy", **body})
    assert whole.status_code == 200, whole.text
    assert whole.json()["choices"][0]["text"] == expected and whole.json()["object"] == "text_completion"
    r, events = await collect_sse(hub, "POST", "/v1/completions", json={"model": "up-legacy", "stream": True, **body})
    assert "".join(e.json()["choices"][0]["text"] for e in events if e.data != "[DONE]") == expected
    refused = await hub.post("/v1/completions", json={"model": "up-direct", **body})
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "model"
async def test_the_rest_of_the_sampling_surface_is_passed_on(hub, proxies):
    """Issue 21: penalties, logit_bias, logprobs and the vLLM/llama.cpp extensions reach the
    upstream as the client set them (never silently dropped); unset ones are not sent."""
    for name in ("a", "b"):
        proxies[name].set("pass")
    a = proxies["a"]
    before = sum(len(c.request_bodies()) for c in a.connections)
    r = await hub.post("/v1/chat/completions", json={
        "model": "up-pair", "messages": HI, "max_tokens": 3, "frequency_penalty": 0.5, "presence_penalty": 0.25,
        "logit_bias": {"42": -5}, "top_k": 20, "min_p": 0.05, "repetition_penalty": 1.1})
    assert r.status_code == 200, r.text
    sent = [b for c in a.connections for b in c.request_bodies()][before]
    assert {k: sent[k] for k in ("frequency_penalty", "presence_penalty", "logit_bias", "top_k", "min_p",
                                 "repetition_penalty")} == {
        "frequency_penalty": 0.5, "presence_penalty": 0.25, "logit_bias": {"42": -5.0}, "top_k": 20,
        "min_p": 0.05, "repetition_penalty": 1.1}
    assert "logprobs" not in sent
    r = await hub.post("/v1/chat/completions", json={"model": "up-pair", "messages": HI, "max_tokens": 3})
    sent = [b for c in a.connections for b in c.request_bodies()][-1]
    assert not {"frequency_penalty", "presence_penalty", "logit_bias", "top_k", "logprobs"} & set(sent)
