"""Documents and chunks in SQL, and BM25-style full-text search over them.

SQLite: an FTS5 table (porter stemming, unicode61) ranked by FTS5's ``bm25()`` (k1=1.2, b=0.75).
PostgreSQL: a generated ``tsvector`` (english) with a GIN index, ranked by ``ts_rank_cd``
(cover density, normalised by document length) — PostgreSQL has no BM25 built in.
Queries are free text: their words are OR-ed (any word may match, rarer words weigh more),
so no user input is ever parsed as query syntax.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hubbub.core.ids import new_id, now_ms
from hubbub.rag.chunk import Chunk
from hubbub.rag.tables import chunk_vectors, document_chunks, documents

_WORD = re.compile(r"[^\W_]+")
MAX_QUERY_TERMS = 64


@dataclass
class DocumentInfo:
    id: str
    title: str
    owner: str | None
    filename: str | None
    media_type: str
    size_bytes: int
    chunk_count: int
    created_at: int


@dataclass
class Hit:
    chunk_id: int
    document_id: str
    title: str
    heading: str
    text: str
    score: float  # higher is better


# Function words dropped from queries (not from the index): in most chunks, they weigh next to
# nothing in BM25 but make every chunk a match to score. PostgreSQL's english config drops its own.
STOPWORDS = frozenset(
    "a an and are as at be been but by can could did do does for from had has have how i if in into is it "
    "its me my no not of on or our she should so such than that the their them then there these they this "
    "to was we were what when where which while who whom why will with would you your".split()
)


def query_terms(query: str) -> list[str]:
    """The words of a free-text query, lower-cased, in order, without repeats or function words
    (unless it has nothing else)."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(query.lower()):
        seen.setdefault(word, None)
    words = [w for w in seen if w not in STOPWORDS] or list(seen)
    return words[:MAX_QUERY_TERMS]


def fts_body(chunk: Chunk) -> str:
    return f"{chunk.heading}\n{chunk.text}"


def _owned(column: Any, owner: str | None) -> Any:
    return True if owner is None else column == owner


def _info(row: Any) -> DocumentInfo:
    return DocumentInfo(row.id, row.title, row.owner, row.filename, row.media_type, row.size_bytes,
                        row.chunk_count, row.created_at)


