"""responses: the OpenAI Responses API's stored responses (docs/api-decisions.md, "Responses")

A stored response is a turn of its own conversation (``conversations.id`` = the response id,
``kind = 'response'``): its input messages and its answer are ``messages`` rows, as in any stored
chat. This table adds what the Responses API needs around that turn: the parent pointer
(``previous_id``: chains, and branches where two responses continue one parent), the request's
settings as sent (echoed by every read), the input and output items in their wire form,
status, usage, and when the row expires (the retention setting).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "responses",
        sa.Column("id", sa.String(64), sa.ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("owner", sa.String(64), nullable=True),
        sa.Column("previous_id", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("background", sa.Boolean, nullable=False, default=False),
        sa.Column("request", sa.JSON, nullable=False),
        sa.Column("input_items", sa.JSON, nullable=False),
        sa.Column("output", sa.JSON, nullable=True),
        sa.Column("usage", sa.JSON, nullable=True),
        sa.Column("error", sa.JSON, nullable=True),
        sa.Column("incomplete_reason", sa.String(32), nullable=True),
        sa.Column("channel", sa.String(64), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("completed_at", sa.BigInteger, nullable=True),
        sa.Column("expires_at", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_responses_previous", "responses", ["previous_id"])
    op.create_index("ix_responses_expires", "responses", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_responses_expires", "responses")
    op.drop_index("ix_responses_previous", "responses")
    op.drop_table("responses")
