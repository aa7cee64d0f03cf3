import assert from "node:assert/strict";
import { test } from "node:test";

import { createViewApi } from "../../frontend/static/pages/view-api.js";

/** A fetch stand-in answering every call with `answer` (status, body) and recording it. */
function fakeFetch(status, answer) {
  const calls = [];
  const impl = async (url, init) => {
    calls.push({ url, method: init.method, headers: init.headers, body: JSON.parse(init.body) });
    return new Response(JSON.stringify(answer), { status });
  };
  return { impl, calls };
}

test("without a features URL the adapter is empty: no dashboards, nothing to save or run", () => {
  assert.deepEqual(createViewApi(), {});
  assert.deepEqual(createViewApi({ featuresUrl: "" }), {});
});

test("dashboards and labels are POSTed lookups by node id, answered as Maps", async () => {
  const { impl, calls } = fakeFetch(200, { "1_2_3": { top_logits: [" a"] }, "E_5_1": null });
  const api = createViewApi({ featuresUrl: "/graph/g/features", fetchImpl: impl });
  assert.deepEqual(Object.keys(api).sort(), ["fetchFeatures", "fetchLabels"]);
  const dashboards = await api.fetchFeatures(["1_2_3", "E_5_1"]);
  assert.ok(dashboards instanceof Map);
  assert.deepEqual([...dashboards], [["1_2_3", { top_logits: [" a"] }], ["E_5_1", null]]);
  await api.fetchLabels(new Set(["1_2_3"]));
  assert.deepEqual(calls.map((c) => [c.method, c.url, c.body]), [
    ["POST", "/graph/g/features/dashboards", { node_ids: ["1_2_3", "E_5_1"] }],
    ["POST", "/graph/g/features/labels", { node_ids: ["1_2_3"] }],
  ]);
  assert.equal(calls[0].headers["X-CSRF-Token"], undefined);
});

test("a failed lookup rejects with the server's sentence", async () => {
  const { impl } = fakeFetch(400, { error: { message: "send node ids" } });
  const api = createViewApi({ featuresUrl: "/graph/g/features", fetchImpl: impl });
  await assert.rejects(api.fetchLabels(["1_2_3"]), /send node ids/);
});
