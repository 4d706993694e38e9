"""Fitting messages into a model's context window, counted with its own tokenizer."""

from __future__ import annotations

from hubbub.core.types import Message, Tools
from hubbub.errors import ContextTooLong
from hubbub.providers.base import Provider


def completion_reserve(context_length: int, max_tokens: int | None) -> int:
    """Tokens kept free for the answer when trimming a stored conversation."""
    return min(max_tokens or 512, context_length // 4)


async def count(provider: Provider, model: str, messages: list[Message], tools: Tools | None = None) -> int:
    """Prompt tokens of ``messages`` (with the tool definitions the prompt will carry)."""
    if tools is None:
        return await provider.count_tokens(messages, model)
    return await provider.count_tokens(messages, model, tools=tools)


async def check_fits(provider: Provider, model: str, messages: list[Message], context_length: int,
                     tools: Tools | None = None) -> int:
    """Prompt tokens of ``messages``; ``ContextTooLong`` unless at least one answer token fits."""
    n = await count(provider, model, messages, tools)
    if n >= context_length:
        raise ContextTooLong(context_length, n)
    return n


async def trim_to_fit(
    provider: Provider, model: str, messages: list[Message], context_length: int, reserve: int,
    tools: Tools | None = None,
) -> tuple[list[Message], int]:
    """Drop the oldest non-system turns until prompt + ``reserve`` fits.

    System messages are always kept, and so is the last message (the new user
    turn). Raises ``ContextTooLong`` only when that minimum cannot fit at all.
    Uses a binary search over how many old messages to drop: O(log n) tokenizations.
    """
    system = [m for m in messages if m.role == "system"]
    rest = [m for m in messages if m.role != "system"]
    budget = context_length - reserve

    async def tokens(drop: int) -> int:
        return await count(provider, model, system + rest[drop:], tools)

    full = await tokens(0)
    if full <= budget:
        return system + rest, full
    minimum = await tokens(max(len(rest) - 1, 0))
    if minimum >= context_length:
        raise ContextTooLong(context_length, minimum)
    hi = max(len(rest) - 1, 0)
    lo = min(1, hi)  # smallest drop that fits lies in [lo, hi]; a lone message is never dropped
    best_n = minimum
    while lo < hi:
        mid = (lo + hi) // 2
        n = await tokens(mid)
        if n <= budget:
            hi, best_n = mid, n
        else:
            lo = mid + 1
    drop = lo
    # Start the kept history on a user turn, so the model never sees an orphan answer (or an
    # orphan tool result) first.
    while drop < len(rest) - 1 and rest[drop].role != "user":
        drop += 1
    kept = system + rest[drop:]
    if drop != lo or best_n == minimum:
        best_n = await count(provider, model, kept, tools)
    return kept, best_n
