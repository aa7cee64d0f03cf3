"""Alembic migrations: upgrade and downgrade on Postgres, and no drift from the tables."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from persistence import migrate
from persistence.db import make_engine
from persistence.tables import Base


def _tables(engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def test_upgrade_downgrade_upgrade_on_postgres(fresh_schema):
    engine = make_engine(fresh_schema())
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()
    assert _tables(engine) == set(Base.metadata.tables) | {"alembic_version"}
    migrate.downgrade(engine, "base")
    assert migrate.current_revision(engine) is None
    assert _tables(engine) <= {"alembic_version"}
    migrate.upgrade(engine)
    assert _tables(engine) == set(Base.metadata.tables) | {"alembic_version"}
    engine.dispose()


def test_models_and_migrations_do_not_drift_on_postgres(fresh_schema):
    engine = make_engine(fresh_schema())
    migrate.upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
        assert diff == [], diff
        command.check(migrate.alembic_config(conn))  # what `alembic check` runs
    engine.dispose()


def test_models_and_migrations_do_not_drift_on_sqlite(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'm.sqlite3'}")
    migrate.upgrade(engine)
    with engine.connect() as conn:
        command.check(migrate.alembic_config(conn))
    migrate.downgrade(engine, "base")
    assert _tables(engine) <= {"alembic_version"}
    engine.dispose()


def test_drift_is_detected(fresh_schema):
    """The check above can fail: a column the migrations lack shows up."""
    from sqlalchemy import Column, Integer, MetaData, Table

    engine = make_engine(fresh_schema())
    migrate.upgrade(engine)
    extra = MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(extra)
    Table("users", extra, Column("shoe_size", Integer), extend_existing=True)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), extra)
    assert [d[0] for d in diff] == ["add_column"] and diff[0][3].name == "shoe_size"
    engine.dispose()
