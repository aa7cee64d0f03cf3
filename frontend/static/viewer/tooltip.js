// Hover tooltip: a detached element describing one node (label, layer, position, activation,
// influence). The graph panel positions it.
import { el } from "./dom.js";
import { nodeFacts } from "./format.js";

export function renderTooltip(model, node, label) {
  return el("div", { class: "gbv-tooltip-body" },
    el("div", { class: "gbv-tooltip-label", text: label }),
    el("dl", { class: "gbv-facts" },
      nodeFacts(model, node).map(([key, value]) => [el("dt", { text: key }), el("dd", { text: value })])));
}
