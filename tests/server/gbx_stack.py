"""A running server for tests: app + test clients + a way to run the queued jobs.

Two flavours, same interface:
- embedded: SQLite file, jobs run by worker threads in the app;
- production: real Postgres (own schema) and real Redis (own queue and key prefix); jobs run
  by a real RQ `GlassboxWorker` in burst mode in this process (`process_jobs`), or by worker
  subprocesses (`start_worker_process`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from gbx_fakes import FakeTracer, fake_cache
from sqlalchemy import select

from persistence.settings import Settings
from persistence.tables import Job, JobStatus
from server.app import create_app
from worker.rq_worker import run_worker

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
BASE_URL = "https://testserver"
PASSWORD = "correct horse battery"


class Stack:
    def __init__(self, settings: Settings, *, tracer: Any = None, real_engine: bool = False):
        """`real_engine`: glassbox itself traces and tokenizes (no fakes)."""
        self.settings = settings
        self.tracer = None if real_engine else (tracer or FakeTracer())
        preview_cache = None if real_engine else fake_cache()
        self.app = create_app(settings, tracer=self.tracer, preview_cache=preview_cache)
        self.services = self.app.state.services
        self.exit = ExitStack()
        self.client = self.exit.enter_context(TestClient(self.app, base_url=BASE_URL))
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def uses_redis(self) -> bool:
        return self.settings.redis_url is not None

    def close(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        self.exit.close()

    # ---- clients and accounts --------------------------------------------------------------

    def new_client(self, **headers: str) -> TestClient:
        """Another browser (own cookies), sharing the running app."""
        client = TestClient(self.app, base_url=BASE_URL, headers=headers)
        return client

    def register(self, client: TestClient, username: str) -> dict[str, Any]:
        response = client.post("/api/auth/register", json={"username": username, "password": PASSWORD})
        assert response.status_code == 201, response.text
        return response.json()

    def login(self, client: TestClient, username: str) -> str:
        """Log `client` in; CSRF header set for its later writes. Returns the CSRF token."""
        response = client.post("/api/auth/login", json={"username": username, "password": PASSWORD})
        assert response.status_code == 200, response.text
        token = response.json()["csrf_token"]
        client.headers["X-CSRF-Token"] = token
        return token

    def user_client(self, username: str) -> TestClient:
        client = self.new_client()
        self.register(client, username)
        self.login(client, username)
        return client

    def seed_registry(
        self,
        admin: TestClient,
        *,
        n_layers: int | None = 4,
        model: str = "fake://tiny",
        tc: str = "fake://tc",
    ) -> None:
        """Model `tiny` with transcoder set `tc` (default)."""
        r = admin.post("/api/models", json={"name": "tiny", "source": model})
        assert r.status_code == 201, r.text
        body = {"name": "tc", "source": tc, "is_default": True, "n_layers": n_layers}
        r = admin.post("/api/models/tiny/transcoder-sets", json=body)
        assert r.status_code == 201, r.text

    def submit(self, client: TestClient, prompt: str, **extra: Any) -> dict[str, Any]:
        response = client.post("/api/traces", json={"model": "tiny", "prompt": prompt, **extra})
        assert response.status_code == 202, response.text
        return response.json()

    # ---- running jobs ----------------------------------------------------------------------

    def process_jobs(self, timeout_s: float = 60.0) -> None:
        """Run every queued job to the end (RQ burst worker, or wait for the threads)."""
        if self.uses_redis:
            run_worker(
                self.settings, tracer=self.tracer, name=f"test-burst-{time.monotonic_ns()}", burst=True
            )
            return
        self.wait_until(lambda: self.count_jobs(JobStatus.QUEUED, JobStatus.RUNNING) == 0, timeout_s)

    def count_jobs(self, *statuses: JobStatus) -> int:
        with self.services.sessions() as session:
            return len(session.scalars(select(Job.id).where(Job.status.in_(statuses))).all())

    def job(self, client: TestClient, job_id: str) -> dict[str, Any]:
        response = client.get(f"/api/jobs/{job_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def wait_for_status(self, client: TestClient, job_id: str, status: str, timeout_s: float = 60.0) -> dict:
        self.wait_until(lambda: self.job(client, job_id)["status"] == status, timeout_s)
        return self.job(client, job_id)

    @staticmethod
    def wait_until(predicate: Any, timeout_s: float, interval_s: float = 0.05) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {timeout_s} s")
            time.sleep(interval_s)

    def start_worker_process(
        self, *, step_delay_s: float = 0.0, steps: int = 3, real_engine: bool = False
    ) -> subprocess.Popen[bytes]:
        """A real `GlassboxWorker` in its own process, same settings; the fake tracer unless
        `real_engine` (then it is `python -m worker`, what `glassbox worker` runs)."""
        env = {**os.environ, **settings_env(self.settings)}
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(HERE), env.get("PYTHONPATH", "")])
        env["GBX_FAKE_STEP_DELAY_S"] = str(step_delay_s)
        env["GBX_FAKE_STEPS"] = str(steps)
        command = ["-m", "worker"] if real_engine else [str(HERE / "gbx_worker_proc.py")]
        proc = subprocess.Popen([sys.executable, *command], env=env, cwd=REPO)
        self.processes.append(proc)
        return proc


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes `Settings()` in a subprocess equal to `settings`."""
    env = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if name == "secret_key":
            value = settings.secret_key.get_secret_value() if settings.secret_key else ""
        env[f"GLASSBOX_{name.upper()}"] = str(value)
    return env
