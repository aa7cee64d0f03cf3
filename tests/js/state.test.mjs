import assert from "node:assert/strict";
import { test } from "node:test";

import { DASHBOARD_CACHE, createActions } from "../../frontend/static/viewer/actions.js";
import { createStore } from "../../frontend/static/viewer/state.js";
import { baseState, smallModel } from "./helpers.mjs";

const tick = () => new Promise((resolve) => queueMicrotask(resolve));

test("the store batches changes into one callback per microtask", async () => {
  const store = createStore({ a: 1, b: 2, c: 3 });
  const seen = [];
  store.on(["a", "b"], (values, changed) => seen.push([[...changed].sort(), values.a, values.b]));
  store.set({ a: 10 });
  store.set({ b: 20, c: 30 });
  assert.deepEqual(seen, []); // not yet
  await tick();
  assert.deepEqual(seen, [[["a", "b", "c"], 10, 20]]);
  store.set({ c: 31 }); // nobody listens to c alone
  store.set({ a: 10 }); // unchanged: does not fire
  await tick();
  assert.equal(seen.length, 1);
});

test("unsubscribing stops callbacks; unknown keys throw", async () => {
  const store = createStore({ a: 1 });
  let calls = 0;
  const off = store.on(["a"], () => {
    calls += 1;
  });
  store.set({ a: 2 });
  store.flush();
  assert.equal(calls, 1);
  off();
  store.set({ a: 3 });
  await tick();
  assert.equal(calls, 1);
  assert.throws(() => store.set({ nope: 1 }), /unknown state key: nope/);
  assert.throws(() => store.on(["nope"], () => {}), /unknown state key: nope/);
  assert.deepEqual(store.snapshot(), { a: 3 });
});

function setup(api = {}) {
  const model = smallModel();
  const store = createStore({ ...baseState(), grouping: [], groupingActive: false, dialog: null, dashboards: new Map() });
  return { model, store, actions: createActions(store, model, api) };
}

test("clicking selects, clicking again clears; unknown ids are ignored", () => {
  const { store, actions } = setup();
  actions.clickNode("3_401_5");
  assert.equal(store.get("clickedId"), "3_401_5");
  actions.clickNode("3_401_5");
  assert.equal(store.get("clickedId"), null);
  actions.clickNode("nope");
  assert.equal(store.get("clickedId"), null);
});

test("grouping pins the members; unpinning takes a node out of its supernode", () => {
  const { store, actions } = setup();
  actions.togglePin("3_401_5");
  actions.createSupernode("  ", ["3_401_5", "2_301_5", "nope"]);
  assert.deepEqual(store.get("supernodes"), [["Group 1", "3_401_5", "2_301_5"]]);
  assert.deepEqual(store.get("pinnedIds"), ["3_401_5", "2_301_5"]);
  actions.togglePin("2_301_5");
  assert.deepEqual(store.get("supernodes"), [["Group 1", "3_401_5"]]);
  assert.deepEqual(store.get("pinnedIds"), ["3_401_5"]);
  actions.togglePin("3_401_5");
  assert.deepEqual(store.get("supernodes"), []); // no members left: the group goes
  assert.deepEqual(store.get("pinnedIds"), []);
});

test("saving a label shows it at once and sends Neuronpedia's feature key", async () => {
  const sent = [];
  const { model, store, actions } = setup({ saveLabel: async (payload) => sent.push(payload) });
  model.metadata.slug = "texas";
  assert.deepEqual(await actions.saveLabel("3_401_5", "capital"), { saved: true });
  assert.equal(store.get("clerps").get("3_401_5"), "capital");
  assert.deepEqual(sent, [{
    nodeId: "3_401_5", featureKey: "3_82211_5", layer: 3, featureIndex: 401, label: "capital", scan: "test-model", slug: "texas",
  }]);
  assert.deepEqual(await actions.saveLabel("3_401_5", ""), { saved: false, cleared: true });
  assert.equal(store.get("clerps").has("3_401_5"), false);
  assert.equal(sent.length, 1);
});

