"""EmbeddingService: ``/v1/embeddings`` on the one model catalog (issue 21).

    model ──► a named embedder (the RAG embedder, by its name) ──────────────┐
          └─► the catalog (ModelRegistry)                                     ├─► unit-normalised
                ├─ served by the embedded model ─► the GGUF in embedding mode │    float32 rows
                ├─ a provider with Capabilities.embeddings ─► its embed()  ───┘    + prompt tokens
                └─ any other model ─► 400 (it cannot embed), unknown ─► 404

Limits (count of inputs, empty inputs, the end user's quota) are checked here, before any model
runs; a model's own input-length limit is its embedder's (docs/api-decisions.md, "Embeddings").
Each request is a usage row (prompt tokens, no completion tokens) charged to the key's and the end
user's token quotas, through the chat pipeline's own ``ChatService.record_usage_soon``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from hubbub.errors import FieldProblem, InvalidRequest
from hubbub.core.types import UsageRecord
from hubbub.providers.registry import ModelRegistry

if TYPE_CHECKING:
    from hubbub.core.service import ChatService

log = logging.getLogger(__name__)


class Embedder(Protocol):
    """What ``rag.dense.Embedder`` is, plus an optional ``embed_counted(texts, dimensions)``
    returning the vectors and the prompt tokens it counted."""

    name: str

    async def embed(self, texts: list[str]) -> np.ndarray: ...

    def count_tokens(self, text: str) -> int | None: ...


@dataclass(frozen=True)
class Embeddings:
    vectors: np.ndarray  # one unit-length float32 row per input
    prompt_tokens: int
    model: str


class ProviderEmbedder:
    """A catalog model served by a provider that embeds (an OpenAI-compatible upstream through its
    channels): usable wherever an ``Embedder`` is, the RAG index included."""

    def __init__(self, provider: Any, upstream_model: str, name: str) -> None:
        self.provider = provider
        self.upstream_model = upstream_model
        self.name = name

    async def embed_counted(self, texts: list[str], dimensions: int | None = None) -> tuple[np.ndarray, int | None]:
        return await self.provider.embed(texts, self.upstream_model, dimensions)

    async def embed(self, texts: list[str]) -> np.ndarray:
        return _normalise((await self.embed_counted(texts))[0])

    def count_tokens(self, text: str) -> int | None:
        return None


def _normalise(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1, norms)


class EmbeddingService:
    def __init__(self, registry: ModelRegistry, named: dict[str, Embedder] | None = None,
                 local: Embedder | None = None, local_provider: Any = None, max_inputs: int = 2048,
                 chat: "ChatService | None" = None) -> None:
        self.registry = registry
        self.chat = chat  # limits and usage rows, as for a chat
        self.named = dict(named or {})
        self.local = local  # the GGUF embedder, for models the embedded provider serves
        self.local_provider = local_provider
        self.max_inputs = max_inputs

    def resolve(self, model: str) -> Embedder:
        """The embedder for ``model``: ``ModelNotFound`` (404) when no such model exists, a 400
        when it exists but cannot embed."""
        if model in self.named:
            return self.named[model]
        entry = self.registry.get(model)
        if self.local is not None and entry.provider is self.local_provider:
            return self.local
        if entry.provider.capabilities.embeddings:
            return ProviderEmbedder(entry.provider, entry.upstream_model, model)
        raise InvalidRequest("This model does not serve embeddings", [FieldProblem(
            "model", f"'{model}' does not serve embeddings (docs/api-decisions.md, \"Embeddings\")")])

    def models(self) -> list[str]:
        return list(self.named)

    async def embed(self, model: str, texts: list[str], dimensions: int | None = None, *,
                    owner: str | None = None, user_id: str | None = None, request_id: str | None = None
                    ) -> Embeddings:
        if not texts:
            raise InvalidRequest("Invalid request", [FieldProblem("input", "must not be empty")])
        if len(texts) > self.max_inputs:
            raise InvalidRequest("Too many inputs", [FieldProblem(
                "input", f"at most {self.max_inputs} inputs are allowed in one request")])
        empty = [i for i, t in enumerate(texts) if not t]
        if empty:
            field = f"input.{empty[0]}" if len(texts) > 1 else "input"
            raise InvalidRequest("Invalid request", [FieldProblem(field, "must not be an empty string")])
        embedder = self.resolve(model)
        if self.chat is not None:
            await self.chat.limiter.check_user(user_id)
        counted = getattr(embedder, "embed_counted", None)
        tokens: int | None = None
        if counted is not None:
            vectors, tokens = await counted(texts, dimensions)
        else:
            vectors = await embedder.embed(texts)
        vectors = _normalise(vectors)
        if dimensions is not None and vectors.shape[1] != dimensions:
            raise InvalidRequest("Unsupported dimensions", [FieldProblem(
                "dimensions", f"'{model}' makes vectors of {vectors.shape[1]} dimensions and cannot shorten them")])
        if tokens is None:
            tokens = sum(embedder.count_tokens(t) or max(1, len(t) // 4) for t in texts)
        self._record(model, tokens, owner, user_id, request_id)
        return Embeddings(vectors, tokens, model)

    def _record(self, model: str, tokens: int, owner: str | None, user_id: str | None, request_id: str | None) -> None:
        if self.chat is None:
            return
        try:
            price = self.registry.get(model).info.pricing_prompt if model in self.registry.ids() else 0.0
            self.chat.record_usage_soon(UsageRecord(model, tokens, 0, tokens * price / 1000.0, owner=owner,
                                                    user_id=user_id, request_id=request_id))
        except Exception:  # bookkeeping never breaks the answer it counts
            log.exception("could not record embeddings usage")
