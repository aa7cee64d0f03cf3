"""Pinning (Ctrl/Cmd-click) into the subgraph panel and grouping (hold g + click) into
supernodes."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from viewer_harness import ViewerPage

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
