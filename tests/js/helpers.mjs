// Shared by the viewer's unit tests: the small graph fixture and the viewer's default state.
import { readFileSync } from "node:fs";

import { buildModel } from "../../frontend/static/viewer/graph-model.js";

const FIXTURE = new URL("../frontend/fixtures/small_graph.json", import.meta.url);

/** A fresh copy of tests/frontend/fixtures/small_graph.json. */
export function smallGraph() {
  return JSON.parse(readFileSync(FIXTURE, "utf8"));
}

export function smallModel() {
  return buildModel(smallGraph());
}

/** The URL-carried and filter keys of the viewer's state, as index.js starts them. */
export function baseState(overrides = {}) {
  return {
    pinnedIds: [],
    supernodes: [],
    clerps: new Map(),
    pruningThreshold: 0.8,
    edgeThreshold: null,
    densityThreshold: null,
    clickedId: null,
    hideErrors: false,
    serverLabels: new Map(),
    densities: new Map(),
    ...overrides,
  };
}

/** A tiny deterministic random number generator (mulberry32), for property-style tests. */
export function seeded(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A graph as the engine exports them, sized like a featured graph: `nFeatures` features over
 * `nLayers` layers whose cumulative influence runs up to the export threshold (0.8), so the
 * export threshold alone hides nothing; `nPos` tokens, `nLogits` outputs, `perTarget` random
 * inputs per feature (4x per logit) from lower layers and earlier or equal positions.
 */
export function syntheticGraph({ nFeatures = 300, nLayers = 18, nPos = 9, nLogits = 10, perTarget = 20, seed = 1 } = {}) {
  const random = seeded(seed);
  const nodes = [];
  for (let pos = 0; pos < nPos; pos += 1) {
    nodes.push({ node_id: `E_${100 + pos}_${pos}`, feature_type: "embedding", layer: "E", ctx_idx: pos, feature: pos, influence: 0.05 + 0.1 * random(), clerp: "" });
  }
  for (let i = 0; i < nFeatures; i += 1) {
    const layer = Math.floor(random() * nLayers);
    nodes.push({
      node_id: `${layer}_${i}_${Math.floor(random() * nPos)}`, feature_type: "cross layer transcoder", layer: String(layer),
      ctx_idx: Math.floor(random() * nPos), influence: 0.8 * ((i + 1) / nFeatures), activation: 1, clerp: "",
    });
    nodes[nodes.length - 1].ctx_idx = Number(nodes[nodes.length - 1].node_id.split("_")[2]);
  }
  for (let i = 0; i < nLogits; i += 1) {
    nodes.push({ node_id: `${nLayers + 1}_${2000 + i}_${nPos - 1}`, feature_type: "logit", layer: String(nLayers + 1), ctx_idx: nPos - 1,
      token_prob: 0.5 / (i + 1), clerp: `Output " token number ${i}" (p=${(0.5 / (i + 1)).toFixed(3)})` });
  }
  const row = (n) => (n.feature_type === "embedding" ? -1 : n.feature_type === "logit" ? nLayers : Number(n.layer));
  const links = [];
  for (const target of nodes) {
    if (target.feature_type === "embedding") continue;
    const sources = nodes.filter((s) => row(s) < row(target) && s.ctx_idx <= target.ctx_idx);
    const count = Math.min(sources.length, perTarget * (target.feature_type === "logit" ? 4 : 1));
    for (let k = 0; k < count; k += 1) {
      const source = sources[Math.floor(random() * sources.length)];
      const weight = (random() < 0.7 ? 1 : -1) * Math.exp(-3 * random()) * 2;
      links.push({ source: source.node_id, target: target.node_id, weight });
    }
  }
  return {
    metadata: { slug: "synthetic", prompt_tokens: Array.from({ length: nPos }, (_, i) => `t${i}`), node_threshold: 0.8 },
    nodes,
    links,
  };
}
