// Feature dashboard (Anthropic's feature-details format, shared/formats/feature-details-schema.json):
// top and bottom logits and activating examples, with each token shaded by its activation.
// Tokens are text nodes; the shading is a style value computed from numbers only.
import { el } from "./dom.js";
import { fmt } from "./format.js";
import { quoteToken } from "./draw.js";

const MAX_QUANTILES = 3;
const MAX_EXAMPLES = 4;

function tokenList(title, tokens, className) {
  if (!Array.isArray(tokens) || !tokens.length) return null;
  return el("div", { class: "gbv-dash-logits" },
    el("h4", { text: title }),
    el("ul", { class: `gbv-chips ${className}` }, tokens.slice(0, 10).map((t) => el("li", { text: quoteToken(t, 20) }))));
}

function example(ex, maxAct) {
  const acts = Array.isArray(ex.tokens_acts_list) ? ex.tokens_acts_list : [];
  return el("p", { class: "gbv-example" }, (ex.tokens ?? []).map((token, i) => {
    const act = Number(acts[i]) || 0;
    const alpha = maxAct > 0 ? Math.min(1, Math.max(0, act / maxAct)) : 0;
    return el("span", {
      class: "gbv-tok",
      title: `activation ${fmt(act)}`,
      style: { "--gbv-act": alpha.toFixed(3) },
      text: String(token),
    });
  }));
}

function examples(details) {
  const quantiles = Array.isArray(details.examples_quantiles) ? details.examples_quantiles : [];
  let maxAct = 0;
  for (const q of quantiles) for (const ex of q.examples ?? []) for (const a of ex.tokens_acts_list ?? []) maxAct = Math.max(maxAct, Number(a) || 0);
  return quantiles.slice(0, MAX_QUANTILES).map((q) => el("div", { class: "gbv-quantile" },
    el("h4", { text: String(q.quantile_name ?? "") }),
    (q.examples ?? []).slice(0, MAX_EXAMPLES).map((ex) => example(ex, maxAct))));
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
    if (typeof d.frac_nonzero === "number") section.append(el("p", { class: "gbv-muted", text: `Density ${fmt(d.frac_nonzero)}` }));
    section.append(
      el("div", { class: "gbv-dash-logit-row" }, tokenList("Top logits", d.top_logits, "gbv-pos"), tokenList("Bottom logits", d.bottom_logits, "gbv-neg")),
      ...examples(d),
    );
  }
  return section;
}
