"""Continuous batching of the embedded model (issue: Performance).

Concurrent requests share each ``llama_decode`` step; each keeps its own sampler,
stop rules, grammar and cancellation. At temperature 0 a request's answer must be
the one it gets alone: every sequence has its own KV stream and flash attention is
on, so its arithmetic does not depend on its batch neighbours (docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import json
from typing import Awaitable, Callable, TypeVar

from hubbub.core.events import Finish, TextDelta, UsageReport
from hubbub.core.types import Message, ProviderRequest, ResponseFormat, SamplingParams

MODEL = "smollm2-135m-instruct"
T = TypeVar("T")
PROMPTS = [
    "Tell me a story about a dragon.",
    "What is the capital of France?",
    "Write a haiku about rain.",
    "Explain gravity to a child.",
    "List three fruits.",
    "Who wrote Hamlet?",
    "Describe the sea in two sentences.",
    "Give me a tip for learning to cook.",
]


def _provider(server):
    return server.container.registry.get(MODEL).provider


def _request(prompt: str, max_tokens: int = 40, system: str | None = None, **params) -> ProviderRequest:
    messages = ([Message("system", system)] if system else []) + [Message("user", prompt)]
    return ProviderRequest(MODEL, messages, SamplingParams(max_tokens=max_tokens, **{"temperature": 0, **params}))


async def _run(provider, request: ProviderRequest, cancel_after: int | None = None) -> tuple[str, str, int]:
    """(text, finish reason, completion tokens); with ``cancel_after``, close after that many deltas."""
    text, reason, tokens, deltas = [], "", 0, 0
    stream = provider.stream(request)
    async for event in stream:
        if isinstance(event, TextDelta):
            text.append(event.text)
            deltas += 1
            if cancel_after is not None and deltas >= cancel_after:
                await stream.aclose()
                return "".join(text), "cancelled", deltas
        elif isinstance(event, UsageReport):
            tokens = event.usage.completion_tokens
        elif isinstance(event, Finish):
            reason = event.reason
    return "".join(text), reason, tokens


async def _alone(provider, requests: list[ProviderRequest]) -> list[tuple[str, str, int]]:
    return [await _run(provider, r) for r in requests]


async def _peak_while(read: Callable[[], int], work: Awaitable[T]) -> tuple[T, int]:
    """``work``'s result and the highest value ``read`` gave (sampled every 2 ms) while it ran."""
    peak = 0

    async def watch() -> None:
        nonlocal peak
        while True:
            peak = max(peak, read())
            await asyncio.sleep(0.002)

    watcher = asyncio.ensure_future(watch())
    try:
        return await work, peak
    finally:
        watcher.cancel()


async def test_batched_answers_match_unbatched_at_temperature_zero(server):
    provider = _provider(server)
    engine = provider.model.engine
    requests = [_request(p) for p in PROMPTS]
    alone = await _alone(provider, requests)
    steps_before = engine.steps
    together, peak = await _peak_while(lambda: engine.running,
                                       asyncio.gather(*(_run(provider, r) for r in requests)))
    steps = engine.steps - steps_before
    tokens = sum(t for _, _, t in together)

    assert peak == len(PROMPTS), f"all {len(PROMPTS)} requests should decode together, saw at most {peak}"
    # One step decodes a token of every running sequence: far fewer steps than tokens.
    assert steps < tokens / 3, (steps, tokens)
    mismatches = [i for i, (a, b) in enumerate(zip(alone, together)) if a != b]
    assert not mismatches, [(PROMPTS[i], alone[i][0], together[i][0]) for i in mismatches]
    assert all(t > 0 for _, _, t in together)


async def test_cancelling_one_stream_leaves_the_others_unchanged(server):
    provider = _provider(server)
    requests = [_request(p, max_tokens=48) for p in PROMPTS[:4]]
    alone = await _alone(provider, requests)
    victim = _request("Write a very long story about a knight.", max_tokens=400)
    results = await asyncio.gather(*(_run(provider, r) for r in requests), _run(provider, victim, cancel_after=5))
    assert results[-1][1] == "cancelled"
    assert results[:-1] == alone


async def test_each_request_keeps_its_own_sampler_in_a_batch(server):
    provider = _provider(server)
    seeded = _request("Tell me a story.", max_tokens=24, temperature=1.1, seed=1234)
    schema = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 20}}, "required": ["city"],
              "additionalProperties": False}
    structured = _request("Name a city as JSON.", max_tokens=60,
                          response_format=ResponseFormat(type="json_schema", schema=schema))
    stopped = _request("Count from one to twenty, separated by commas.", max_tokens=60, stop=["five"])
    alone = await _alone(provider, [seeded, structured, stopped])
    noise = [_request(p) for p in PROMPTS[:4]]
    together = await asyncio.gather(*(_run(provider, r) for r in [seeded, structured, stopped, *noise]))
    assert together[:3] == alone
    assert json.loads(together[1][0])["city"]
    assert "five" not in together[2][0].lower() or together[2][1] == "length"


async def test_a_shared_prefix_is_not_recomputed(server):
    provider = _provider(server)
    engine = provider.model.engine
    system = "You are Captain Hubbub, a cheerful pirate who answers every question in one short sentence. " * 4
    first = _request("What is the sea?", system=system, max_tokens=8)
    await _run(provider, first)
    before = engine.reused_tokens
    second = _request("What is a ship?", system=system, max_tokens=8)
    text, reason, _ = await _run(provider, second)
    reused = engine.reused_tokens - before
    system_tokens = await provider.count_text_tokens(system)
    assert reused >= system_tokens, f"only {reused} of the {system_tokens}-token system prompt was reused"
    assert text and reason in ("stop", "length")


async def test_more_requests_than_sequences_wait_their_turn(server):
    provider = _provider(server)
    engine = provider.model.engine
    n = engine.max_sequences + 3
    requests = [_request(PROMPTS[i % len(PROMPTS)] + f" ({i})", max_tokens=12) for i in range(n)]
    results, peak_waiting = await _peak_while(lambda: engine.waiting,
                                              asyncio.gather(*(_run(provider, r) for r in requests)))
    assert peak_waiting >= 1
    assert all(reason in ("stop", "length") and tokens > 0 for _, reason, tokens in results)
