"""Helpers for driving the app's pages in Chromium: screenshots, and where the graph viewer drew
its nodes (so the mouse can hover and click them as a person would)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gbx_browser_app import ARTIFACTS

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}

# Where the viewer draws each visible node, at zoom 1: the viewer's own modules (graph model,
# filters, layout) given the state the page started from (the graph's defaults and the URL).
# The graph page exposes no handle (no globals), so this mirrors graph-panel.js's sizing.
VISIBLE_NODES_JS = """async () => {
  const [{ buildModel, labelOf }, filters, { computeLayout }, url] = await Promise.all([
    import("/static/viewer/graph-model.js"), import("/static/viewer/filters.js"),
    import("/static/viewer/layout.js"), import("/static/viewer/url-state.js")]);
  const host = document.querySelector("[data-glassbox-viewer]");
  const model = buildModel(await (await fetch(host.dataset.graphUrl)).json());
  const state = {
    pinnedIds: [], supernodes: [], clerps: new Map(), clickedId: null, hideErrors: false,
    pruningThreshold: filters.defaultPruning(model),
    densityThreshold: null, densities: new Map(), serverLabels: new Map(),
    ...url.stateFromQParams(model, model.graph.qParams), ...url.stateFromUrl(model, location.search),
  };
  const visible = filters.computeVisible(model, state);
  const box = host.querySelector(".gbv-graph").getBoundingClientRect();
  const [width, height] = [Math.max(100, Math.floor(box.width)), Math.max(100, Math.floor(box.height))];
  const layout = computeLayout(model, visible, width, height);
  const canvas = host.querySelector(".gbv-canvas-top").getBoundingClientRect();
  return model.nodes.filter((n) => visible[n.index]).map((n) => ({
    id: n.id, kind: n.kind, layer: n.layer, featureIndex: n.featureIndex,
    x: canvas.left + layout.x[n.index], y: canvas.top + layout.y[n.index],
  }));
}"""


def wait_for_viewer(page: Any) -> None:
    page.wait_for_selector("[data-viewer-ready]", state="attached", timeout=30_000)


def visible_nodes(page: Any) -> list[dict[str, Any]]:
    """The viewer's visible nodes with their client coordinates (call before zooming)."""
    return page.evaluate(VISIBLE_NODES_JS)


def features_apart(nodes: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """`count` nodes of different features (labels belong to a feature, not to a node; one feature
    may have nodes at several positions), far enough apart that a click hits the one aimed at."""
    chosen: list[dict[str, Any]] = []
    for node in nodes:
        if node["kind"] != "feature":
            continue
        same = any((node["layer"], node["featureIndex"]) == (c["layer"], c["featureIndex"]) for c in chosen)
        if not same and all(abs(node["x"] - c["x"]) + abs(node["y"] - c["y"]) > 24 for c in chosen):
            chosen.append(node)
        if len(chosen) == count:
            return chosen
    raise AssertionError(f"fewer than {count} separate feature nodes are visible: {nodes}")


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot under test-artifacts/browser/ (gitignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
