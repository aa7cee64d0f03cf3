"""`glassbox view` in headless Chromium: the CLI serves graph files it was given (a traced tiny
graph and circuit-tracer's own `create_graph_files` output) with the viewer, dashboards from a
features store, hover and pinning, and nothing that needs an account. No database anywhere.

tests/frontend/fixtures/circuit-tracer-files/ is what circuit-tracer 0.5.0's
`create_graph_files` wrote (its graph JSON and graph-metadata.json, unchanged) for a graph of
glassbox.testing's tiny llama traced by Glassbox and loaded into circuit-tracer's `Graph`.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.request import Request, urlopen

import pytest
from _view_helpers import PROMPTS, build_tiny_store, glassbox_view, tiny_model_and_transcoders
from playwright.sync_api import expect
from viewer_harness import REPO_ROOT

pytestmark = pytest.mark.browser

CIRCUIT_TRACER_FILES = Path(__file__).parent / "fixtures" / "circuit-tracer-files"
HANDLE = "document.querySelector('[data-glassbox-view]').glassboxViewer"


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A traced tiny graph written as graph JSON, and a features store for its transcoders."""
    import glassbox

    root = tmp_path_factory.mktemp("view")
    model, transcoders = tiny_model_and_transcoders()
    result = glassbox.trace(PROMPTS[0], model=model, transcoders=transcoders)
    path = result.save_json(root / "graph.json")
    store = build_tiny_store(model, transcoders, root / "features")
    return {"path": path, "json": json.loads(path.read_text()), "store": store}


@pytest.fixture(scope="module")
def labelled_circuit_tracer_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """circuit-tracer's files with `clerp` labels on two feature nodes, as a labelled graph (a
    Neuronpedia download, or one labelled by hand) carries them."""
    folder = tmp_path_factory.mktemp("ct") / "graphs"
    shutil.copytree(CIRCUIT_TRACER_FILES, folder)
    path = folder / "dallas-tiny.json"
    doc = json.loads(path.read_text())
    features = sorted((n for n in doc["nodes"] if n["feature_type"] == "cross layer transcoder"),
                      key=lambda n: n["influence"])  # the most influential: drawn at any threshold
    labels = {features[0]["node_id"]: "capital cities", features[1]["node_id"]: "Texas things"}
    for node in features[:2]:
        node["clerp"] = labels[node["node_id"]]
    path.write_text(json.dumps(doc, indent=2))
    return {"folder": folder, "labels": labels}


@pytest.fixture(scope="module")
def served(exported: dict[str, Any], labelled_circuit_tracer_files: dict[str, Any]) -> Iterator[str]:
    with glassbox_view(exported["path"], labelled_circuit_tracer_files["folder"],
                       "--features", exported["store"]) as url:
        yield url


@pytest.fixture
def page(browser: Any, page_events: dict[str, list[str]]) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.on("pageerror", lambda error: page_events["errors"].append(str(error)))
    page.on("console", lambda msg: "Content Security Policy" in msg.text
            and page_events["errors"].append(msg.text))
    requests: list[tuple[str, str]] = []
    page.on("request", lambda r: requests.append((r.method, r.url)))
    page.requests = requests
    yield page
    context.close()
    assert page_events["errors"] == [], f"uncaught page errors: {page_events['errors']}"


def _open_graph(page: Any, base: str, prompt: str) -> None:
    page.goto(f"{base}/")
    page.get_by_role("link", name=prompt).first.click()
    page.wait_for_selector("[data-viewer-ready]")


def _position(page: Any, node_id: str) -> dict[str, float]:
    pos = page.evaluate(f"id => {HANDLE}.nodeScreenPosition(id)", node_id)
    assert pos is not None, f"node {node_id} is not drawn"
    return pos


def _clicked(page: Any) -> str | None:
    return page.evaluate(f"() => {HANDLE}.getState().clickedId")


