"""Fixtures for the browser tests of the whole app: one server, one RQ worker process,
one Postgres schema, one Redis database and one Chromium per session; a fresh browser context
per page. Accounts: `admin` (registers the tiny model), `ada` and `grace`.

Every page opened through `open_page` fails its test if it threw an uncaught error, opened a JS
dialog (alert/confirm: what an injected script would do) or broke the Content-Security-Policy.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _pg_redis import drop_schema, lock_redis_db, migrated_schema, unlock_redis_db
from gbx_browser_app import PASSWORD, TEXAS, RunningApp, browser_settings, seed, start_app, start_worker
from playwright.sync_api import expect

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "frontend"))
from gbx_browser_pages import DESKTOP  # noqa: E402

expect.set_options(timeout=15_000)  # conditions, not sleeps; generous for a busy 2-core machine


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from glassbox.testing import make_random_transcoders_dir, make_tiny_model_dir

    root = tmp_path_factory.mktemp("tiny")
    model_dir = make_tiny_model_dir(root / "model", "llama")
    return model_dir, make_random_transcoders_dir(root / "tc", model_dir)


@pytest.fixture(scope="session")
def app(tiny_dirs: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    """The app on Postgres + Redis with a worker process, the tiny model registered."""
    home = tmp_path_factory.mktemp("glassbox-home")
    old_home = os.environ.get("GLASSBOX_HOME")
    os.environ["GLASSBOX_HOME"] = str(home)
    schema, url = migrated_schema("gbx_browser")
    redis_db = lock_redis_db()
    running = None

    def restore_home() -> None:  # later test modules must see the real GLASSBOX_HOME again
        if old_home is None:
            os.environ.pop("GLASSBOX_HOME", None)
        else:
            os.environ["GLASSBOX_HOME"] = old_home

    try:
        running = start_app(browser_settings(url, redis_db))
        start_worker(running, home)  # starts importing torch while the registry is seeded
        seed(running, *tiny_dirs)
        restore_home()
        yield running
    finally:
        if running is not None:
            running.stop()
        unlock_redis_db(redis_db)
        drop_schema(schema)
        restore_home()


@pytest.fixture(scope="session")
def admin(app: RunningApp) -> httpx.Client:
    return app.client("admin")


@pytest.fixture(scope="session")
def users(app: RunningApp) -> dict[str, httpx.Client]:
    return {name: app.register(name) for name in ("ada", "grace")}


@pytest.fixture(scope="session")
def texas_graph(app: RunningApp, admin: httpx.Client) -> dict[str, Any]:
    """A graph of the tiny model traced by the worker process (GraphPublic as JSON)."""
    r = admin.post("/api/traces", json={"model": "tiny", "prompt": TEXAS, "params": {"max_n_logits": 3}})
    assert r.status_code == 202, r.text
    job = app.wait_for_job(admin, r.json()["id"], "done")
    return admin.get(f"/api/graphs/{job['graph_slug']}").json()


@pytest.fixture
def open_page(browser: Any, app: RunningApp) -> Iterator[Callable[..., Any]]:
    """open_page(path, user=None, viewport=DESKTOP, **context_options): a page in a new browser
    context (e.g. color_scheme="dark"), logged in as `user` (a cookie session made through the
    API), at `path` of the app."""
    contexts: list[Any] = []
    problems: list[str] = []

    def watch(page: Any) -> None:
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        page.on("console", lambda msg: _csp_problem(msg, problems))

        def on_dialog(dialog: Any) -> None:
            problems.append(f"dialog {dialog.type}: {dialog.message}")
            dialog.dismiss()

        page.on("dialog", on_dialog)

    def open_(
        path: str, *, user: str | None = None, viewport: dict[str, int] = DESKTOP, **options: Any
    ) -> Any:
        context = browser.new_context(viewport=viewport, base_url=app.base, **options)
        contexts.append(context)
        if user is not None:
            r = context.request.post("/api/auth/login", data={"username": user, "password": PASSWORD})
            assert r.status == 200, r.text()
        page = context.new_page()
        page.set_default_timeout(20_000)
        watch(page)
        page.goto(path)
        return page

    yield open_
    for context in contexts:
        context.close()
    assert problems == [], f"the pages misbehaved: {problems}"


def _csp_problem(msg: Any, problems: list[str]) -> None:
    if msg.type == "error" and ("Content Security Policy" in msg.text or "Refused to" in msg.text):
        problems.append(f"CSP: {msg.text}")
