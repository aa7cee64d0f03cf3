"""The jobs admin page (frontend/templates/server/admin_jobs.html) and its buttons
(frontend/static/pages/admin-jobs.js, a static module), against Playwright routes standing in for
the jobs API: writes carry the CSRF token, errors show the server's sentence."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import jinja2
import pytest
from playwright.sync_api import expect
from viewer_harness import REPO_ROOT

from server.middleware import CSP  # the policy the server sends with pages

pytestmark = pytest.mark.browser

ORIGIN = "http://glassbox.test"


def _job(job_id: str, kind: str, status: str) -> dict[str, Any]:
    return {
        "id": job_id,
        "kind": kind,
        "status": status,
        "attempt": 1,
        "progress": 0.5,
        "phase": None,
        "created_at": "2026-01-02T03:04:05",
        "graph_slug": None,
        "prompt": f"prompt of {job_id}",
        "owner": "ada",
        "worker_name": "w1",
        "error": "boom" if status == "failed" else None,
    }


def render_admin_page(jobs: list[dict[str, Any]]) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(REPO_ROOT / "frontend" / "templates"), autoescape=True
    )
    return env.get_template("server/admin_jobs.html").render(jobs=jobs, active=False, user="admin")


class FakeJobsApi:
    """Serves the page and static files; answers the jobs API, recording each write."""

    def __init__(self) -> None:
        self.jobs = [_job("j-failed", "trace", "failed"), _job("j-running", "trace", "running")]
        self.writes: list[dict[str, Any]] = []
        self.page_loads = 0

    def handle(self, route: Any) -> None:
        request = route.request
        path = urlsplit(request.url).path
        if path == "/admin/jobs":
            self.page_loads += 1
            headers = {"content-security-policy": CSP}
            route.fulfill(
                status=200, content_type="text/html", headers=headers, body=render_admin_page(self.jobs)
            )
        elif path.startswith("/static/"):
            file = REPO_ROOT / "frontend" / "static" / path.removeprefix("/static/")
            kind = "text/javascript" if file.suffix == ".js" else "text/css"
            route.fulfill(
                status=200 if file.is_file() else 404,
                content_type=kind,
                body=file.read_bytes() if file.is_file() else b"",
            )
        elif request.method == "POST" and path.startswith("/api/"):
            self.writes.append({"path": path, "headers": request.headers})
            if path == "/api/jobs/j-running/cancel":
                body = {"error": {"code": "conflict", "message": "the job finished meanwhile"}}
                route.fulfill(status=409, content_type="application/json", body=json.dumps(body))
            else:
                self.jobs[0]["status"] = "queued"
                route.fulfill(status=200, content_type="application/json", body=json.dumps(self.jobs[0]))
        else:
            route.fulfill(status=404, body="")


@pytest.fixture
def admin_page(browser: Any, page_events: dict) -> Any:
    context = browser.new_context()
    context.add_cookies([{"name": "glassbox_csrf", "value": "tok9", "url": ORIGIN}])
    fake = FakeJobsApi()
    context.route(f"{ORIGIN}/**", fake.handle)
    page = context.new_page()
    page.on("pageerror", lambda error: page_events["errors"].append(str(error)))
    page.on(
        "console",
        lambda msg: "Content Security Policy" in msg.text and page_events["errors"].append(msg.text),
    )
    page.goto(f"{ORIGIN}/admin/jobs")
    yield page, fake
    context.close()
    assert page_events["errors"] == []


def test_retry_posts_with_the_csrf_token_and_reloads(admin_page: Any) -> None:
    page, fake = admin_page
    row = page.locator("tr[data-job='j-failed']")
    with page.expect_navigation():
        row.get_by_role("button", name="Retry").click()
    (write,) = fake.writes
    assert write["path"] == "/api/jobs/j-failed/retry" and write["headers"]["x-csrf-token"] == "tok9"
    assert fake.page_loads == 2
    expect(page.locator("tr[data-job='j-failed']")).to_have_attribute("data-status", "queued")


def test_a_refused_write_shows_the_servers_sentence(admin_page: Any) -> None:
    page, fake = admin_page
    cancel = page.locator("tr[data-job='j-running']").get_by_role("button", name="Cancel")
    cancel.click()
    expect(page.locator("#admin-jobs-message")).to_have_text("the job finished meanwhile")
    expect(cancel).to_be_enabled()
    assert [w["path"] for w in fake.writes] == ["/api/jobs/j-running/cancel"] and fake.page_loads == 1
