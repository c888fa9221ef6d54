"""Alembic environment: migrates the connection that ``sluice.store.migrations`` puts in the config."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from sluice.store.schema import metadata


def run_migrations_online() -> None:
    connection = context.config.attributes["connection"]
    if not isinstance(connection, Connection):
        raise TypeError("Run store migrations through sluice.store.migrations, which passes a connection.")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("The store's migrations run online only (on a connection).")
run_migrations_online()
