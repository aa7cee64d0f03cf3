import assert from "node:assert/strict";
import { test } from "node:test";

import { ApiError, createClient, errorFrom, readCookie } from "../../frontend/static/lib/http.js";
import { createHttpApi, featureRef, interventionBody } from "../../frontend/static/viewer/http-api.js";

/** A fetch stand-in: answers each call with the next of `answers` ([status, body]) and records it. */
function fakeFetch(answers) {
  const calls = [];
  const impl = async (url, init) => {
    calls.push({ url, ...init, body: init.body === undefined ? undefined : JSON.parse(init.body) });
    const [status, body] = answers.shift();
    const text = typeof body === "string" ? body : JSON.stringify(body);
    return new Response(status === 204 ? null : text, { status, statusText: STATUS_TEXT[status] ?? "" });
  };
  return { impl, calls };
}
const STATUS_TEXT = { 200: "OK", 202: "Accepted", 204: "No Content", 401: "Unauthorized", 409: "Conflict", 500: "Internal Server Error" };
const COOKIES = () => "theme=dark; glassbox_csrf=tok%2F1; other=x=y";

test("readCookie finds one cookie in a cookie string", () => {
  assert.equal(readCookie("glassbox_csrf", COOKIES()), "tok/1");
  assert.equal(readCookie("other", COOKIES()), "x=y");
  assert.equal(readCookie("missing", COOKIES()), null);
  assert.equal(readCookie("glassbox_csrf", ""), null);
});

test("writes carry the CSRF token and a JSON body; reads carry neither", async () => {
  const { impl, calls } = fakeFetch([[200, { ok: 1 }], [200, [1]], [204, null]]);
  const request = createClient({ fetchImpl: impl, cookies: COOKIES, baseUrl: "http://h" });
  assert.deepEqual(await request("POST", "/api/x", { a: 1 }), { ok: 1 });
  assert.deepEqual(await request("GET", "/api/y"), [1]);
  assert.equal(await request("DELETE", "/api/z"), null);
  assert.equal(calls[0].url, "http://h/api/x");
  assert.deepEqual(calls[0].headers, { Accept: "application/json", "Content-Type": "application/json", "X-CSRF-Token": "tok/1" });
  assert.deepEqual(calls[0].body, { a: 1 });
  assert.equal(calls[0].credentials, "same-origin");
  assert.deepEqual(calls[1].headers, { Accept: "application/json" });
  assert.equal(calls[1].body, undefined);
  assert.deepEqual(calls[2].headers, { Accept: "application/json", "X-CSRF-Token": "tok/1" });
});

test("failures become ApiErrors with the server's sentence", async () => {
  const conflict = { error: { code: "conflict", message: "the label changed", details: { label_version: 4 } } };
  const { impl } = fakeFetch([[409, conflict], [500, "<html>oops</html>"], [401, { error: { message: "not signed in" } }]]);
  const request = createClient({ fetchImpl: impl, cookies: () => "" });
  await assert.rejects(request("PUT", "/a", {}), (error) => {
    assert.ok(error instanceof ApiError);
    assert.deepEqual([error.message, error.status, error.details], ["the label changed", 409, { label_version: 4 }]);
    return true;
  });
  await assert.rejects(request("GET", "/b"), { name: "ApiError", message: "500 Internal Server Error", status: 500 });
  await assert.rejects(request("GET", "/c"), { message: "not signed in — log in first", status: 401 });
  const plain = await errorFrom(new Response("", { status: 404 }));
  assert.equal(plain.message, "404");
});

test("featureRef reads (layer, index) from feature node ids only", () => {
  assert.deepEqual(featureRef("3_401_5"), { layer: 3, index: 401 });
  assert.equal(featureRef("1_-1_5"), null);
  assert.equal(featureRef("E_2_0"), null);
});

test("feature batches group node ids by feature and remember label versions", async () => {
  const feature = (layer, index, version) => ({ layer, index, label: null, auto_label: `f${index}`, label_version: version });
  const { impl, calls } = fakeFetch([
    [200, [feature(3, 401, 2), feature(1, 201, 0)]],
    [409, { error: { message: "changed", details: { label_version: 5 } } }],
    [200, { ...feature(3, 401, 6), label: "mine" }],
  ]);
  const api = createHttpApi({ model: "m/1", transcoders: "plt", fetchImpl: impl, cookies: COOKIES });
  const labels = await api.fetchLabels(["3_401_5", "3_401_2", "1_201_4", "E_2_0"]);
  assert.deepEqual([...labels], [["3_401_5", "f401"], ["3_401_2", "f401"], ["1_201_4", "f201"]]);
  assert.equal(calls[0].url, "/api/features/m%2F1/plt/batch");
  assert.deepEqual(calls[0].body, { features: [{ layer: 3, index: 401 }, { layer: 1, index: 201 }], include_dashboards: false });
  await assert.rejects(api.saveLabel({ nodeId: "3_401_5", label: "mine" }), { message: "changed" });
  assert.deepEqual(calls[1].body, { text: "mine", base_version: 2 });
  await api.saveLabel({ nodeId: "3_401_5", label: "mine" });
  assert.deepEqual(calls[2].body, { text: "mine", base_version: 5 }); // based on the version that won
  assert.equal(calls[2].method, "PUT");
  assert.equal(calls[2].url, "/api/features/m%2F1/plt/3/401/label");
});

