"""messages.parts: every part of a message (text, images, tool calls and results, reasoning)

``content`` keeps the text (lists, titles and search read it); ``parts`` is NULL for a message
that is text alone, so every older row reads back as one text part.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("parts", sa.JSON, nullable=True))


def downgrade() -> None:
    op.drop_column("messages", "parts")
