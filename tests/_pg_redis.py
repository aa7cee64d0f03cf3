"""Postgres schemas and Redis databases for the tests that run the real app (tests/server and
tests/browser): one module, so both suites make and lock them the same way and can run at once.

Postgres and Redis default to 127.0.0.1 (GLASSBOX_TEST_POSTGRES_URL, GLASSBOX_TEST_REDIS_URL
override). Each test session works in a Postgres schema of its own and locks a Redis database
number (the lock is a key in database 0), so parallel sessions never see each other's data.
"""

from __future__ import annotations

import os
import secrets

from redis import Redis
from sqlalchemy import text

from persistence.db import make_engine
from persistence.migrate import upgrade
from persistence.tables import Base

PG_URL = os.environ.get("GLASSBOX_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("GLASSBOX_TEST_REDIS_URL", "redis://127.0.0.1:6379")
REDIS_DBS = range(15, 5, -1)  # candidate database numbers; 5..1 are left to bench/server_bench.py


# ---- Postgres ---------------------------------------------------------------------------------


def schema_url(schema: str) -> str:
    """PG_URL with every connection's search_path set to `schema`."""
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}"


def new_schema_name(prefix: str) -> str:
    """A schema name no other session uses: the prefix, this process and a random tag."""
    return f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"


def _execute(sql: str) -> None:
    engine = make_engine(PG_URL)
    try:
        with engine.begin() as conn:
            conn.execute(text(sql))
    finally:
        engine.dispose()


def create_schema(schema: str) -> None:
    """An empty schema (no tables)."""
    _execute(f'CREATE SCHEMA "{schema}"')


def drop_schema(schema: str) -> None:
    _execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def migrated_schema(prefix: str) -> tuple[str, str]:
    """A new schema with every migration applied; returns (its name, a URL that uses it)."""
    schema = new_schema_name(prefix)
    create_schema(schema)
    url = schema_url(schema)
    engine = make_engine(url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    return schema, url


def empty_tables(url: str) -> None:
    """Every table of the schema behind `url` emptied, identities restarted."""
    engine = make_engine(url)
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    try:
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    finally:
        engine.dispose()


# ---- Redis ------------------------------------------------------------------------------------


def _flush(db: int) -> None:
    conn = Redis.from_url(f"{REDIS_URL}/{db}")
    try:
        conn.flushdb()
    finally:
        conn.close()


def lock_redis_db() -> int:
    """Lock a Redis database number no other test session holds now, and empty it."""
    lock = Redis.from_url(f"{REDIS_URL}/0")
    try:
        for db in REDIS_DBS:
            if lock.set(f"glassbox-test-lock:{db}", os.getpid(), nx=True, ex=3600):
                _flush(db)
                return db
    finally:
        lock.close()
    first, last = min(REDIS_DBS), max(REDIS_DBS)
    raise RuntimeError(f"no free Redis database for tests (all of {first}-{last} are locked)")


def unlock_redis_db(db: int) -> None:
    """Empty the database and release its lock."""
    _flush(db)
    lock = Redis.from_url(f"{REDIS_URL}/0")
    try:
        lock.delete(f"glassbox-test-lock:{db}")
    finally:
        lock.close()
