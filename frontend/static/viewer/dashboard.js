// Feature dashboard (Anthropic's feature-details format, shared/formats/feature-details-schema.json)
// for the details panel: top and bottom logits and every activating example it carries, with
// each token shaded by its activation and the activating token marked. The hover card
// (feature-card.js) shows a short version; both read examples with the same helpers.
import { el } from "../lib/dom.js";
import { quoteToken } from "./draw.js";
import { cutContext, densityOf, formatPercent, renderContext, shadeContexts } from "./feature-card.js";

const MAX_QUANTILES = 3;
const MAX_EXAMPLES = 4;
const WHOLE = { before: Infinity, after: Infinity };

function tokenList(title, tokens, className) {
  if (!Array.isArray(tokens) || !tokens.length) return null;
  return el("div", { class: "gbv-dash-logits" },
    el("h4", { text: title }),
    el("ul", { class: `gbv-chips ${className}` }, tokens.slice(0, 10).map((t) => el("li", { text: quoteToken(t, 20) }))));
}

function examples(details) {
  const quantiles = (Array.isArray(details.examples_quantiles) ? details.examples_quantiles : []).slice(0, MAX_QUANTILES);
  const groups = quantiles.map((q) => (Array.isArray(q?.examples) ? q.examples : []).slice(0, MAX_EXAMPLES).map((ex) => cutContext(ex, WHOLE)));
  shadeContexts(groups.flat()); // one scale for every example shown
  return quantiles.map((q, i) => el("div", { class: "gbv-quantile" },
    el("h4", { text: String(q?.quantile_name ?? "") }),
    groups[i].map(renderContext)));
}

/** The dashboard section for one node: loading, error, placeholder or the details. */
export function renderDashboard(entry) {
  const section = el("section", { class: "gbv-dashboard", "aria-label": "Feature dashboard" });
  if (!entry || entry.status === "loading") {
    section.append(el("p", { class: "gbv-muted", text: "Loading feature dashboard…" }));
  } else if (entry.status === "error") {
    section.append(el("p", { class: "gbv-error", text: `Could not load the dashboard: ${entry.message}` }));
  } else if (!entry.data) {
    section.append(el("p", { class: "gbv-muted gbv-dash-placeholder", text: "No feature dashboard available for this node." }));
  } else {
    const d = entry.data;
    const density = densityOf(d);
    if (density !== null) section.append(el("p", { class: "gbv-muted", text: `Fires on ${formatPercent(density)} of tokens` }));
    section.append(
      el("div", { class: "gbv-dash-logit-row" }, tokenList("Top logits", d.top_logits, "gbv-pos"), tokenList("Bottom logits", d.bottom_logits, "gbv-neg")),
      ...examples(d),
    );
  }
  return section;
}
