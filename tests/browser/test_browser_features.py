"""Labels and feature pages in the browser: a label one user saves on the graph page is what
another user sees there and on the feature page; concurrent edits, history, revert, votes and
comments on the feature page; the feature dashboard; and script in a label (or a prompt or a
comment) that stays text everywhere."""

from __future__ import annotations

import pytest
from gbx_browser_pages import PHONE, features_apart, screenshot, visible_nodes, wait_for_viewer
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

PAYLOAD = "<img src=x onerror=alert(1)>"


def _feature_url(node) -> str:
    return f"/features/tiny/tc/{node['layer']}/{node['featureIndex']}"


def _open_graph(open_page, slug: str, user: str | None):
    page = open_page(f"/graph/{slug}", user=user)
    wait_for_viewer(page)
    return page


def _save_label_on_graph(page, node, text: str) -> None:
    page.mouse.click(node["x"], node["y"])
    expect(page.locator(".gbv-node-id")).to_have_text(node["id"])
    page.get_by_label("Label for this feature").fill(text)
    page.get_by_role("button", name="Save label").click()
    expect(page.locator(f'[data-status-for="{node["id"]}"]')).to_have_text("Saved")


def _no_injected_markup(page) -> None:
    assert page.locator("img").count() == 0, "an <img> from user text reached the page"


def test_a_label_saved_by_one_user_is_seen_by_another(users, texas_graph, open_page):
    slug = texas_graph["slug"]
    ada = _open_graph(open_page, slug, "ada")
    node = features_apart(visible_nodes(ada), 1)[0]
    _save_label_on_graph(ada, node, "capital city (ada)")

    grace = _open_graph(open_page, slug, "grace")  # another browser, another account
    grace.mouse.move(node["x"], node["y"])
    expect(grace.locator(".gbv-tooltip-label")).to_have_text("capital city (ada)")
    grace.mouse.click(node["x"], node["y"])
    expect(grace.locator(".gbv-details-label")).to_have_text("capital city (ada)")

    feature = open_page(_feature_url(node), user="grace")
    expect(feature.locator("#feature-title")).to_have_text("capital city (ada)")
    expect(feature.locator("#label-history li")).to_have_count(1)
    expect(feature.locator("#label-history li").first).to_contain_text("v1 by ada")


def test_feature_page_labels_history_revert_votes_and_comments(users, texas_graph, open_page):
    ada = _open_graph(open_page, texas_graph["slug"], None)
    node = features_apart(visible_nodes(ada), 3)[2]
    url = _feature_url(node)
    ada = open_page(url, user="ada")
    grace = open_page(url, user="grace")  # both pages loaded at version 0

    ada.get_by_label("New label").fill("says Austin")
    ada.get_by_role("button", name="Save label").click()
    expect(ada.locator("#label-status")).to_have_text("Saved as version 1.")
    expect(ada.locator("#feature-title")).to_have_text("says Austin")

    grace.get_by_label("New label").fill("state capitals")  # edited from version 0: refused
    grace.get_by_label("New label").press("Enter")
    expect(grace.locator("#label-status")).to_contain_text("Someone saved “says Austin” meanwhile")
    expect(grace.get_by_label("New label")).to_have_value("state capitals")  # nothing lost
    expect(grace.locator("#feature-title")).to_have_text("says Austin")
    grace.get_by_role("button", name="Save label").click()
    expect(grace.locator("#label-status")).to_have_text("Saved as version 2.")

    grace.get_by_role("button", name="Revert to v1").click()
    expect(grace.locator("#label-status")).to_have_text("Version 1 is current again (as version 3).")
    history = grace.locator("#label-history li")
    expect(history).to_have_count(3)
    expect(history.first).to_contain_text("revert of v1")
    expect(grace.locator("#current-label")).to_have_text("says Austin")

    up = grace.get_by_role("button", name="Vote up version 2")
    up.click()
    expect(grace.locator('[data-version="2"] .gb-score')).to_have_text("1")
    expect(grace.get_by_role("button", name="Vote up version 2")).to_have_attribute("aria-pressed", "true")
    expect(grace.get_by_role("button", name="Vote up version 2")).to_be_focused()
    grace.keyboard.press("Enter")  # again: the vote is withdrawn
    expect(grace.locator('[data-version="2"] .gb-score')).to_have_text("0")

    grace.get_by_label("Add a comment").fill("fires on the token after “capital”")
    grace.get_by_role("button", name="Post comment").click()
    expect(grace.locator("#comments-title")).to_have_text("Comments (1)")
    ada.reload()
    expect(ada.locator(".gb-comment-text")).to_have_text("fires on the token after “capital”")
    expect(ada.locator("[data-delete-comment]")).to_have_count(0)  # only the author may delete
    expect(ada.locator("#label-history li")).to_have_count(3)
    screenshot(grace, "feature-page-history")