test("server labels are kept only for feature nodes with a non-empty label", async () => {
  const asked = [];
  const { model, store, actions } = setup({
    fetchLabels: async (ids) => {
      asked.push(...ids);
      return { "3_401_5": "shared", "2_301_5": "", "E_2_0": "not a feature" };
    },
  });
  await actions.loadServerLabels();
  assert.equal(asked.length, model.nodes.filter((n) => n.kind === "feature").length);
  assert.deepEqual([...store.get("serverLabels")], [["3_401_5", "shared"]]);
});

test("densities the server sends with the labels feed the density filter; a dashboard's stays", async () => {
  const { store, actions } = setup({
    fetchLabels: async () => ({}),
    fetchDensities: async () => new Map([["3_401_5", 0.2], ["2_301_5", Number.NaN], ["E_2_0", 0.5]]),
  });
  store.set({ densities: new Map([["1_201_5", 0.01]]) });
  await actions.loadServerLabels();
  assert.deepEqual([...store.get("densities")].sort(), [["1_201_5", 0.01], ["3_401_5", 0.2]]);
});

test("dashboards are fetched once, kept in a bounded cache, and failures are retried", async () => {
  const asked = [];
  let fail = true;
  const { store, actions } = setup({
    fetchFeatures: async ([id]) => {
      asked.push(id);
      if (id === "2_301_5" && fail) throw new Error("offline");
      return { [id]: { activation_frequency: 0.01, examples_quantiles: [] } };
    },
  });
  await actions.loadDashboard("3_401_5");
  await actions.loadDashboard("3_401_5");
  assert.deepEqual(asked, ["3_401_5"]);
  assert.equal(store.get("dashboards").get("3_401_5").status, "ready");
  assert.equal(store.get("densities").get("3_401_5"), 0.01); // the density filter learns it
  await actions.loadDashboard("2_301_5");
  assert.equal(store.get("dashboards").get("2_301_5").message, "offline");
  fail = false;
  await actions.loadDashboard("2_301_5");
  assert.equal(store.get("dashboards").get("2_301_5").status, "ready");
  store.set({ clickedId: "3_401_5" });
  for (let i = 0; i < DASHBOARD_CACHE + 10; i += 1) await actions.loadDashboard(`9_${i}_0`);
  const cached = store.get("dashboards");
  assert.equal(cached.size, DASHBOARD_CACHE);
  assert.ok(cached.has("3_401_5"), "the clicked node's dashboard stays");
  assert.ok(cached.has(`9_${DASHBOARD_CACHE + 9}_0`) && !cached.has("9_0_0"), "the oldest go first");
});

test("featurePageUrl asks the adapter, for feature nodes only", () => {
  assert.equal(setup().actions.featurePageUrl("3_401_5"), null); // no adapter member: no link
  const { actions } = setup({ featureUrl: (id) => `/features/m/t/${id}` });
  assert.equal(actions.featurePageUrl("3_401_5"), "/features/m/t/3_401_5");
  assert.equal(actions.featurePageUrl("1_-1_5"), null);
  assert.equal(actions.featurePageUrl("E_2_0"), null);
  assert.equal(actions.featurePageUrl("nope"), null);
});

test("a suggested subgraph pins its known nodes and groups and shows its note; clearing drops the note", () => {
  const model = smallModel();
  const store = createStore({ ...baseState(), grouping: ["3_401_5"], guide: null });
  const actions = createActions(store, model, {});
  const guide = { pinned_ids: ["3_401_5", "2_301_5", "nope", "3_401_5"], supernodes: [["pair", "3_401_5", "2_301_5", "nope"], ["gone", "nope"]], note: ["why"] };
  actions.showGuide(guide);
  assert.deepEqual(store.get("pinnedIds"), ["3_401_5", "2_301_5"]);
  assert.deepEqual(store.get("supernodes"), [["pair", "3_401_5", "2_301_5"]]);
  assert.deepEqual(store.get("grouping"), []);
  assert.equal(store.get("guide"), guide);
  actions.clearSubgraph();
  assert.deepEqual([store.get("pinnedIds"), store.get("supernodes"), store.get("guide")], [[], [], null]);
});