def test_the_list_page_names_every_graph_and_opens_its_viewer(served: str, page: Any,
                                                              exported: dict[str, Any]) -> None:
    page.goto(f"{served}/")
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text(PROMPTS[0])
    expect(rows.nth(1)).to_contain_text("The capital of the state containing Dallas is")
    expect(rows.nth(1)).to_contain_text("tiny-llama-plt")  # circuit-tracer's scan
    _open_graph(page, served, PROMPTS[0])
    expect(page.locator(".gbv-prompt-text")).to_have_text(PROMPTS[0])
    drawn = set(page.evaluate(f"{HANDLE}.visibleNodeIds()"))
    in_file = {n["node_id"] for n in exported["json"]["nodes"]}
    assert drawn and drawn <= in_file
    assert {n["node_id"] for n in exported["json"]["nodes"] if n["feature_type"] == "logit"} <= drawn
    shot = REPO_ROOT / "test-artifacts" / "frontend" / "glassbox-view.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot), full_page=True)


def test_hover_shows_the_store_label_and_ctrl_click_pins(served: str, page: Any,
                                                         exported: dict[str, Any]) -> None:
    from glassbox.features.store import FeatureStore

    _open_graph(page, served, PROMPTS[0])
    node = max((n for n in exported["json"]["nodes"] if n["feature_type"] == "cross layer transcoder"),
               key=lambda n: n["activation"])
    layer, index = int(node["layer"]), int(node["node_id"].split("_")[1])
    label = FeatureStore.open(exported["store"]).auto_label(layer, index)
    assert label, "the tiny store gives every feature an automatic label"

    tooltip = page.locator(".gbv-tooltip")
    pos = _position(page, node["node_id"])
    page.mouse.move(pos["x"], pos["y"])
    expect(tooltip).to_be_visible()
    expect(tooltip.locator(".gbv-tooltip-label")).to_have_text(label)
    page.mouse.move(2, 2)
    expect(tooltip).to_be_hidden()

    page.keyboard.down("Control")
    page.mouse.click(pos["x"], pos["y"])
    page.keyboard.up("Control")
    page.wait_for_function(f"id => {HANDLE}.getState().pinnedIds.includes(id)", arg=node["node_id"])
    expect(page.locator(f".gbv-sg-node[data-node-id='{node['node_id']}']")).to_be_visible()

    page.mouse.click(pos["x"], pos["y"])  # a plain click selects: the dashboard comes from the store
    details = page.locator(".gbv-details")
    expect(details.locator(".gbv-details-label")).to_have_text(label)
    expect(details.locator(".gbv-dashboard")).to_contain_text("Top logits")
    assert _clicked(page) == node["node_id"]


def test_nothing_needs_an_account(served: str, page: Any, exported: dict[str, Any]) -> None:
    _open_graph(page, served, PROMPTS[0])
    expect(page.locator(".gbv-interventions")).to_have_count(0)
    expect(page.get_by_role("link", name="Log in")).to_have_count(0)
    node = next(n for n in exported["json"]["nodes"] if n["feature_type"] == "cross layer transcoder")
    pos = _position(page, node["node_id"])
    page.keyboard.down("Control")
    page.mouse.click(pos["x"], pos["y"])
    page.keyboard.up("Control")
    expect(page.get_by_role("button", name="Save subgraph")).to_have_count(0)
    page.mouse.click(pos["x"], pos["y"])
    field = page.get_by_label("Label for this feature")
    field.fill("my own label")
    field.press("Enter")
    expect(page.locator(".gbv-label-status")).to_have_text("Saved in this view")
    page.wait_for_function("() => location.search.includes('clerps')")  # the label lives in the URL

    writes = [(m, u) for m, u in page.requests if m != "GET"]
    assert writes and all(u.startswith(f"{served}/graph/") and "/features/" in u for _, u in writes)
    for path in ("/graph/x/labels", "/api/graphs/import", "/graph/x/features/labels"):
        request = Request(f"{served}{path}", data=b'{"node_ids": []}', method="POST")
        with pytest.raises(Exception, match="404"):
            urlopen(request, timeout=5)


def test_circuit_tracer_files_open_with_their_labels(served: str, page: Any,
                                                    labelled_circuit_tracer_files: dict[str, Any]) -> None:
    _open_graph(page, served, "The capital of the state containing Dallas is")
    tooltip = page.locator(".gbv-tooltip")
    for node_id, label in labelled_circuit_tracer_files["labels"].items():
        pos = _position(page, node_id)
        page.mouse.move(pos["x"], pos["y"])
        expect(tooltip.locator(".gbv-tooltip-label")).to_have_text(label)
    search = page.get_by_label("Search nodes by label or token")
    search.fill("texas things")
    expect(page.locator(".gbv-search-hit")).to_have_count(1)
