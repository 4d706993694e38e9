"""The document store and search, on SQLite (FTS5) and PostgreSQL (tsvector), through RagService."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import AsyncIterator

import numpy as np
import pytest

from hubbub.errors import InvalidRequest, NotFound
from hubbub.rag.config import RagConfig
from hubbub.rag.service import RagService
from hubbub.storage.db import create_engine, migrate


class HashEmbedder:
    """A deterministic stand-in embedder: bag of words hashed into 64 dimensions, with
    "car" and "automobile" sharing a dimension so dense search can find what BM25 cannot."""

    name = "hash-64"
    SYNONYMS = {"automobile": "car"}

    def __init__(self) -> None:
        self.calls = 0

    async def embed(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), 64), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                word = self.SYNONYMS.get(word.strip(".,?"), word.strip(".,?"))
                out[i, int(hashlib.md5(word.encode()).hexdigest(), 16) % 64] += 1
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)

    def count_tokens(self, text: str) -> int | None:
        return None


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'rag.db'}"
    else:
        url = request.getfixturevalue("pg_database")
    eng = create_engine(url)
    await migrate(eng)
    if request.param == "postgres":  # one database per session: start each test empty
        from sqlalchemy import text

        async with eng.begin() as conn:
            await conn.execute(text("DELETE FROM documents"))
    yield eng
    await eng.dispose()


async def test_ingest_search_and_delete(engine) -> None:  # noqa: ANN001
    rag = RagService(engine)
    report = await rag.ingest_text("Zorblax report", "# Q4\nThe Q4 revenue of Zorblax Corp was 17.3 million "
                                                      "florins.\n# Staff\nHeadcount grew to 40.", owner=None)
    await rag.ingest_text("Wing notes", "Boundary layers separate on wings at high angles of attack.", None)
    assert report.chunk_count == 2
    hits = await rag.search("What was the Q4 revenue of Zorblax?", None, 5)
    assert hits[0].document_id == report.id and "17.3 million florins" in hits[0].text
    assert hits[0].heading == "Zorblax report › Q4" and hits[0].score > 0
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    stemmed = await rag.search("separating boundary layer", None, 5)  # stems match: separating ~ separate
    assert stemmed and stemmed[0].title == "Wing notes"
    info, chunks = await rag.get(report.id, None)
    assert info.title == "Zorblax report" and [c.heading for c in chunks] == ["Zorblax report › Q4",
                                                                             "Zorblax report › Staff"]
    await rag.delete(report.id, None)
    assert await rag.search("Zorblax revenue", None, 5) == []  # gone from the index too
    with pytest.raises(NotFound):
        await rag.get(report.id, None)
    with pytest.raises(NotFound):
        await rag.delete(report.id, None)


async def test_documents_belong_to_their_owner(engine) -> None:  # noqa: ANN001
    rag = RagService(engine)
    mine = await rag.ingest_text("Alice plan", "The launch code word is marmalade.", owner="key-alice")
    await rag.ingest_text("Bob plan", "The launch code word is porcupine.", owner="key-bob")
    alice = await rag.search("launch code word", "key-alice", 5)
    assert [h.document_id for h in alice] == [mine.id]
    assert [d.id for d in await rag.list("key-alice")] == [mine.id]
    assert len(await rag.search("launch code word", None, 5)) == 2  # admin sees all
    with pytest.raises(NotFound):
        await rag.get(mine.id, "key-bob")
    with pytest.raises(NotFound):
        await rag.delete(mine.id, "key-bob")
    sources = await rag.context_for("launch code", "key-bob")
    assert [s.title for s in sources] == ["Bob plan"] and "porcupine" in sources[0].text


@pytest.mark.parametrize("query", ['"', "NEAR(a b", "* OR AND", "title:x", "(((", "'; DROP TABLE documents; --",
                                   "ünïcödé ✈", "", "   ", "the of and"])
async def test_any_query_text_is_safe(engine, query: str) -> None:  # noqa: ANN001
    rag = RagService(engine)
    await rag.ingest_text("Doc", "Unicode ünïcödé text about the flight of planes.", None)
    hits = await rag.search(query, None, 3)
    assert isinstance(hits, list) and len(hits) <= 3
    assert len(await rag.list(None)) == 1  # nothing was dropped


async def test_dense_and_hybrid_modes(engine) -> None:  # noqa: ANN001
    embedder = HashEmbedder()
    rag = RagService(engine, RagConfig(embedder="none"), embedder=embedder)
    assert rag.modes == ["bm25", "dense", "hybrid"] and rag.default_mode == "hybrid"
    car = await rag.ingest_text("Garage", "My car is red.", owner="k1")
    await rag.ingest_text("Boats", "Sailing boats need wind.", owner="k1")
    await rag.ingest_text("Other car", "Another car is blue.", owner="k2")
    assert await rag.search("automobile", "k1", 3, "bm25") == []  # no shared word
    dense = await rag.search("automobile", "k1", 3, "dense")
    assert dense[0].document_id == car.id and all(h.document_id != "k2" for h in dense)
    assert {h.title for h in dense} <= {"Garage", "Boats"}  # owner filter applies to vectors too
    hybrid = await rag.search("sailing automobile", "k1", 3, "hybrid")
    assert {h.title for h in hybrid[:2]} == {"Garage", "Boats"}  # one from each side, fused
    await rag.delete(car.id, "k1")
    assert all(h.title != "Garage" for h in await rag.search("automobile", "k1", 3, "dense"))


async def test_bm25_only_server_refuses_dense_mode(engine) -> None:  # noqa: ANN001
    rag = RagService(engine)
    with pytest.raises(InvalidRequest):
        await rag.search("x", None, 3, "dense")


@pytest.mark.postgres
async def test_pgvector_availability(pg_database: str) -> None:
    """pgvector is used when the server has it; say so clearly when it does not."""
    from sqlalchemy import text

    eng = create_engine(pg_database)
    try:
        async with eng.connect() as conn:
            available = (await conn.execute(text(
                "SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'"))).scalar_one()
        if not available:
            pytest.skip("pgvector is not installed on this PostgreSQL (no 'vector' in pg_available_extensions): "
                        "dense vectors are stored as float32 bytea and searched exactly in NumPy")
        async with eng.begin() as conn:
            await conn.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
            distance = (await conn.execute(text("SELECT '[1,0]'::vector <=> '[0,1]'::vector"))).scalar_one()
        assert distance == pytest.approx(1.0)
    finally:
        await eng.dispose()
