// The main graph: two stacked canvases (a base picture of every visible edge and node, and an
// overlay for hover, selection, pins and search hits), a hover card, zoom and pan, and
// keyboard navigation between nodes. Canvas keeps 50k edges cheap; the base is only redrawn
// when the visible set, the edge filter, the size, the zoom or the theme changes. Hovering a
// feature for HOVER_FETCH_MS fetches its dashboard for the card (actions.loadDashboard caches).
import d3 from "./d3.js";
import { el, replace } from "../lib/dom.js";
import { LABEL_FONT_SIZE, drawBase, drawOverlay, logitLabel, logitLabelLayout, screenRadius, sx, sy } from "./draw.js";
import { computeVisible, masksDiffer, visibleEdges } from "./filters.js";
import { layerName } from "./format.js";
import { labelOf } from "./graph-model.js";
import { buildHitGrid, nearestNode } from "./hit-grid.js";
import { computeLayout } from "./layout.js";
import { readPalette } from "./theme.js";
import { renderTooltip } from "./tooltip.js";

const VISIBILITY_KEYS = [
  "pruningThreshold", "densityThreshold", "hideErrors", "pinnedIds", "supernodes", "clickedId", "densities",
];
const OVERLAY_KEYS = ["hoveredId", "clickedId", "pinnedIds", "supernodes", "grouping", "focusedId", "searchMatches"];
const HOVER_FETCH_MS = 120;
const CARD_GAP = 14;

let panelCount = 0;

function describe(model, visible, edgeCount) {
  const shown = visible.reduce((a, b) => a + b, 0);
  const logits = model.nodes.filter((n) => n.kind === "logit").sort((a, b) => (b.prob ?? 0) - (a.prob ?? 0));
  const top = logits.slice(0, 3).map((n) => `"${n.token}" ${n.prob === null ? "" : `${(n.prob * 100).toFixed(1)}%`}`);
  return `Attribution graph: ${shown} of ${model.nodes.length} nodes shown, ${edgeCount} of ${model.edges.count} edges. `
    + `Top outputs: ${top.join(", ") || "none"}. Arrow keys move between nodes, Enter selects, ? lists shortcuts.`;
}

