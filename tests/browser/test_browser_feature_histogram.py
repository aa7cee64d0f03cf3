"""The feature page's activation histogram: a chart with labelled axes and tick labels (log
activation, log count), one bar per bin that fired; the automatic label's confidence; and the
viewer's density filter fed by the features batch."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from gbx_browser_app import TEXAS, disable_models, register_model
from gbx_browser_pages import screenshot, visible_nodes, wait_for_viewer
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

URL = "/features/dense/tc/0/7"  # a model of this module only (see dense_graph)
EDGES = [10 ** (-2 + i / 8) for i in range(41)]  # the builder's bins: 1e-2 to 1e3, 8 per decade
COUNTS = [0] * 42
for i, n in ((17, 3), (18, 40), (19, 1200), (20, 800), (21, 90), (22, 7), (24, 1)):
    COUNTS[i] = n


def test_the_histogram_has_axes_with_tick_labels(admin, dense_graph, open_page):
    dashboard = {
        "index": 7,
        "auto_label": 'word after "the"?',
        "auto_label_provenance": {"kind": "auto", "confidence": 0.3, "low_confidence": True},
        "activation_frequency": 0.02,
        "histogram": COUNTS,
        "histogram_edges": EDGES,
        "examples_quantiles": [],
    }
    body = {"dashboard": dashboard, "auto_label": dashboard["auto_label"]}
    r = admin.put(f"/api{URL}/dashboard", json=body)
    assert r.status_code == 200, r.text

    page = open_page(URL)
    chart = page.locator("#histogram-chart svg")
    expect(chart).to_be_visible()
    x_ticks = chart.locator(".gb-axis-x .tick text")
    y_ticks = chart.locator(".gb-axis-y .tick text")
    assert x_ticks.count() >= 2 and y_ticks.count() >= 2
    x_labels = [t for t in x_ticks.all_text_contents() if t]
    y_labels = [t for t in y_ticks.all_text_contents() if t]
    assert len(x_labels) >= 2 and len(y_labels) >= 3, (x_labels, y_labels)
    values = [float(t) for t in x_labels]  # activations, within the bins that fired
    assert min(values) >= EDGES[15] and max(values) <= EDGES[25], values  # fired bins, one bin of margin
    assert y_labels[:3] == ["1", "10", "100"] and "1k" in y_labels
    expect(chart.locator(".gb-axis-title")).to_have_text(["Activation (log scale)", "Count (log scale)"])
    bars = chart.locator(".gb-hist-bars rect")
    expect(bars).to_have_count(sum(1 for n in COUNTS if n))
    heights = [float(bars.nth(i).get_attribute("height")) for i in range(bars.count())]
    assert heights[2] == max(heights) and min(heights) >= 1  # 1200 is the tallest; one firing shows
    box = chart.bounding_box()
    assert box is not None and box["width"] > 200 and box["height"] > 60
    # the bins stay in the page for screen readers, out of sight
    expect(page.locator("#histogram-bars li")).to_have_count(42)
    expect(page.locator("#histogram-bars")).to_have_class("gb-histogram gb-sr-only")
    tallest = f"{EDGES[18]:.3g} – {EDGES[19]:.3g}: 1200"
    expect(page.locator("#histogram-bars li").nth(19)).to_contain_text(tallest)

    expect(page.locator("#feature-title")).to_have_text('word after "the"?')
    expect(page.locator("#auto-label-note")).to_have_text("(automatic, confidence 30%)")
    expect(page.locator("#histogram-chart svg")).to_have_count(1)
    screenshot(page, "feature-histogram")


@pytest.fixture(scope="module")
def dense_graph(app, admin, tmp_path_factory) -> Iterator[str]:
    """A graph of a model registered for this module only: the dashboard the test stores must not
    show up in other modules' graphs of the session's tiny model."""
    from glassbox.testing import make_random_transcoders_dir, make_tiny_model_dir

    root: Path = tmp_path_factory.mktemp("dense")
    model_dir = make_tiny_model_dir(root / "model", "llama")
    register_model(admin, "dense", model_dir, make_random_transcoders_dir(root / "tc", model_dir, seed=5),
                   n_layers=2)
    body = {"model": "dense", "prompt": TEXAS, "params": {"max_n_logits": 3}, "visibility": "unlisted"}
    r = admin.post("/api/traces", json=body)
    assert r.status_code == 202, r.text
    yield app.wait_for_job(admin, r.json()["id"], "done")["graph_slug"]
    disable_models(app, ["dense"])


def test_the_density_filter_opens_with_densities_from_the_features_batch(admin, dense_graph, open_page):
    """The graph JSON carries no densities; the features batch the viewer asks for labels brings
    activation_frequency, so the "Feature density" filter works before any node is clicked."""
    page = open_page(f"/graph/{dense_graph}")
    wait_for_viewer(page)
    node = next(n for n in visible_nodes(page) if n["kind"] == "feature")
    densities_in_json = page.evaluate("""async () => {
      const url = document.querySelector("[data-glassbox-viewer]").dataset.graphUrl;
      return (await (await fetch(url)).json()).nodes.some((n) => typeof n.frac_nonzero === "number");
    }""")
    assert densities_in_json is False  # what turns the filter on below is the features batch
    body = {"dashboard": {"activation_frequency": 0.5, "examples_quantiles": []}, "auto_label": "dense"}
    r = admin.put(f"/api/features/dense/tc/{node['layer']}/{node['featureIndex']}/dashboard", json=body)
    assert r.status_code == 200, r.text
    page = open_page(f"/graph/{dense_graph}")
    wait_for_viewer(page)
    expect(page.get_by_label("Feature density")).to_be_enabled()
