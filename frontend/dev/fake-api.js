// An in-memory stand-in for the server's API, with the adapter shape mountGraphViewer expects.
// It records every call so browser tests can check what the viewer asked for.

/** What runInterventions answers: the shape of an intervention job's `result`. */
export const FAKE_INTERVENTION_RESULT = {
  rows: [
    { token: " Austin", token_id: 25722, prob_before: 0.612, prob_after: 0.201, delta: -0.411 },
    { token: " Texas", token_id: 9447, prob_before: 0.103, prob_after: 0.1035, delta: 0.0005 },
    { token: " Dallas", token_id: 31001, prob_before: 0.021, prob_after: 0.164, delta: 0.143 },
  ],
  continuation_before: { text: " Austin, the seat of Travis County." },
  continuation_after: { text: " Dallas, <b>a</b> city in the north." },
};

/**
 * features: node id -> feature details (or null); labels: node id -> saved label; failSave makes
 * label saves reject; delayMs holds every feature fetch back (to see the loading placeholder);
 * featurePages: "{model}/{transcoders}" feature pages are addressed under, as the server's are.
 */
export function createFakeApi({
  features = {}, labels = {}, failSave = false, interventionResult = FAKE_INTERVENTION_RESULT, delayMs = 0,
  featurePages = "dev-model/dev-transcoders",
} = {}) {
  const savedLabels = new Map(Object.entries(labels));
  const calls = [];
  const subgraphs = [];
  return {
    calls,
    savedLabels,
    subgraphs,
    async fetchFeatures(ids) {
      calls.push(["fetchFeatures", [...ids]]);
      if (delayMs) await new Promise((resolve) => setTimeout(resolve, delayMs));
      return Object.fromEntries(ids.map((id) => [id, Object.hasOwn(features, id) ? features[id] : null]));
    },
    featureUrl(id) {
      const match = /^(\d+)_(\d+)_(\d+)$/.exec(String(id));
      return match ? `/features/${featurePages}/${match[1]}/${match[2]}` : null;
    },
    async fetchLabels(ids) {
      calls.push(["fetchLabels", ids.length]);
      return Object.fromEntries(ids.filter((id) => savedLabels.has(id)).map((id) => [id, savedLabels.get(id)]));
    },
    async saveLabel(payload) {
      calls.push(["saveLabel", payload]);
      if (failSave) throw new Error("the fake server refused");
      savedLabels.set(payload.nodeId, payload.label);
      return { ok: true };
    },
    async saveSubgraph(payload) {
      calls.push(["saveSubgraph", payload]);
      subgraphs.push(payload);
      return { id: subgraphs.length };
    },
    async runInterventions(payload, { onProgress = () => {} } = {}) {
      calls.push(["runInterventions", payload]);
      onProgress({ status: "running", phase: "generating" });
      await new Promise((resolve) => setTimeout(resolve, 50));
      return interventionResult;
    },
  };
}
