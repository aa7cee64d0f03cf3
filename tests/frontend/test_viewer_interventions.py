"""The interventions panel on the dev page (fake api): it follows the viewer's selection and labels
through the store, builds rows from the loaded graph (no second fetch), checks them, and draws the
adapter's result as text."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect
from viewer_harness import ViewerPage

pytestmark = pytest.mark.browser

GRAPH = "/tests/frontend/fixtures/small_graph.json"


def _panel(viewer: ViewerPage) -> Any:
    panel = viewer.page.locator(".gbv-interventions")
    panel.locator("summary").click()
    return panel


def test_the_panel_follows_the_selection_and_adds_each_feature_once(viewer: ViewerPage) -> None:
    graph_requests: list[str] = []
    viewer.page.on(
        "request",
        lambda r: r.resource_type == "fetch" and "small_graph.json" in r.url and graph_requests.append(r.url),
    )
    viewer.open()
    panel = _panel(viewer)
    selection = panel.locator(".gbv-iv-selection")
    expect(selection).to_have_text("Click or pin feature nodes in the graph, then add them here.")
    add = panel.get_by_role("button", name="Add selected features")
    add.click()
    expect(panel.get_by_role("status").first).to_have_text("Click or pin a feature node first.")

    viewer.click("3_401_5")
    viewer.click("2_301_5", ["Control"])
    viewer.click("1_-1_5", ["Control"])  # an error node: nothing to intervene on
    expect(selection).to_have_text("Selected: L3 #401, L2 #301.")
    add.click()
    rows = panel.locator(".gbv-iv-items tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0).locator("td").first).to_contain_text("L3 #401")
    expect(rows.nth(0).locator(".gbv-iv-label")).to_have_text("say Austin")
    expect(rows.nth(0).locator(".gbv-iv-pos")).to_have_value("5")  # the node's own position
    expect(rows.nth(0).locator(".gbv-iv-mode")).to_have_value("ablate")
    expect(rows.nth(0).locator(".gbv-iv-value")).to_be_disabled()
    options = rows.nth(0).locator(".gbv-iv-pos option")
    tokens = ['1: "The"', '2: " capital"', '3: " of"', '4: " Texas"', '5: " is"']  # no BOS
    expect(options).to_have_text(["every position", *tokens])
    add.click()  # the same selection again: no duplicates
    expect(rows).to_have_count(2)
    expect(panel.get_by_role("status").first).to_have_text("Already in the list.")

    rows.nth(0).get_by_role("button", name="Remove L3 #401").click()
    expect(rows).to_have_count(1)
    expect(rows.nth(0)).to_have_attribute("data-node-id", "2_301_5")
    assert len(graph_requests) == 1, graph_requests  # the panel uses the viewer's graph


def test_row_labels_follow_label_edits_in_the_viewer(viewer: ViewerPage) -> None:
    viewer.open()
    panel = _panel(viewer)
    viewer.click("3_401_5")
    panel.get_by_role("button", name="Add selected features").click()
    label = viewer.page.get_by_label("Label for this feature")
    label.fill("<b>Austin</b> sayer")
    label.press("Enter")
    expect(panel.locator(".gbv-iv-label")).to_have_text("<b>Austin</b> sayer")
    assert viewer.page.locator(".gbv-interventions b").count() == 0


def test_running_sends_the_rows_and_shows_the_result_as_text(viewer: ViewerPage) -> None:
    viewer.open()
    panel = _panel(viewer)
    viewer.click("3_401_5")
    viewer.click("2_301_5", ["Control"])
    panel.get_by_role("button", name="Add selected features").click()
    rows = panel.locator(".gbv-iv-items tbody tr")
    rows.nth(1).locator(".gbv-iv-mode").select_option("set")
    rows.nth(1).locator(".gbv-iv-value").fill("")
    run = panel.get_by_role("button", name="Run intervention")
    run.click()
    status = panel.locator(".gbv-iv-status")
    expect(status).to_have_text("Give L2 #301 a number to set it to.")
    assert viewer.api_calls("runInterventions") == []

    rows.nth(1).locator(".gbv-iv-value").fill("-1.5")
    rows.nth(0).locator(".gbv-iv-pos").select_option("4")
    panel.get_by_label("Constrained (linear paths only)").check()
    panel.get_by_label("New tokens").fill("500")
    run.click()
    expect(status).to_have_text("Done.")
    (payload,) = viewer.api_calls("runInterventions")
    assert payload == {
        "interventions": [
            {"nodeId": "3_401_5", "layer": 3, "featureIndex": 401, "pos": 4, "mode": "ablate", "value": 0},
            {"nodeId": "2_301_5", "layer": 2, "featureIndex": 301, "pos": 5, "mode": "set", "value": -1.5},
        ],
        "maxNewTokens": 64,  # clamped to what the server accepts
        "constrained": True,
    }
    table = panel.locator(".gbv-iv-table tbody tr")
    expect(table).to_have_count(3)
    expect(table.nth(0).locator("td")).to_have_text(['" Austin"', "61.20%", "20.10%", "\u221241.10%"])
    expect(table.nth(0)).to_have_class("gbv-iv-changed gbv-iv-down")
    expect(table.nth(1)).not_to_have_class("gbv-iv-changed")  # +0.05 points: too small to highlight
    expect(table.nth(2)).to_have_class("gbv-iv-changed gbv-iv-up")
    expect(panel.locator(".gbv-iv-after")).to_have_text(" Dallas, <b>a</b> city in the north.")
    assert viewer.page.locator(".gbv-interventions b").count() == 0
    expect(panel.get_by_label("New tokens")).to_have_value("64")
    viewer.screenshot("interventions-panel")
    panel.locator(".gbv-iv-result").scroll_into_view_if_needed()
    viewer.screenshot("interventions-panel-result")


def test_signed_out_viewers_get_a_login_link_and_no_run(viewer: ViewerPage) -> None:
    viewer.open(GRAPH, loggedOut="1")
    panel = _panel(viewer)
    expect(panel.get_by_role("link", name="Log in")).to_have_attribute("href", "/login")
    expect(panel.get_by_role("button", name="Run intervention")).to_be_disabled()
    viewer.click("3_401_5")
    panel.get_by_role("button", name="Add selected features").click()  # rows can still be prepared
    expect(panel.locator(".gbv-iv-items tbody tr")).to_have_count(1)
