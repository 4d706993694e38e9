"""Document tables (migration 0002). The full-text index is dialect-specific and lives only in
the migration: an FTS5 table ``document_chunks_fts`` on SQLite, a generated ``tsv`` column with a
GIN index on PostgreSQL."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, LargeBinary, String, Table, Text

from hubbub.storage.tables import metadata

documents = Table(
    "documents",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("owner", String(64), nullable=True),
    Column("title", Text, nullable=False),
    Column("filename", Text, nullable=True),
    Column("media_type", String(64), nullable=False),
    Column("size_bytes", Integer, nullable=False),
    Column("chunk_count", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_documents_owner_created", "owner", "created_at"),
)

document_chunks = Table(
    "document_chunks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("document_id", String(64), ForeignKey("documents.id", ondelete="CASCADE"), nullable=False),
    Column("ordinal", Integer, nullable=False),
    Column("heading", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("tokens", Integer, nullable=False),
    Index("ix_document_chunks_document", "document_id", "ordinal"),
)

chunk_vectors = Table(
    "chunk_vectors",
    metadata,
    Column("chunk_id", Integer, ForeignKey("document_chunks.id", ondelete="CASCADE"), primary_key=True),
    Column("model", String(255), primary_key=True),
    Column("document_id", String(64), nullable=False),
    Column("vector", LargeBinary, nullable=False),  # float32 little-endian (sqlite-vec's format)
    Index("ix_chunk_vectors_model", "model"),
)
