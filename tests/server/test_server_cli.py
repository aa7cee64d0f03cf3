"""`glassbox serve` and `glassbox worker` (the typer commands in glassbox/cli)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
import typer
from gbx_stack import REPO
from typer.testing import CliRunner

from server.cli import serve_command
from worker.cli import worker_command


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("serve")(serve_command)
    app.command("worker")(worker_command)
    return app


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_worker_needs_redis(monkeypatch, home):
    for name in ("REDIS_URL", "GLASSBOX_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(_app(), ["worker"])
    assert result.exit_code == 2 and "REDIS_URL" in result.output


def test_serve_embedded_migrates_the_sqlite_home_and_answers(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(GLASSBOX_HOME=str(tmp_path / "home"), PYTHONPATH=str(REPO), GLASSBOX_AUTO_SETUP="false")
    code = "import typer; from server.cli import serve_command; typer.run(serve_command)"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "--port", str(port), "--log-level", "warning"], env=env, cwd=REPO
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, "the server exited"
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        assert ready.status_code == 200 and ready.json()["database"] == "ok"
        assert (tmp_path / "home" / "glassbox.sqlite3").exists()
        assert httpx.get(f"http://127.0.0.1:{port}/api/graphs").json()["total"] == 0
    finally:
        proc.terminate()
        proc.wait(20)
