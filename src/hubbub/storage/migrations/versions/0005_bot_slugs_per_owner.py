"""bot slugs are unique per owner, not across all keys

A user key's bot slugs were global: another key creating the same slug got 409, learning that
the bot existed (issue 22). Now a slug is unique among one owner's bots (admin-made, global bots
being one more owner), enforced by a unique index on (coalesce(owner, ''), slug).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_INDEX = "ux_bots_owner_slug"


def _bots_without_unique_slug() -> sa.Table:
    """The bots table as 0001 made it, minus the UNIQUE on ``slug`` (SQLite's copy source)."""
    return sa.Table(
        "bots",
        sa.MetaData(),
        sa.Column("uid", sa.String(36), primary_key=True),
        sa.Column("slug", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("system_prompt", sa.Text, nullable=False),
        sa.Column("model", sa.String(255), nullable=True),
        sa.Column("temperature", sa.Float, nullable=True),
        sa.Column("max_tokens", sa.Integer, nullable=True),
        sa.Column("top_p", sa.Float, nullable=True),
        sa.Column("rag_enabled", sa.Boolean, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("owner", sa.String(64), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        names = bind.execute(sa.text(
            "SELECT conname FROM pg_constraint WHERE conrelid = 'bots'::regclass AND contype = 'u'")).scalars()
        for name in list(names):
            op.drop_constraint(name, "bots", type_="unique")
    else:  # SQLite keeps the UNIQUE in the table's definition: copy the table without it
        with op.batch_alter_table("bots", recreate="always", copy_from=_bots_without_unique_slug()):
            pass
    op.create_index(_INDEX, "bots", [sa.text("coalesce(owner, '')"), "slug"], unique=True)
    op.create_index("ix_bots_slug", "bots", ["slug"])


def downgrade() -> None:
    op.drop_index("ix_bots_slug", "bots")
    op.drop_index(_INDEX, "bots")
    with op.batch_alter_table("bots") as batch:
        batch.create_unique_constraint("bots_slug_key", ["slug"])
