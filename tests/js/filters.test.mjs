import assert from "node:assert/strict";
import { test } from "node:test";

import {
  NODE_BUDGET, computeVisible, defaultEdgeThreshold, defaultPruning, exportThreshold, keptIds, masksDiffer, visibleEdges,
} from "../../frontend/static/viewer/filters.js";
import { buildModel } from "../../frontend/static/viewer/graph-model.js";
import { baseState, smallModel, syntheticGraph } from "./helpers.mjs";

const model = smallModel();
const hidden = (state) => model.nodes.filter((n) => !computeVisible(model, state)[n.index]).map((n) => n.id);

test("the pruning threshold hides nodes whose influence is above it", () => {
  assert.deepEqual(hidden(baseState()), ["3_403_1", "2_-1_4"]); // influence 0.85 and 0.9
  assert.deepEqual(hidden(baseState({ pruningThreshold: 0.5 })), ["2_302_3", "3_402_5", "3_403_1", "2_-1_4"]);
  assert.deepEqual(hidden(baseState({ pruningThreshold: null })), []);
});

test("embeddings and logits always stay; so do pinned, grouped and clicked nodes", () => {
  const strict = { pruningThreshold: 0 };
  const always = hidden(baseState(strict));
  assert.ok(model.nodes.filter((n) => n.kind === "embedding" || n.kind === "logit").every((n) => !always.includes(n.id)));
  assert.ok(always.includes("3_403_1") && always.includes("2_301_5") && always.includes("1_201_4"));
  const kept = baseState({ ...strict, pinnedIds: ["3_403_1"], supernodes: [["g", "2_301_5"]], clickedId: "1_201_4" });
  assert.deepEqual([...keptIds(kept)].sort(), ["1_201_4", "2_301_5", "3_403_1"]);
  const shown = hidden(kept);
  assert.ok(!shown.includes("3_403_1") && !shown.includes("2_301_5") && !shown.includes("1_201_4"));
});

test("hideErrors hides error nodes unless they are kept", () => {
  assert.deepEqual(hidden(baseState({ hideErrors: true, pruningThreshold: null })), ["1_-1_5", "2_-1_4"]);
  assert.deepEqual(hidden(baseState({ hideErrors: true, pruningThreshold: null, pinnedIds: ["1_-1_5"] })), ["2_-1_4"]);
});

test("the density threshold uses dashboard densities, and keeps nodes without one", () => {
  const densities = new Map([["3_401_5", 0.4], ["2_301_5", 0.05]]);
  const state = baseState({ pruningThreshold: null, densityThreshold: 0.1, densities });
  assert.deepEqual(hidden(state), ["3_401_5"]);
});

test("masksDiffer compares visibility masks", () => {
  const a = Uint8Array.of(1, 0, 1);
  assert.equal(masksDiffer(a, Uint8Array.of(1, 0, 1)), false);
  assert.equal(masksDiffer(a, Uint8Array.of(1, 1, 1)), true);
  assert.equal(masksDiffer(a, Uint8Array.of(1, 0)), true);
  assert.equal(masksDiffer(null, a), true);
});

const big = buildModel(syntheticGraph());
const shownCount = (m, state) => computeVisible(m, state).reduce((a, b) => a + b, 0);

test("the export threshold hides nothing in an exported graph: why the default must prune further", () => {
  // every exported node's cumulative influence is at most the threshold it was exported with
  assert.equal(exportThreshold(big), 0.8);
  assert.equal(shownCount(big, baseState({ pruningThreshold: 0.8 })), big.nodes.length);
});

test("defaultPruning shows at most NODE_BUDGET nodes and is the largest such threshold", () => {
  const threshold = defaultPruning(big);
  assert.ok(threshold > 0 && threshold < 0.8, `threshold ${threshold}`);
  assert.ok(shownCount(big, baseState({ pruningThreshold: threshold })) <= NODE_BUDGET);
  assert.ok(shownCount(big, baseState({ pruningThreshold: threshold + 0.01 })) > NODE_BUDGET);
  for (const budget of [30, 60, 200]) {
    const t = defaultPruning(big, { budget });
    assert.ok(shownCount(big, baseState({ pruningThreshold: t })) <= budget, `budget ${budget}`);
  }
});

