// Which nodes and edges are shown.
//
// Nodes follow Neuronpedia's rules: embeddings, logits, pinned nodes, supernode members and the
// clicked node always stay; other nodes hide when their cumulative influence (the JSON
// `influence`: the share of all influence carried by the nodes ranked up to this one) is above
// the pruning threshold, their feature density above the density threshold, or when error
// nodes are hidden.
//
// Edges: each visible node keeps its strongest visible inputs that together carry
// `edgeThreshold` of its visible input |weight| (at least one), and its strongest visible
// output, so no shown node is left hanging. The result is in drawing order, weakest first.
//
// Defaults are computed from the graph itself: the exported JSON is already pruned at
// `metadata.node_threshold` (so every exported node sits below it and that threshold hides
// nothing); the default pruning is the largest threshold that shows at most NODE_BUDGET nodes,
// and the default edge threshold the largest that keeps about EDGES_PER_NODE edges per node.

export const NODE_BUDGET = 120;
export const EDGES_PER_NODE = 2.5;
export const MIN_EDGE_THRESHOLD = 0.3;
const STEP = 0.01;

const snap = (value) => Math.round(value / STEP) * STEP;
const round2 = (value) => Math.round(value * 100) / 100;

/** Ids that must stay visible whatever the thresholds say. */
export function keptIds(state) {
  const ids = new Set(state.pinnedIds);
  for (const [, ...members] of state.supernodes) members.forEach((id) => ids.add(id));
  if (state.clickedId) ids.add(state.clickedId);
  return ids;
}

function densityOf(node, state) {
  return state.densities.get(node.id) ?? node.density;
}

export function computeVisible(model, state) {
  const visible = new Uint8Array(model.nodes.length);
  const kept = keptIds(state);
  const { pruningThreshold, densityThreshold, hideErrors } = state;
  for (const node of model.nodes) {
    let show = true;
    if (node.kind === "embedding" || node.kind === "logit" || kept.has(node.id)) show = true;
    else if (hideErrors && node.kind === "error") show = false;
    else if (pruningThreshold !== null && node.influence !== null && node.influence > pruningThreshold) show = false;
    else if (densityThreshold !== null) {
      const density = densityOf(node, state);
      show = density === null || density === undefined || density <= densityThreshold;
    }
    visible[node.index] = show ? 1 : 0;
  }
  return visible;
}

/** The pruning threshold the graph was exported with (1 when it does not say). */
export function exportThreshold(model) {
  const threshold = model.metadata.node_threshold;
  return typeof threshold === "number" && threshold > 0 && threshold <= 1 ? threshold : 1;
}

/**
 * The largest pruning threshold (a multiple of 0.01, at most the export threshold) that shows at
 * most `budget` nodes. Embeddings, logits and nodes without an influence always show, so a
 * graph with more of those than the budget gets threshold 0.
 */
export function defaultPruning(model, { budget = NODE_BUDGET } = {}) {
  const ceiling = exportThreshold(model);
  const prunable = model.nodes
    .filter((n) => (n.kind === "feature" || n.kind === "error") && n.influence !== null)
    .map((n) => n.influence)
    .sort((a, b) => a - b);
  const room = budget - (model.nodes.length - prunable.length);
  const shownAt = (t) => prunable.filter((v) => v <= t).length;
  if (shownAt(ceiling) <= room) return ceiling;
  if (room <= 0) return 0;
  let threshold = round2(Math.floor(prunable[room] / STEP) * STEP);
  while (threshold > 0 && shownAt(threshold) > room) threshold = round2(threshold - STEP);
  return Math.max(0, Math.min(ceiling, threshold));
}

function keepStrongest(model, visible, target, threshold, keep) {
  const { offsets, edges } = model.incoming;
  const { src, weight } = model.edges;
  let total = 0;
  for (let k = offsets[target]; k < offsets[target + 1]; k += 1) {
    if (visible[src[edges[k]]]) total += Math.abs(weight[edges[k]]);
  }
  if (total === 0) return;
  let covered = 0;
  for (let k = offsets[target]; k < offsets[target + 1]; k += 1) {
    const e = edges[k];
    if (!visible[src[e]]) continue;
    keep[e] = 1;
    covered += Math.abs(weight[e]);
    if (covered >= threshold * total) return;
  }
}

function keepOneOutput(model, visible, source, keep) {
  const { offsets, edges } = model.outgoing;
  const { tgt } = model.edges;
  let first = -1;
  for (let k = offsets[source]; k < offsets[source + 1]; k += 1) {
    const e = edges[k];
    if (!visible[tgt[e]]) continue;
    if (keep[e]) return;
    if (first < 0) first = e;
  }
  if (first >= 0) keep[first] = 1;
}

/**
 * Edge ids to draw between visible nodes, weakest |weight| first (so the strongest are drawn
 * on top whatever their sign). `threshold` null or >= 1 keeps every edge between visible nodes.
 */
export function visibleEdges(model, visible, threshold) {
  const { count, src, tgt, weight } = model.edges;
  const keep = new Uint8Array(count);
  if (threshold === null || threshold === undefined || threshold >= 1) {
    for (let e = 0; e < count; e += 1) keep[e] = visible[src[e]] && visible[tgt[e]] ? 1 : 0;
  } else {
    for (let n = 0; n < visible.length; n += 1) if (visible[n]) keepStrongest(model, visible, n, threshold, keep);
    for (let n = 0; n < visible.length; n += 1) if (visible[n]) keepOneOutput(model, visible, n, keep);
  }
  const ids = [];
  for (let e = 0; e < count; e += 1) if (keep[e]) ids.push(e);
  ids.sort((a, b) => Math.abs(weight[a]) - Math.abs(weight[b]) || a - b);
  return Int32Array.from(ids);
}

/**
 * The largest edge threshold (a multiple of 0.01, at least MIN_EDGE_THRESHOLD) that keeps at
 * most `perNode` edges per visible node on average; 1 when every edge fits.
 */
export function defaultEdgeThreshold(model, visible, { perNode = EDGES_PER_NODE } = {}) {
  const shown = visible.reduce((a, b) => a + b, 0);
  const budget = Math.max(1, Math.round(perNode * shown));
  if (visibleEdges(model, visible, 1).length <= budget) return 1;
  let low = MIN_EDGE_THRESHOLD;
  let high = 1;
  if (visibleEdges(model, visible, low).length > budget) return low;
  while (high - low > STEP + 1e-9) {
    const mid = round2(snap((low + high) / 2));
    if (mid <= low || mid >= high) break;
    if (visibleEdges(model, visible, mid).length <= budget) low = mid;
    else high = mid;
  }
  return round2(low);
}

/** True when two visibility masks differ (the layout only changes then). */
export function masksDiffer(a, b) {
  if (!a || !b || a.length !== b.length) return true;
  for (let i = 0; i < a.length; i += 1) if (a[i] !== b[i]) return true;
  return false;
}
