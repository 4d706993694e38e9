"""Fitting messages into a model's context window, counted with its own tokenizer."""

from __future__ import annotations

from hubbub.core.types import Message
from hubbub.errors import ContextTooLong
from hubbub.providers.base import Provider


def completion_reserve(context_length: int, max_tokens: int | None) -> int:
    """Tokens kept free for the answer when trimming a stored conversation."""
    return min(max_tokens or 512, context_length // 4)


async def check_fits(provider: Provider, model: str, messages: list[Message], context_length: int) -> int:
    """Prompt tokens of ``messages``; ``ContextTooLong`` unless at least one answer token fits."""
    n = await provider.count_tokens(messages, model)
    if n >= context_length:
        raise ContextTooLong(context_length, n)
    return n


async def trim_to_fit(
    provider: Provider, model: str, messages: list[Message], context_length: int, reserve: int
) -> tuple[list[Message], int]:
    """Drop the oldest non-system turns until prompt + ``reserve`` fits.

    System messages are always kept, and so is the last message (the new user
    turn). Raises ``ContextTooLong`` only when that minimum cannot fit at all.
    Uses a binary search over how many old messages to drop: O(log n) tokenizations.
    """
    system = [m for m in messages if m.role == "system"]
    rest = [m for m in messages if m.role != "system"]
    budget = context_length - reserve

    async def count(drop: int) -> int:
        return await provider.count_tokens(system + rest[drop:], model)

    full = await count(0)
    if full <= budget:
        return system + rest, full
    minimum = await count(max(len(rest) - 1, 0))
    if minimum >= context_length:
        raise ContextTooLong(context_length, minimum)
    hi = max(len(rest) - 1, 0)
    lo = min(1, hi)  # smallest drop that fits lies in [lo, hi]; a lone message is never dropped
    best_n = minimum
    while lo < hi:
        mid = (lo + hi) // 2
        n = await count(mid)
        if n <= budget:
            hi, best_n = mid, n
        else:
            lo = mid + 1
    drop = lo
    # Start the kept history on a user turn, so the model never sees an orphan answer first.
    while drop < len(rest) - 1 and rest[drop].role != "user":
        drop += 1
    kept = system + rest[drop:]
    if drop != lo or best_n == minimum:
        best_n = await provider.count_tokens(kept, model)
    return kept, best_n
