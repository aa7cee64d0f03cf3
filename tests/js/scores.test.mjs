import assert from "node:assert/strict";
import { test } from "node:test";

import { buildModel } from "../../frontend/static/viewer/graph-model.js";
import { graphScores, influenceShares, linkInfluence, reportedScores, subgraphScores, topPredictions } from "../../frontend/static/viewer/scores.js";
import { smallModel } from "./helpers.mjs";

// token E -> feature F (weight 2), error R -> F (weight -2), F -> logit L (3), E -> L (1); p(L) = 1.
// Worked by hand with the engine's definitions (glassbox/graph/prune.py):
//   I(F) = 3/4, I(E) = 1/4 + 3/4 * 2/4 = 5/8, I(R) = 3/4 * 2/4 = 3/8
//   replacement = 5/8 / (5/8 + 3/8) = 0.625
//   completeness = (1*5/8 + (1 - 2/4)*3/4 + 1*3/8 + 1*1) / (5/8 + 3/4 + 3/8 + 1) = 2.375 / 2.75
const TINY = {
  metadata: { prompt_tokens: ["a"] },
  nodes: [
    { node_id: "E_1_0", feature_type: "embedding", layer: "E", ctx_idx: 0 },
    { node_id: "0_7_0", feature_type: "cross layer transcoder", layer: "0", ctx_idx: 0, influence: 0.3 },
    { node_id: "0_-1_0", feature_type: "mlp reconstruction error", layer: "0", ctx_idx: 0, influence: 0.6 },
    { node_id: "2_5_0", feature_type: "logit", layer: "2", ctx_idx: 0, token_prob: 1, clerp: 'Output "x" (p=1.000)' },
  ],
  links: [
    { source: "E_1_0", target: "0_7_0", weight: 2 },
    { source: "0_-1_0", target: "0_7_0", weight: -2 },
    { source: "0_7_0", target: "2_5_0", weight: 3 },
    { source: "E_1_0", target: "2_5_0", weight: 1 },
  ],
};
const tiny = buildModel(TINY);
const at = (values, id) => values[tiny.idToIndex.get(id)];

test("linkInfluence follows the links back from the logits, weighted by probability", () => {
  const { influence } = linkInfluence(tiny);
  assert.ok(Math.abs(at(influence, "0_7_0") - 0.75) < 1e-12);
  assert.ok(Math.abs(at(influence, "E_1_0") - 0.625) < 1e-12);
  assert.ok(Math.abs(at(influence, "0_-1_0") - 0.375) < 1e-12);
  assert.equal(at(influence, "2_5_0"), 0);
});

test("graphScores gives the engine's replacement and completeness for the file's links", () => {
  const { replacement, completeness } = graphScores(tiny);
  assert.ok(Math.abs(replacement - 0.625) < 1e-12);
  assert.ok(Math.abs(completeness - 2.375 / 2.75) < 1e-12);
});

test("influenceShares splits the influence between features, errors and tokens", () => {
  const shares = influenceShares(tiny);
  assert.ok(Math.abs(shares.features - 0.75 / 1.75) < 1e-12);
  assert.ok(Math.abs(shares.errors - 0.375 / 1.75) < 1e-12);
  assert.ok(Math.abs(shares.tokens - 0.625 / 1.75) < 1e-12);
  assert.ok(Math.abs(shares.features + shares.errors + shares.tokens - 1) < 1e-12);
});

test("subgraphScores count features left out of the subgraph as unexplained", () => {
  // Without F: the logit's input is 3/4 unexplained; I(E) = 1/4, I(F) = 3/4 (cut there).
  const out = subgraphScores(tiny, []);
  assert.ok(Math.abs(out.replacement - 0.25) < 1e-12);
  assert.ok(Math.abs(out.completeness - (0.25 * 1 + 0.75 + 0.25) / 2) < 1e-12);
  const all = subgraphScores(tiny, ["0_7_0"]);
  assert.deepEqual(all, graphScores(tiny)); // pinning every feature gives the graph's scores
  const small = smallModel();
  const pinned = ["3_401_5", "2_301_5", "1_201_4"];
  const some = subgraphScores(small, pinned);
  const more = subgraphScores(small, [...pinned, ...small.nodes.filter((n) => n.kind === "feature").map((n) => n.id)]);
  assert.ok(some.replacement < more.replacement && some.completeness < more.completeness);
});

test("reportedScores reads the engine's scores from metadata, and says when there are none", () => {
  assert.deepEqual(reportedScores({ glassbox: { replacement_score: 0.65, completeness_score: 0.9 } }), { replacement: 0.65, completeness: 0.9 });
  assert.deepEqual(reportedScores({ glassbox: { replacement_score: null, completeness_score: 0.9 } }), { replacement: null, completeness: 0.9 });
  assert.equal(reportedScores({}), null);
  assert.equal(reportedScores(undefined), null);
});

test("a cycle in the links is reported instead of looping forever", () => {
  const cyclic = buildModel({
    ...TINY,
    links: [...TINY.links, { source: "2_5_0", target: "0_7_0", weight: 1 }],
  });
  assert.throws(() => linkInfluence(cyclic), /cycle/);
});

test("the model's next tokens: the stored list when the JSON has one, else the logit nodes by probability", () => {
  const model = smallModel();
  assert.deepEqual(topPredictions(model), [{ token: " Austin", prob: 0.612 }, { token: " Texas", prob: 0.103 }]);
  assert.deepEqual(topPredictions(model, 1), [{ token: " Austin", prob: 0.612 }]);
  model.metadata.glassbox = { top_predictions: [{ token: " Austin", prob: 0.6 }, { token: 3 }, { token: " the", prob: 0.2 }] };
  assert.deepEqual(topPredictions(model), [{ token: " Austin", prob: 0.6 }, { token: " the", prob: 0.2 }]);
});
