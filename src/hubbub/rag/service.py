"""RagService: ingest, list, get, delete, search, and passages for chat prompts.

Parsing, chunking and embedding run off the event loop (``asyncio.to_thread``): a 20 MiB
PDF must not stall other requests. Documents belong to the key that uploaded them
(``owner``); ``owner=None`` (admin, open server) sees all.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncEngine

from hubbub.core.types import Source
from hubbub.errors import FieldProblem, InvalidRequest, ModelNotFound, NotFound
from hubbub.rag.chunk import Chunk, chunk_text
from hubbub.rag.config import RagConfig
from hubbub.rag.dense import Embedder, VectorIndex, fuse
from hubbub.rag.parse import Parsed, parse
from hubbub.rag.store import DocumentInfo, DocumentStore, Hit

log = logging.getLogger(__name__)

Mode = Literal["bm25", "dense", "hybrid"]
MAX_K = 50


class RagService:
    def __init__(self, engine: AsyncEngine, config: RagConfig | None = None, embedder: Embedder | None = None) -> None:
        self.config = config or RagConfig()
        self.store = DocumentStore(engine)
        self.embedder = embedder
        self.vectors = VectorIndex(engine, embedder) if embedder is not None else None

    @property
    def context_share(self) -> float:
        """The most of a model's context that chat sources may take (``Retriever``)."""
        return self.config.context_share

    @property
    def modes(self) -> list[Mode]:
        """The retrieval modes this server can run."""
        return ["bm25", "dense", "hybrid"] if self.vectors is not None else ["bm25"]

    @property
    def default_mode(self) -> Mode:
        if self.config.mode != "auto":
            return self.config.mode if self.config.mode in self.modes else "bm25"
        return "hybrid" if self.vectors is not None else "bm25"

    def _chunk(self, parsed: Parsed) -> list[Chunk]:
        counter = self.embedder.count_tokens if self.embedder is not None else None
        if counter is not None and counter("probe") is None:
            counter = None
        size, overlap = self.config.chunk_tokens, self.config.chunk_overlap
        chunks = chunk_text(parsed.text, parsed.title, size, overlap, counter)
        if not chunks:  # headings only: index them as text rather than store an unfindable document
            chunks = chunk_text(re.sub(r"(?m)^\s*#+\s*", "", parsed.text), parsed.title, size, overlap, counter)
        return chunks

    async def ingest_bytes(
        self, data: bytes, *, filename: str | None, content_type: str | None, owner: str | None,
        title: str | None = None,
    ) -> DocumentInfo:
        """Parse an uploaded file and index it."""
        parsed = await asyncio.to_thread(parse, data, filename, content_type)
        if title:
            parsed.title = title
        return await self._index(parsed, owner, filename, len(data))

    async def ingest_text(self, title: str, content: str, owner: str | None) -> DocumentInfo:
        """Index text given directly (JSON ``{"title", "content"}``)."""
        if not content.strip():
            raise InvalidRequest("Invalid request", [FieldProblem("content", "must not be empty")])
        parsed = Parsed(title=title.strip() or "Untitled", text=content, media_type="text/plain")
        return await self._index(parsed, owner, None, len(content.encode()))

    async def _index(self, parsed: Parsed, owner: str | None, filename: str | None, size: int) -> DocumentInfo:
        chunks = await asyncio.to_thread(self._chunk, parsed)
        info, ids = await self.store.add(parsed.title, chunks, owner=owner, filename=filename,
                                         media_type=parsed.media_type, size_bytes=size)
        if self.vectors is not None:
            try:
                await self.vectors.add(info.id, ids, [f"{c.heading}\n{c.text}" for c in chunks])
            except Exception:
                # BM25 still finds the document; dense search misses it until re-ingested.
                log.exception("could not embed document %s", info.id)
        return info

    async def list(self, owner: str | None) -> list[DocumentInfo]:
        return await self.store.list(owner)

    async def get(self, doc_id: str, owner: str | None) -> tuple[DocumentInfo, list[Chunk]]:
        info = await self.store.get(doc_id, owner)
        if info is None:
            raise NotFound("document", doc_id)
        return info, [c for _, c in await self.store.chunks(doc_id)]

    async def delete(self, doc_id: str, owner: str | None) -> None:
        if not await self.store.delete(doc_id, owner):
            raise NotFound("document", doc_id)

    async def search(self, query: str, owner: str | None, k: int = 5, mode: Mode | None = None) -> list[Hit]:
        """The ``k`` best chunks, by BM25, dense similarity or their fusion."""
        mode = mode or self.default_mode
        if mode not in self.modes:
            raise InvalidRequest("Invalid request", [FieldProblem("mode", f"must be one of {', '.join(self.modes)}")])
        k = max(1, min(k, MAX_K))
        if mode == "bm25":
            return await self.store.search(query, owner, k)
        assert self.vectors is not None
        if mode == "dense":
            return await self.vectors.search(query, owner, k)
        depth = max(k * 4, 20)  # fuse deeper lists than asked, so each side can promote the other's
        lexical, dense = await asyncio.gather(self.store.search(query, owner, depth),
                                              self.vectors.search(query, owner, depth))
        return fuse([lexical, dense], k)

    async def context_for(self, query: str, owner: str | None, k: int | None = None) -> list[Source]:
        """Best passages for a chat prompt, best first (the core fits them to the model's budget)."""
        hits = await self.search(query, owner, k or self.config.top_k)
        return [Source(h.document_id, h.title, h.text, h.score, h.heading) for h in hits]

    async def aclose(self) -> None:
        close = getattr(self.embedder, "aclose", None)
        if close is not None:
            await close()


def build_embedder(config: RagConfig, *, embedded: Embedder | None = None, registry: Any = None
                   ) -> Embedder | None:
    """The configured embedder, or None (BM25 only). A missing optional package is an error
    here, at start, rather than a silent downgrade. ``embedded``: the GGUF embedder (for
    ``embedded``); ``registry``: the model catalog (for ``channel``)."""
    if config.embedder == "embedded":
        if embedded is None:
            raise ValueError("rag.embedder = 'embedded' needs the embedded model ([embedded] enabled)")
        return embedded
    if config.embedder == "channel":
        from hubbub.core.embeddings import ProviderEmbedder

        try:
            entry = registry.get(config.embedder_model) if registry is not None else None
        except ModelNotFound:
            entry = None
        if entry is None or not entry.provider.capabilities.embeddings:
            raise ValueError(f"rag.embedder = 'channel' needs rag.embedder_model to name a catalog model "
                             f"whose upstream serves embeddings (got {config.embedder_model!r})")
        return ProviderEmbedder(entry.provider, entry.upstream_model, config.embedder_model)
    if config.embedder == "local":
        from hubbub.rag.dense import LocalEmbedder

        return LocalEmbedder()
    if config.embedder == "openai":
        if not config.embedder_url:
            raise ValueError("rag.embedder = 'openai' needs rag.embedder_url")
        from hubbub.rag.dense import OpenAIEmbedder

        return OpenAIEmbedder(config.embedder_url, config.embedder_model, config.embedder_api_key_env)
    return None
