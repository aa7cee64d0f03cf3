import assert from "node:assert/strict";
import { test } from "node:test";

import {
  changeDirection, editablePositions, interventionPayload, newItem, percent, selectedFeatures, signedPercent,
} from "../../frontend/static/viewer/interventions-panel.js";
import { baseState, smallModel } from "./helpers.mjs";

const model = smallModel();
const ids = (nodes) => nodes.map((n) => n.id);

test("the selection is the clicked node then the pinned ones, features only, once each", () => {
  assert.deepEqual(selectedFeatures(model, baseState()), []);
  const state = baseState({ clickedId: "2_301_5", pinnedIds: ["3_401_5", "2_301_5", "1_-1_5", "E_2_0", "5_25722_5"] });
  assert.deepEqual(ids(selectedFeatures(model, state)), ["2_301_5", "3_401_5"]);
  assert.deepEqual(ids(selectedFeatures(model, baseState({ clickedId: "1_-1_5" }))), []);
});

test("a new row ablates the feature at the node's own position", () => {
  const node = model.nodes[model.idToIndex.get("1_201_4")];
  assert.deepEqual(newItem(node), { nodeId: "1_201_4", layer: 1, featureIndex: 201, pos: 4, mode: "ablate", value: "0" });
});

test("a leading special token offers no position", () => {
  assert.deepEqual(editablePositions(model.promptTokens).map(([i]) => i), [1, 2, 3, 4, 5]);
  assert.deepEqual(editablePositions(["The", " cat"]), [[0, "The"], [1, " cat"]]);
  assert.deepEqual(editablePositions(["a", "<b>"]), [[0, "a"], [1, "<b>"]]); // only position 0 is special
});

test("the payload has numbers, ablations at 0 and a clamped length", () => {
  const rows = [
    { nodeId: "a", layer: 1, featureIndex: 2, pos: 3, mode: "ablate", value: "junk" },
    { nodeId: "b", layer: 4, featureIndex: 5, pos: null, mode: "set", value: " -1.5 " },
    { nodeId: "c", layer: 6, featureIndex: 7, pos: 1, mode: "scale", value: "2" },
  ];
  assert.deepEqual(interventionPayload(rows, { maxNewTokens: "9.6", constrained: "" }), {
    interventions: [
      { nodeId: "a", layer: 1, featureIndex: 2, pos: 3, mode: "ablate", value: 0 },
      { nodeId: "b", layer: 4, featureIndex: 5, pos: null, mode: "set", value: -1.5 },
      { nodeId: "c", layer: 6, featureIndex: 7, pos: 1, mode: "scale", value: 2 },
    ],
    maxNewTokens: 10,
    constrained: false,
  });
  assert.equal(interventionPayload(rows, { maxNewTokens: "0" }).maxNewTokens, 1);
  assert.equal(interventionPayload(rows, { maxNewTokens: "1e6" }).maxNewTokens, 64);
  assert.equal(interventionPayload(rows, { maxNewTokens: "" }).maxNewTokens, 1); // "" is 0: the least
  assert.equal(interventionPayload(rows, { maxNewTokens: "many" }).maxNewTokens, 20);
});

test("rows the server would refuse are refused here with a sentence", () => {
  assert.throws(() => interventionPayload([], { maxNewTokens: 5 }), { message: "Add at least one feature." });
  const set = { nodeId: "b", layer: 4, featureIndex: 5, pos: null, mode: "set", value: "" };
  assert.throws(() => interventionPayload([set], { maxNewTokens: 5 }), { message: "Give L4 #5 a number to set it to." });
  const scale = { ...set, mode: "scale", value: "x" };
  assert.throws(() => interventionPayload([scale], { maxNewTokens: 5 }), { message: "Give L4 #5 a number to scale it by." });
});

test("changes read as signed percentages; only changes of 0.1 points or more are highlighted", () => {
  assert.equal(percent(0.61234), "61.23%");
  assert.equal(signedPercent(-0.412), "\u221241.20%");
  assert.equal(signedPercent(0.0005), "+0.05%");
  assert.equal(signedPercent(0), "0.00%");
  assert.equal(changeDirection(0.001), "up");
  assert.equal(changeDirection(-0.25), "down");
  assert.equal(changeDirection(0.00099), null);
  assert.equal(changeDirection(Number.NaN), null);
});
