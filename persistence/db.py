"""Engine and session factory, built from settings by the caller (never at import time)."""

from __future__ import annotations

import logging
import zlib
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Table, create_engine, event, false, func, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

SessionFactory = sessionmaker[Session]


def make_engine(
    url: str, *, pool_size: int = 10, max_overflow: int = 20, pool_timeout_s: float = 30.0
) -> Engine:
    """An engine for `url` holding at most `pool_size + max_overflow` connections; a caller
    waits `pool_timeout_s` for a free one, then gets sqlalchemy.exc.TimeoutError. SQLite gets
    WAL, foreign keys and a busy timeout for threads."""
    parsed = make_url(url)
    pool = {"pool_size": pool_size, "max_overflow": max_overflow, "pool_timeout": pool_timeout_s}
    if parsed.get_backend_name() == "sqlite":
        in_memory = not parsed.database or parsed.database == ":memory:"
        if not in_memory:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **({} if in_memory else pool)
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, **pool)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def serialize_on(session: Session, table: Table) -> None:
    """Make this transaction the only one past this point for `table` until it ends, so a
    read-then-write (count the users, then add one) cannot interleave with another. Postgres:
    a transaction-level advisory lock (only other callers wait; plain reads and writes pass);
    SQLite: the database write lock, taken by an UPDATE that matches no row."""
    if session.get_bind().dialect.name == "postgresql":
        key = zlib.crc32(f"glassbox:{table.name}".encode())
        session.execute(select(func.pg_advisory_xact_lock(key)))
        return
    pk = next(iter(table.primary_key.columns))
    session.execute(update(table).where(false()).values({pk.name: pk}))


def make_sessionmaker(engine: Engine) -> SessionFactory:
    return sessionmaker(engine, expire_on_commit=False)


def ping(engine: Engine) -> None:
    """Raise if the database cannot answer a trivial query."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
