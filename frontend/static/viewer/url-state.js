// The part of the state that a URL carries, under Neuronpedia's parameter names:
//   pinnedIds=a,b,c   supernodes=[["name","id",...],...]   clerps=[["featureKey","label"],...]
//   pruningThreshold=0.8   densityThreshold=0.99   clickedId=id
// plus two of ours: hideErrors=1 and edgeThreshold=0.4 (the share of each node's input weight
// whose strongest edges are drawn; filters.js).
// clerps are keyed like Neuronpedia's featureId (`${layer}_${feature}_${ctx_idx}`); node ids are
// accepted too when reading. Other query parameters of the page are left untouched.

export const URL_KEYS = [
  "pinnedIds", "supernodes", "clerps", "pruningThreshold", "edgeThreshold", "densityThreshold", "clickedId", "hideErrors",
];

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function threshold(text) {
  if (text === null || text.trim() === "") return undefined;
  const value = Number(text);
  return Number.isFinite(value) ? Math.min(1, Math.max(0, value)) : undefined;
}

function knownIds(model, ids) {
  return [...new Set(ids.map(String))].filter((id) => model.idToIndex.has(id));
}

/** [[name, id, ...], ...] keeping only known ids and groups that still have members. */
export function cleanSupernodes(model, value) {
  if (!Array.isArray(value)) return [];
  return value
    .filter((group) => Array.isArray(group) && group.length > 1)
    .map(([name, ...ids]) => [String(name), ...knownIds(model, ids)])
    .filter((group) => group.length > 1);
}

/** Map node id -> label from [[key, label], ...] where key is a featureKey or a node id. */
export function cleanClerps(model, value) {
  const clerps = new Map();
  if (!Array.isArray(value)) return clerps;
  for (const pair of value) {
    if (!Array.isArray(pair) || pair.length < 2 || typeof pair[1] !== "string") continue;
    const key = String(pair[0]);
    const index = model.keyToIndex.get(key) ?? model.idToIndex.get(key);
    if (index !== undefined) clerps.set(model.nodes[index].id, pair[1]);
  }
  return clerps;
}

/** State saved in the graph JSON itself (qParams), as circuit-tracer writes it. */
export function stateFromQParams(model, qParams) {
  const state = {};
  if (!qParams || typeof qParams !== "object") return state;
  if (Array.isArray(qParams.pinnedIds)) state.pinnedIds = knownIds(model, qParams.pinnedIds);
  else if (typeof qParams.pinnedIds === "string") state.pinnedIds = knownIds(model, qParams.pinnedIds.split(","));
  if (qParams.supernodes) state.supernodes = cleanSupernodes(model, qParams.supernodes);
  if (typeof qParams.clickedId === "string" && model.idToIndex.has(qParams.clickedId)) {
    state.clickedId = qParams.clickedId;
  }
  return state;
}

export function stateFromUrl(model, search) {
  const params = new URLSearchParams(search);
  const state = {};
  if (params.has("pinnedIds")) state.pinnedIds = knownIds(model, params.get("pinnedIds").split(",").filter(Boolean));
  if (params.has("supernodes")) state.supernodes = cleanSupernodes(model, parseJson(params.get("supernodes")));
  if (params.has("clerps")) state.clerps = cleanClerps(model, parseJson(params.get("clerps")));
  const pruning = threshold(params.get("pruningThreshold"));
  if (pruning !== undefined) state.pruningThreshold = pruning;
  const edges = threshold(params.get("edgeThreshold"));
  if (edges !== undefined) state.edgeThreshold = edges;
  const density = threshold(params.get("densityThreshold"));
  if (density !== undefined) state.densityThreshold = density;
  const clicked = params.get("clickedId");
  if (clicked && model.idToIndex.has(clicked)) state.clickedId = clicked;
  if (params.has("hideErrors")) state.hideErrors = ["1", "true"].includes(params.get("hideErrors"));
  return state;
}

function setOrDelete(params, key, value) {
  if (value === null || value === undefined || value === "") params.delete(key);
  else params.set(key, value);
}

/** Write the URL keys of `state` into `url` (a URL object), keeping its other parameters. */
export function writeUrlState(url, model, state) {
  const params = url.searchParams;
  setOrDelete(params, "pinnedIds", state.pinnedIds.join(","));
  setOrDelete(params, "supernodes", state.supernodes.length ? JSON.stringify(state.supernodes) : null);
  const clerps = [...state.clerps].map(([id, label]) => [model.nodes[model.idToIndex.get(id)].featureKey, label]);
  setOrDelete(params, "clerps", clerps.length ? JSON.stringify(clerps) : null);
  setOrDelete(params, "pruningThreshold", state.pruningThreshold === null ? null : String(state.pruningThreshold));
  setOrDelete(params, "edgeThreshold", state.edgeThreshold === null || state.edgeThreshold === undefined ? null : String(state.edgeThreshold));
  setOrDelete(params, "densityThreshold", state.densityThreshold === null ? null : String(state.densityThreshold));
  setOrDelete(params, "clickedId", state.clickedId);
  setOrDelete(params, "hideErrors", state.hideErrors ? "1" : null);
  return url;
}

export function shareUrl(baseHref, model, state) {
  return writeUrlState(new URL(baseHref), model, state).toString();
}
