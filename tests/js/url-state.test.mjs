import assert from "node:assert/strict";
import { test } from "node:test";

import {
  cleanClerps, cleanSupernodes, shareUrl, stateFromQParams, stateFromUrl, writeUrlState,
} from "../../frontend/static/viewer/url-state.js";
import { baseState, smallModel } from "./helpers.mjs";

const model = smallModel();

test("stateFromUrl reads Neuronpedia's parameters and drops what the graph lacks", () => {
  const search = new URLSearchParams({
    pinnedIds: "3_401_5,nope,2_301_5,3_401_5",
    clickedId: "2_301_5",
    supernodes: JSON.stringify([["capital", "2_301_5", "gone"], ["empty", "gone"]]),
    clerps: JSON.stringify([["3_82211_5", "by feature key"], ["1_201_4", "by node id"], ["x_1_2", "unknown"]]),
    pruningThreshold: "1.7",
    edgeThreshold: "0.35",
    densityThreshold: "0.25",
    hideErrors: "1",
  }).toString();
  const state = stateFromUrl(model, `?${search}`);
  assert.deepEqual(state.pinnedIds, ["3_401_5", "2_301_5"]);
  assert.equal(state.clickedId, "2_301_5");
  assert.deepEqual(state.supernodes, [["capital", "2_301_5"]]);
  assert.deepEqual([...state.clerps], [["3_401_5", "by feature key"], ["1_201_4", "by node id"]]);
  assert.equal(state.pruningThreshold, 1); // clamped to [0, 1]
  assert.equal(state.edgeThreshold, 0.35);
  assert.equal(state.densityThreshold, 0.25);
  assert.equal(state.hideErrors, true);
});

test("stateFromUrl ignores values it cannot use", () => {
  const state = stateFromUrl(model, "?clickedId=nope&pruningThreshold=abc&densityThreshold=&supernodes=%5Bbroken&hideErrors=0");
  assert.deepEqual(state, { supernodes: [], hideErrors: false });
  assert.deepEqual(stateFromUrl(model, ""), {});
});

test("cleanSupernodes and cleanClerps accept only well-formed entries", () => {
  assert.deepEqual(cleanSupernodes(model, "not a list"), []);
  assert.deepEqual(cleanSupernodes(model, [[7, "3_401_5"], ["solo"]]), [["7", "3_401_5"]]);
  assert.deepEqual([...cleanClerps(model, [["3_401_5", 5], ["3_401_5"], "x", ["3_401_5", "ok"]])], [["3_401_5", "ok"]]);
});

test("stateFromQParams reads the view circuit-tracer saves in the graph", () => {
  assert.deepEqual(stateFromQParams(model, { pinnedIds: "3_401_5,zzz", clickedId: "1_201_4", supernodes: [] }), {
    pinnedIds: ["3_401_5"], clickedId: "1_201_4", supernodes: [],
  });
  assert.deepEqual(stateFromQParams(model, { pinnedIds: ["2_301_5"], clickedId: "" }), { pinnedIds: ["2_301_5"] });
  assert.deepEqual(stateFromQParams(model, null), {});
});

test("writeUrlState writes the view, keeps other parameters and drops defaults", () => {
  const state = baseState({
    pinnedIds: ["3_401_5", "2_301_5"],
    supernodes: [["group", "3_401_5"]],
    clerps: new Map([["3_401_5", "label"]]),
    clickedId: "2_301_5",
    densityThreshold: 0.5,
    hideErrors: true,
  });
  const url = writeUrlState(new URL("http://x/graph/a?graph=g.json&clickedId=old"), model, state);
  const params = url.searchParams;
  assert.equal(params.get("graph"), "g.json");
  assert.equal(params.get("pinnedIds"), "3_401_5,2_301_5");
  assert.equal(params.get("supernodes"), '[["group","3_401_5"]]');
  assert.equal(params.get("clerps"), '[["3_82211_5","label"]]'); // keyed by Neuronpedia's feature id
  assert.equal(params.get("clickedId"), "2_301_5");
  assert.equal(params.get("pruningThreshold"), "0.8");
  assert.equal(params.get("densityThreshold"), "0.5");
  assert.equal(params.get("hideErrors"), "1");

  const cleared = writeUrlState(url, model, baseState({ pruningThreshold: null }));
  assert.equal(cleared.search, "?graph=g.json");
});

test("a share URL reads back as the same view", () => {
  const state = baseState({
    pinnedIds: ["1_201_4"], supernodes: [["g", "1_201_4", "0_101_4"]], clerps: new Map([["1_-1_5", "err"]]),
    clickedId: "3_401_5", pruningThreshold: 0.55, edgeThreshold: 0.4, hideErrors: true,
  });
  const back = stateFromUrl(model, new URL(shareUrl("http://x/g", model, state)).search);
  assert.deepEqual(back, {
    pinnedIds: ["1_201_4"], supernodes: [["g", "1_201_4", "0_101_4"]], clerps: new Map([["1_-1_5", "err"]]),
    clickedId: "3_401_5", pruningThreshold: 0.55, edgeThreshold: 0.4, hideErrors: true,
  });
});
