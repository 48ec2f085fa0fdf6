"""Alembic's environment: migrations run on the connection briefcast.schema hands over."""

from alembic import context

from briefcast.db import metadata
from briefcast.schema import import_table_modules

import_table_modules()
connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=True,  # SQLite changes columns by copying the table
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
