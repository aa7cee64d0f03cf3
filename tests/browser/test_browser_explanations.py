"""LLM explanations in the browser, with a fake OpenAI-compatible explainer on 127.0.0.1: "Explain
with LLM" on the feature page, then the explanation with its score and provenance on the feature
page and in the viewer's hover card (and as the node's label); with no endpoint configured, the
pages say which settings turn explanations on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from _fake_explainer import FakeExplainer
from gbx_browser_pages import features_apart, screenshot, visible_nodes, wait_for_viewer
from playwright.sync_api import expect

from glassbox.features.explain import PROMPT_VERSION

pytestmark = pytest.mark.browser

OTHER_INDEX = 100_000  # features far from any of the tiny graph's: their contexts are the negatives


def _cat_dashboard(word: str, n: int) -> dict[str, Any]:
    examples = [{"tokens": [f" line{i}", " the", f" {word}", " here"],
                 "tokens_acts_list": [0, 0, 2.0 + i, 0.1], "train_token_ind": i} for i in range(n)]
    return {"top_logits": [" meow"], "activation_frequency": 0.01,
            "examples_quantiles": [{"quantile_name": "Top activations", "examples": examples}]}


@pytest.fixture
def explainer(app) -> Iterator[FakeExplainer]:
    """The running app's settings pointed at a fake explainer, and back to none afterwards (the
    worker process keeps the settings it started with: none)."""
    with FakeExplainer() as fake:
        app.settings.explainer_url = fake.url
        app.settings.explainer_model = "fake-7b"
        try:
            yield fake
        finally:
            app.settings.explainer_url = None
            app.settings.explainer_model = None


def _target(open_page, slug: str) -> dict[str, Any]:
    """A feature node no other browser test labels (they take the first four of features_apart)."""
    page = open_page(f"/graph/{slug}")
    wait_for_viewer(page)
    nodes = visible_nodes(page)
    for count in (6, 5):
        try:
            return features_apart(nodes, count)[-1]
        except AssertionError:
            continue
    raise AssertionError("the tiny graph shows fewer than five separate features")


def test_explain_with_llm_then_see_it_on_the_feature_page_and_on_hover(
    admin, users, texas_graph, explainer, open_page
):
    node = _target(open_page, texas_graph["slug"])
    url = f"/features/tiny/tc/{node['layer']}/{node['featureIndex']}"
    r = admin.put(f"/api{url}/dashboard", json={"dashboard": _cat_dashboard("cat", 12)})
    assert r.status_code == 200, r.text
    for i, word in enumerate(["dog", "sun", "rain", "car", "tree", "boat", "milk", "road"]):
        other = f"/api/features/tiny/tc/1/{OTHER_INDEX + i}/dashboard"
        r = admin.put(other, json={"dashboard": _cat_dashboard(word, 3)})
        assert r.status_code == 200, r.text

    anon = open_page(url)
    expect(anon.locator("#explanation-box")).to_contain_text("Log in to ask an LLM for an explanation.")
    expect(anon.get_by_role("button", name="Explain with LLM")).to_have_count(0)

    page = open_page(url, user="ada")
    expect(page.locator("#explanation-box")).to_contain_text("No LLM explanation yet.")
    page.get_by_role("button", name="Explain with LLM").click()
    expect(page.locator("#explain-status")).to_have_text("Explained (score 1.00).")
    expect(page.locator("#explanation-text")).to_have_text("fires on cat")
    expect(page.locator("#explanation-score")).to_have_text("1.00")
    expect(page.locator("#explanation-model")).to_have_text("fake-7b")
    expect(page.locator("#explanation-meta")).to_contain_text(PROMPT_VERSION)
    expect(page.locator("#explanation-meta")).to_contain_text("on 10 held-out contexts")
    expect(page.locator("#explanation-meta")).to_contain_text("asked by ada")
    expect(page.locator("#feature-title")).to_have_text("fires on cat")  # no person's label: it is the label
    expect(page.locator("#current-label")).to_contain_text("(LLM explanation)")
    assert len(explainer.requests) >= 2  # the explanation, then its scoring
    screenshot(page, "feature-page-explanation")

    viewer = open_page(f"/graph/{texas_graph['slug']}")
    wait_for_viewer(viewer)
    viewer.mouse.move(node["x"], node["y"])
    expect(viewer.locator(".gbv-tooltip-label")).to_have_text("fires on cat")
    card = viewer.locator(".gbv-card-explanation")
    expect(card.locator(".gbv-explanation-text")).to_have_text("LLM: fires on cat")
    expect(card.locator(".gbv-explanation-meta")).to_contain_text("score 1.00 (n=10)")
    expect(card.locator(".gbv-explanation-meta")).to_contain_text("fake-7b")
    expect(card.locator(".gbv-explanation-meta")).to_contain_text(PROMPT_VERSION)
    screenshot(viewer, "graph-hover-explanation")


def test_explain_features_on_the_graph_page_follows_the_job(users, texas_graph, explainer, open_page):
    """The batch action queues a job and reports how it ended: here the session's worker process
    has no explainer settings, which the job's failure says."""
    page = open_page(f"/graph/{texas_graph['slug']}", user="ada")
    wait_for_viewer(page)
    page.locator("#explain-menu > summary").click()
    page.get_by_role("button", name="Explain features").click()
    expect(page.locator("#explain-features-status")).to_contain_text("GLASSBOX_EXPLAINER_URL", timeout=60_000)
    expect(page.locator("#explain-features-status")).to_contain_text("this worker cannot explain")


def test_without_an_endpoint_the_pages_say_how_to_configure_one(app, users, texas_graph, open_page):
    assert app.settings.explainer_url is None
    page = open_page("/features/tiny/tc/0/1", user="ada")
    expect(page.locator("#explainer-off")).to_contain_text("GLASSBOX_EXPLAINER_URL")
    expect(page.locator("#explainer-off")).to_contain_text("GLASSBOX_EXPLAINER_MODEL")
    expect(page.locator("#explainer-off")).to_contain_text("GLASSBOX_EXPLAINER_API_KEY")
    expect(page.get_by_role("button", name="Explain with LLM")).to_have_count(0)

    graph = open_page(f"/graph/{texas_graph['slug']}", user="ada")
    wait_for_viewer(graph)
    graph.locator("#explain-menu > summary").click()
    expect(graph.locator("#explain-menu")).to_contain_text("GLASSBOX_EXPLAINER_URL")
    expect(graph.get_by_role("button", name="Explain features")).to_have_count(0)
