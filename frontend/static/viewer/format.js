// Small formatting helpers shared by panels (plain strings; callers put them in textContent).
import { quoteToken } from "./draw.js";

const KIND_NAMES = { feature: "Feature", error: "Error", embedding: "Embedding", logit: "Logit" };

export function fmt(value, digits = 3) {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  if (value !== 0 && Math.abs(value) < 1e-3) return value.toExponential(1);
  if (Math.abs(value) >= 1000) return value.toFixed(0);
  return Number(value.toPrecision(digits)).toString();
}

export function kindName(kind) {
  return KIND_NAMES[kind] ?? kind;
}

export function layerName(model, node) {
  return model.rowLabels[node.row] ?? "";
}

export function positionText(node) {
  return `${node.ctx} ${quoteToken(node.token, 24)}`;
}

/** Label/value rows describing a node, for the tooltip and the details header. */
export function nodeFacts(model, node) {
  const facts = [
    ["Type", kindName(node.kind)],
    ["Layer", layerName(model, node)],
    ["Position", positionText(node)],
  ];
  if (node.kind === "logit") facts.push(["Probability", node.prob === null ? "—" : `${(node.prob * 100).toFixed(1)}%`]);
  if (node.kind === "feature" && node.featureIndex !== null) facts.push(["Feature", String(node.featureIndex)]);
  facts.push(["Activation", fmt(node.activation)], ["Influence", fmt(node.influence)]);
  return facts;
}
