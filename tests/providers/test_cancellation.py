"""Closing a stream early frees the embedded model within 100 ms (issue: Foundation)."""

from __future__ import annotations

import asyncio
import time

from hubbub.core.types import Message, ProviderRequest, SamplingParams

MODEL = "smollm2-135m-instruct"
LONG = [{"role": "user", "content": "Write a very long story about a dragon and a knight."}]


def _embedded(server):
    return server.container.registry.get(MODEL).provider


async def _wait_idle(model, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while model.busy and time.monotonic() < deadline:
        await asyncio.sleep(0.001)


async def test_client_disconnect_stops_decoding_within_100ms(server, client):
    model = _embedded(server).model
    await _wait_idle(model)
    body = {"model": MODEL, "messages": LONG, "max_tokens": 2000, "stream": True, "temperature": 0.7}
    async with client.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        seen = 0
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                seen += 1
            if seen >= 5:
                break
        assert model.busy, "the model should still be decoding a 2000-token answer"
        closed_at = time.monotonic()
    await _wait_idle(model)
    assert not model.busy
    assert model.last_finished_at - closed_at < 0.1, f"decoding went on for {model.last_finished_at - closed_at:.3f}s"

    # The model is free at once: the next request starts decoding immediately.
    started = time.monotonic()
    r = await client.post("/v1/chat/completions", json={"model": MODEL, "messages": LONG, "max_tokens": 1})
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 1
    assert time.monotonic() - started < 5


async def test_provider_aclose_stops_worker_within_100ms(server):
    provider = _embedded(server)
    request = ProviderRequest(MODEL, [Message("user", "Count from one to one thousand.")],
                              SamplingParams(temperature=0, max_tokens=2000))

    async def run() -> float:
        stream = provider.stream(request)
        n = 0
        async for _ in stream:
            n += 1
            if n == 3:
                break
        closed = time.monotonic()
        await stream.aclose()
        return closed

    closed = server.call(run())
    await _wait_idle(provider.model)
    assert provider.model.last_finished_at - closed < 0.1


async def test_usage_of_a_cancelled_stream_counts_what_was_generated(server, client):
    rid = "cancelled-usage-1"
    body = {"model": MODEL, "messages": LONG, "max_tokens": 2000, "stream": True}
    async with client.stream("POST", "/v1/chat/completions", json=body, headers={"X-Request-Id": rid}) as r:
        n = 0
        async for line in r.aiter_lines():
            n += line.startswith("data: ")
            if n >= 6:
                break
    for _ in range(100):
        rows = server.call(server.container.usage.count(rid))
        if rows:
            break
        await asyncio.sleep(0.05)
    assert rows == 1


async def test_cancel_during_a_long_prefill_aborts_within_100ms(server):
    provider = _embedded(server)
    long_prompt = "The quick brown fox jumps over the lazy dog. " * 600  # ~6000 tokens: seconds of prefill
    request = ProviderRequest(MODEL, [Message("user", long_prompt)], SamplingParams(temperature=0, max_tokens=50))

    async def run() -> tuple[float, bool]:
        async def consume() -> None:
            async for _ in provider.stream(request):
                pass

        task = asyncio.ensure_future(consume())
        while not provider.model.busy:
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.2)  # well inside the prefill
        was_busy = provider.model.busy
        cancelled_at = time.monotonic()
        task.cancel()
        return cancelled_at, was_busy

    cancelled_at, was_busy = server.call(run())
    assert was_busy, "the prefill should still be running 200 ms in"
    await _wait_idle(provider.model)
    assert provider.model.last_finished_at - cancelled_at < 0.1
    # The context is still usable afterwards.
    stream = provider.stream(ProviderRequest(MODEL, [Message("user", "Hi")], SamplingParams(temperature=0, max_tokens=3)))

    async def drain() -> int:
        return len([e async for e in stream])

    assert server.call(drain()) >= 3
