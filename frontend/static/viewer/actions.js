// Everything a user can do, as functions over the store. Panels call these instead of editing
// state by hand, so the rules (unpinning leaves supernodes, grouping pins members, ...) live once.
import { densityOf } from "./feature-card.js";
import { cleanSupernodes } from "./url-state.js";

export const DASHBOARD_CACHE = 64; // dashboards kept in memory (the clicked one always stays)
export const DASHBOARD_TIMEOUT_MS = 10_000;

function toggled(list, id) {
  return list.includes(id) ? list.filter((x) => x !== id) : [...list, id];
}

function asLookup(result) {
  if (result instanceof Map) return (id) => result.get(id);
  return (id) => (result && Object.hasOwn(result, id) ? result[id] : undefined);
}

export function createActions(store, model, api) {
  const known = (id) => model.idToIndex.has(id);

  function clickNode(id) {
    if (id !== null && !known(id)) return;
    store.set({ clickedId: store.get("clickedId") === id ? null : id });
  }

  function selectNode(id) {
    if (id === null || known(id)) store.set({ clickedId: id });
  }

  function togglePin(id) {
    if (!known(id)) return;
    const pinned = store.get("pinnedIds");
    if (pinned.includes(id)) {
      const supernodes = store.get("supernodes")
        .map(([name, ...members]) => [name, ...members.filter((m) => m !== id)])
        .filter((group) => group.length > 1);
      store.set({ pinnedIds: pinned.filter((x) => x !== id), supernodes });
    } else {
      store.set({ pinnedIds: [...pinned, id] });
    }
  }

  function toggleGrouping(id) {
    if (known(id)) store.set({ grouping: toggled(store.get("grouping"), id) });
  }

  function setGroupingActive(active) {
    if (store.get("groupingActive") === active) return;
    store.set({ groupingActive: active });
    if (!active && store.get("grouping").length) store.set({ dialog: "group" });
  }

  function createSupernode(name, ids = store.get("grouping")) {
    const members = ids.filter(known);
    const label = String(name).trim() || `Group ${store.get("supernodes").length + 1}`;
    const pinned = store.get("pinnedIds");
    const supernodes = store.get("supernodes")
      .map(([n, ...m]) => [n, ...m.filter((x) => !members.includes(x))])
      .filter((group) => group.length > 1);
    store.set({
      supernodes: members.length ? [...supernodes, [label, ...members]] : store.get("supernodes"),
      pinnedIds: [...pinned, ...members.filter((id) => !pinned.includes(id))],
      grouping: [],
      dialog: null,
    });
  }

  function cancelGrouping() {
    store.set({ grouping: [], dialog: null });
  }

  function ungroup(position) {
    store.set({ supernodes: store.get("supernodes").filter((_, i) => i !== position) });
  }

  function clearSubgraph() {
    store.set({ pinnedIds: [], supernodes: [], grouping: [], guide: null });
  }

  /** Pin a suggested subgraph (glassbox/graph/guide.py: pinned_ids, supernodes, note) and show its note. */
  function showGuide(guide) {
    const pinnedIds = [...new Set((guide.pinned_ids ?? []).map(String))].filter(known);
    store.set({ pinnedIds, supernodes: cleanSupernodes(model, guide.supernodes), grouping: [], guide });
  }

  function setLabel(id, label) {
    const clerps = new Map(store.get("clerps"));
    if (label === null) clerps.delete(id);
    else clerps.set(id, label);
    store.set({ clerps });
  }

  /**
   * Show the new label at once, then ask the server to keep it; rejects when the server fails.
   * An empty label only drops this view's override (the server keeps its label).
   */
  async function saveLabel(id, label) {
    const node = model.nodes[model.idToIndex.get(id)];
    if (!label) {
      setLabel(id, null);
      return { saved: false, cleared: true };
    }
    setLabel(id, label);
    if (typeof api.saveLabel !== "function") return { saved: false };
    await api.saveLabel({
      nodeId: id,
      featureKey: node.featureKey,
      layer: node.layer,
      featureIndex: node.featureIndex,
      label,
      scan: model.metadata.scan ?? null,
      slug: model.metadata.slug ?? null,
    });
    return { saved: true };
  }

  /** Store a dashboard entry; the oldest entries go once the cache is full (never the clicked one). */
  function putDashboard(id, entry) {
    const dashboards = new Map(store.get("dashboards"));
    dashboards.delete(id);
    dashboards.set(id, entry);
    const clicked = store.get("clickedId");
    for (const key of dashboards.keys()) {
      if (dashboards.size <= DASHBOARD_CACHE) break;
      if (key !== clicked && key !== id && dashboards.get(key).status !== "loading") dashboards.delete(key);
    }
    store.set({ dashboards });
    const density = densityOf(entry.data);
    if (density !== null) store.set({ densities: new Map(store.get("densities")).set(id, density) });
  }

  function withTimeout(promise, ms) {
    let timer = 0;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${ms / 1000} s`)), ms);
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
  }

  /** Fetch a feature dashboard once; later calls reuse the stored result (errors are retried). */
  async function loadDashboard(id) {
    const known = store.get("dashboards").get(id);
    if (known && known.status !== "error") return;
    if (typeof api.fetchFeatures !== "function") {
      putDashboard(id, { status: "ready", data: null });
      return;
    }
    putDashboard(id, { status: "loading", data: null });
    try {
      const result = await withTimeout(api.fetchFeatures([id]), DASHBOARD_TIMEOUT_MS);
      putDashboard(id, { status: "ready", data: asLookup(result)(id) ?? null });
    } catch (error) {
      putDashboard(id, { status: "error", data: null, message: String(error?.message ?? error) });
    }
  }

  const hasDashboards = () => typeof api.fetchFeatures === "function";

  /** The feature page of a feature node, when the api adapter knows where feature pages live. */
  function featurePageUrl(id) {
    if (typeof api.featureUrl !== "function" || !known(id)) return null;
    if (model.nodes[model.idToIndex.get(id)].kind !== "feature") return null;
    return api.featureUrl(id) ?? null;
  }

  /** Labels other people saved on the server, if the adapter can list them; then how often the
   * features fire, for the density filter (if the adapter knows). */
  async function loadServerLabels() {
    if (typeof api.fetchLabels !== "function") return;
    const ids = model.nodes.filter((n) => n.kind === "feature").map((n) => n.id);
    const result = await api.fetchLabels(ids);
    const lookup = asLookup(result);
    const labels = new Map();
    for (const id of ids) {
      const label = lookup(id);
      if (typeof label === "string" && label) labels.set(id, label);
    }
    store.set({ serverLabels: labels });
    if (typeof api.fetchDensities !== "function") return;
    const density = asLookup(await api.fetchDensities(ids));
    const densities = new Map(store.get("densities"));
    for (const id of ids) {
      const value = density(id);
      if (typeof value === "number" && Number.isFinite(value) && !densities.has(id)) densities.set(id, value);
    }
    store.set({ densities });
  }

  return {
    clickNode, selectNode, togglePin, toggleGrouping, setGroupingActive, createSupernode,
    cancelGrouping, ungroup, clearSubgraph, showGuide, setLabel, saveLabel, loadDashboard, loadServerLabels, featurePageUrl,
    hasDashboards,
  };
}
