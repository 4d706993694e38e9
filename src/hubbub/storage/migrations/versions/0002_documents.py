"""documents, their chunks and vectors, and the full-text index (FTS5 or tsvector)

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "documents",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("owner", sa.String(64), nullable=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("filename", sa.Text, nullable=True),
        sa.Column("media_type", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.Integer, nullable=False),
        sa.Column("chunk_count", sa.Integer, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_documents_owner_created", "documents", ["owner", "created_at"])
    op.create_table(
        "document_chunks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("document_id", sa.String(64), sa.ForeignKey("documents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("ordinal", sa.Integer, nullable=False),
        sa.Column("heading", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("tokens", sa.Integer, nullable=False),
    )
    op.create_index("ix_document_chunks_document", "document_chunks", ["document_id", "ordinal"])
    op.create_table(
        "chunk_vectors",
        sa.Column("chunk_id", sa.Integer, sa.ForeignKey("document_chunks.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("model", sa.String(255), primary_key=True),
        sa.Column("document_id", sa.String(64), nullable=False),
        sa.Column("vector", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_chunk_vectors_model", "chunk_vectors", ["model"])
    if op.get_bind().dialect.name == "postgresql":
        # Stemmed English full text of heading + text, kept up to date by PostgreSQL itself.
        op.execute(
            "ALTER TABLE document_chunks ADD COLUMN tsv tsvector GENERATED ALWAYS AS "
            "(to_tsvector('english', heading || ' ' || text)) STORED"
        )
        op.execute("CREATE INDEX ix_document_chunks_tsv ON document_chunks USING GIN (tsv)")
    else:
        # One column (heading + text) so BM25 sees each chunk as one field; rowid = chunk id.
        # The store writes and deletes its rows in the same transaction as the chunks.
        op.execute("CREATE VIRTUAL TABLE document_chunks_fts USING fts5(body, tokenize='porter unicode61')")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.execute("DROP TABLE IF EXISTS document_chunks_fts")
    op.drop_table("chunk_vectors")
    op.drop_table("document_chunks")
    op.drop_table("documents")
