"""Alembic environment: migrates the database of DATABASE_URL (or a connection handed in).

Callers in code (persistence/migrate.py, the tests) pass an open connection in
`config.attributes["connection"]`; the `alembic` command line uses the settings.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from persistence.db import make_engine
from persistence.settings import Settings
from persistence.tables import Base

target_metadata = Base.metadata


def _configure_and_run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _configure_and_run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url") or Settings().resolved_database_url()
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            _configure_and_run(conn)
    finally:
        engine.dispose()


def run_migrations_offline() -> None:
    url = context.config.get_main_option("sqlalchemy.url") or Settings().resolved_database_url()
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
