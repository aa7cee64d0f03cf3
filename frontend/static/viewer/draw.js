// Canvas drawing shared by the graph panel and PNG export. A scene is
// {model, layout, visible, palette, transform: {k, x, y}, width, height}; world coordinates come
// from layout.js and are mapped to screen pixels here, so line widths stay constant under zoom.
// Text is drawn with fillText: labels never pass through HTML.

export const EDGE_WIDTH = [0.4, 0.8, 1.5, 2.6];
export const EDGE_ALPHA = [0.1, 0.22, 0.42, 0.7];
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

/** All visible edges, one path per (sign, magnitude bin): eight strokes for any graph size. */
export function drawEdges(ctx, scene, { dim = false } = {}) {
  const { model, visible, palette } = scene;
  const { src, tgt, code, count } = model.edges;
  const { k, x: tx, y: ty } = scene.transform;
  const { x, y } = scene.layout;
  for (let bucket = 0; bucket < 8; bucket += 1) {
    ctx.beginPath();
    let any = false;
    for (let e = 0; e < count; e += 1) {
      if (code[e] !== bucket) continue;
      const s = src[e];
      const t = tgt[e];
      if (!visible[s] || !visible[t]) continue;
      ctx.moveTo(x[s] * k + tx, y[s] * k + ty);
      ctx.lineTo(x[t] * k + tx, y[t] * k + ty);
      any = true;
    }
    if (!any) continue;
    const bin = bucket & 3;
    ctx.globalAlpha = EDGE_ALPHA[bin] * (dim ? 0.3 : 1);
    ctx.lineWidth = EDGE_WIDTH[bin];
    ctx.strokeStyle = bucket & 4 ? palette.neg : palette.pos;
    ctx.stroke();
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

export const LOGIT_ANGLE = Math.PI / 6;
const LOGIT_COS = Math.cos(LOGIT_ANGLE);

export function logitLabel(node) {
  const prob = node.prob === null ? "" : ` ${(node.prob * 100).toFixed(1)}%`;
  return `${quoteToken(node.token, 12)}${prob}`;
}

/** Logit nodes show their token and probability above them, slanted so neighbours fit. */
function drawLogitLabels(ctx, scene) {
  const { model, visible, palette } = scene;
  const r = screenRadius(scene);
  ctx.font = `${FONT_SIZE}px ${palette.font}`;
  ctx.fillStyle = palette.fg;
  ctx.textAlign = "left";
  ctx.textBaseline = "middle";
  const logits = model.nodes.filter((node) => node.kind === "logit" && visible[node.index]);
  // If any label would run off the right edge, all lean left instead: parallel labels never cross.
  const flip = logits.some((node) => sx(scene, node.index) + ctx.measureText(logitLabel(node)).width * LOGIT_COS > scene.width - 2);
  for (const node of logits) {
    const text = logitLabel(node);
    const x = sx(scene, node.index);
    ctx.save();
    ctx.translate(flip ? x + r : x - r, sy(scene, node.index) - r * 1.6);
    ctx.rotate(flip ? LOGIT_ANGLE : -LOGIT_ANGLE);
    ctx.textAlign = flip ? "right" : "left";
    ctx.fillText(text, 0, 0);
    ctx.restore();
  }
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

function drawNodeEdges(ctx, scene, index) {
  const { model, visible, palette } = scene;
  const { src, tgt, weight } = model.edges;
  for (const direction of ["incoming", "outgoing"]) {
    const { offsets, edges } = model[direction];
    for (let j = offsets[index]; j < offsets[index + 1]; j += 1) {
      const e = edges[j];
      if (!visible[src[e]] || !visible[tgt[e]]) continue;
      const m = Math.min(1, Math.abs(weight[e]) / model.weightScale);
      ctx.beginPath();
      ctx.moveTo(sx(scene, src[e]), sy(scene, src[e]));
      ctx.lineTo(sx(scene, tgt[e]), sy(scene, tgt[e]));
      ctx.lineWidth = 0.8 + 3.2 * m;
      ctx.globalAlpha = 0.35 + 0.6 * m;
      ctx.strokeStyle = weight[e] < 0 ? palette.neg : palette.pos;
      ctx.stroke();
    }
  }
  ctx.globalAlpha = 1;
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
 */
export function drawOverlay(ctx, scene, marks) {
  ctx.clearRect(0, 0, scene.width, scene.height);
  for (const index of [marks.clicked, marks.hovered]) if (index >= 0) drawNodeEdges(ctx, scene, index);
  const { palette } = scene;
  for (const index of marks.matches) ring(ctx, scene, index, palette.search, { width: 1.5, grow: 4 });
  for (const index of marks.members) ring(ctx, scene, index, palette.supernode, { width: 1.5, grow: 2, dash: [2, 2] });
  for (const index of marks.pinned) ring(ctx, scene, index, palette.pinned, { width: 2, grow: 1.5 });
  for (const index of marks.grouping) ring(ctx, scene, index, palette.group, { width: 3, grow: 4 });
  ring(ctx, scene, marks.clicked, palette.clicked, { width: 3, grow: 3 });
  ring(ctx, scene, marks.hovered, palette.hover, { width: 2, grow: 5 });
  ring(ctx, scene, marks.focused, palette.focus, { width: 2, grow: 7, dash: [3, 2] });
}
