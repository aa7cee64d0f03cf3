import assert from "node:assert/strict";
import { test } from "node:test";

import {
  buildModel, cantorUnpair, checkGraph, connections, labelOf, nodeKind,
} from "../../frontend/static/viewer/graph-model.js";
import { baseState, smallGraph, smallModel } from "./helpers.mjs";

test("nodeKind maps circuit-tracer's feature types to the four kinds", () => {
  assert.equal(nodeKind("cross layer transcoder"), "feature");
  assert.equal(nodeKind("mlp reconstruction error"), "error");
  assert.equal(nodeKind("Embedding"), "embedding");
  assert.equal(nodeKind("logit"), "logit");
  assert.equal(nodeKind(undefined), "feature");
});

test("cantorUnpair inverts the Cantor pairing of (layer, index)", () => {
  assert.deepEqual(cantorUnpair(5252), { layer: 0, index: 101 });
  assert.deepEqual(cantorUnpair(82211), { layer: 3, index: 401 });
  const pair = (layer, index) => ((layer + index) * (layer + index + 1)) / 2 + index;
  for (const [layer, index] of [[0, 0], [7, 0], [0, 9], [25, 16383]]) {
    assert.deepEqual(cantorUnpair(pair(layer, index)), { layer, index });
  }
});

test("buildModel reads nodes, rows, tokens and logits from the graph JSON", () => {
  const model = smallModel();
  assert.equal(model.nodes.length, 19);
  assert.equal(model.nPos, 6);
  assert.deepEqual(model.rowLabels, ["Emb", "L0", "L1", "L2", "L3", "Lgt"]);
  const node = (id) => model.nodes[model.idToIndex.get(id)];
  assert.deepEqual(
    [node("3_401_5").kind, node("3_401_5").layer, node("3_401_5").featureIndex, node("3_401_5").row, node("3_401_5").token],
    ["feature", 3, 401, 4, " is"],
  );
  assert.equal(node("E_9447_4").token, " Texas");
  assert.equal(node("E_9447_4").row, 0);
  const austin = node("5_25722_5");
  assert.deepEqual([austin.kind, austin.token, austin.prob, austin.row], ["logit", " Austin", 0.612, 5]);
  assert.equal(node("1_-1_5").featureKey, "1_-1_5_mlp__err_idx_1"); // Neuronpedia's error key
  assert.equal(node("3_401_5").featureKey, "3_82211_5");
  assert.equal(node("3_403_1").defaultLabel, "F#403"); // no clerp: the feature number
  assert.equal(model.keyToIndex.get("3_82211_5"), model.idToIndex.get("3_401_5"));
});

test("edges land in typed arrays with CSR indexes both ways", () => {
  const model = smallModel();
  const { edges } = model;
  assert.equal(edges.count, smallGraph().links.length);
  assert.equal(edges.skipped, 0);
  assert.ok(edges.src instanceof Int32Array && edges.weight instanceof Float32Array);
  assert.equal(model.incoming.offsets.at(-1), edges.count);
  assert.equal(model.outgoing.offsets.at(-1), edges.count);
  for (let n = 0; n < model.nodes.length; n += 1) {
    for (let k = model.incoming.offsets[n]; k < model.incoming.offsets[n + 1]; k += 1) {
      assert.equal(edges.tgt[model.incoming.edges[k]], n);
    }
    for (let k = model.outgoing.offsets[n]; k < model.outgoing.offsets[n + 1]; k += 1) {
      assert.equal(edges.src[model.outgoing.edges[k]], n);
    }
  }
});

test("links to unknown nodes or without a finite weight are skipped", () => {
  const graph = smallGraph();
  graph.links.push({ source: "3_401_5", target: "missing", weight: 1 }, { source: "3_401_5", target: "5_25722_5", weight: null });
  assert.equal(buildModel(graph).edges.skipped, 2);
});

test("connections lists a node's edges by |weight|, strongest first", () => {
  const model = smallModel();
  const index = model.idToIndex.get("3_401_5");
  const incoming = connections(model, index, "incoming");
  assert.ok(incoming.length > 1);
  const weights = incoming.map((c) => Math.abs(c.weight));
  assert.deepEqual(weights, [...weights].sort((a, b) => b - a));
  const expected = smallGraph().links.filter((l) => l.target === "3_401_5").map((l) => l.source).sort();
  assert.deepEqual(incoming.map((c) => model.nodes[c.other].id).sort(), expected);
});

test("labelOf prefers this view's label, then the server's, then the clerp", () => {
  const model = smallModel();
  const index = model.idToIndex.get("3_401_5");
  assert.equal(labelOf(model, baseState(), index), "say Austin");
  const server = baseState({ serverLabels: new Map([["3_401_5", "server"]]) });
  assert.equal(labelOf(model, server, index), "server");
  const local = { ...server, clerps: new Map([["3_401_5", "mine"]]) };
  assert.equal(labelOf(model, local, index), "mine");
});

test("checkGraph names what is missing", () => {
  assert.throws(() => checkGraph(null), /not an object/);
  assert.throws(() => checkGraph({ links: [] }), /no `nodes` array/);
  assert.throws(() => checkGraph({ nodes: [] }), /no `links` array/);
  assert.throws(() => checkGraph({ nodes: [{ node_id: 3 }], links: [] }), /string `node_id`/);
  assert.doesNotThrow(() => checkGraph(smallGraph()));
});

test("the CSR indexes list each node's edges strongest |weight| first", () => {
  const model = smallModel();
  for (const direction of ["incoming", "outgoing"]) {
    const { offsets, edges } = model[direction];
    for (let n = 0; n < model.nodes.length; n += 1) {
      const weights = Array.from(edges.subarray(offsets[n], offsets[n + 1]), (e) => Math.abs(model.edges.weight[e]));
      assert.deepEqual(weights, [...weights].sort((a, b) => b - a), `${direction} of ${model.nodes[n].id}`);
    }
  }
});
