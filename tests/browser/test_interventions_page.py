"""Interventions from the graph page: click a feature node, add it, ablate it, and read
the before/after table of next tokens and both continuations that the worker computed."""

from __future__ import annotations

import re

import pytest
from gbx_browser_pages import features_apart, screenshot, visible_nodes, wait_for_viewer
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_ablate_a_feature_from_the_graph_page(app, users, texas_graph, open_page):
    slug = texas_graph["slug"]
    page = open_page(f"/graph/{slug}", user="ada")
    wait_for_viewer(page)
    (node,) = features_apart(visible_nodes(page), 1)
    page.mouse.move(node["x"], node["y"])
    page.mouse.click(node["x"], node["y"])
    expect(page.locator(".gbv-node-id")).to_have_text(node["id"])
    expect(page).to_have_url(re.compile("clickedId="))

    page.locator(".gbv-interventions > summary").click()
    page.get_by_role("button", name="Add selected features").click()
    rows = page.locator(".gbv-iv-items tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(f"L{node['layer']} #{node['featureIndex']}")
    layer, feature, pos = (int(x) for x in node["id"].split("_"))
    expect(rows.first.locator(".gbv-iv-pos")).to_have_value(str(pos))  # the node's own position
    expect(rows.first.locator(".gbv-iv-mode")).to_have_value("ablate")

    page.get_by_role("button", name="Run intervention").click()
    table = page.locator(".gbv-iv-table tbody tr")
    expect(table.first).to_be_visible(timeout=90_000)
    assert table.count() >= 10  # the top 10 before, and any token new in the top 10 after
    expect(page.locator(".gbv-iv-status")).to_have_text("Done.")
    expect(page.locator(".gbv-iv-before")).not_to_be_empty()
    expect(page.locator(".gbv-iv-after")).not_to_be_empty()
    first = table.first.locator("td")
    expect(first.nth(1)).to_have_text(re.compile(r"^\d+\.\d\d%$"))
    expect(first.nth(2)).to_have_text(re.compile(r"^\d+\.\d\d%$"))

    # the table shows what the job computed: same tokens, same probabilities
    jobs = page.evaluate("async () => (await (await fetch('/api/jobs?limit=5')).json())")
    job = next(j for j in jobs if j["kind"] == "intervention" and j["graph_slug"] == slug)
    result = job["result"]
    assert job["status"] == "done" and result["interventions"] == [
        {"layer": layer, "pos": pos, "feature": feature, "mode": "ablate", "value": 0.0}
    ]
    assert table.count() == len(result["rows"])
    top = result["rows"][0]
    expect(first.nth(1)).to_have_text(f"{top['prob_before'] * 100:.2f}%")
    expect(first.nth(2)).to_have_text(f"{top['prob_after'] * 100:.2f}%")
    changed = [r for r in result["rows"] if abs(r["delta"]) >= 0.001]
    expect(page.locator(".gbv-iv-table tr.gbv-iv-changed")).to_have_count(len(changed))
    screenshot(page, "interventions-ablate")


def test_custom_logit_difference_target_from_the_new_page(app, users, open_page):
    page = open_page("/new", user="ada")
    page.locator("#prompt").fill("The capital of Texas is")
    page.locator("#target > summary").click()
    page.locator("#logit_plus").fill("Austin")
    page.locator("#logit_minus").fill("Dallas")
    page.get_by_role("button", name="Trace graph").click()
    expect(page).to_have_url(re.compile(r"/graph/"), timeout=120_000)
    slug = page.url.rsplit("/graph/", 1)[1].split("?")[0]
    doc = page.evaluate(f"async () => (await (await fetch('/api/graphs/{slug}/data')).json())")
    logits = [n for n in doc["nodes"] if n["feature_type"] == "logit"]
    assert len(logits) == 1 and "Austin" in logits[0]["clerp"] and "Dallas" in logits[0]["clerp"]