def test_feature_dashboard_on_the_feature_page_and_in_the_graph(admin, texas_graph, open_page):
    viewer = _open_graph(open_page, texas_graph["slug"], None)
    node = features_apart(visible_nodes(viewer), 4)[3]
    dashboard = {
        "index": node["featureIndex"],
        "activation_frequency": 0.0123,
        "act_max": 4.0,
        "histogram": [5, 40, 12, 3],
        "histogram_edges": [0.1, 1.0, 3.0],
        "top_logits": [" Austin", " Texas"],
        "top_logits_values": [2.5, 1.25],
        "bottom_logits": [" cold"],
        "bottom_logits_values": [-1.5],
        "examples_quantiles": [
            {
                "quantile_name": "Top activations",
                "examples": [
                    {"tokens": ["The", " capital", " of", " Texas"], "tokens_acts_list": [0, 1, 0, 4]}
                ],
            }
        ],
    }
    url = f"/api{_feature_url(node)}/dashboard"
    r = admin.put(url, json={"dashboard": dashboard, "auto_label": "Texas → Austin"})
    assert r.status_code == 200, r.text

    page = open_page(_feature_url(node), viewport=PHONE)
    expect(page.locator("#feature-title")).to_have_text("Texas → Austin")
    expect(page.locator("#density")).to_have_text("1.23% of tokens")
    expect(page.locator(".gb-histogram li")).to_have_count(4)
    expect(page.locator(".gb-logit-pos li")).to_have_text([" Austin", " Texas"])
    tokens = page.locator(".gb-example .gb-tok")
    expect(tokens).to_have_text(["The", " capital", " of", " Texas"])
    assert tokens.nth(3).get_attribute("style") == "--a: 1.000"
    assert tokens.nth(1).get_attribute("style") == "--a: 0.250"
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page scrolls sideways ({width} px)"
    screenshot(page, "feature-page-phone")

    viewer.mouse.click(node["x"], node["y"])  # the viewer gets the same dashboard (features batch)
    expect(viewer.locator(".gbv-dashboard")).to_contain_text("Top logits")
    expect(viewer.locator(".gbv-dashboard .gbv-tok")).to_have_count(4)


def test_script_in_a_label_a_prompt_or_a_comment_stays_text(app, users, texas_graph, open_page):
    slug = texas_graph["slug"]
    ada = _open_graph(open_page, slug, "ada")
    node = features_apart(visible_nodes(ada), 2)[1]
    _save_label_on_graph(ada, node, PAYLOAD)
    expect(ada.locator(".gbv-details-label")).to_have_text(PAYLOAD)

    grace = _open_graph(open_page, slug, "grace")
    grace.mouse.move(node["x"], node["y"])
    expect(grace.locator(".gbv-tooltip-label")).to_have_text(PAYLOAD)
    grace.mouse.click(node["x"], node["y"])
    expect(grace.locator(".gbv-details-label")).to_have_text(PAYLOAD)
    _no_injected_markup(grace)
    screenshot(grace, "graph-page-script-label")

    feature = open_page(_feature_url(node), user="grace")
    expect(feature.locator("#feature-title")).to_have_text(PAYLOAD)
    expect(feature).to_have_title(f"{PAYLOAD} · Glassbox")
    feature.get_by_label("Add a comment").fill(PAYLOAD)
    feature.get_by_role("button", name="Post comment").click()
    expect(feature.locator(".gb-comment-text", has_text="onerror")).to_have_text(PAYLOAD)
    _no_injected_markup(feature)
    screenshot(feature, "feature-page-script-label")

    job = users["ada"].post("/api/traces", json={"model": "tiny", "prompt": f"a cat {PAYLOAD}"}).json()
    app.wait_for_job(users["ada"], job["id"], "done")
    home = open_page(f"/?q={PAYLOAD[:4]}&label=onerror")
    expect(home.locator("#prompt-results td a")).to_have_text(f"a cat {PAYLOAD}")
    expect(home.locator("#label-results td a")).to_have_text(PAYLOAD)
    _no_injected_markup(home)
    home.locator("#prompt-results td a").click()
    wait_for_viewer(home)
    expect(home.locator(".gbv-prompt-text")).to_have_text(f"a cat {PAYLOAD}")
    _no_injected_markup(home)
