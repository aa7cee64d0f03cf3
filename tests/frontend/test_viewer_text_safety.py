"""User text (labels, prompts, tokens, supernode names, URL parameters) is shown as text and
never runs: no JS dialog fires and no element is created from it."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import urlencode

import pytest
from playwright.sync_api import expect
from viewer_harness import REPO_ROOT, ViewerPage

pytestmark = pytest.mark.browser

PAYLOAD = "<img src=x onerror=alert(1)>"
SCRIPT = "<script>alert(2)</script>"
FIXTURES = Path(__file__).parent / "fixtures"

NO_INJECTED_ELEMENTS = (
    """() => document.querySelectorAll('img, iframe, object, embed, b, script:not([type=module])').length"""
)


def _assert_nothing_ran(viewer: ViewerPage, page_events: dict) -> None:
    assert viewer.page.evaluate(NO_INJECTED_ELEMENTS) == 0
    assert page_events["dialogs"] == []


@pytest.fixture
def hostile_graph() -> str:
    """The small fixture with markup in the prompt, a prompt token, a logit token and a label."""
    graph = json.loads((FIXTURES / "small_graph.json").read_text())
    graph["metadata"]["prompt"] = f"{PAYLOAD} capital {SCRIPT}"
    graph["metadata"]["prompt_tokens"][1] = "<b>The</b>"
    for node in graph["nodes"]:
        if node["node_id"] == "5_9447_5":
            node["clerp"] = 'Output "<img src=y onerror=alert(3)>" (p=0.103)'
        if node["node_id"] == "1_201_4":
            node["clerp"] = SCRIPT
    path = REPO_ROOT / "test-artifacts" / "fixtures" / "hostile_graph.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(graph))
    return "/test-artifacts/fixtures/hostile_graph.json"


def test_label_with_markup_saved_in_the_editor_shows_as_text(viewer: ViewerPage, page_events: dict) -> None:
    viewer.open()
    viewer.click("3_401_5")
    page = viewer.page
    page.get_by_label("Label for this feature").fill(PAYLOAD)
    page.get_by_role("button", name="Save label").click()
    expect(page.locator(".gbv-details-label")).to_have_text(PAYLOAD)
    (saved,) = viewer.api_calls("saveLabel")
    assert saved["label"] == PAYLOAD and saved["nodeId"] == "3_401_5"
    viewer.hover("3_401_5")
    expect(page.locator(".gbv-tooltip-label")).to_have_text(PAYLOAD)
    viewer.click("3_401_5", ["Control"])
    expect(page.locator(".gbv-sg-node text tspan").first).to_be_visible()
    lines = page.locator(".gbv-sg-node text tspan").all_text_contents()
    assert " ".join(lines) == PAYLOAD  # wrapped into lines, whole, as text
    expect(page.locator(".gbv-sg-node title")).to_have_text(PAYLOAD)
    viewer.click("2_301_5")  # its outputs list 3_401_5 by label
    expect(page.locator("section[aria-label=Outputs] li[data-node-id='3_401_5']")).to_contain_text(PAYLOAD)
    page.get_by_label("Search nodes by label or token").fill("onerror")
    expect(page.locator(".gbv-search-hit").first).to_contain_text(PAYLOAD)
    viewer.screenshot("label-markup-as-text")
    _assert_nothing_ran(viewer, page_events)


def test_markup_in_the_graph_json_shows_as_text(
    viewer: ViewerPage, page_events: dict, hostile_graph: str
) -> None:
    viewer.open(graph=hostile_graph)
    page = viewer.page
    expect(page.locator(".gbv-prompt-text")).to_have_text(f"{PAYLOAD} capital {SCRIPT}")
    viewer.hover("3_402_5")  # the fixture's own clerp is the payload
    expect(page.locator(".gbv-tooltip-label")).to_have_text(PAYLOAD)
    viewer.click("1_201_4")
    expect(page.locator(".gbv-details-label")).to_have_text(SCRIPT)
    viewer.hover("E_651_1")
    expect(page.locator(".gbv-tooltip-label")).to_have_text('Emb: "<b>The</b>"')
    viewer.hover("5_9447_5")
    expect(page.locator(".gbv-tooltip")).to_contain_text("<img src=y onerror=alert(3)>")
    _assert_nothing_ran(viewer, page_events)


def test_supernode_names_and_url_labels_show_as_text(viewer: ViewerPage, page_events: dict) -> None:
    params = {
        "graph": "/tests/frontend/fixtures/small_graph.json",
        "supernodes": json.dumps([[SCRIPT, "3_401_5"]]),
        "clerps": json.dumps([["2_46357_5", PAYLOAD]]),
        "clickedId": "2_301_5",
    }
    viewer.open_url(f"{viewer.base_url}/frontend/dev/viewer.html?{urlencode(params)}")
    page = viewer.page
    expect(page.locator(".gbv-supernode-name")).to_have_text(SCRIPT)
    expect(page.locator(".gbv-details-label")).to_have_text(PAYLOAD)
    page.keyboard.down("g")
    viewer.click("0_101_4")
    page.keyboard.up("g")
    page.get_by_label("Supernode name").fill(PAYLOAD)
    page.get_by_label("Supernode name").press("Enter")
    expect(page.locator(".gbv-supernode-name").nth(1)).to_have_text(PAYLOAD)
    _assert_nothing_ran(viewer, page_events)


def test_svg_export_escapes_labels(viewer: ViewerPage, page_events: dict, tmp_path: Path) -> None:
    viewer.open()
    with viewer.page.expect_download() as info:
        viewer.page.get_by_role("button", name="Export SVG").click()
    path = tmp_path / "graph.svg"
    info.value.save_as(path)
    text = path.read_text()
    assert "&lt;img src=x onerror=alert(1)&gt;" in text and PAYLOAD not in text
    root = ET.fromstring(text)
    assert not [el for el in root.iter() if el.tag.split("}")[-1] in {"img", "script", "foreignObject"}]
    _assert_nothing_ran(viewer, page_events)