export function createGraphPanel({ store, model, actions, root, announce }) {
  panelCount += 1;
  const summaryId = `gbv-graph-summary-${panelCount}`;
  const base = el("canvas", { class: "gbv-canvas", "aria-hidden": "true" });
  const overlay = el("canvas", {
    class: "gbv-canvas gbv-canvas-top", tabIndex: 0, role: "application",
    "aria-roledescription": "attribution graph", "aria-label": "Attribution graph", "aria-describedby": summaryId,
  });
  const tooltip = el("div", { class: "gbv-tooltip", role: "tooltip", hidden: true });
  const summary = el("p", { class: "gbv-sr-only", id: summaryId });
  const element = el("section", { class: "gbv-graph", "aria-label": "Graph" }, base, overlay, tooltip, summary);

  let width = 0;
  let height = 0;
  let dpr = 1;
  let visible = computeVisible(model, store.snapshot());
  let edgeOrder = visibleEdges(model, visible, store.get("edgeThreshold"));
  let layout = null;
  let grid = null;
  let rows = null; // visible node indices per row, sorted by x (keyboard navigation)
  let transform = d3.zoomIdentity;
  let palette = null;
  let frame = 0;
  let baseDirty = true;
  let pointer = null; // last pointer position inside the panel, for the tooltip
  let labels = []; // logit label boxes in screen pixels (hover targets, tests)
  let logitRoom = null; // the widest output label plus a gap (px), measured once
  let hoverTimer = 0;
  const timings = { layoutMs: 0, baseMs: 0, overlayMs: 0, lastHover: null };

  const scene = () => ({ model, layout, visible, edgeOrder, palette, transform, width, height });
  const indexOf = (id) => (id === null || id === undefined ? -1 : model.idToIndex.get(id) ?? -1);

  function relayout() {
    const t0 = performance.now();
    layout = computeLayout(model, visible, width, height, { logitSpacing: logitSpacing() });
    grid = buildHitGrid(layout, visible);
    rows = null;
    timings.layoutMs = performance.now() - t0;
    summary.textContent = describe(model, visible, edgeOrder.length);
    schedule(true);
  }

  /** Room each output label needs (its widest label plus a gap), so logits spread to fit them. */
  function logitSpacing() {
    if (logitRoom === null && palette) {
      const ctx = base.getContext("2d");
      ctx.font = `${LABEL_FONT_SIZE}px ${palette.font}`;
      const widths = model.nodes.filter((n) => n.kind === "logit").map((n) => ctx.measureText(logitLabel(n)).width);
      logitRoom = Math.max(0, ...widths) + 10;
    }
    return logitRoom ?? 0;
  }

  function measureLabels() {
    const ctx = base.getContext("2d");
    ctx.font = `${LABEL_FONT_SIZE}px ${palette?.font ?? "sans-serif"}`;
    labels = layout ? logitLabelLayout(scene(), (text) => ctx.measureText(text).width) : [];
  }

  function publishCounts() {
    store.set({ shown: { nodes: visible.reduce((a, b) => a + b, 0), edges: edgeOrder.length } });
  }

  function resize() {
    const rect = element.getBoundingClientRect();
    const w = Math.max(100, Math.floor(rect.width));
    const h = Math.max(100, Math.floor(rect.height));
    const ratio = Math.min(2, globalThis.devicePixelRatio || 1);
    if (w === width && h === height && ratio === dpr && layout) return;
    [width, height, dpr] = [w, h, ratio];
    for (const canvas of [base, overlay]) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
      canvas.style.width = `${w}px`;
      canvas.style.height = `${h}px`;
    }
    zoom.extent([[0, 0], [w, h]]).translateExtent([[0, 0], [w, h]]);
    relayout();
  }

  function marks() {
    const state = store.snapshot();
    const members = state.supernodes.flatMap(([, ...ids]) => ids).map(indexOf);
    return {
      clicked: indexOf(state.clickedId),
      hovered: indexOf(state.hoveredId),
      focused: indexOf(state.focusedId),
      pinned: state.pinnedIds.map(indexOf),
      members,
      grouping: state.grouping.map(indexOf),
      matches: state.searchMatches.map(indexOf),
    };
  }

  function paint() {
    frame = 0;
    if (!layout || !palette) return;
    const current = scene();
    if (baseDirty) {
      const t0 = performance.now();
      const ctx = base.getContext("2d");
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      drawBase(ctx, current, { dim: store.get("clickedId") !== null });
      measureLabels();
      baseDirty = false;
      timings.baseMs = performance.now() - t0;
    }
    const t1 = performance.now();
    const ctx = overlay.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    drawOverlay(ctx, current, marks());
    const done = performance.now();
    timings.overlayMs = done - t1;
    if (timings.lastHover && timings.lastHover.painted === null) timings.lastHover.painted = done;
  }

  function schedule(full) {
    baseDirty = baseDirty || full;
    if (!frame) frame = requestAnimationFrame(paint);
  }

  function toWorld(event) {
    const rect = overlay.getBoundingClientRect();
    const px = event.clientX - rect.left;
    const py = event.clientY - rect.top;
    return { px, py, x: (px - transform.x) / transform.k, y: (py - transform.y) / transform.k };
  }

  /** The node under the pointer: a node within reach, else the logit whose label it is on. */
  function hit(event) {
    if (!grid) return -1;
    const point = toWorld(event);
    const index = nearestNode(grid, point.x, point.y, (screenRadius(scene()) + 5) / transform.k);
    if (index >= 0) return index;
    const label = labels.find((b) => point.px >= b.x0 && point.px <= b.x1 && point.py >= b.y0 && point.py <= b.y1);
    return label ? label.index : -1;
  }

  /** Put the card next to the pointer (or node), flipped and clamped so it stays in the panel. */
  function placeTooltip(at) {
    tooltip.style.left = "0px";
    tooltip.style.top = "0px";
    tooltip.style.maxWidth = `${Math.max(160, Math.min(380, width - 16))}px`;
    const w = tooltip.offsetWidth;
    const h = tooltip.offsetHeight;
    let left = at.px + CARD_GAP;
    if (left + w > width - 4) left = at.px - CARD_GAP - w;
    let top = at.py + CARD_GAP;
    if (top + h > height - 4) top = at.py - CARD_GAP - h;
    tooltip.style.left = `${Math.round(Math.max(4, Math.min(left, width - w - 4)))}px`;
    tooltip.style.top = `${Math.round(Math.max(4, Math.min(top, height - h - 4)))}px`;
  }

  function showTooltip() {
    const state = store.snapshot();
    const id = state.hoveredId ?? state.focusedId;
    const index = indexOf(id);
    if (index < 0 || !visible[index]) {
      tooltip.hidden = true;
      return;
    }
    const node = model.nodes[index];
    replace(tooltip, renderTooltip(model, node, labelOf(model, state, index), {
      dashboard: state.dashboards.get(node.id),
      withCard: node.kind === "feature" && actions.hasDashboards(),
      hasPage: actions.featurePageUrl(node.id) !== null,
    }));
    tooltip.hidden = false;
    placeTooltip(state.hoveredId && pointer ? pointer : { px: sx(scene(), index), py: sy(scene(), index) });
    if (timings.lastHover && timings.lastHover.tooltip === null) timings.lastHover.tooltip = performance.now();
  }

  /** Fetch the hovered (or focused) feature's dashboard once the pointer has rested on it. */
  function prefetchDashboard(state) {
    clearTimeout(hoverTimer);
    const id = state.hoveredId ?? state.focusedId;
    const index = indexOf(id);
    if (index < 0 || model.nodes[index].kind !== "feature" || !actions.hasDashboards()) return;
    hoverTimer = setTimeout(() => {
      const now = store.snapshot();
      if ((now.hoveredId ?? now.focusedId) === id) actions.loadDashboard(id);
    }, HOVER_FETCH_MS);
  }

  function onPointerMove(event) {
    const start = performance.now();
    const index = hit(event);
    const point = toWorld(event);
    pointer = { px: point.px, py: point.py };
    const id = index >= 0 ? model.nodes[index].id : null;
    overlay.style.cursor = index >= 0 ? "pointer" : "";
    if (id !== store.get("hoveredId")) {
      timings.lastHover = { start, id, tooltip: null, painted: null };
      store.set({ hoveredId: id });
    }
  }

  function activate(index, event) {
    const id = model.nodes[index].id;
    if (event.ctrlKey || event.metaKey) actions.togglePin(id);
    else if (store.get("groupingActive")) actions.toggleGrouping(id);
    else actions.clickNode(id);
  }

  function onClick(event) {
    const index = hit(event);
    if (index >= 0) activate(index, event);
    else if (!store.get("groupingActive") && !event.ctrlKey && !event.metaKey) actions.selectNode(null);
  }

  function rowsByX() {
    if (rows) return rows;
    rows = Array.from({ length: model.nRows }, () => []);
    for (const node of model.nodes) if (visible[node.index]) rows[node.row].push(node.index);
    for (const row of rows) row.sort((a, b) => layout.x[a] - layout.x[b]);
    return rows;
  }

  function firstFocus() {
    const logits = model.nodes.filter((n) => n.kind === "logit" && visible[n.index]);
    logits.sort((a, b) => (b.prob ?? 0) - (a.prob ?? 0));
    return logits[0]?.index ?? model.nodes.findIndex((n) => visible[n.index]);
  }

  function step(index, key) {
    const byRow = rowsByX();
    const node = model.nodes[index];
    const row = byRow[node.row];
    const at = row.indexOf(index);
    if (key === "ArrowLeft") return row[Math.max(0, at - 1)];
    if (key === "ArrowRight") return row[Math.min(row.length - 1, at + 1)];
    const dir = key === "ArrowUp" ? 1 : -1;
    for (let r = node.row + dir; r >= 0 && r < byRow.length; r += dir) {
      if (!byRow[r].length) continue;
      let best = byRow[r][0];
      for (const candidate of byRow[r]) {
        if (Math.abs(layout.x[candidate] - layout.x[index]) < Math.abs(layout.x[best] - layout.x[index])) best = candidate;
      }
      return best;
    }
    return index;
  }

  function focusNode(index) {
    if (index < 0) return;
    const node = model.nodes[index];
    store.set({ focusedId: node.id });
    announce(`${labelOf(model, store.snapshot(), index)}. ${layerName(model, node)}, position ${node.ctx}.`);
  }

  function onKeyDown(event) {
    const arrows = ["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown"];
    const focused = indexOf(store.get("focusedId"));
    if (arrows.includes(event.key)) {
      event.preventDefault();
      const current = focused >= 0 && visible[focused] ? focused : -1;
      focusNode(current < 0 ? firstFocus() : step(current, event.key));
    } else if ((event.key === "Enter" || event.key === " ") && focused >= 0) {
      event.preventDefault();
      activate(focused, event);
    }
  }

  function recomputeVisible() {
    const next = computeVisible(model, store.snapshot());
    if (!masksDiffer(next, visible)) return;
    visible = next;
    edgeOrder = visibleEdges(model, visible, store.get("edgeThreshold"));
    publishCounts();
    relayout();
    showTooltip();
  }

  function recomputeEdges() {
    edgeOrder = visibleEdges(model, visible, store.get("edgeThreshold"));
    publishCounts();
    summary.textContent = describe(model, visible, edgeOrder.length);
    schedule(true);
  }

  const zoom = d3.zoom().scaleExtent([1, 40]).on("zoom", (event) => {
    transform = event.transform;
    schedule(true);
    showTooltip();
  });
  d3.select(overlay).call(zoom).on("dblclick.zoom", null);
  overlay.addEventListener("pointermove", onPointerMove);
  overlay.addEventListener("pointerleave", () => store.set({ hoveredId: null }));
  overlay.addEventListener("click", onClick);
  overlay.addEventListener("keydown", onKeyDown);
  overlay.addEventListener("blur", () => store.set({ focusedId: null }));

  const unsubscribe = [
    store.on(VISIBILITY_KEYS, recomputeVisible),
    store.on(["edgeThreshold"], recomputeEdges),
    store.on(["hoveredId", "focusedId"], prefetchDashboard),
    store.on(["clickedId"], () => schedule(true)),
    store.on(OVERLAY_KEYS, () => schedule(false)),
    store.on(["hoveredId", "focusedId", "clerps", "serverLabels", "dashboards"], showTooltip),
    store.on(["theme"], () => {
      palette = readPalette(root);
      schedule(true);
    }),
  ];
  const observer = new ResizeObserver(() => resize());

  return {
    element,
    /** Size the canvases and paint synchronously; call once the element is in the document. */
    start() {
      palette = readPalette(root);
      publishCounts();
      resize();
      paint();
      observer.observe(element);
    },
    paintNow: paint,
    scene,
    marks,
    timings,
    focus: () => overlay.focus(),
    zoomBy: (factor) => zoom.scaleBy(d3.select(overlay), factor),
    resetZoom: () => zoom.transform(d3.select(overlay), d3.zoomIdentity),
    visibleIds: () => model.nodes.filter((n) => visible[n.index]).map((n) => n.id),
    visibleEdgeCount: () => edgeOrder.length,
    /** The output labels as drawn: [{id, text, full, x0, y0, x1, y1}] in client coordinates. */
    logitLabelBoxes() {
      const rect = overlay.getBoundingClientRect();
      return labels.map((b) => ({
        id: model.nodes[b.index].id, text: b.text, full: b.full,
        x0: rect.left + b.x0, x1: rect.left + b.x1, y0: rect.top + b.y0, y1: rect.top + b.y1,
      }));
    },
    /** Client (viewport) coordinates of a visible node, or null. */
    nodeScreenPosition(id) {
      const index = indexOf(id);
      if (index < 0 || !visible[index] || !layout) return null;
      const rect = overlay.getBoundingClientRect();
      return { x: rect.left + sx(scene(), index), y: rect.top + sy(scene(), index) };
    },
    destroy() {
      unsubscribe.forEach((off) => off());
      observer.disconnect();
      clearTimeout(hoverTimer);
      if (frame) cancelAnimationFrame(frame);
    },
  };
}