test("feature densities come with the labels' batch; only features it did not bring are asked for", async () => {
  const feature = (layer, index, frequency) => ({ layer, index, label: null, auto_label: "x", label_version: 0, activation_frequency: frequency });
  const { impl, calls } = fakeFetch([[200, [feature(3, 401, 0.25), feature(1, 201, null)]], [200, [feature(2, 7, 0.5)]]]);
  const api = createHttpApi({ model: "m", transcoders: "t", fetchImpl: impl, cookies: COOKIES });
  await api.fetchLabels(["3_401_5", "1_201_4"]);
  const densities = await api.fetchDensities(["3_401_5", "3_401_2", "1_201_4", "2_7_1", "E_2_0"]);
  assert.deepEqual([...densities], [["3_401_5", 0.25], ["3_401_2", 0.25], ["2_7_1", 0.5]]);
  assert.equal(calls.length, 2); // 3_401_2 shares its feature with 3_401_5, which the batch brought
  assert.deepEqual(calls[1].body, { features: [{ layer: 2, index: 7 }], include_dashboards: false });
});

test("the adapter offers only what the graph supports", () => {
  assert.deepEqual(Object.keys(createHttpApi({})).sort(), []);
  assert.deepEqual(Object.keys(createHttpApi({ graphSlug: "g" })).sort(), ["saveSubgraph", "suggestSubgraph"]);
  assert.deepEqual(Object.keys(createHttpApi({ model: "m", transcoders: "t" })).sort(), ["featureUrl", "fetchDensities", "fetchFeatures", "fetchLabels", "saveLabel"]);
  assert.deepEqual(
    Object.keys(createHttpApi({ model: "m", transcoders: "t", graphSlug: "g" })).sort(),
    ["featureUrl", "fetchDensities", "fetchFeatures", "fetchLabels", "runInterventions", "saveLabel", "saveSubgraph", "suggestSubgraph"],
  );
});

test("featureUrl addresses the server's feature page of a feature node, as pages.feature_url does", () => {
  const api = createHttpApi({ model: "gemma/3 270m", transcoders: "plt-2k" });
  assert.equal(api.featureUrl("3_401_5"), "/features/gemma%2F3%20270m/plt-2k/3/401");
  assert.equal(api.featureUrl("3_-1_5"), null); // error nodes have no feature page
  assert.equal(api.featureUrl("E_9447_4"), null);
});

const PAYLOAD = {
  interventions: [{ nodeId: "3_401_5", layer: 3, featureIndex: 401, pos: null, mode: "scale", value: 2 }],
  maxNewTokens: 5,
  constrained: 1,
};

test("interventionBody speaks the server's field names", () => {
  assert.deepEqual(interventionBody(PAYLOAD), {
    interventions: [{ layer: 3, feature: 401, pos: null, mode: "scale", value: 2 }],
    max_new_tokens: 5,
    constrained: true,
  });
});

test("runInterventions queues the job and follows it to its result", async () => {
  const result = { rows: [], continuation_before: { text: "a" }, continuation_after: { text: "b" } };
  const { impl, calls } = fakeFetch([
    [202, { id: "j/1", status: "queued", phase: null }],
    [200, { id: "j/1", status: "running", phase: "generating" }],
    [200, { id: "j/1", status: "done", result }],
  ]);
  const api = createHttpApi({ model: "m", transcoders: "t", graphSlug: "my graph", fetchImpl: impl, cookies: COOKIES, pollMs: 0 });
  const progress = [];
  assert.deepEqual(await api.runInterventions(PAYLOAD, { onProgress: (p) => progress.push(p) }), result);
  assert.deepEqual(calls.map((c) => [c.method, c.url]), [
    ["POST", "/api/graphs/my%20graph/interventions"], ["GET", "/api/jobs/j%2F1"], ["GET", "/api/jobs/j%2F1"],
  ]);
  assert.equal(calls[0].headers["X-CSRF-Token"], "tok/1");
  assert.deepEqual(progress, [{ status: "queued", phase: null }, { status: "running", phase: "generating" }]);
});

test("runInterventions rejects with the job's error when it does not finish", async () => {
  const { impl } = fakeFetch([[202, { id: "j", status: "queued" }], [200, { id: "j", status: "failed", error: "out of memory" }]]);
  const api = createHttpApi({ model: "m", transcoders: "t", graphSlug: "g", fetchImpl: impl, cookies: COOKIES, pollMs: 0 });
  await assert.rejects(api.runInterventions(PAYLOAD), { message: "The job failed: out of memory" });
  const cancelled = fakeFetch([[202, { id: "j", status: "cancelled" }]]);
  const other = createHttpApi({ model: "m", transcoders: "t", graphSlug: "g", fetchImpl: cancelled.impl, cookies: COOKIES });
  await assert.rejects(other.runInterventions(PAYLOAD), { message: "The job cancelled" });
});

test("suggestSubgraph reads the graph's suggested subgraph", async () => {
  const guide = { pinned_ids: ["a"], supernodes: [], note: ["why"] };
  const { impl, calls } = fakeFetch([[200, guide]]);
  const api = createHttpApi({ graphSlug: "my graph", fetchImpl: impl, cookies: COOKIES });
  assert.deepEqual(await api.suggestSubgraph(), guide);
  assert.deepEqual(calls.map((c) => [c.method, c.url]), [["GET", "/api/graphs/my%20graph/suggested-subgraph"]]);
});
