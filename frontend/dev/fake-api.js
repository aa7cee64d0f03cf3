// An in-memory stand-in for the server's API, with the adapter shape mountGraphViewer expects.
// It records every call so browser tests can check what the viewer asked for.

export function createFakeApi({ features = {}, labels = {}, failSave = false } = {}) {
  const savedLabels = new Map(Object.entries(labels));
  const calls = [];
  const subgraphs = [];
  return {
    calls,
    savedLabels,
    subgraphs,
    async fetchFeatures(ids) {
      calls.push(["fetchFeatures", [...ids]]);
      return Object.fromEntries(ids.map((id) => [id, Object.hasOwn(features, id) ? features[id] : null]));
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
  };
}
