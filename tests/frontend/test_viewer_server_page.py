"""The server's graph page (frontend/templates/graph.html) and the HTTP api adapter
(frontend/static/viewer/http-api.js), against a stand-in for the Glassbox API that follows
server/routes (features batch, label edit with base_version and 409, subgraphs, interventions
and their job). All requests go to a fake origin and are answered by Playwright routes, so no
server or network is needed."""

from __future__ import annotations

import json
import mimetypes
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
import pytest
from playwright.sync_api import expect
from viewer_harness import REPO_ROOT

from server.middleware import CSP  # the policy the server sends with pages

pytestmark = pytest.mark.browser

ORIGIN = "http://glassbox.test"
FIXTURES = Path(__file__).parent / "fixtures"
PAYLOAD = "<img src=x onerror=alert(1)>"
INTERVENTION_RESULT = {
    "rows": [
        {"token": " Austin", "token_id": 1, "prob_before": 0.612, "prob_after": 0.2, "delta": -0.412},
        {"token": PAYLOAD, "token_id": 2, "prob_before": 0.1, "prob_after": 0.1004, "delta": 0.0004},
    ],
    "continuation_before": {"text": " Austin."},
    "continuation_after": {"text": f" {PAYLOAD}"},
}


def render_graph_page(user: str | None = None, **graph: Any) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(REPO_ROOT / "frontend" / "templates"), autoescape=True
    )
    context = {
        "slug": "texas-small",
        "prompt": "The capital of Texas is",
        "scan": "test-model",
        "model": "test-model",
        "transcoders": "plt",
        "data_url": "/api/graphs/texas-small/data",
        **graph,
    }
    return env.get_template("graph.html").render(graph=context, user=user)


def test_the_template_escapes_text_and_runs_no_inline_script() -> None:
    html = render_graph_page(prompt=PAYLOAD, model=None)
    assert PAYLOAD not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    scripts = [line for line in html.splitlines() if "<script" in line]
    assert scripts == [
        '  <script type="module" src="/static/viewer/boot.js"></script>',
        '  <script type="module" src="/static/pages/graph-menu.js"></script>',
        '  <script type="module" src="/static/pages/graph-explain.js"></script>',
    ]
    assert 'data-graph-url="/api/graphs/texas-small/data"' in html and 'data-model=""' in html
    assert 'data-login-url="/login?next=/graph/texas-small"' in html
    assert "data-login-url" not in render_graph_page(user="ada")


def _module_graph(entry: Path, static: Path) -> set[str]:
    """Every module reachable from `entry` by relative imports, as paths under /static/."""
    seen: set[str] = set()
    todo = [entry.resolve()]
    while todo:
        path = todo.pop()
        rel = path.relative_to(static).as_posix()
        if rel in seen:
            continue
        seen.add(rel)
        for dep in re.findall(r'^import[^;]*?from\s+"(\.[^"]+)"', path.read_text(), re.M):
            todo.append((path.parent / dep).resolve())
    return seen


def test_the_template_preloads_every_module_the_page_imports() -> None:
    static = (REPO_ROOT / "frontend" / "static").resolve()
    expected = _module_graph(static / "viewer" / "boot.js", static) - {"viewer/boot.js"}
    preloaded = set(re.findall(r'rel="modulepreload" href="/static/([^"]+)"', render_graph_page()))
    assert preloaded == expected


