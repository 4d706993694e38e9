"""RAG in chat: retrieved passages as numbered sources in a system message, within budget.

The core knows only the ``Retriever`` protocol (``hubbub.rag.service.RagService`` is one);
which passages are best is the retriever's business, how many fit is the model's.
"""

from __future__ import annotations

from typing import Protocol

from hubbub.core.types import Message, Source
from hubbub.providers.base import Provider

INSTRUCTION = (
    "Answer using the numbered sources below when they are relevant, and cite them like [1]. "
    "If they do not contain the answer, say so."
)


class Retriever(Protocol):
    context_share: float  # the most of a model's context the sources may take

    async def context_for(self, query: str, owner: str | None, k: int | None = None) -> list[Source]: ...


def query_of(messages: list[Message]) -> str:
    """What to search for: the latest user message."""
    for message in reversed(messages):
        if message.role == "user" and message.content.strip():
            return message.content
    return ""


def render(sources: list[Source]) -> str:
    parts = [INSTRUCTION]
    for n, source in enumerate(sources, start=1):
        label = source.heading or source.title
        parts.append(f"[{n}] {label}\n{source.text}")
    return "\n\n".join(parts)


def with_sources(messages: list[Message], sources: list[Source]) -> list[Message]:
    """Add the sources to the leading system message (or a new one in front)."""
    block = render(sources)
    if messages and messages[0].role == "system":
        return [Message("system", f"{messages[0].content}\n\n{block}"), *messages[1:]]
    return [Message("system", block), *messages]


async def fit(
    messages: list[Message], sources: list[Source], provider: Provider, model: str, budget: int
) -> tuple[list[Message], list[Source]]:
    """The messages with as many of ``sources`` (best first) as fit in ``budget`` more tokens."""
    if not sources or budget <= 0:
        return messages, []
    base = await provider.count_tokens(messages, model)  # the instruction counts against the budget too
    used: list[Source] = []
    for source in sources:
        candidate = [*used, source]
        cost = await provider.count_tokens(with_sources(messages, candidate), model) - base
        if cost > budget:
            break  # best first: a lower-ranked passage is not worth more than this one
        used = candidate
    return (with_sources(messages, used) if used else messages), used
