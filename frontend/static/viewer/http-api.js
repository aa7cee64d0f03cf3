// The api adapter for the Glassbox server (server/routes): feature dashboards and labels by
// (model, transcoder set, layer, index), label edits with optimistic versions, saved and
// suggested subgraphs, and interventions on the graph's prompt (a job, followed until it ends).
// Requests go through lib/http.js, which sends the session's CSRF token and turns error bodies
// into messages.
import { CSRF_COOKIE, createClient } from "../lib/http.js";

const BATCH_LIMIT = 1000;
const POLL_MS = 500;
const RUNNING = new Set(["queued", "running"]);

/** (layer, index) of a feature node id "{layer}_{index}_{pos}"; null for other nodes. */
export function featureRef(nodeId) {
  const match = /^(\d+)_(\d+)_(\d+)$/.exec(String(nodeId));
  return match ? { layer: Number(match[1]), index: Number(match[2]) } : null;
}

/** The body of POST /api/graphs/{slug}/interventions for the viewer's payload. */
export function interventionBody({ interventions, maxNewTokens, constrained }) {
  return {
    interventions: interventions.map(({ layer, featureIndex, pos, mode, value }) => ({
      layer, feature: featureIndex, pos, mode, value,
    })),
    max_new_tokens: maxNewTokens,
    constrained: Boolean(constrained),
  };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The adapter for one graph page. Without `model` and `transcoders` (imported graphs) there are
 * no dashboards, server labels or interventions; without `graphSlug` no subgraph saves.
 * `fetchImpl`, `cookies` and `pollMs` are for tests.
 */
export function createHttpApi({
  model = null, transcoders = null, graphSlug = null, baseUrl = "", csrfCookie = CSRF_COOKIE,
  fetchImpl = undefined, cookies = undefined, pollMs = POLL_MS,
} = {}) {
  const request = createClient({ baseUrl, csrfCookie, fetchImpl, cookies });
  const versions = new Map(); // "layer/index" -> label_version last seen
  const densities = new Map(); // "layer/index" -> activation_frequency (null: the server has none)
  const featureKey = (id) => {
    const ref = featureRef(id);
    return ref ? `${ref.layer}/${ref.index}` : null;
  };
  const hasFeatures = Boolean(model && transcoders);
  const featureBase = hasFeatures ? `/api/features/${encodeURIComponent(model)}/${encodeURIComponent(transcoders)}` : null;
  const graphBase = graphSlug ? `/api/graphs/${encodeURIComponent(graphSlug)}` : null;

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
        densities.set(`${feature.layer}/${feature.index}`, typeof feature.activation_frequency === "number" ? feature.activation_frequency : null);
        for (const id of chunk[i].ids) result.set(id, feature);
      });
    }
    return result;
  }

  async function saveLabel({ nodeId, label }) {
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
  }

  /** Queue the interventions and follow the job; resolves to its result, rejects if it fails. */
  async function runInterventions(payload, { onProgress = () => {} } = {}) {
    let job = await request("POST", `${graphBase}/interventions`, interventionBody(payload));
    while (RUNNING.has(job.status)) {
      onProgress({ status: job.status, phase: job.phase ?? null });
      await sleep(pollMs);
      job = await request("GET", `/api/jobs/${encodeURIComponent(job.id)}`);
    }
    if (job.status !== "done") throw new Error(`The job ${job.status}${job.error ? `: ${job.error}` : ""}`);
    return job.result;
  }

  const api = {};
  if (hasFeatures) {
    /** The server's feature page (server/routes/pages.py feature_url) of a feature node id. */
    api.featureUrl = (nodeId) => {
      const ref = featureRef(nodeId);
      return ref ? `/features/${encodeURIComponent(model)}/${encodeURIComponent(transcoders)}/${ref.layer}/${ref.index}` : null;
    };
    /** Dashboards, each with the feature's LLM explanation (or null) as `explanation`. */
    api.fetchFeatures = async (nodeIds) => {
      const features = await batch(nodeIds, true);
      return new Map([...features].map(([id, f]) => [id, f.dashboard ? { ...f.dashboard, explanation: f.explanation ?? null } : null]));
    };
    /** What a node shows as its label: a person's label, else the LLM explanation, else the auto label. */
    api.fetchLabels = async (nodeIds) => {
      const features = await batch(nodeIds, false);
      return new Map([...features].map(([id, f]) => [id, f.label ?? f.explanation?.text ?? f.auto_label ?? null]));
    };
    /** How often each feature fires (for the density filter); the labels' batch brought most already. */
    api.fetchDensities = async (nodeIds) => {
      const missing = [...nodeIds].filter((id) => featureKey(id) && !densities.has(featureKey(id)));
      if (missing.length) await batch(missing, false);
      return new Map([...nodeIds].filter((id) => typeof densities.get(featureKey(id)) === "number").map((id) => [id, densities.get(featureKey(id))]));
    };
    api.saveLabel = saveLabel;
  }
  if (graphBase) {
    api.saveSubgraph = ({ name, pinnedIds, supernodes, labelOverrides, pruningThreshold, densityThreshold }) =>
      request("POST", `${graphBase}/subgraphs`, {
        title: name,
        pinned_ids: pinnedIds,
        supernodes,
        label_overrides: labelOverrides,
        pruning_threshold: pruningThreshold,
        density_threshold: densityThreshold,
      });
  }
  if (graphBase) {
    /** The graph's suggested subgraph and note (GET /api/graphs/{slug}/suggested-subgraph). */
    api.suggestSubgraph = () => request("GET", `${graphBase}/suggested-subgraph`);
  }
  if (graphBase && hasFeatures) api.runInterventions = runInterventions;
  return api;
}
