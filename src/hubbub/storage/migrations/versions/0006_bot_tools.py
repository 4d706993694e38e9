"""bots carry a default tool list

A bot may carry default tools (OpenAI function tools), used when a request names none, as its
system prompt is used (issue 16, docs/tool-calling.md). Stored as JSON: a list of
``{"name", "description", "parameters", "strict"}``; NULL is no tools.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bots") as batch:
        batch.add_column(sa.Column("tools", sa.JSON(none_as_null=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("bots") as batch:
        batch.drop_column("tools")
