"""The provider seam (STYLE.md §2).

A provider is one streaming method plus declared capabilities. Every kind of provider —
the embedded model, OpenAI-compatible and Anthropic upstreams — registers through the same
door: a ``ProviderKind`` (its name, its settings model, how to build one), listed once in
``providers/kinds.py``. Adding a kind is one module and one line there.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Protocol, runtime_checkable

from hubbub.core.events import ProviderEvent
from hubbub.core.types import Message, ModelInfo, ProviderRequest

if TYPE_CHECKING:
    from pydantic import BaseModel


@dataclass(frozen=True)
class Capabilities:
    """What a provider can honour. The pipeline checks a request against these before any
    output, so a part or parameter a model cannot take is a 400 naming it, never dropped
    (docs/api-decisions.md, "Typed content")."""

    json_schema: bool = False  # response_format json_schema (and json_object)
    tools: bool = False  # tool definitions, tool calls and tool results
    images: bool = False  # image parts in user messages
    reasoning: bool = False  # reasoning parts sent back (thinking blocks)
    continues_answers: bool = False  # continues an answer another channel began (failover)
    # ``embed(texts, model, dimensions)``: /v1/embeddings served by this provider (issue 21)
    embeddings: bool = False
    # ``ProviderRequest.prompt``: continues a raw text prompt, no chat template (/v1/completions)
    raw_prompt: bool = False
    # Optional sampling parameters it honours beyond temperature, top_p, max_tokens and stop.
    sampling: frozenset[str] = field(default_factory=frozenset)

    def __and__(self, other: "Capabilities") -> "Capabilities":
        """What both honour (a model served by several channels promises only this)."""
        values: dict[str, Any] = {}
        for f in fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            values[f.name] = a & b if isinstance(a, frozenset) else (a and b)
        return Capabilities(**values)


@runtime_checkable
class Provider(Protocol):
    """Streams typed events for one request.

    ``stream`` yields ``TextDelta``/``ReasoningDelta``/``ToolCallDelta``\\ s, then exactly one
    ``UsageReport`` and one ``Finish``. Closing the iterator early (``aclose()``, task
    cancellation) must stop the work within 100 ms. Errors are raised as ``ProviderError``.
    """

    name: str
    capabilities: Capabilities

    def stream(self, request: ProviderRequest) -> AsyncIterator[ProviderEvent]: ...

    async def count_tokens(self, messages: list[Message], model: str) -> int:
        """Prompt tokens ``messages`` will cost, with the model's own tokenizer where known.

        A provider with the ``tools`` capability also takes ``tools=`` (the definitions the
        prompt will carry); ``core/context.count`` passes it only when there are tools."""
        ...

    async def count_text_tokens(self, text: str, model: str) -> int: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class ProviderKind:
    """One kind of provider: the ``type`` a ``[[providers]]`` table names, the settings model
    that validates such a table, and how to build a provider from it (``api_key``: read from the
    environment variable the table names, or None). ``build`` may block (the embedded model
    loads its weights): the app calls it in a worker thread."""

    name: str
    settings: "type[BaseModel]"
    build: Callable[[Any, str | None], Provider]
    # The models a provider of this kind serves without any [[models]] entry (the embedded model).
    builtin_models: Callable[[Provider], list[ModelInfo]] = lambda provider: []
