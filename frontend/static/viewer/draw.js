// Canvas drawing shared by the graph panel and PNG export. A scene is
// {model, layout, visible, edgeOrder, palette, transform: {k, x, y}, width, height}; world
// coordinates come from layout.js and are mapped to screen pixels here, so line widths stay
// constant under zoom. `edgeOrder` (filters.visibleEdges) lists the edges to draw, weakest
// |weight| first, so the strongest edges lie on top whatever their sign.
// Text is drawn with fillText: labels never pass through HTML.
import { placeRowLabels } from "./label-layout.js";

export const EDGE_WIDTH = [0.5, 0.9, 1.6, 2.8];
export const EDGE_ALPHA = [0.22, 0.35, 0.55, 0.8];
const FONT_SIZE = 11;

export function screenRadius(scene) {
  return scene.layout.r * Math.min(4, Math.max(1, Math.sqrt(scene.transform.k)));
}

export function sx(scene, i) {
  return scene.layout.x[i] * scene.transform.k + scene.transform.x;
}

export function sy(scene, i) {
  return scene.layout.y[i] * scene.transform.k + scene.transform.y;
}

/** Quote a token so spaces and newlines stay visible: ` Austin` -> `" Austin"`. */
export function quoteToken(token, max = 16) {
  const quoted = JSON.stringify(String(token));
  return quoted.length > max + 2 ? `${quoted.slice(0, max)}…"` : quoted;
}

export function addShape(ctx, kind, x, y, r) {
  if (kind === "feature") {
    ctx.moveTo(x + r, y);
    ctx.arc(x, y, r, 0, Math.PI * 2);
  } else if (kind === "error") {
    const d = r * 1.25;
    ctx.moveTo(x, y - d);
    ctx.lineTo(x + d, y);
    ctx.lineTo(x, y + d);
    ctx.lineTo(x - d, y);
    ctx.closePath();
  } else {
    const d = kind === "logit" ? r * 1.3 : r * 1.05;
    ctx.rect(x - d, y - d, 2 * d, 2 * d);
  }
}

function drawGuides(ctx, scene) {
  const { layout, palette, transform, width } = scene;
  ctx.strokeStyle = palette.grid;
  ctx.lineWidth = 1;
  ctx.beginPath();
  for (const rowY of layout.rowY) {
    const y = Math.round(rowY * transform.k + transform.y) + 0.5;
    ctx.moveTo(0, y);
    ctx.lineTo(width, y);
  }
  for (const column of layout.columns.slice(1)) {
    const x = Math.round(column.x0 * transform.k + transform.x) + 0.5;
    ctx.moveTo(x, 0);
    ctx.lineTo(x, scene.height);
  }
  ctx.stroke();
}

/** Above this many edges, edges are stroked per (magnitude bin, sign) instead of in exact order. */
export const EXACT_ORDER_LIMIT = 4000;

function strokeEdges(ctx, scene, ids, code, dim) {
  const { palette } = scene;
  const { src, tgt } = scene.model.edges;
  const { k, x: tx, y: ty } = scene.transform;
  const { x, y } = scene.layout;
  ctx.beginPath();
  for (const e of ids) {
    ctx.moveTo(x[src[e]] * k + tx, y[src[e]] * k + ty);
    ctx.lineTo(x[tgt[e]] * k + tx, y[tgt[e]] * k + ty);
  }
  ctx.globalAlpha = EDGE_ALPHA[code & 3] * (dim ? 0.3 : 1);
  ctx.lineWidth = EDGE_WIDTH[code & 3];
  ctx.strokeStyle = code & 4 ? palette.neg : palette.pos;
  ctx.stroke();
}

/**
 * The scene's edges, weakest first so the strongest lie on top whatever their sign: runs of
 * consecutive edges with one (magnitude bin, sign) share a stroke. Past EXACT_ORDER_LIMIT edges
 * the order is kept per magnitude bin only (8 strokes in all), so zooming stays fluid.
 */
