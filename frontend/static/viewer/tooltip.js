// Hover card: a detached element describing one node (label, layer, position, activation,
// influence) and, for features with dashboards, the feature card (top activating contexts and
// top logits; feature-card.js). The graph panel positions it.
import { el } from "../lib/dom.js";
import { renderCardBody } from "./feature-card.js";
import { nodeFacts } from "./format.js";

/**
 * `dashboard`: the feature's entry in state.dashboards; `withCard`: show the dashboard part;
 * `hasPage`: the feature has a feature page (the details panel links to it).
 */
export function renderTooltip(model, node, label, { dashboard = undefined, withCard = false, hasPage = false } = {}) {
  return el("div", { class: withCard ? "gbv-tooltip-body gbv-card" : "gbv-tooltip-body" },
    el("div", { class: "gbv-tooltip-label", text: label }),
    el("dl", { class: "gbv-facts" },
      nodeFacts(model, node).map(([key, value]) => [el("dt", { text: key }), el("dd", { text: value })])),
    withCard ? renderCardBody(dashboard) : null,
    node.kind === "feature"
      ? el("p", { class: "gbv-muted gbv-card-hint", text: hasPage ? "Click for details and the feature page" : "Click for details" })
      : null);
}
