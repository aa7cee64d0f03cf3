"""The graph page on a graph the worker traced: hover, click, pin, group, save a view, share, and
the shared link (and the saved view's own link) reopening the same state for someone else."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
from gbx_browser_pages import PHONE, features_apart, screenshot, visible_nodes, wait_for_viewer
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

GROUP = "capital <b>pair</b>"


def _click(page, node, *, modifier: str | None = None) -> None:
    page.mouse.move(node["x"], node["y"])
    if modifier:
        page.keyboard.down(modifier)
    page.mouse.click(node["x"], node["y"])
    if modifier:
        page.keyboard.up(modifier)


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def _share_url(page) -> str:
    page.get_by_role("button", name="Share").click()
    url = page.locator(".gbv-share-url").input_value()
    page.keyboard.press("Escape")
    expect(page.locator(".gbv-share-url")).to_have_count(0)
    return url


def test_hover_click_pin_group_share_and_reopen(app, users, texas_graph, open_page):
    slug = texas_graph["slug"]
    page = open_page(f"/graph/{slug}", user="ada")
    wait_for_viewer(page)
    first, second = features_apart(visible_nodes(page), 2)

    page.mouse.move(first["x"], first["y"])  # hover: the tooltip describes the node
    tooltip = page.locator(".gbv-tooltip")
    expect(tooltip).to_be_visible()
    expect(tooltip).to_contain_text(f"Feature{first['featureIndex']}")
    page.mouse.move(5, 5)
    expect(tooltip).to_be_hidden()

    _click(page, first)  # click: the details panel
    expect(page.locator(".gbv-node-id")).to_have_text(first["id"])
    expect(page.locator(".gbv-dashboard")).to_contain_text("No feature dashboard")  # asked the server

    _click(page, second, modifier="Control")  # Ctrl-click: pinned
    expect(page.locator(".gbv-sg-node")).to_have_count(1)
    page.keyboard.down("g")  # hold g and click: a supernode of both
    _click(page, first)
    _click(page, second)
    page.keyboard.up("g")
    page.get_by_label("Supernode name").fill(GROUP)
    page.keyboard.press("Enter")
    expect(page.locator(".gbv-supernode-name")).to_have_text(GROUP)
    page.locator(".gbv-canvas-top").focus()
    page.keyboard.press("[")  # lower the pruning threshold by 0.05
    expect(page.locator(".gbv-slider-value").first).to_have_text("75%")

    page.get_by_label("Subgraph name").fill("the capital pair")
    page.get_by_role("button", name="Save subgraph").click()
    expect(page.locator(".gbv-save-subgraph [role=status]")).to_have_text("Saved")
    share = _share_url(page)
    query = _query(share)
    assert query["clickedId"] == first["id"] and query["pruningThreshold"] == "0.75"
    assert set(query["pinnedIds"].split(",")) == {first["id"], second["id"]}
    assert json.loads(query["supernodes"]) == [[GROUP, first["id"], second["id"]]]
    screenshot(page, "graph-page-shared-view")

    other = open_page(share)  # someone else, not logged in
    wait_for_viewer(other)
    expect(other.locator(".gbv-node-id")).to_have_text(first["id"])
    expect(other.locator(".gbv-supernode-name")).to_have_text(GROUP)
    expect(other.locator(".gbv-slider-value").first).to_have_text("75%")
    assert _share_url(other) == share

    views = users["grace"].get(f"/api/graphs/{slug}/subgraphs").json()
    assert [v["title"] for v in views] == ["the capital pair"]
    saved = open_page(f"/subgraph/{views[0]['slug']}", viewport=PHONE)
    wait_for_viewer(saved)
    expect(saved.locator(".gbv-supernode-name")).to_have_text(GROUP)
    assert set(_query(saved.url)["pinnedIds"].split(",")) == {first["id"], second["id"]}
    expect(saved.locator(".gb-views summary")).to_have_text("Saved views (1)")
    screenshot(saved, "graph-page-saved-view-phone")


def test_graph_page_json_twin_and_missing_graph(app, texas_graph, open_page):
    page = open_page(f"/graph/{texas_graph['slug']}?format=json")
    twin = json.loads(page.locator("body").inner_text())
    assert twin["graph"] == texas_graph
    missing = open_page("/graph/no-such-graph")
    expect(missing.locator("h1")).to_contain_text("404")
    expect(missing.locator("#error-message")).to_have_text("graph 'no-such-graph' not found")