export function drawEdges(ctx, scene, { dim = false } = {}) {
  const { model, edgeOrder } = scene;
  const { code } = model.edges;
  if (edgeOrder.length > EXACT_ORDER_LIMIT) {
    for (let bucket = 0; bucket < 8; bucket += 1) {
      const run = (bucket >> 1) | (bucket & 1 ? 4 : 0); // bins ascending; positive, then negative
      const ids = edgeOrder.filter((e) => code[e] === run);
      if (ids.length) strokeEdges(ctx, scene, ids, run, dim);
    }
  } else {
    let start = 0;
    for (let i = 1; i <= edgeOrder.length; i += 1) {
      if (i === edgeOrder.length || code[edgeOrder[i]] !== code[edgeOrder[start]]) {
        strokeEdges(ctx, scene, edgeOrder.subarray(start, i), code[edgeOrder[start]], dim);
        start = i;
      }
    }
  }
  ctx.globalAlpha = 1;
}

export function drawNodes(ctx, scene) {
  const { model, visible, palette } = scene;
  const r = screenRadius(scene);
  for (const kind of ["error", "feature", "embedding", "logit"]) {
    ctx.beginPath();
    for (const node of model.nodes) {
      if (node.kind !== kind || !visible[node.index]) continue;
      addShape(ctx, kind, sx(scene, node.index), sy(scene, node.index), r);
    }
    ctx.fillStyle = palette[kind];
    ctx.fill();
    if (r >= 3) {
      ctx.lineWidth = 0.75;
      ctx.strokeStyle = palette.bg;
      ctx.stroke();
    }
  }
}

function drawTokenLabels(ctx, scene) {
  const { model, layout, palette, transform, height } = scene;
  ctx.fillStyle = palette.fg;
  ctx.font = `${FONT_SIZE}px ${palette.font}`;
  ctx.textBaseline = "middle";
  const baseY = height - 44;
  const narrowest = Math.min(...layout.columns.map((c) => (c.x1 - c.x0) * transform.k));
  const every = Math.max(1, Math.ceil(10 / Math.max(1, narrowest)));
  for (const column of layout.columns) {
    if (column.ctx % every !== 0 && column.ctx !== layout.columns.length - 1) continue;
    const x = column.center * transform.k + transform.x;
    if (x < -50 || x > scene.width + 50) continue;
    const text = quoteToken(model.promptTokens[column.ctx] ?? "", 12);
    ctx.save();
    ctx.translate(x, baseY);
    ctx.rotate(-Math.PI / 5);
    ctx.textAlign = "right";
    ctx.fillText(text, 0, 0);
    ctx.restore();
  }
}

function drawRowLabels(ctx, scene) {
  const { model, layout, palette, transform } = scene;
  const every = Math.max(1, Math.ceil(12 / Math.max(1, layout.rowH * transform.k)));
  ctx.fillStyle = palette.muted;
  ctx.font = `${FONT_SIZE - 1}px ${palette.font}`;
  ctx.textAlign = "left";
  ctx.textBaseline = "middle";
  model.rowLabels.forEach((label, row) => {
    const last = row === model.rowLabels.length - 1;
    if (row % every !== 0 && row !== 0 && !last) return;
    ctx.fillText(label, 4, layout.rowY[row] * transform.k + transform.y);
  });
}

export const LABEL_FONT_SIZE = FONT_SIZE;
const TIER_HEIGHT = FONT_SIZE + 4;

export function logitLabel(node) {
  const prob = node.prob === null ? "" : ` ${(node.prob * 100).toFixed(1)}%`;
  return `${quoteToken(node.token, 24)}${prob}`;
}

/**
 * Where the output labels go, in screen pixels: up to three rows above the logit nodes, packed
 * so no two labels overlap (shortened with "…" when a row is full; the tooltip has the full
 * text). Returns [{index, text, full, x0, x1, y (text middle), y0, y1, anchorX, anchorY}].
 */
