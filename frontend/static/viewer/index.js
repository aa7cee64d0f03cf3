// Glassbox graph viewer. Mount it into any element:
//
//   import { mountGraphViewer } from "/static/viewer/index.js";
//   const viewer = await mountGraphViewer(element, {
//     graphUrl: "/api/graphs/abc.json",          // or graphJson: {...}
//     api: { fetchFeatures, saveLabel, fetchLabels, fetchDensities, saveSubgraph, runInterventions },  // all optional
//     initialState: { pinnedIds: [...], pruningThreshold: 0.6, edgeThreshold: 0.5, theme: "dark" },
//   });
//
// Every server call goes through `api`, so the viewer runs without a server (see
// frontend/README.md for the adapter contract). State precedence: defaults < the graph's qParams
// < initialState < the page URL (when syncUrl is on, the default).
import { el, replace } from "../lib/dom.js";
import { createActions } from "./actions.js";
import { createControls } from "./controls.js";
import { createDetailsPanel } from "./details-panel.js";
import { createDialogs } from "./dialogs.js";
import { download, exportGraphJson, exportPng, exportSvg, fileStem } from "./export.js";
import { computeVisible, defaultEdgeThreshold, defaultPruning } from "./filters.js";
import { buildModel } from "./graph-model.js";
import { createGraphPanel } from "./graph-panel.js";
import { createGuideNote } from "./guide-note.js";
import { createGraphHeader } from "./header.js";
import { createInterventionsPanel } from "./interventions-panel.js";
import { attachKeyboard } from "./keyboard.js";
import { createStore } from "./state.js";
import { createSubgraphPanel } from "./subgraph-panel.js";
import { preferredTheme } from "./theme.js";
import { URL_KEYS, cleanClerps, cleanSupernodes, shareUrl, stateFromQParams, stateFromUrl, writeUrlState } from "./url-state.js";

const URL_SYNC_DELAY_MS = 200;

/** Defaults; the edge threshold is left undefined here and computed once the nodes are known. */
function defaultState(model) {
  return {
    // mirrored in the URL
    pinnedIds: [],
    supernodes: [],
    clerps: new Map(),
    pruningThreshold: defaultPruning(model),
    edgeThreshold: undefined,
    densityThreshold: null,
    clickedId: null,
    hideErrors: false,
    // view only
    theme: preferredTheme(),
    hoveredId: null,
    focusedId: null,
    grouping: [],
    groupingActive: false,
    search: "",
    searchMatches: [],
    dialog: null,
    serverLabels: new Map(),
    dashboards: new Map(),
    densities: new Map(),
    shown: { nodes: 0, edges: 0 },
    subgraphExpanded: false,
    guide: null, // the suggested subgraph whose note is shown (glassbox/graph/guide.py)
  };
}

/** The graph's own suggested subgraph (metadata.glassbox.guide), when its note can be shown. */
function graphGuide(model) {
  const guide = model.metadata?.glassbox?.guide;
  return guide && Array.isArray(guide.note) && Array.isArray(guide.pinned_ids) ? guide : null;
}

/** The starting state: defaults < the graph's qParams < initialState < the page URL. The
 * graph's guide note shows while its pins are the graph's own (nobody asked for other pins). */
function startingState(model, initialState, syncUrl) {
  const fromUrl = syncUrl ? stateFromUrl(model, globalThis.location?.search ?? "") : {};
  const state = {
    ...defaultState(model),
    ...stateFromQParams(model, model.graph.qParams),
    ...normalizeInitial(model, initialState),
    ...fromUrl,
  };
  if (!("pinnedIds" in fromUrl) && !("pinnedIds" in initialState)) state.guide = graphGuide(model);
  if (state.edgeThreshold === undefined) state.edgeThreshold = defaultEdgeThreshold(model, computeVisible(model, state));
  return state;
}

/** initialState uses the URL's vocabulary (arrays, [[key, label]] clerps); make it state-shaped. */
function normalizeInitial(model, initial) {
  const state = {};
  const ids = (list) => (Array.isArray(list) ? list.map(String).filter((id) => model.idToIndex.has(id)) : []);
  if ("pinnedIds" in initial) state.pinnedIds = ids(initial.pinnedIds);
  if ("supernodes" in initial) state.supernodes = cleanSupernodes(model, initial.supernodes);
  if ("clerps" in initial) {
    const pairs = initial.clerps instanceof Map ? [...initial.clerps] : Array.isArray(initial.clerps) ? initial.clerps : Object.entries(initial.clerps ?? {});
    state.clerps = cleanClerps(model, pairs);
  }
  for (const key of ["pruningThreshold", "edgeThreshold", "densityThreshold"]) {
    if (typeof initial[key] === "number" || initial[key] === null) state[key] = initial[key];
  }
  if (typeof initial.clickedId === "string" && model.idToIndex.has(initial.clickedId)) state.clickedId = initial.clickedId;
  if (typeof initial.hideErrors === "boolean") state.hideErrors = initial.hideErrors;
  if (initial.theme === "dark" || initial.theme === "light") state.theme = initial.theme;
  return state;
}

async function loadGraph(url, timings) {
  const t0 = performance.now();
  const response = await fetch(url, { credentials: "same-origin" });
  if (!response.ok) throw new Error(`${response.status} ${response.statusText} for ${url}`);
  const text = await response.text();
  const t1 = performance.now();
  const graph = JSON.parse(text);
  timings.fetchMs = t1 - t0;
  timings.parseMs = performance.now() - t1;
  timings.jsonBytes = text.length;
  return graph;
}

