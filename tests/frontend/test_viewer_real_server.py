"""The viewer on the real Glassbox app (SQLite, uvicorn in this process): the graph page from
frontend/templates/graph.html under the app's own CSP, graph JSON from /api/graphs/{slug}/data,
a subgraph saved with the session's CSRF token, and the share link opened by an anonymous
browser showing the same view."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

FIXTURE = Path(__file__).parent / "fixtures" / "small_graph.json"
PASSWORD = "correct horse battery staple"


def _login_headers(client: httpx.Client) -> tuple[dict[str, str], dict[str, str]]:
    """Register and log in; returns (headers for writes, cookies). The app's cookies are Secure,
    which httpx keeps off plain http, so they are sent by hand."""
    assert (
        client.post("/api/auth/register", json={"username": "ada", "password": PASSWORD}).status_code == 201
    )
    response = client.post("/api/auth/login", json={"username": "ada", "password": PASSWORD})
    assert response.status_code == 200, response.text
    cookies = {cookie.name: cookie.value for cookie in response.cookies.jar}
    cookie_header = "; ".join(f"{k}={v}" for k, v in cookies.items())
    return {"X-CSRF-Token": response.json()["csrf_token"], "cookie": cookie_header}, cookies


@pytest.fixture(scope="module")
def app_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    import uvicorn

    from persistence.db import make_engine
    from persistence.migrate import upgrade
    from persistence.settings import Settings
    from server.app import create_app

    home = tmp_path_factory.mktemp("glassbox-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GLASSBOX_HOME", str(home))
        url = f"sqlite:///{home / 'glassbox.sqlite3'}"
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        settings = Settings(
            database_url=url, secret_key="viewer-tests", password_hash_time_cost=1, password_hash_memory_kib=8
        )
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "the app did not start"
            time.sleep(0.05)
        try:
            with httpx.Client(base_url=base) as client:
                headers, cookies = _login_headers(client)
                response = client.post(
                    "/api/graphs/import",
                    content=FIXTURE.read_bytes(),
                    headers={**headers, "content-type": "application/json"},
                )
                assert response.status_code == 201, response.text
                yield {"base": base, "slug": response.json()["slug"], "cookies": cookies, "headers": headers}
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            sock.close()


def _open(
    browser: Any, url: str, page_events: dict, cookies: dict[str, str] | None = None
) -> tuple[Any, Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    if cookies:
        origin = "/".join(url.split("/")[:3])  # the whole site, not just the page's path
        context.add_cookies([{"name": k, "value": v, "url": f"{origin}/"} for k, v in cookies.items()])
    page = context.new_page()
    page.on("pageerror", lambda error: page_events["errors"].append(str(error)))
    page.on("console", lambda msg: msg.type == "error" and page_events["errors"].append(msg.text))
    page.goto(url)
    page.wait_for_selector("[data-viewer-ready]", state="attached")
    return context, page


def test_graph_page_on_the_real_app(browser: Any, app_server: dict, page_events: dict) -> None:
    base, slug = app_server["base"], app_server["slug"]
    context, page = _open(browser, f"{base}/graph/{slug}", page_events, app_server["cookies"])
    try:
        search = page.get_by_label("Search nodes by label or token")
        search.fill("say austin")
        search.press("Enter")
        expect(page.locator(".gbv-details-label")).to_have_text("say Austin")
        page.get_by_role("button", name="Pin to subgraph").click()
        page.locator(".gbv-canvas-top").focus()
        page.keyboard.press("ArrowDown")  # the most likely logit
        page.keyboard.down("g")
        page.keyboard.press("Enter")
        page.keyboard.press("ArrowRight")
        page.keyboard.press("Enter")
        page.keyboard.up("g")
        page.get_by_label("Supernode name").fill("outputs")
        page.keyboard.press("Enter")
        expect(page.locator(".gbv-supernode-name")).to_have_text("outputs")
        page.get_by_label("Subgraph name").fill("austin circuit")
        page.get_by_role("button", name="Save subgraph").click()
        expect(page.locator(".gbv-save-subgraph [role=status]")).to_have_text("Saved")
        saved = httpx.get(f"{base}/api/graphs/{slug}/subgraphs").json()
        assert [(s["title"], s["pinned_ids"], s["supernodes"]) for s in saved] == [
            ("austin circuit", ["3_401_5", "5_25722_5", "5_9447_5"], [["outputs", "5_25722_5", "5_9447_5"]])
        ]
        page.get_by_role("button", name="Share").click()
        share_url = page.locator(".gbv-share-url").input_value()
    finally:
        context.close()

    other, page = _open(browser, share_url, page_events)  # anonymous: no cookies
    try:
        expect(page.locator(".gbv-details-label")).to_have_text("say Austin")
        expect(page.locator(".gbv-sg-node")).to_have_count(2)
        expect(page.locator(".gbv-supernode-name")).to_have_text("outputs")
        query = json.loads(
            page.evaluate("JSON.stringify(Object.fromEntries(new URLSearchParams(location.search)))")
        )
        assert query["pinnedIds"] == "3_401_5,5_25722_5,5_9447_5"
        page.screenshot(
            path=str(Path(__file__).parents[2] / "test-artifacts" / "frontend" / "real-app-shared.png")
        )
    finally:
        other.close()
    assert page_events["errors"] == []