export function logitLabelLayout(scene, measure) {
  const { model, visible } = scene;
  const r = screenRadius(scene);
  const logits = model.nodes.filter((node) => node.kind === "logit" && visible[node.index]);
  if (!logits.length) return [];
  const placed = placeRowLabels(
    logits.map((node) => ({ key: node.index, x: sx(scene, node.index), text: logitLabel(node) })),
    { left: 4, right: scene.width - 4, gap: 8, maxTiers: 3, measure },
  );
  return placed.map((label, i) => {
    const anchorY = sy(scene, logits[i].index) - r * 1.3;
    const y = anchorY - 9 - label.tier * TIER_HEIGHT;
    return { ...label, index: label.key, y, y0: y - FONT_SIZE / 2 - 1, y1: y + FONT_SIZE / 2 + 1, anchorY };
  });
}

/** Logit labels with a leader line from each label to its node when the label had to move. */
function drawLogitLabels(ctx, scene) {
  const { palette } = scene;
  ctx.font = `${FONT_SIZE}px ${palette.font}`;
  const labels = logitLabelLayout(scene, (text) => ctx.measureText(text).width);
  ctx.strokeStyle = palette.muted;
  ctx.lineWidth = 0.75;
  ctx.beginPath();
  for (const label of labels) {
    const x = Math.min(label.x1, Math.max(label.x0, label.anchorX));
    if (label.tier === 0 && x === label.anchorX) continue;
    ctx.moveTo(x, label.y1);
    ctx.lineTo(label.anchorX, label.anchorY);
  }
  ctx.stroke();
  ctx.fillStyle = palette.fg;
  ctx.textAlign = "left";
  ctx.textBaseline = "middle";
  for (const label of labels) if (label.text) ctx.fillText(label.text, label.x0, label.y);
}

/** The full static picture: guides, edges, nodes and axis labels. */
export function drawBase(ctx, scene, { dim = false } = {}) {
  ctx.fillStyle = scene.palette.bg;
  ctx.fillRect(0, 0, scene.width, scene.height);
  drawGuides(ctx, scene);
  drawEdges(ctx, scene, { dim });
  drawNodes(ctx, scene);
  drawRowLabels(ctx, scene);
  drawTokenLabels(ctx, scene);
  drawLogitLabels(ctx, scene);
}

export const DIM_ALPHA = 0.85; // how much a hover veils the rest of the graph
export const HOVER_EDGE_SHARE = 0.9; // a hovered node shows the inputs and outputs carrying this share
export const HOVER_EDGE_MAX = 24; // per direction

/**
 * The strongest edges between `index` and visible nodes, per direction: those that carry
 * HOVER_EDGE_SHARE of its visible |weight| in that direction, at most HOVER_EDGE_MAX each.
 */
export function nodeEdges(scene, index) {
  const { model, visible } = scene;
  const { src, tgt, weight } = model.edges;
  const list = [];
  for (const direction of ["incoming", "outgoing"]) {
    const { offsets, edges } = model[direction];
    const ends = direction === "incoming" ? src : tgt;
    let total = 0;
    for (let j = offsets[index]; j < offsets[index + 1]; j += 1) if (visible[ends[edges[j]]]) total += Math.abs(weight[edges[j]]);
    let covered = 0;
    let taken = 0;
    for (let j = offsets[index]; j < offsets[index + 1] && taken < HOVER_EDGE_MAX && covered < HOVER_EDGE_SHARE * total; j += 1) {
      const e = edges[j];
      if (!visible[ends[e]]) continue;
      list.push(e);
      covered += Math.abs(weight[e]);
      taken += 1;
    }
  }
  return list.sort((a, b) => Math.abs(weight[a]) - Math.abs(weight[b]));
}

