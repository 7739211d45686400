"""Alembic environment: runs migrations on the connection Shipyard hands it."""

from __future__ import annotations

from alembic import context

from environments.registry.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through environments.registry.open_database()")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
