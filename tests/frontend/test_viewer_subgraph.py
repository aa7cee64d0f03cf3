"""Pinning (Ctrl/Cmd-click) into the subgraph panel, grouping into supernodes (hold g + click, or
the "Group nodes" button, by mouse or touch), and a featured-sized subgraph that stays readable:
whole labels that never overlap, clicks that land on the node under the pointer, its scores, a
resizable and enlargeable panel."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import FEATURED_GRAPH
from playwright.sync_api import expect
from viewer_harness import REPO_ROOT, ViewerPage

ARTIFACTS = REPO_ROOT / "test-artifacts" / "frontend"

pytestmark = pytest.mark.browser


def test_ctrl_click_pins_and_unpins(viewer: ViewerPage) -> None:
    viewer.open()
    viewer.click("3_401_5", ["Control"])
    viewer.click("2_301_5", ["Control"])
    viewer.wait_state("s => s.pinnedIds.join() === '3_401_5,2_301_5'")
    panel = viewer.page.locator(".gbv-subgraph")
    expect(panel.locator("h2")).to_have_text("Subgraph (2 pinned)")
    nodes = panel.locator(".gbv-sg-node")
    expect(nodes).to_have_count(2)
    assert {nodes.nth(i).get_attribute("data-node-id") for i in range(2)} == {"3_401_5", "2_301_5"}
    # the edge 2_301_5 -> 3_401_5 (weight 3) is drawn between them
    expect(panel.locator(".gbv-sg-link.gbv-pos-stroke")).to_have_count(1)
    assert viewer.state()["clickedId"] is None  # pinning does not select
    viewer.click("3_401_5", ["Control"])
    viewer.wait_state("s => s.pinnedIds.join() === '2_301_5'")
    expect(nodes).to_have_count(1)


def test_meta_click_pins_too(viewer: ViewerPage) -> None:
    viewer.open()
    viewer.click("1_201_4", ["Meta"])
    viewer.wait_state("s => s.pinnedIds.includes('1_201_4')")


def test_subgraph_node_click_selects_and_ctrl_click_unpins(viewer: ViewerPage) -> None:
    viewer.open()
    viewer.click("3_401_5", ["Control"])
    node = viewer.page.locator(".gbv-sg-node[data-node-id='3_401_5']")
    node.click()
    viewer.wait_state("s => s.clickedId === '3_401_5'")
    node.focus()
    viewer.page.keyboard.press("Control+Enter")
    viewer.wait_state("s => s.pinnedIds.length === 0")


def test_hold_g_and_click_groups_nodes_into_a_named_supernode(viewer: ViewerPage) -> None:
    viewer.open()
    viewer.page.keyboard.down("g")
    viewer.click("0_101_4")
    viewer.click("1_201_4")
    viewer.wait_state("s => s.grouping.length === 2 && s.groupingActive")
    assert viewer.state()["clickedId"] is None  # g-clicks do not select
    viewer.page.keyboard.up("g")
    dialog = viewer.page.get_by_role("dialog", name="New supernode")
    expect(dialog).to_be_visible()
    expect(dialog.locator(".gbv-group-members li")).to_have_text(["Texas", "Texas (the state)"])
    name = dialog.get_by_label("Supernode name")
    expect(name).to_be_focused()
    name.fill("Texas")
    name.press("Enter")
    viewer.wait_state("s => s.supernodes.length === 1")
    state = viewer.state()
    assert state["supernodes"] == [["Texas", "0_101_4", "1_201_4"]]
    assert {"0_101_4", "1_201_4"} <= set(state["pinnedIds"])
    assert state["grouping"] == []
    panel = viewer.page.locator(".gbv-subgraph")
    expect(panel.locator(".gbv-sg-node.gbv-kind-supernode")).to_have_count(1)
    expect(panel.locator(".gbv-sg-node.gbv-kind-supernode")).to_have_attribute("aria-label", "Texas")
    expect(panel.locator(".gbv-supernode-name")).to_have_text("Texas")
    viewer.screenshot("supernode")
    panel.get_by_role("button", name="Ungroup Texas").click()
    viewer.wait_state("s => s.supernodes.length === 0 && s.pinnedIds.length === 2")


def test_escape_cancels_grouping(viewer: ViewerPage) -> None:
    viewer.open()
    viewer.page.keyboard.down("g")
    viewer.click("0_101_4")
    viewer.page.keyboard.up("g")
    expect(viewer.page.get_by_role("dialog", name="New supernode")).to_be_visible()
    viewer.page.keyboard.press("Escape")
    viewer.wait_state("s => s.dialog === null && s.grouping.length === 0 && s.supernodes.length === 0")


def test_save_subgraph_goes_through_the_api(viewer: ViewerPage) -> None:
    viewer.open()
    viewer.click("3_401_5", ["Control"])
    panel = viewer.page.locator(".gbv-subgraph")
    panel.get_by_label("Subgraph name").fill("austin circuit")
    panel.get_by_role("button", name="Save subgraph").click()
    expect(panel.locator(".gbv-save-subgraph [role=status]")).to_have_text("Saved")
    (saved,) = viewer.api_calls("saveSubgraph")
    assert saved["name"] == "austin circuit" and saved["pinnedIds"] == ["3_401_5"]
    assert saved["pruningThreshold"] == 0.8


def test_grouping_works_from_the_keyboard(viewer: ViewerPage) -> None:
    viewer.open()
    page = viewer.page
    page.locator(".gbv-canvas-top").focus()
    page.keyboard.press("ArrowDown")  # the top logit
    page.keyboard.down("g")
    page.keyboard.press("Enter")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    page.keyboard.up("g")
    page.get_by_label("Supernode name").fill("outputs")
    page.keyboard.press("Enter")
    viewer.wait_state("s => s.supernodes.length === 1")
    assert viewer.state()["supernodes"] == [["outputs", "5_25722_5", "5_9447_5"]]


# ---- a featured-sized subgraph: readable labels, clicks, grouping without a keyboard, scores ----

PINNED = [  # the most influential features of featured_graph.py's graph, a token and the top output
    "13_132_8", "0_1674_8", "9_209_7", "17_280_8", "10_1196_1", "7_273_8", "6_1549_8", "0_415_4",
    "3_499_8", "11_765_3", "E_18305_4", "19_1000_8",
]
BOXES_JS = """(selector) => [...document.querySelectorAll(selector)].map((el) => {
  const r = el.getBoundingClientRect();
  return { id: el.closest('[data-key]').dataset.key, x0: r.left, y0: r.top, x1: r.right, y1: r.bottom };
})"""


def _open_pinned(viewer: ViewerPage, **params: str) -> ViewerPage:
    viewer.open(FEATURED_GRAPH, pinnedIds=",".join(PINNED), **params)
    expect(viewer.page.locator(".gbv-sg-node")).to_have_count(len(PINNED))
    return viewer


def _overlaps(boxes: list[dict]) -> list[tuple[str, str]]:
    return [
        (a["id"], b["id"])
        for i, a in enumerate(boxes)
        for b in boxes[i + 1 :]
        if a["x0"] < b["x1"] and b["x0"] < a["x1"] and a["y0"] < b["y1"] and b["y0"] < a["y1"]
    ]


def test_pinned_labels_are_whole_and_never_overlap(viewer: ViewerPage) -> None:
    _open_pinned(viewer)
    page = viewer.page
    for selector in [".gbv-sg-node text", ".gbv-sg-hit"]:
        assert _overlaps(page.evaluate(BOXES_JS, selector)) == [], selector
    nodes = page.locator(".gbv-sg-node")
    for i in range(nodes.count()):
        node = nodes.nth(i)
        label = node.get_attribute("aria-label")
        assert node.locator("title").text_content() == label  # the full text on hover
        lines = node.locator("tspan").all_text_contents()
        assert 1 <= len(lines) <= 3
        assert " ".join(lines) == " ".join(label.split()) or lines[-1].endswith("…")
    long_label = page.locator(".gbv-sg-node[data-node-id='10_1196_1']")  # 24 characters: once cut at 22
    assert long_label.get_attribute("aria-label") == "feature 1196: ball games"
    assert long_label.locator("tspan").all_text_contents() == ["feature 1196: ball", "games"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.locator(".gbv-subgraph").screenshot(path=str(ARTIFACTS / "subgraph-panel.png"))


def test_clicks_land_on_the_subgraph_node_under_the_pointer(viewer: ViewerPage) -> None:
    _open_pinned(viewer)
    nodes = viewer.page.locator(".gbv-sg-node")
    for i in range(nodes.count()):
        node = nodes.nth(i)
        node_id = node.get_attribute("data-node-id")
        # Playwright clicks the middle of the shape, and fails if another element would get the click.
        target = node.locator("text") if i % 2 else node.locator("circle, rect:not(.gbv-sg-hit), path").first
        target.click()
        viewer.wait_state("(s, id) => s.clickedId === id", node_id)


def test_subgraph_scores_resize_and_enlarge(viewer: ViewerPage) -> None:
    _open_pinned(viewer)
    page = viewer.page
    scores = page.locator(".gbv-sg-scores")
    assert "unexplained" in scores.get_attribute("title")
    for key in ["replacement", "completeness"]:
        value = float(scores.locator(f"[data-score={key}]").text_content())
        assert 0 <= value <= 1
    view = page.locator(".gbv-sg-view")
    assert view.evaluate("el => getComputedStyle(el).resize") == "vertical"
    page.get_by_role("button", name="Enlarge").click()
    panel = page.locator(".gbv-subgraph").bounding_box()
    assert panel["width"] > 0.85 * 1280 and panel["height"] > 0.85 * 800
    assert _overlaps(page.evaluate(BOXES_JS, ".gbv-sg-node text")) == []
    viewer.screenshot("subgraph-enlarged")
    page.keyboard.press("Escape")
    viewer.wait_state("s => !s.subgraphExpanded")
    assert page.locator(".gbv-subgraph").bounding_box()["width"] < 400


def test_group_nodes_by_taps_on_a_touch_screen(browser: Any, base_url: str) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
    try:
        viewer = ViewerPage(context.new_page(), base_url)
        _open_pinned(viewer)
        page = viewer.page
        page.get_by_role("button", name="Group nodes").tap()
        viewer.wait_state("s => s.groupingActive")
        for node_id in ["13_132_8", "17_280_8"]:
            page.locator(f".gbv-sg-node[data-node-id='{node_id}'] circle").tap()
        viewer.wait_state("s => s.grouping.length === 2")
        assert viewer.state()["clickedId"] is None  # taps while grouping do not select
        page.get_by_role("button", name="Finish group (2)").tap()
        dialog = page.get_by_role("dialog", name="New supernode")
        dialog.get_by_label("Supernode name").fill("say basketball")
        dialog.get_by_role("button", name="Create supernode").tap()
        viewer.wait_state("s => s.supernodes.length === 1")
        assert viewer.state()["supernodes"] == [["say basketball", "13_132_8", "17_280_8"]]
        supernode = page.locator(".gbv-sg-node.gbv-kind-supernode")
        expect(supernode).to_have_attribute("aria-label", "say basketball")
        viewer.screenshot("subgraph-touch-supernode")
    finally:
        context.close()
