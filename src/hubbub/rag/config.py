"""RAG settings (``[rag]`` in hubbub.toml, ``HUBBUB_RAG__*`` in the environment)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class RagConfig(BaseModel):
    """How documents are chunked and searched.

    ``embedder``: ``none`` (BM25 only, the default), ``local`` (all-MiniLM-L6-v2 from the
    optional ``dense`` extra), ``openai`` (any OpenAI-compatible ``/v1/embeddings`` at
    ``embedder_url``), ``embedded`` (the embedded GGUF in embedding mode, no extra package) or
    ``channel`` (the catalog model ``embedder_model``, served through its channels by an
    upstream with ``embeddings = true``); docs/rag.md.
    ``mode`` is what chat retrieval uses; ``auto`` means hybrid when an embedder is
    configured, else BM25.
    """

    embedder: Literal["none", "local", "openai", "embedded", "channel"] = "none"
    embedder_url: str | None = None  # e.g. http://127.0.0.1:8080/v1 (openai)
    embedder_model: str = "all-MiniLM-L6-v2"  # openai: the upstream's name; channel: a catalog model id
    embedder_api_key_env: str | None = None  # the variable holding the key, never the key
    mode: Literal["auto", "bm25", "dense", "hybrid"] = "auto"
    chunk_tokens: int = Field(default=256, ge=16, le=4096)
    chunk_overlap: int = Field(default=32, ge=0, le=1024)
    top_k: int = Field(default=4, ge=1, le=50)  # passages put into a chat prompt
    context_share: float = Field(default=0.5, gt=0, le=1)  # most of the model's context sources may use
