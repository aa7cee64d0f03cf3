"""The whole Glassbox app for browser tests: uvicorn serving `create_app(settings)` in a thread of
this process, a real Postgres schema and Redis database of its own, and a real RQ worker process
(`python -m worker`, what `glassbox worker` runs) tracing the tiny random model.

Postgres and Redis default to 127.0.0.1 (GLASSBOX_TEST_POSTGRES_URL, GLASSBOX_TEST_REDIS_URL
override); the schema and the locked Redis database come from tests/_pg_redis.py, shared with
tests/server, so both suites can run at once.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
from _pg_redis import REDIS_URL

from persistence.settings import Settings

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"
TEXAS = "The capital of Texas is"  # the prompt of the session's graph (fixture texas_graph)
ARTIFACTS = REPO / "test-artifacts" / "browser"


def wait_until(predicate: Callable[[], Any], timeout_s: float, what: str, interval_s: float = 0.1) -> Any:
    """Poll `predicate` until it returns something truthy; fail naming `what`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s} s")
        time.sleep(interval_s)


def browser_settings(database_url: str, redis_db: int) -> Settings:
    """Production mode (Postgres + Redis/RQ) with test-sized costs and limits."""
    tag = secrets.token_hex(4)
    return Settings(
        database_url=database_url,
        redis_url=f"{REDIS_URL}/{redis_db}",
        queue_name=f"gbx-browser-{tag}",
        redis_prefix=f"gbx-browser-{tag}:",
        secret_key="browser-tests",
        cookie_secure=False,  # plain http on 127.0.0.1
        password_hash_time_cost=1,
        password_hash_memory_kib=8,
        job_heartbeat_interval_s=0.5,
        job_heartbeat_timeout_s=30.0,
        maintenance_interval_s=1.0,
        max_prompt_tokens=16,
        auth_rate_limit_per_address=0,
        trace_rate_limit_per_user=0,
        trace_rate_limit_per_address=0,
        preview_rate_limit_per_address=0,
        device="cpu",
        preview_device="cpu",
    )


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes `Settings()` in the worker process equal to `settings`."""
    env = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if name == "secret_key":
            value = settings.secret_key.get_secret_value() if settings.secret_key else ""
        env[f"GLASSBOX_{name.upper()}"] = str(value)
    return env


# ---- the running app ------------------------------------------------------------------------


@dataclass
class RunningApp:
    """uvicorn + worker process; `base` is the site's URL."""

    settings: Settings
    base: str
    server: Any
    thread: threading.Thread
    sock: socket.socket
    worker: subprocess.Popen[bytes] | None = None
    worker_log: Path | None = None
    clients: list[httpx.Client] = field(default_factory=list)

    def client(self, username: str | None = None) -> httpx.Client:
        """An HTTP client of the site, logged in as `username` (CSRF header set) if given."""
        client = httpx.Client(base_url=self.base, timeout=30)
        self.clients.append(client)
        if username is not None:
            response = client.post("/api/auth/login", json={"username": username, "password": PASSWORD})
            assert response.status_code == 200, response.text
            client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
        return client

    def register(self, username: str) -> httpx.Client:
        response = httpx.post(
            f"{self.base}/api/auth/register", json={"username": username, "password": PASSWORD}, timeout=30
        )
        assert response.status_code == 201, response.text
        return self.client(username)

    def wait_for_job(self, client: httpx.Client, job_id: str, status: str, timeout_s: float = 120) -> dict:
        def check() -> dict | None:
            job = client.get(f"/api/jobs/{job_id}").json()
            if job["status"] != status and job["status"] in ("done", "failed", "cancelled"):
                raise AssertionError(
                    f"job {job_id} ended {job['status']}: {job['error']}\n{self.worker_tail()}"
                )
            return job if job["status"] == status else None

        return wait_until(check, timeout_s, f"job {job_id} {status}", interval_s=0.2)

    @contextmanager
    def worker_paused(self) -> Iterator[None]:
        """Freeze the worker process (SIGSTOP) so a job stays queued while a page shows it."""
        assert self.worker is not None and self.worker.poll() is None, "the worker is not running"
        os.kill(self.worker.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(self.worker.pid, signal.SIGCONT)

    def worker_tail(self, lines: int = 40) -> str:
        if self.worker_log is None or not self.worker_log.exists():
            return ""
        return "\n".join(self.worker_log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        for client in self.clients:
            client.close()
        if self.worker is not None and self.worker.poll() is None:
            self.worker.terminate()
            try:
                self.worker.wait(15)
            except subprocess.TimeoutExpired:
                self.worker.kill()
                self.worker.wait(10)
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.sock.close()


def start_app(settings: Settings) -> RunningApp:
    """Serve the app on a free port of 127.0.0.1 and wait until it answers."""
    import uvicorn

    from server.app import create_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning", lifespan="on"))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="gbx-browser-app", daemon=True
    )
    thread.start()
    wait_until(lambda: server.started or not thread.is_alive(), 60, "the app starts")
    if not thread.is_alive():
        raise RuntimeError("the app did not start (see the log above)")
    return RunningApp(settings=settings, base=base, server=server, thread=thread, sock=sock)


def start_worker(app: RunningApp, log_dir: Path) -> None:
    """`python -m worker` with the app's settings; its output goes to worker.log."""
    env = {**os.environ, **settings_env(app.settings)}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    app.worker_log = log_dir / "worker.log"
    out: IO[bytes] = app.worker_log.open("wb")
    app.worker = subprocess.Popen(
        [sys.executable, "-m", "worker"], env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT
    )
    out.close()


def seed(app: RunningApp, model_dir: Path, tc_dir: Path) -> httpx.Client:
    """The first account (an administrator) registers the tiny model and its transcoders."""
    admin = app.register("admin")
    r = admin.post(
        "/api/models", json={"name": "tiny", "source": str(model_dir), "display_name": "Tiny Llama"}
    )
    assert r.status_code == 201, r.text
    body = {
        "name": "tc",
        "source": str(tc_dir),
        "is_default": True,
        "n_layers": 2,
        "description": "random PLT",
    }
    r = admin.post("/api/models/tiny/transcoder-sets", json=body)
    assert r.status_code == 201, r.text
    return admin


def register_model(
    admin: httpx.Client, name: str, model_dir: Path, tc_dir: Path, *, n_layers: int, tc_name: str = "tc"
) -> None:
    """Another model and its default transcoder set, for one test module (see disable_models)."""
    r = admin.post("/api/models", json={"name": name, "source": str(model_dir)})
    assert r.status_code == 201, r.text
    body = {"name": tc_name, "source": str(tc_dir), "is_default": True, "n_layers": n_layers}
    r = admin.post(f"/api/models/{name}/transcoder-sets", json=body)
    assert r.status_code == 201, r.text


def disable_models(app: RunningApp, names: list[str]) -> None:
    """Take models a test module registered off the site again (the API has no way to), so the
    modules after it see the session's one model (the /new page selects the first by name)."""
    from sqlalchemy import update

    from persistence.db import make_engine
    from persistence.tables import ModelEntry

    engine = make_engine(app.settings.database_url)
    try:
        with engine.begin() as conn:
            conn.execute(update(ModelEntry).where(ModelEntry.name.in_(names)).values(enabled=False))
    finally:
        engine.dispose()