test("defaultPruning keeps the export threshold when the whole graph fits", () => {
  assert.equal(defaultPruning(model), 0.8);
  assert.equal(defaultPruning(model, { budget: 5 }), 0); // 8 tokens and logits always show
  assert.equal(defaultPruning(model, { budget: 12 }), 0.29); // the fifth prunable node has influence 0.3
});

test("visibleEdges lists edges between visible nodes, weakest |weight| first", () => {
  const visible = computeVisible(big, baseState({ pruningThreshold: defaultPruning(big) }));
  for (const threshold of [0.2, 0.5, 1]) {
    const ids = visibleEdges(big, visible, threshold);
    const { src, tgt, weight } = big.edges;
    for (let k = 0; k < ids.length; k += 1) {
      assert.ok(visible[src[ids[k]]] && visible[tgt[ids[k]]]);
      if (k) assert.ok(Math.abs(weight[ids[k - 1]]) <= Math.abs(weight[ids[k]]), "sorted by |weight|");
    }
  }
  let all = 0;
  for (let e = 0; e < big.edges.count; e += 1) all += visible[big.edges.src[e]] && visible[big.edges.tgt[e]] ? 1 : 0;
  assert.equal(visibleEdges(big, visible, 1).length, all);
  assert.equal(visibleEdges(big, visible, null).length, all);
});

test("the edge threshold keeps each node's strongest inputs covering that share, and one output", () => {
  const visible = computeVisible(big, baseState({ pruningThreshold: defaultPruning(big) }));
  const threshold = 0.4;
  const kept = new Set(visibleEdges(big, visible, threshold));
  const { src, tgt, weight } = big.edges;
  for (const node of big.nodes) {
    if (!visible[node.index]) continue;
    const inputs = [];
    const { offsets, edges } = big.incoming;
    for (let k = offsets[node.index]; k < offsets[node.index + 1]; k += 1) if (visible[src[edges[k]]]) inputs.push(edges[k]);
    const total = inputs.reduce((sum, e) => sum + Math.abs(weight[e]), 0);
    // the strongest inputs, up to the first that reaches the share, are all kept
    inputs.sort((a, b) => Math.abs(weight[b]) - Math.abs(weight[a]));
    let covered = 0;
    for (const e of inputs) {
      assert.ok(kept.has(e), `${node.id}: input ${e} (|w| ${Math.abs(weight[e])}) is among its strongest`);
      covered += Math.abs(weight[e]);
      if (covered >= threshold * total) break;
    }
    const outputs = [];
    for (let k = big.outgoing.offsets[node.index]; k < big.outgoing.offsets[node.index + 1]; k += 1) {
      if (visible[tgt[big.outgoing.edges[k]]]) outputs.push(big.outgoing.edges[k]);
    }
    if (outputs.length) assert.ok(outputs.some((e) => kept.has(e)), `${node.id} keeps an output`);
  }
});

test("raising the edge threshold shows more edges; the default keeps the picture sparse", () => {
  const visible = computeVisible(big, baseState({ pruningThreshold: defaultPruning(big) }));
  const counts = [0.1, 0.3, 0.6, 0.9, 1].map((t) => visibleEdges(big, visible, t).length);
  assert.deepEqual(counts, [...counts].sort((a, b) => a - b));
  assert.ok(counts[0] < counts[4]);
  const shown = visible.reduce((a, b) => a + b, 0);
  const threshold = defaultEdgeThreshold(big, visible);
  assert.ok(threshold >= 0.3 && threshold <= 1);
  const edges = visibleEdges(big, visible, threshold).length;
  assert.ok(edges <= 2.5 * shown || threshold === 0.3, `${edges} edges for ${shown} nodes`);
  assert.equal(defaultEdgeThreshold(model, computeVisible(model, baseState())), 1); // a small graph keeps every edge
});
