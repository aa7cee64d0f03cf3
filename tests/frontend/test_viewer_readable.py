"""The default view of a featured-sized graph is readable: at most 120 nodes and the edges that
matter, sliders that change what is drawn, output labels that never overlap, a header with the
graph's scores, hover that highlights a node's edges and shows its feature card, and a link to
every feature's page. The graph is featured_graph.py's (shaped like the demo model's graphs)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from conftest import FEATURED_FEATURES, FEATURED_GRAPH
from featured_graph import featured_like_graph
from playwright.sync_api import expect
from viewer_harness import ViewerPage

pytestmark = pytest.mark.browser

LAPTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
GRAPH = featured_like_graph()
N_NODES = len(GRAPH["nodes"])
FEATURES = {n["node_id"]: n for n in GRAPH["nodes"] if n["feature_type"] == "cross layer transcoder"}
TOP_FEATURE = min(FEATURES.values(), key=lambda n: n["influence"])["node_id"]


def _open(viewer: ViewerPage, size: dict[str, int] = LAPTOP, **params: str) -> ViewerPage:
    viewer.page.set_viewport_size(size)
    return viewer.open(FEATURED_GRAPH, theme="light", **params)


def _edge_count(viewer: ViewerPage) -> int:
    return viewer.page.evaluate("window.glassboxDev.handle.visibleEdgeCount()")


def _overlapping(boxes: list[dict[str, float]]) -> list[tuple[str, str]]:
    def overlap(a: dict[str, float], b: dict[str, float]) -> bool:
        return a["x0"] < b["x1"] and b["x0"] < a["x1"] and a["y0"] < b["y1"] and b["y0"] < a["y1"]

    return [(a["id"], b["id"]) for i, a in enumerate(boxes) for b in boxes[i + 1 :] if overlap(a, b)]


def test_a_featured_graph_opens_pruned_with_scores_and_counts(viewer: ViewerPage) -> None:
    _open(viewer)
    visible = viewer.visible_ids()
    assert 40 <= len(visible) <= 120, len(visible)
    edges = _edge_count(viewer)
    assert 0 < edges <= 3 * len(visible), edges
    page = viewer.page
    header = page.locator(".gbv-graph-header")
    expect(header.locator("[data-score=replacement]")).to_have_text("0.65")
    expect(header.locator("[data-score=completeness]")).to_have_text("0.90")
    shares = header.locator("[data-share]").all_text_contents()
    assert [s.split()[0] for s in shares] == ["Features", "Errors", "Tokens"]
    assert abs(sum(int(re.search(r"(\d+)%", s).group(1)) for s in shares) - 100) <= 2
    expect(header.locator(".gbv-counts")).to_have_text(
        f"Showing {len(visible)} of {N_NODES} nodes · {edges:,} of {len(GRAPH['links']):,} edges"
    )
    expect(page.locator(".gbv-details h2")).to_have_text("How to read this graph")
    viewer.screenshot("featured-1440x900")


def test_the_export_threshold_alone_would_show_everything(viewer: ViewerPage) -> None:
    # Every exported node sits below metadata.node_threshold: that is why the default prunes further.
    _open(viewer)
    default = len(viewer.visible_ids())
    viewer.page.get_by_label("Nodes", exact=True).fill("0.8")
    viewer.wait_state("s => s.pruningThreshold === 0.8")
    assert len(viewer.visible_ids()) == N_NODES > default


def test_the_edges_slider_changes_the_visible_edge_count(viewer: ViewerPage) -> None:
    _open(viewer)
    page = viewer.page
    default = _edge_count(viewer)
    nodes = viewer.visible_ids()
    page.get_by_label("Edges", exact=True).fill("1")
    viewer.wait_state("s => s.edgeThreshold === 1")
    every = _edge_count(viewer)
    assert every > default
    page.get_by_label("Edges", exact=True).fill("0.05")
    viewer.wait_state("s => s.edgeThreshold === 0.05")
    fewest = _edge_count(viewer)
    assert fewest < default
    assert viewer.visible_ids() == nodes  # the edge filter never hides nodes
    expect(page.locator(".gbv-counts")).to_contain_text(f"· {fewest:,} of")
    expect(page.locator(".gbv-slider-value").nth(1)).to_have_text("5%")


# The label boxes the viewer drew, each with its text's width measured in the labels' font.
LABEL_BOXES_JS = """() => {
  const ctx = document.createElement('canvas').getContext('2d');
  ctx.font = `11px ${getComputedStyle(document.querySelector('.gbv')).getPropertyValue('--gbv-font')}`;
  const measured = (b) => ({ ...b, measured: ctx.measureText(b.text).width });
  return window.glassboxDev.handle.logitLabelBoxes().map(measured);
}"""


@pytest.mark.parametrize("size", [LAPTOP, {"width": 1280, "height": 800}, PHONE], ids=["1440", "1280", "390"])
def test_output_labels_never_overlap(viewer: ViewerPage, size: dict[str, int]) -> None:
    _open(viewer, size)
    boxes: list[dict[str, Any]] = viewer.page.evaluate(LABEL_BOXES_JS)
    logits = [n["node_id"] for n in GRAPH["nodes"] if n["feature_type"] == "logit"]
    assert sorted(b["id"] for b in boxes) == sorted(logits)
    for box in boxes:  # each box holds its text, measured here independently of the viewer
        assert box["x1"] - box["x0"] >= box["measured"] - 0.5, box
    assert _overlapping(boxes) == []
    graph = viewer.page.locator(".gbv-graph").bounding_box()
    for box in boxes:
        assert graph["x"] <= box["x0"] and box["x1"] <= graph["x"] + graph["width"], box
        assert box["text"], box
    # A shortened label shows its full text on hover, over the label itself.
    shortest = min(boxes, key=lambda b: len(b["text"]) - len(b["full"]))
    viewer.page.mouse.move((shortest["x0"] + shortest["x1"]) / 2, (shortest["y0"] + shortest["y1"]) / 2)
    clerp = next(n["clerp"] for n in GRAPH["nodes"] if n["node_id"] == shortest["id"])
    expect(viewer.page.locator(".gbv-tooltip-label")).to_have_text(clerp)
    if size == PHONE:
        viewer.screenshot("featured-390x844")


def test_hovering_a_feature_shows_its_card_after_a_placeholder(viewer: ViewerPage) -> None:
    _open(viewer, features=FEATURED_FEATURES, delay="500")
    page = viewer.page
    viewer.hover(TOP_FEATURE)
    card = page.locator(".gbv-tooltip")
    expect(card.locator(".gbv-card-loading")).to_be_visible()
    contexts = card.locator(".gbv-context")
    expect(contexts.first).to_be_visible()
    assert 3 <= contexts.count() <= 5
    for i in range(contexts.count()):
        expect(contexts.nth(i).locator(".gbv-peak")).to_have_count(1)
    peak = contexts.first.locator(".gbv-peak").text_content()
    assert peak in {" basketball", " NBA", " hoops", " court", " dunk"}
    expect(card.locator("ul[aria-label='Top logits'] li").first).to_have_text('" basketball"')
    expect(card).to_contain_text("Fires on")
    viewer.screenshot("featured-hover-card")
    assert viewer.api_calls("fetchFeatures") == [[TOP_FEATURE]]
    page.mouse.move(2, 2)
    expect(card).to_be_hidden()
    viewer.hover(TOP_FEATURE)  # cached: no second fetch
    expect(card.locator(".gbv-context").first).to_be_visible()
    assert viewer.api_calls("fetchFeatures") == [[TOP_FEATURE]]


def test_a_feature_without_a_dashboard_says_so(viewer: ViewerPage) -> None:
    _open(viewer, features=FEATURED_FEATURES)
    without = next(i for i in viewer.visible_ids() if i in FEATURES and i not in _dashboard_ids())
    viewer.hover(without)
    expect(viewer.page.locator(".gbv-tooltip")).to_contain_text("No dashboard for this feature yet.")


def _dashboard_ids() -> set[str]:
    from featured_graph import feature_details

    return set(feature_details(GRAPH))


PIXEL_JS = """([x, y]) => {
  const canvas = document.querySelector('.gbv-canvas-top');
  const r = canvas.getBoundingClientRect();
  const k = canvas.width / r.width;
  const at = (v, start) => Math.round((v - start) * k);
  return [...canvas.getContext('2d').getImageData(at(x, r.left), at(y, r.top), 1, 1).data];
}"""
STRONGEST_NEIGHBOUR_JS = """(id) => {
  const h = window.glassboxDev.handle;
  const m = h.model;
  const visible = new Set(h.visibleNodeIds());
  const i = m.idToIndex.get(id);
  const { offsets, edges } = m.outgoing;
  for (let k = offsets[i]; k < offsets[i + 1]; k += 1) {
    const other = m.nodes[m.edges.tgt[edges[k]]].id;
    if (visible.has(other)) return { id: other, negative: m.edges.weight[edges[k]] < 0 };
  }
  return null;
}"""


def test_hovering_a_node_dims_the_rest_and_draws_its_edges(viewer: ViewerPage) -> None:
    _open(viewer)
    page = viewer.page
    graph = page.locator(".gbv-graph").bounding_box()
    corner = [graph["x"] + graph["width"] - 6, graph["y"] + graph["height"] - 6]
    assert page.evaluate(PIXEL_JS, corner)[3] == 0  # nothing over the base picture
    neighbour = page.evaluate(STRONGEST_NEIGHBOUR_JS, TOP_FEATURE)
    assert neighbour is not None
    a, b = viewer.position(TOP_FEATURE), viewer.position(neighbour["id"])
    viewer.hover(TOP_FEATURE)
    viewer.wait_state("(s, id) => s.hoveredId === id", TOP_FEATURE)
    page.wait_for_timeout(100)  # one animation frame
    dim = page.evaluate(PIXEL_JS, corner)
    assert dim[3] > 150, f"the rest of the graph is dimmed: {dim}"
    middle = page.evaluate(PIXEL_JS, [(a["x"] + b["x"]) / 2, (a["y"] + b["y"]) / 2])
    blue, red = (37, 99, 235), (220, 38, 38)  # --gbv-pos and --gbv-neg of the light theme
    colour = red if neighbour["negative"] else blue
    assert middle[3] > 200 and sum(abs(middle[i] - colour[i]) for i in range(3)) < 120, middle


def test_every_feature_node_links_to_its_feature_page(viewer: ViewerPage) -> None:
    _open(viewer)
    hrefs = viewer.page.evaluate("""async (ids) => {
      const out = {};
      for (const id of ids) {
        window.glassboxDev.handle.setState({ clickedId: id });
        await new Promise((resolve) => setTimeout(resolve));
        out[id] = document.querySelector('.gbv-feature-link a')?.getAttribute('href') ?? null;
      }
      return out;
    }""", viewer.visible_ids())
    for node_id, href in hrefs.items():
        if node_id in FEATURES:
            layer, index, _ = node_id.split("_")
            assert href == f"/features/dev-model/dev-transcoders/{layer}/{index}", node_id
        else:
            assert href is None, node_id  # tokens, errors and outputs have no feature page
    assert sum(1 for i in hrefs if i in FEATURES) >= 30