/** A node's edges (nodeEdges), weakest first, width and alpha by |weight|. */
function drawNodeEdges(ctx, scene, index) {
  const { model, palette } = scene;
  const { src, tgt, weight } = model.edges;
  for (const e of nodeEdges(scene, index)) {
    const m = Math.min(1, Math.abs(weight[e]) / model.weightScale);
    ctx.beginPath();
    ctx.moveTo(sx(scene, src[e]), sy(scene, src[e]));
    ctx.lineTo(sx(scene, tgt[e]), sy(scene, tgt[e]));
    ctx.lineWidth = 1.2 + 3 * m;
    ctx.globalAlpha = 0.7 + 0.3 * m;
    ctx.strokeStyle = weight[e] < 0 ? palette.neg : palette.pos;
    ctx.stroke();
  }
  ctx.globalAlpha = 1;
}

/** The ends of the node's highlighted edges (and itself), redrawn at full strength. */
function drawNeighbourhood(ctx, scene, index) {
  const { model, palette } = scene;
  const { src, tgt } = model.edges;
  const ids = new Set([index]);
  for (const e of nodeEdges(scene, index)) ids.add(src[e]).add(tgt[e]);
  const r = screenRadius(scene);
  for (const i of ids) {
    const node = model.nodes[i];
    ctx.beginPath();
    addShape(ctx, node.kind, sx(scene, i), sy(scene, i), r);
    ctx.fillStyle = palette[node.kind];
    ctx.fill();
  }
}

function ring(ctx, scene, index, color, { width = 2, grow = 3, dash = null } = {}) {
  if (index < 0 || !scene.visible[index]) return;
  const r = screenRadius(scene) + grow;
  ctx.beginPath();
  ctx.arc(sx(scene, index), sy(scene, index), r, 0, Math.PI * 2);
  ctx.setLineDash(dash ?? []);
  ctx.lineWidth = width;
  ctx.strokeStyle = color;
  ctx.stroke();
  ctx.setLineDash([]);
}

/**
 * Everything that changes with the pointer or selection, drawn over the base picture.
 * marks: {clicked, hovered, focused: index|-1, pinned, members, grouping, matches: index[]}
 * A hovered (or keyboard-focused) node dims the rest of the graph and shows its strongest edges
 * and their ends on top.
 */
export function drawOverlay(ctx, scene, marks) {
  ctx.clearRect(0, 0, scene.width, scene.height);
  const { palette } = scene;
  const hovered = marks.hovered >= 0 && scene.visible[marks.hovered] ? marks.hovered : -1;
  const spot = hovered >= 0 ? hovered : marks.focused >= 0 && scene.visible[marks.focused] ? marks.focused : -1;
  if (spot >= 0) {
    ctx.globalAlpha = DIM_ALPHA;
    ctx.fillStyle = palette.bg;
    ctx.fillRect(0, 0, scene.width, scene.height);
    ctx.globalAlpha = 1;
    drawNodeEdges(ctx, scene, spot);
    drawNeighbourhood(ctx, scene, spot);
  } else if (marks.clicked >= 0) {
    drawNodeEdges(ctx, scene, marks.clicked);
  }
  for (const index of marks.matches) ring(ctx, scene, index, palette.search, { width: 1.5, grow: 4 });
  for (const index of marks.members) ring(ctx, scene, index, palette.supernode, { width: 1.5, grow: 2, dash: [2, 2] });
  for (const index of marks.pinned) ring(ctx, scene, index, palette.pinned, { width: 2, grow: 1.5 });
  for (const index of marks.grouping) ring(ctx, scene, index, palette.group, { width: 3, grow: 4 });
  ring(ctx, scene, marks.clicked, palette.clicked, { width: 3, grow: 3 });
  ring(ctx, scene, hovered, palette.hover, { width: 2, grow: 5 });
  ring(ctx, scene, marks.focused, palette.focus, { width: 2, grow: 7, dash: [3, 2] });
}