class DocumentStore:
    """Rows in, core-ish dataclasses out. ``owner=None`` means any owner (admin, open server)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"

    async def add(
        self, title: str, chunks: list[Chunk], *, owner: str | None, filename: str | None,
        media_type: str, size_bytes: int,
    ) -> tuple[DocumentInfo, list[int]]:
        """Store a document and its chunks (and index them) in one transaction; returns chunk ids."""
        info = DocumentInfo(new_id("doc_"), title, owner, filename, media_type, size_bytes, len(chunks), now_ms())
        async with self.engine.begin() as conn:
            await conn.execute(insert(documents).values(
                id=info.id, owner=owner, title=title, filename=filename, media_type=media_type,
                size_bytes=size_bytes, chunk_count=len(chunks), created_at=info.created_at))
            ids: list[int] = []
            for chunk in chunks:  # one by one: the ids are needed for the FTS rows and vectors
                result = await conn.execute(insert(document_chunks).values(
                    document_id=info.id, ordinal=chunk.ordinal, heading=chunk.heading, text=chunk.text,
                    tokens=chunk.tokens).returning(document_chunks.c.id))
                ids.append(result.scalar_one())
            if not self.postgres and chunks:
                await conn.execute(
                    text("INSERT INTO document_chunks_fts(rowid, body) VALUES (:id, :body)"),
                    [{"id": i, "body": fts_body(c)} for i, c in zip(ids, chunks)],
                )
        return info, ids

    async def get(self, doc_id: str, owner: str | None) -> DocumentInfo | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(documents).where(
                documents.c.id == doc_id, _owned(documents.c.owner, owner)))).first()
        return _info(row) if row else None

    async def list(self, owner: str | None, limit: int = 1000, offset: int = 0) -> list[DocumentInfo]:
        query = (select(documents).where(_owned(documents.c.owner, owner))
                 .order_by(documents.c.created_at.desc(), documents.c.id).limit(limit).offset(offset))
        async with self.engine.connect() as conn:
            return [_info(r) for r in (await conn.execute(query)).all()]

    async def count(self, owner: str | None = None) -> int:
        async with self.engine.connect() as conn:
            query = select(func.count()).select_from(documents).where(_owned(documents.c.owner, owner))
            return int((await conn.execute(query)).scalar_one())

    async def chunks(self, doc_id: str) -> list[tuple[int, Chunk]]:
        query = select(document_chunks).where(document_chunks.c.document_id == doc_id).order_by(
            document_chunks.c.ordinal)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [(r.id, Chunk(r.ordinal, r.heading, r.text, r.tokens)) for r in rows]

    async def delete(self, doc_id: str, owner: str | None) -> bool:
        async with self.engine.begin() as conn:
            found = (await conn.execute(select(documents.c.id).where(
                documents.c.id == doc_id, _owned(documents.c.owner, owner)))).first()
            if found is None:
                return False
            if not self.postgres:  # FTS5 rows are not covered by the foreign key's cascade
                await conn.execute(text(
                    "DELETE FROM document_chunks_fts WHERE rowid IN "
                    "(SELECT id FROM document_chunks WHERE document_id = :d)"), {"d": doc_id})
            await conn.execute(delete(chunk_vectors).where(chunk_vectors.c.document_id == doc_id))
            await conn.execute(delete(document_chunks).where(document_chunks.c.document_id == doc_id))
            await conn.execute(delete(documents).where(documents.c.id == doc_id))
        return True

    async def search(self, query: str, owner: str | None, k: int = 5) -> list[Hit]:
        """The ``k`` best chunks for ``query`` by full-text rank (empty when no word matches)."""
        terms = query_terms(query)
        if not terms:
            return []
        async with self.engine.connect() as conn:
            if self.postgres:
                return await self._search_pg(conn, terms, owner, k)
            return await self._search_sqlite(conn, terms, owner, k)

    async def _search_sqlite(self, conn: AsyncConnection, terms: list[str], owner: str | None, k: int) -> list[Hit]:
        match = " OR ".join(f'"{t}"' for t in terms)  # each term a quoted string: never FTS syntax
        owner_sql = "" if owner is None else "AND d.owner = :owner"
        sql = text(f"""
            SELECT c.id, c.document_id, d.title, c.heading, c.text, f.rank AS rank
            FROM (SELECT rowid, bm25(document_chunks_fts) AS rank FROM document_chunks_fts
                  WHERE document_chunks_fts MATCH :match
                  {"ORDER BY rank LIMIT :k" if owner is None else ""}) AS f
            JOIN document_chunks c ON c.id = f.rowid
            JOIN documents d ON d.id = c.document_id
            WHERE 1 = 1 {owner_sql}
            ORDER BY f.rank, c.id LIMIT :k""")
        params: dict[str, Any] = {"match": match, "k": k, "owner": owner}
        rows = (await conn.execute(sql, params)).all()
        return [Hit(r.id, r.document_id, r.title, r.heading, r.text, -float(r.rank)) for r in rows]

    async def _search_pg(self, conn: AsyncConnection, terms: list[str], owner: str | None, k: int) -> list[Hit]:
        # websearch_to_tsquery never raises on odd input; "a or b" is its OR.
        owner_sql = "" if owner is None else "AND d.owner = :owner"
        sql = text(f"""
            SELECT c.id, c.document_id, d.title, c.heading, c.text, ts_rank_cd(c.tsv, q, 1) AS rank
            FROM document_chunks c JOIN documents d ON d.id = c.document_id,
                 websearch_to_tsquery('english', :q) AS q
            WHERE c.tsv @@ q {owner_sql}
            ORDER BY rank DESC, c.id LIMIT :k""")
        params: dict[str, Any] = {"q": " or ".join(terms), "k": k, "owner": owner}
        rows = (await conn.execute(sql, params)).all()
        return [Hit(r.id, r.document_id, r.title, r.heading, r.text, float(r.rank)) for r in rows]
