import assert from "node:assert/strict";
import { test } from "node:test";

import { explanationOf } from "../../frontend/static/viewer/feature-card.js";
import { createHttpApi } from "../../frontend/static/viewer/http-api.js";

const EXPLANATION = {
  text: "fires on cat", score: 0.8, n_scored: 10, explainer_model: "fake-7b",
  prompt_version: "glassbox-explain-v1", created_at: "2026-11-27T10:00:00Z", requested_by: "ada",
};

/** A fetch stand-in answering every features batch with `features`, in the order asked. */
function batchFetch(features) {
  return async (url, init) => {
    const asked = JSON.parse(init.body).features;
    const body = asked.map(({ layer, index }) => ({ layer, index, ...features[`${layer}/${index}`] }));
    return new Response(JSON.stringify(body), { status: 200 });
  };
}

test("a node's label: a person's label, else the LLM explanation, else the auto label", async () => {
  const api = createHttpApi({
    model: "m", transcoders: "t", cookies: () => "",
    fetchImpl: batchFetch({
      "1/1": { label: "by a person", explanation: EXPLANATION, auto_label: "auto", label_version: 1 },
      "1/2": { label: null, explanation: EXPLANATION, auto_label: "auto", label_version: 0 },
      "1/3": { label: null, explanation: null, auto_label: "auto", label_version: 0 },
      "1/4": { label: null, explanation: null, auto_label: null, label_version: 0 },
    }),
  });
  const labels = await api.fetchLabels(["1_1_0", "1_2_0", "1_3_0", "1_4_0"]);
  assert.deepEqual([...labels], [["1_1_0", "by a person"], ["1_2_0", "fires on cat"], ["1_3_0", "auto"], ["1_4_0", null]]);
});

test("dashboards come with the feature's explanation for the card", async () => {
  const api = createHttpApi({
    model: "m", transcoders: "t", cookies: () => "",
    fetchImpl: batchFetch({
      "2/1": { dashboard: { top_logits: [" meow"] }, explanation: EXPLANATION },
      "2/2": { dashboard: { top_logits: [" woof"] }, explanation: null },
      "2/3": { dashboard: null, explanation: null },
    }),
  });
  const dashboards = await api.fetchFeatures(["2_1_0", "2_2_0", "2_3_0"]);
  assert.deepEqual(dashboards.get("2_1_0"), { top_logits: [" meow"], explanation: EXPLANATION });
  assert.equal(dashboards.get("2_2_0").explanation, null);
  assert.equal(dashboards.get("2_3_0"), null);
  assert.deepEqual(explanationOf(dashboards.get("2_1_0")), {
    text: "fires on cat", score: 0.8, nScored: 10, model: "fake-7b", promptVersion: "glassbox-explain-v1", date: "2026-11-27",
  });
  assert.equal(explanationOf(dashboards.get("2_2_0")), null);
});

test("explanationOf tolerates what a dashboard may hold", () => {
  assert.equal(explanationOf(null), null);
  assert.equal(explanationOf({ explanation: { text: "" } }), null);
  const unscored = explanationOf({ explanation: { text: "x", score: null, n_scored: 0 } });
  assert.equal(unscored.score, null);
  assert.equal(unscored.nScored, 0);
});
