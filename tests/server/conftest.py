"""Fixtures for server tests: real Postgres (a schema per session, tables emptied per test),
real Redis (a database reserved for this session; a queue and key prefix per test), SQLite for
the embedded mode, and running stacks of both kinds.

Postgres and Redis default to 127.0.0.1 (GLASSBOX_TEST_POSTGRES_URL, GLASSBOX_TEST_REDIS_URL
override; see tests/_pg_redis.py, shared with tests/browser). They are required: these tests
fail, not skip, without them.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _pg_redis import (
    REDIS_URL,
    create_schema,
    drop_schema,
    empty_tables,
    lock_redis_db,
    migrated_schema,
    schema_url,
    unlock_redis_db,
)
from gbx_stack import Stack

from persistence.db import make_engine
from persistence.migrate import upgrade
from persistence.settings import Settings


@pytest.fixture
def fresh_schema() -> Iterator[Callable[[], str]]:
    """Makes empty Postgres schemas (dropped afterwards); returns their URLs."""
    made: list[str] = []

    def make() -> str:
        schema = f"gbx_test_{secrets.token_hex(4)}"
        create_schema(schema)
        made.append(schema)
        return schema_url(schema)

    yield make
    for schema in made:
        drop_schema(schema)


@pytest.fixture(scope="session")
def pg_session_url() -> Iterator[str]:
    schema, url = migrated_schema("gbx_test")
    yield url
    drop_schema(schema)


@pytest.fixture
def pg_url(pg_session_url: str) -> str:
    """The session's migrated schema, every table emptied."""
    empty_tables(pg_session_url)
    return pg_session_url


@pytest.fixture(scope="session")
def redis_db() -> Iterator[int]:
    """A Redis database number no other test session uses now (lock key in db 0)."""
    db = lock_redis_db()
    yield db
    unlock_redis_db(db)


@pytest.fixture
def redis_url(redis_db: int) -> str:
    return f"{REDIS_URL}/{redis_db}"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "home"
    monkeypatch.setenv("GLASSBOX_HOME", str(path))
    return path


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'glassbox.sqlite3'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


def fast_settings(**overrides: Any) -> Settings:
    """Settings for tests: cheap password hashes, second-scale job timings, unique queue."""
    tag = secrets.token_hex(4)
    values: dict[str, Any] = {
        "redis_url": None,
        "queue_name": f"gbx-test-{tag}",
        "redis_prefix": f"gbx-test-{tag}:",
        "secret_key": "test-secret",
        "password_hash_time_cost": 1,
        "password_hash_memory_kib": 8,
        "job_heartbeat_interval_s": 0.2,
        "job_heartbeat_timeout_s": 5.0,  # 2 s was reaped on a starved (niced, loaded) machine
        "maintenance_interval_s": 0.3,
        "requeue_grace_s": 0.5,
        "max_prompt_tokens": 16,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def make_stack(home: Path) -> Iterator[Callable[..., Stack]]:
    stacks: list[Stack] = []

    def make(database_url: str, redis_url: str | None = None, **kwargs: Any) -> Stack:
        tracer = kwargs.pop("tracer", None)
        real_engine = kwargs.pop("real_engine", False)
        settings = fast_settings(database_url=database_url, redis_url=redis_url, **kwargs)
        stack = Stack(settings, tracer=tracer, real_engine=real_engine)
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.close()


@pytest.fixture(params=["embedded", "production"])
def stack_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def any_stack(
    stack_kind: str, request: pytest.FixtureRequest, make_stack: Callable[..., Stack]
) -> Callable[..., Stack]:
    """Build a stack of the parametrised kind: SQLite + threads, or Postgres + Redis/RQ."""

    def make(**kwargs: Any) -> Stack:
        if stack_kind == "embedded":
            return make_stack(request.getfixturevalue("sqlite_url"), None, **kwargs)
        return make_stack(request.getfixturevalue("pg_url"), request.getfixturevalue("redis_url"), **kwargs)

    return make


def _seeded(stack: Stack) -> Stack:
    stack.register(stack.client, "admin")
    stack.login(stack.client, "admin")
    stack.seed_registry(stack.client)
    return stack


@pytest.fixture
def pg_stack(pg_url: str, redis_url: str, make_stack: Callable[..., Stack]) -> Stack:
    """Postgres + Redis stack with a seeded registry and an admin client (`stack.client`)."""
    return _seeded(make_stack(pg_url, redis_url))


@pytest.fixture(scope="module")
def shared_pg_stack(
    pg_session_url: str, redis_db: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """Like pg_stack, but one per test module: for tests that only read or are refused."""
    empty_tables(pg_session_url)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GLASSBOX_HOME", str(tmp_path_factory.mktemp("home")))
        stack = _seeded(
            Stack(fast_settings(database_url=pg_session_url, redis_url=f"{REDIS_URL}/{redis_db}"))
        )
        yield stack
        stack.close()