class FakeGlassbox:
    """Just enough of the Glassbox API for the viewer, recording every API request."""

    def __init__(self) -> None:
        self.graph = (FIXTURES / "small_graph.json").read_text()
        dashboard = json.loads((FIXTURES / "small_features.json").read_text())["3_401_5"]
        self.features: dict[tuple[int, int], dict[str, Any]] = {
            (3, 401): {
                "label": None,
                "auto_label": "auto: say Austin",
                "label_version": 0,
                "dashboard": dashboard,
            },
            (2, 301): {"label": "server label", "auto_label": None, "label_version": 2, "dashboard": None},
        }
        self.requests: list[dict[str, Any]] = []
        self.user: str | None = "ada"  # who the page is rendered for (None: nobody signed in)
        self.job_polls = 0

    def feature_public(self, layer: int, index: int, with_dashboard: bool) -> dict[str, Any]:
        f = self.features.get(
            (layer, index), {"label": None, "auto_label": None, "label_version": 0, "dashboard": None}
        )
        return {
            "model": "test-model",
            "transcoders": "plt",
            "layer": layer,
            "index": index,
            "auto_label": f["auto_label"],
            "label": f["label"],
            "label_version": f["label_version"],
            "dashboard": f["dashboard"] if with_dashboard else None,
        }

    def handle(self, route: Any) -> None:
        request = route.request
        path = urlsplit(request.url).path
        if path == "/graph/texas-small":
            headers = {"content-security-policy": CSP}
            html = render_graph_page(user=self.user)
            route.fulfill(status=200, content_type="text/html", headers=headers, body=html)
        elif path.startswith("/static/"):
            file = REPO_ROOT / "frontend" / "static" / path.removeprefix("/static/")
            kind = "text/javascript" if file.suffix == ".js" else mimetypes.guess_type(file.name)[0]
            if file.is_file():
                route.fulfill(status=200, content_type=kind, body=file.read_bytes())
            else:
                route.fulfill(status=404, body="")
        elif path == "/api/graphs/texas-small/data":
            route.fulfill(status=200, content_type="application/json", body=self.graph)
        elif path.startswith("/api/"):
            body = json.loads(request.post_data) if request.post_data else None
            self.requests.append(
                {"method": request.method, "path": path, "body": body, "headers": request.headers}
            )
            status, answer = self.api(request.method, path, body)
            route.fulfill(status=status, content_type="application/json", body=json.dumps(answer))
        else:
            route.fulfill(status=404, body="")

    def api(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        if method == "POST" and path == "/api/features/test-model/plt/batch":
            refs = body["features"]
            return 200, [
                self.feature_public(r["layer"], r["index"], body["include_dashboards"]) for r in refs
            ]
        if method == "PUT" and path.startswith("/api/features/test-model/plt/") and path.endswith("/label"):
            layer, index = (int(part) for part in path.split("/")[5:7])
            feature = self.features.setdefault(
                (layer, index), {"label": None, "auto_label": None, "label_version": 0, "dashboard": None}
            )
            if body["base_version"] != feature["label_version"]:
                details = {"label_version": feature["label_version"], "label": feature["label"]}
                message = f"the label changed since version {body['base_version']}"
                return 409, {"error": {"code": "conflict", "message": message, "details": details}}
            feature.update(label=body["text"], label_version=feature["label_version"] + 1)
            return 200, self.feature_public(layer, index, False)
        if method == "POST" and path == "/api/graphs/texas-small/subgraphs":
            return 201, {"slug": "sg-1", **body}
        if method == "POST" and path == "/api/graphs/texas-small/interventions":
            return 202, {"id": "job-1", "kind": "intervention", "status": "queued", "phase": None}
        if method == "GET" and path == "/api/jobs/job-1":
            self.job_polls += 1
            if self.job_polls == 1:
                return 200, {"id": "job-1", "status": "running", "phase": "generating"}
            return 200, {"id": "job-1", "status": "done", "phase": None, "result": INTERVENTION_RESULT}
        return 404, {"error": {"code": "not_found", "message": f"no route {method} {path}"}}

    def calls(self, method: str, path: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["method"] == method and r["path"] == path]


@pytest.fixture
def server_page(browser: Any, page_events: dict) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.add_cookies([{"name": "glassbox_csrf", "value": "tok123", "url": ORIGIN}])
    fake = FakeGlassbox()
    context.route(f"{ORIGIN}/**", fake.handle)
    page = context.new_page()
    page.on("pageerror", lambda error: page_events["errors"].append(str(error)))
    page.on("dialog", lambda dialog: (page_events["dialogs"].append(dialog.message), dialog.dismiss()))
    page.on(
        "console",
        lambda msg: "Content Security Policy" in msg.text and page_events["errors"].append(msg.text),
    )
    page.goto(f"{ORIGIN}/graph/texas-small")
    page.wait_for_selector("[data-viewer-ready]")
    yield page, fake
    context.close()
    assert page_events["errors"] == [] and page_events["dialogs"] == []


def _select(page: Any, node_id: str) -> None:
    search = page.get_by_label("Search nodes by label or token")
    search.fill(node_id)
    search.press("Enter")
    expect(page.locator(".gbv-node-id")).to_have_text(node_id)


def test_server_page_loads_labels_and_dashboards_through_the_api(server_page: Any) -> None:
    page, fake = server_page
    (labels,) = fake.calls("POST", "/api/features/test-model/plt/batch")
    assert labels["body"]["include_dashboards"] is False
    assert {(f["layer"], f["index"]) for f in labels["body"]["features"]} == {
        (0, 101),
        (0, 102),
        (1, 201),
        (1, 202),
        (2, 301),
        (2, 302),
        (3, 401),
        (3, 402),
        (3, 403),
    }
    _select(page, "3_401_5")
    expect(page.locator(".gbv-details-label")).to_have_text("auto: say Austin")
    expect(page.locator(".gbv-dashboard")).to_contain_text("Top logits")
    dashboards = fake.calls("POST", "/api/features/test-model/plt/batch")[1]
    assert dashboards["body"] == {"features": [{"layer": 3, "index": 401}], "include_dashboards": True}
    _select(page, "2_301_5")
    expect(page.locator(".gbv-details-label")).to_have_text("server label")
    expect(page.locator(".gbv-dash-placeholder")).to_be_visible()


def test_label_edits_send_the_version_and_csrf_token_and_report_conflicts(server_page: Any) -> None:
    page, fake = server_page
    _select(page, "2_301_5")
    label = page.get_by_label("Label for this feature")
    label.fill("capital city")
    label.press("Enter")
    expect(page.locator(".gbv-label-status")).to_have_text("Saved")
    (edit,) = fake.calls("PUT", "/api/features/test-model/plt/2/301/label")
    assert edit["body"] == {"text": "capital city", "base_version": 2}
    assert edit["headers"]["x-csrf-token"] == "tok123"
    assert fake.features[(2, 301)]["label_version"] == 3

    fake.features[(2, 301)].update(label="someone else's", label_version=7)  # another user saves
    label = page.get_by_label("Label for this feature")
    label.fill("mine again")
    label.press("Enter")
    expect(page.locator(".gbv-label-status")).to_have_text("Not saved: the label changed since version 3")
    label = page.get_by_label("Label for this feature")
    label.fill("mine, merged")
    label.press("Enter")
    expect(page.locator(".gbv-label-status")).to_have_text("Saved")
    assert fake.calls("PUT", "/api/features/test-model/plt/2/301/label")[-1]["body"]["base_version"] == 7


def test_saving_a_subgraph_posts_the_view(server_page: Any) -> None:
    page, fake = server_page
    _select(page, "3_401_5")
    page.get_by_role("button", name="Pin to subgraph").click()
    page.get_by_label("Label for this feature").fill("say Austin!")
    page.get_by_label("Label for this feature").press("Enter")
    expect(page.locator(".gbv-label-status")).to_have_text("Saved")
    page.get_by_label("Subgraph name").fill("austin")
    page.get_by_role("button", name="Save subgraph").click()
    expect(page.locator(".gbv-save-subgraph [role=status]")).to_have_text("Saved")
    (saved,) = fake.calls("POST", "/api/graphs/texas-small/subgraphs")
    assert saved["body"] == {
        "title": "austin",
        "pinned_ids": ["3_401_5"],
        "supernodes": [],
        "label_overrides": {"3_401_5": "say Austin!"},
        "pruning_threshold": 0.8,
        "density_threshold": None,
    }
    assert saved["headers"]["x-csrf-token"] == "tok123"


def _open_interventions(page: Any) -> Any:
    panel = page.locator(".gbv-interventions")
    panel.locator("summary").click()
    return panel


def test_interventions_post_the_selected_features_and_follow_the_job(server_page: Any) -> None:
    page, fake = server_page
    panel = _open_interventions(page)
    _select(page, "3_401_5")
    expect(panel.locator(".gbv-iv-selection")).to_have_text("Selected: L3 #401.")
    panel.get_by_role("button", name="Add selected features").click()
    row = panel.locator(".gbv-iv-items tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator(".gbv-iv-label")).to_have_text("auto: say Austin")  # the server's label
    row.locator(".gbv-iv-mode").select_option("scale")
    expect(row.locator(".gbv-iv-value")).to_have_value("2")
    row.locator(".gbv-iv-pos").select_option("")  # every position
    panel.get_by_label("New tokens").fill("5")
    panel.get_by_role("button", name="Run intervention").click()
    expect(panel.locator(".gbv-iv-status")).to_have_text("Done.")

    (posted,) = fake.calls("POST", "/api/graphs/texas-small/interventions")
    assert posted["body"] == {
        "interventions": [{"layer": 3, "feature": 401, "pos": None, "mode": "scale", "value": 2}],
        "max_new_tokens": 5,
        "constrained": False,
    }
    assert posted["headers"]["x-csrf-token"] == "tok123"
    assert len(fake.calls("GET", "/api/jobs/job-1")) == 2  # polled while running, then done
    cells = panel.locator(".gbv-iv-table tbody tr").first.locator("td")
    expect(cells).to_have_text(['" Austin"', "61.20%", "20.00%", "\u221241.20%"])
    expect(panel.locator(".gbv-iv-table tr.gbv-iv-changed")).to_have_count(1)
    expect(panel.locator(".gbv-iv-table tbody tr").nth(1).locator("code")).to_have_text(f'"{PAYLOAD}"')
    expect(panel.locator(".gbv-iv-after")).to_have_text(f" {PAYLOAD}")
    assert page.locator("img").count() == 0
    page.get_by_role("button", name="Dark theme").click()
    panel.locator(".gbv-iv-items").scroll_into_view_if_needed()
    shot = REPO_ROOT / "test-artifacts" / "frontend" / "graph-page-interventions.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot))


def test_interventions_need_an_account_and_a_model(server_page: Any) -> None:
    page, fake = server_page
    fake.user = None
    page.reload()
    page.wait_for_selector("[data-viewer-ready]")
    panel = _open_interventions(page)
    login = panel.get_by_role("link", name="Log in")
    expect(login).to_have_attribute("href", "/login?next=/graph/texas-small")
    expect(panel.get_by_role("button", name="Run intervention")).to_be_disabled()

    imported = render_graph_page(user="ada", model=None, transcoders=None)  # nothing to re-run
    page.route(
        f"{ORIGIN}/graph/texas-small",
        lambda route: route.fulfill(status=200, content_type="text/html", body=imported),
    )
    page.reload()
    page.wait_for_selector("[data-viewer-ready]")
    expect(page.locator(".gbv-details")).to_be_visible()
    expect(page.locator(".gbv-interventions")).to_have_count(0)
