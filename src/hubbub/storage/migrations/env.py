"""Alembic environment: hubbub runs migrations itself at start (``storage/db.py``)
and hands the open connection over in ``config.attributes["connection"]``."""

from alembic import context

from hubbub.storage.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only the programmatic path is supported
    raise RuntimeError("hubbub migrations run through hubbub.storage.db.migrate()")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
