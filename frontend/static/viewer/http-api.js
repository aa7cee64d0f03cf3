// The api adapter for the Glassbox server (server/routes): feature dashboards and labels by
// (model, transcoder set, layer, index), label edits with optimistic versions, saved subgraphs.
// Writes send the session's CSRF token (a readable cookie) in X-CSRF-Token.

const BATCH_LIMIT = 1000;

/** (layer, index) of a feature node id "{layer}_{index}_{pos}"; null for other nodes. */
export function featureRef(nodeId) {
  const match = /^(\d+)_(\d+)_(\d+)$/.exec(String(nodeId));
  return match ? { layer: Number(match[1]), index: Number(match[2]) } : null;
}

function readCookie(doc, name) {
  for (const part of (doc?.cookie ?? "").split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return null;
}

/** Error with the server's `{"error": {"message": ...}}` sentence when there is one. */
async function failure(response) {
  let message = `${response.status} ${response.statusText}`;
  let details = null;
  try {
    const body = await response.json();
    if (body?.error?.message) message = body.error.message;
    details = body?.error?.details ?? null;
  } catch {
    // not JSON: keep the status line
  }
  const error = new Error(message);
  error.status = response.status;
  error.details = details;
  return error;
}

export function createHttpApi({
  model, transcoders, graphSlug = null, baseUrl = "", csrfCookie = "glassbox_csrf",
  fetchImpl = globalThis.fetch.bind(globalThis), doc = globalThis.document,
} = {}) {
  const versions = new Map(); // "layer/index" -> label_version last seen
  const hasFeatures = Boolean(model && transcoders);
  const featureBase = hasFeatures ? `${baseUrl}/api/features/${encodeURIComponent(model)}/${encodeURIComponent(transcoders)}` : null;

  async function request(method, url, body) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET") {
      const token = readCookie(doc, csrfCookie);
      if (token) headers["X-CSRF-Token"] = token;
    }
    const response = await fetchImpl(url, {
      method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!response.ok) throw await failure(response);
    return response.status === 204 ? null : response.json();
  }

  /** Features for node ids, in batches the server accepts; returns node id -> FeaturePublic. */
  async function batch(nodeIds, includeDashboards) {
    const byKey = new Map();
    for (const id of nodeIds) {
      const ref = featureRef(id);
      if (!ref) continue;
      const key = `${ref.layer}/${ref.index}`;
      if (!byKey.has(key)) byKey.set(key, { ref, ids: [] });
      byKey.get(key).ids.push(id);
    }
    const groups = [...byKey.values()];
    const result = new Map();
    for (let start = 0; start < groups.length; start += BATCH_LIMIT) {
      const chunk = groups.slice(start, start + BATCH_LIMIT);
      const features = await request("POST", `${featureBase}/batch`, {
        features: chunk.map((g) => g.ref), include_dashboards: includeDashboards,
      });
      features.forEach((feature, i) => {
        versions.set(`${feature.layer}/${feature.index}`, feature.label_version);
        for (const id of chunk[i].ids) result.set(id, feature);
      });
    }
    return result;
  }

  const api = {
    async fetchFeatures(nodeIds) {
      const features = await batch(nodeIds, true);
      return new Map([...features].map(([id, f]) => [id, f.dashboard ?? null]));
    },
    async fetchLabels(nodeIds) {
      const features = await batch(nodeIds, false);
      return new Map([...features].map(([id, f]) => [id, f.label ?? f.auto_label ?? null]));
    },
    async saveLabel({ nodeId, label }) {
      const ref = featureRef(nodeId);
      if (!ref) throw new Error("only feature nodes have labels on the server");
      const key = `${ref.layer}/${ref.index}`;
      try {
        const feature = await request("PUT", `${featureBase}/${ref.layer}/${ref.index}/label`, {
          text: label, base_version: versions.get(key) ?? 0,
        });
        versions.set(key, feature.label_version);
        return feature;
      } catch (error) {
        // 409: someone saved meanwhile; the next save is based on their version.
        const current = error.details?.label_version;
        if (error.status === 409 && typeof current === "number") versions.set(key, current);
        throw error;
      }
    },
  };
  if (!hasFeatures) {
    delete api.fetchFeatures;
    delete api.fetchLabels;
    delete api.saveLabel;
  }
  if (graphSlug) {
    api.saveSubgraph = ({ name, pinnedIds, supernodes, labelOverrides, pruningThreshold, densityThreshold }) =>
      request("POST", `${baseUrl}/api/graphs/${encodeURIComponent(graphSlug)}/subgraphs`, {
        title: name,
        pinned_ids: pinnedIds,
        supernodes,
        label_overrides: labelOverrides,
        pruning_threshold: pruningThreshold,
        density_threshold: densityThreshold,
      });
  }
  return api;
}