/** Add viewer.css to the document once; resolves when it has loaded. */
function ensureStylesheet(doc) {
  const href = new URL("./viewer.css", import.meta.url).href;
  const existing = [...doc.querySelectorAll("link[rel=stylesheet]")].find((link) => link.href === href);
  if (existing) return existing.sheet ? Promise.resolve() : new Promise((resolve) => existing.addEventListener("load", resolve, { once: true }));
  const link = el("link", { rel: "stylesheet", href });
  const loaded = new Promise((resolve, reject) => {
    link.addEventListener("load", resolve, { once: true });
    link.addEventListener("error", () => reject(new Error(`could not load ${href}`)), { once: true });
  });
  doc.head.append(link);
  return loaded;
}

export async function mountGraphViewer(element, options = {}) {
  const {
    graphUrl = null, graphJson = null, api = {}, initialState = {}, syncUrl = true, stylesheet = true, loginUrl = null,
  } = options;
  const timings = { start: performance.now() };
  replace(element, el("p", { class: "gbv-loading", role: "status", text: "Loading graph…" }));
  let model;
  try {
    const styled = stylesheet ? ensureStylesheet(element.ownerDocument) : Promise.resolve();
    const graph = graphJson ?? (graphUrl ? await loadGraph(graphUrl, timings) : null);
    if (!graph) throw new Error("pass graphUrl or graphJson");
    const t0 = performance.now();
    model = buildModel(graph);
    timings.modelMs = performance.now() - t0;
    await styled;
  } catch (error) {
    replace(element, el("p", { class: "gbv-error", role: "alert", text: `Could not show the graph: ${error.message}` }));
    throw error;
  }

  const store = createStore(startingState(model, initialState, syncUrl));
  const actions = createActions(store, model, api);
  const root = el("div", { class: "gbv", "data-theme": store.get("theme") });
  // Registered before any panel, so the canvas reads the new theme's colours when it repaints.
  const rootCallbacks = [
    store.on(["theme"], (state) => {
      root.dataset.theme = state.theme;
    }),
    store.on(["groupingActive"], (state) => root.classList.toggle("gbv-grouping", state.groupingActive)),
    store.on(["subgraphExpanded"], (state) => root.classList.toggle("gbv-sg-expanded", state.subgraphExpanded)),
  ];
  const live = el("div", { class: "gbv-sr-only", "aria-live": "polite" });
  const announce = (text) => {
    live.textContent = text;
  };
  const getShareUrl = () => shareUrl(globalThis.location?.href ?? "http://localhost/", model, store.snapshot());

  const graphPanel = createGraphPanel({ store, model, actions, root, announce });
  const commands = {
    share: () => store.set({ dialog: "share" }),
    focusSearch: () => controls.focusSearch(),
    zoomBy: graphPanel.zoomBy,
    resetZoom: graphPanel.resetZoom,
    exportSvg: () => download(root, new Blob([exportSvg(graphPanel.scene(), store.snapshot())], { type: "image/svg+xml" }), `${fileStem(model)}.svg`),
    exportPng: async () => download(root, await exportPng(graphPanel.scene(), graphPanel.marks()), `${fileStem(model)}.png`),
    exportJson: () => download(root, new Blob([JSON.stringify(exportGraphJson(model, store.snapshot()))], { type: "application/json" }), `${fileStem(model)}.json`),
  };
  const controls = createControls({ store, model, actions, commands });
  const header = createGraphHeader({ store, model });
  const guideNote = createGuideNote({ store });
  const details = createDetailsPanel({ store, model, actions });
  const subgraph = createSubgraphPanel({ store, model, actions, api });
  const interventions = typeof api.runInterventions === "function"
    ? createInterventionsPanel({ store, model, api, loginUrl })
    : null;
  const dialogs = createDialogs({ store, model, actions, getShareUrl });
  root.append(
    controls.element,
    header.element,
    guideNote.element,
    el("div", { class: "gbv-main" }, graphPanel.element,
      el("aside", { class: "gbv-side", "aria-label": "Panels" }, details.element, subgraph.element, interventions?.element)),
    dialogs.element,
    live);
  replace(element, root);

  const cleanups = [
    controls.destroy, header.destroy, guideNote.destroy, details.destroy, subgraph.destroy, dialogs.destroy, graphPanel.destroy,
    ...(interventions ? [interventions.destroy] : []),
    attachKeyboard({ root, store, actions, commands }),
    ...rootCallbacks,
  ];
  if (syncUrl && globalThis.history) {
    let timer = 0;
    const write = () => {
      timer = 0;
      const url = writeUrlState(new URL(location.href), model, store.snapshot());
      history.replaceState(history.state, "", url);
    };
    cleanups.push(store.on(URL_KEYS, () => {
      clearTimeout(timer);
      timer = setTimeout(write, URL_SYNC_DELAY_MS);
    }), () => clearTimeout(timer));
  }

  graphPanel.start();
  timings.firstPaintMs = performance.now() - timings.start;
  actions.loadServerLabels().catch((error) => announce(`Could not load shared labels: ${error.message}`));

  return {
    model,
    store,
    actions,
    timings,
    graphTimings: graphPanel.timings,
    getState: () => store.snapshot(),
    setState: (patch) => store.set(patch),
    shareUrl: getShareUrl,
    visibleNodeIds: graphPanel.visibleIds,
    visibleEdgeCount: graphPanel.visibleEdgeCount,
    logitLabelBoxes: graphPanel.logitLabelBoxes,
    nodeScreenPosition: graphPanel.nodeScreenPosition,
    exportGraphJson: () => exportGraphJson(model, store.snapshot()),
    exportSvg: () => exportSvg(graphPanel.scene(), store.snapshot()),
    focusGraph: graphPanel.focus,
    destroy() {
      cleanups.forEach((cleanup) => cleanup());
      replace(element);
    },
  };
}
