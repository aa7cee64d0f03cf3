// The graph header: the model's most likely next tokens, how good the replacement is (the
// engine's replacement and completeness scores, when the JSON carries them), where the
// influence on the outputs sits (features / errors / tokens, computed from the file's links;
// scores.js), how much of the graph is on screen, and a legend of shapes and edge colours for
// first-time readers.
import { el, svg } from "../lib/dom.js";
import { quoteToken } from "./draw.js";
import { influenceShares, reportedScores, topPredictions } from "./scores.js";

const SCORE_HELP = {
  replacement: "Replacement score (of the full graph, before pruning): of the influence entering the graph from "
    + "tokens and error nodes, the share that comes from tokens. 1 means the transcoder features explain the "
    + "output without error terms.",
  completeness: "Completeness score (of the full graph, before pruning): for every node, the share of its input "
    + "that does not come from error nodes, averaged with each node's influence as weight.",
};
const SHARE_HELP = "Where the influence on the outputs sits, computed from this file's (pruned) graph: the "
  + "share of all node influence held by transcoder features, error nodes (what the transcoders miss) and "
  + "input tokens.";

const percent = (value) => `${Math.round(value * 100)}%`;
const PREDICTIONS_HELP = "What the model itself puts next after the prompt, with probabilities. The graph "
  + "explains the outputs drawn at its top, most likely first.";

function predictions(model) {
  const top = topPredictions(model);
  if (!top.length) return null;
  const chance = (p) => (p >= 0.01 ? percent(p) : "<1%");
  return el("span", { class: "gbv-predictions", title: PREDICTIONS_HELP, tabIndex: 0, "aria-label": `The model's next token: ${top.map((t) => `${quoteToken(t.token, 24)} ${chance(t.prob)}`).join(", ")}` },
    el("span", { class: "gbv-muted", text: "Next token " }),
    top.map((t, i) => el("span", { class: i === 0 ? "gbv-prediction gbv-prediction-top" : "gbv-prediction", dataset: { prob: String(t.prob) } },
      el("span", { class: "gbv-prediction-token", text: quoteToken(t.token, 24) }), ` ${chance(t.prob)}`)));
}

function scoreItems(metadata) {
  const scores = reportedScores(metadata);
  if (!scores) {
    return [el("span", { class: "gbv-score gbv-muted", title: "The exporter did not write replacement and completeness scores into this graph's JSON.", text: "Scores: not in this graph's JSON" })];
  }
  return ["replacement", "completeness"].map((key) => el("span", { class: "gbv-score", title: SCORE_HELP[key], tabIndex: 0 },
    el("span", { class: "gbv-muted", text: key === "replacement" ? "Replacement " : "Completeness " }),
    el("strong", { dataset: { score: key }, text: scores[key] === null ? "—" : scores[key].toFixed(2) })));
}

function shareBar(model) {
  const shares = influenceShares(model);
  if (!shares) return el("span", { class: "gbv-muted", text: "Influence shares: no logit probabilities in this graph" });
  const parts = [["features", "Features"], ["errors", "Errors"], ["tokens", "Tokens"]];
  return el("span", { class: "gbv-shares", title: SHARE_HELP, tabIndex: 0, "aria-label": `Influence: ${parts.map(([k, name]) => `${name} ${percent(shares[k])}`).join(", ")}` },
    el("span", { class: "gbv-muted", text: "Influence " }),
    el("span", { class: "gbv-share-bar", "aria-hidden": "true" }, parts.map(([key]) =>
      el("span", { class: `gbv-share gbv-share-${key}`, style: { "flex-grow": shares[key].toFixed(4) } }))),
    el("span", { class: "gbv-share-legend" }, parts.map(([key, name]) =>
      el("span", { class: `gbv-share-key gbv-share-${key}`, dataset: { share: key }, text: `${name} ${percent(shares[key])}` }))));
}

function legendShape(kind) {
  const shapes = {
    feature: svg("circle", { cx: 6, cy: 6, r: 4.5 }),
    error: svg("path", { d: "M6,0.5L11.5,6L6,11.5L0.5,6Z" }),
    embedding: svg("rect", { x: 1.5, y: 1.5, width: 9, height: 9 }),
    logit: svg("rect", { x: 1, y: 1, width: 10, height: 10 }),
  };
  return svg("svg", { class: `gbv-legend-shape gbv-fill-${kind}`, width: 12, height: 12, viewBox: "0 0 12 12", "aria-hidden": "true" }, shapes[kind]);
}

function legend() {
  const item = (kind, text) => el("span", { class: "gbv-legend-item" }, legendShape(kind), el("span", { text }));
  const edge = (sign, text) => el("span", { class: "gbv-legend-item" },
    el("span", { class: `gbv-legend-edge gbv-${sign}-bg`, "aria-hidden": "true" }), el("span", { text }));
  return el("span", { class: "gbv-legend", "aria-label": "Legend" },
    item("embedding", "token"), item("feature", "feature"), item("error", "error"), item("logit", "output"),
    edge("pos", "excites"), edge("neg", "inhibits"));
}

export function createGraphHeader({ store, model }) {
  const counts = el("span", { class: "gbv-counts", role: "status" });
  const element = el("div", { class: "gbv-graph-header", role: "group", "aria-label": "Graph summary" },
    predictions(model), ...scoreItems(model.metadata), shareBar(model), counts, legend());
  const total = `${model.nodes.length.toLocaleString("en")} nodes`;
  function sync(state) {
    const { nodes, edges } = state.shown;
    counts.textContent = `Showing ${nodes.toLocaleString("en")} of ${total} · ${edges.toLocaleString("en")} of ${model.edges.count.toLocaleString("en")} edges`;
  }
  const off = store.on(["shown"], sync);
  sync(store.snapshot());
  return { element, destroy: off };
}
