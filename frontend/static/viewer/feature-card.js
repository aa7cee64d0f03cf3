// The feature card: what a reader needs to judge a feature at a glance (its label, its LLM
// explanation with score and provenance when it has one, a few of its top activating contexts
// with the activating token marked, and the logits it promotes). The hover tooltip shows it; a
// click pins the node, and the details panel keeps the full dashboard.
// Reading the dashboard (feature-details format) is pure; rendering returns detached nodes and
// puts every token in a text node.
import { el } from "../lib/dom.js";
import { quoteToken } from "./draw.js";
import { fmt } from "./format.js";

export const CARD_CONTEXTS = 4;
export const CARD_LOGITS = 6;
const BEFORE = 10; // tokens of context kept before the activating token
const AFTER = 3; // and after it

const number = (value) => (Number.isFinite(Number(value)) ? Number(value) : 0);

function peakOf(example, acts) {
  if (Number.isInteger(example.max_index) && example.max_index >= 0 && example.max_index < acts.length) return example.max_index;
  let best = 0;
  for (let i = 1; i < acts.length; i += 1) if (acts[i] > acts[best]) best = i;
  return best;
}

/**
 * One example cut to the tokens around its most active one:
 * {tokens: [{text, act, peak}], cutBefore, cutAfter, max}.
 */
export function cutContext(example, { before = BEFORE, after = AFTER } = {}) {
  const tokens = Array.isArray(example?.tokens) ? example.tokens.map(String) : [];
  const acts = tokens.map((_, i) => number(example.tokens_acts_list?.[i]));
  const peak = tokens.length ? peakOf(example, acts) : 0;
  const start = Math.max(0, peak - before);
  const end = Math.min(tokens.length, peak + after + 1);
  return {
    tokens: tokens.slice(start, end).map((text, i) => ({ text, act: acts[start + i], peak: start + i === peak })),
    cutBefore: start > 0,
    cutAfter: end < tokens.length,
    max: acts.length ? acts[peak] : 0,
  };
}

/** Give every token its share of the strongest activation among `contexts` (for shading). */
export function shadeContexts(contexts) {
  const top = Math.max(0, ...contexts.map((c) => c.max));
  for (const context of contexts) {
    for (const token of context.tokens) token.share = top > 0 ? Math.min(1, Math.max(0, token.act / top)) : 0;
  }
  return contexts;
}

/** Up to `count` top-activation examples, strongest group first, each cut by `cutContext`. */
export function topContexts(details, { count = CARD_CONTEXTS, before = BEFORE, after = AFTER } = {}) {
  const groups = Array.isArray(details?.examples_quantiles) ? details.examples_quantiles : [];
  const examples = groups.flatMap((group) => (Array.isArray(group?.examples) ? group.examples : [])).slice(0, count);
  return shadeContexts(examples.map((example) => cutContext(example, { before, after }))).filter((c) => c.tokens.length);
}

/** The logits a feature promotes most: [{token, value|null}]. */
export function topLogits(details, count = CARD_LOGITS) {
  const tokens = Array.isArray(details?.top_logits) ? details.top_logits : [];
  const values = Array.isArray(details?.top_logits_values) ? details.top_logits_values : [];
  return tokens.slice(0, count).map((token, i) => ({ token: String(token), value: Number.isFinite(values[i]) ? values[i] : null }));
}

/** How often the feature fires, from whichever field the dashboard has; null if none. */
export function densityOf(details) {
  const value = details?.activation_frequency ?? details?.frac_nonzero;
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

/** A token as it reads in one line: line breaks become ↵ and tabs →. */
export function visibleToken(text) {
  return text.replace(/\r?\n/g, "↵").replace(/\t/g, "→");
}

/** One context line; the activating token is marked (class gbv-peak), others shaded by activation. */
export function renderContext(context) {
  return el("p", { class: "gbv-context" },
    context.cutBefore ? el("span", { class: "gbv-muted", text: "…" }) : null,
    context.tokens.map((token) => el("span", {
      class: token.peak ? "gbv-tok gbv-peak" : "gbv-tok",
      title: `activation ${fmt(token.act)}`,
      style: { "--gbv-act": token.share.toFixed(3) },
      text: visibleToken(token.text),
    })),
    context.cutAfter ? el("span", { class: "gbv-muted", text: "…" }) : null);
}

function logitChips(logits) {
  return el("ul", { class: "gbv-chips gbv-pos", "aria-label": "Top logits" }, logits.map((logit) =>
    el("li", { text: quoteToken(logit.token, 20), title: logit.value === null ? "" : `logit effect ${fmt(logit.value)}` })));
}

/**
 * The feature's LLM explanation, when the api adapter sent one with the dashboard
 * (http-api.js: FeaturePublic.explanation): {text, score|null, nScored, model, promptVersion, date}.
 */
export function explanationOf(details) {
  const e = details?.explanation;
  if (!e || typeof e.text !== "string" || !e.text) return null;
  return {
    text: e.text,
    score: typeof e.score === "number" && Number.isFinite(e.score) ? e.score : null,
    nScored: Number.isInteger(e.n_scored) ? e.n_scored : 0,
    model: String(e.explainer_model ?? ""),
    promptVersion: String(e.prompt_version ?? ""),
    date: typeof e.created_at === "string" ? e.created_at.slice(0, 10) : "",
  };
}

/** The explanation with its score and provenance (model, prompt version, date). */
export function renderExplanation(explanation) {
  const score = explanation.score === null ? "not scored" : `score ${explanation.score.toFixed(2)} (n=${explanation.nScored})`;
  return el("div", { class: "gbv-card-explanation" },
    el("p", { class: "gbv-explanation-text" }, el("span", { class: "gbv-muted", text: "LLM: " }), explanation.text),
    el("p", {
      class: "gbv-muted gbv-explanation-meta",
      title: "Accuracy at telling held-out activating contexts from others, given the explanation (0.5 is chance)",
      text: [score, explanation.model, explanation.promptVersion, explanation.date].filter(Boolean).join(" · "),
    }));
}

/**
 * The dashboard part of the card for a dashboard entry ({status, data, message} from
 * actions.loadDashboard, or undefined before the fetch starts).
 */
export function renderCardBody(entry) {
  if (!entry || entry.status === "loading") {
    return el("div", { class: "gbv-card-body gbv-card-loading", "aria-busy": "true" },
      el("p", { class: "gbv-muted", text: "Loading top activations…" }),
      el("div", { class: "gbv-skeleton" }), el("div", { class: "gbv-skeleton" }), el("div", { class: "gbv-skeleton gbv-short" }));
  }
  if (entry.status === "error") return el("div", { class: "gbv-card-body" }, el("p", { class: "gbv-error", text: `Could not load the dashboard: ${entry.message}` }));
  if (!entry.data) return el("div", { class: "gbv-card-body" }, el("p", { class: "gbv-muted", text: "No dashboard for this feature yet." }));
  const contexts = topContexts(entry.data);
  const logits = topLogits(entry.data);
  const density = densityOf(entry.data);
  const explanation = explanationOf(entry.data);
  return el("div", { class: "gbv-card-body" },
    explanation ? renderExplanation(explanation) : null,
    el("h4", { text: "Top activations" }),
    contexts.length ? contexts.map(renderContext) : el("p", { class: "gbv-muted", text: "No examples." }),
    logits.length ? [el("h4", { text: "Promotes" }), logitChips(logits)] : null,
    density === null ? null : el("p", { class: "gbv-muted gbv-card-density", text: `Fires on ${formatPercent(density)} of tokens` }));
}

/** 0.0123 -> "1.23%", tiny values in scientific form. */
export function formatPercent(fraction) {
  const percent = fraction * 100;
  if (percent !== 0 && Math.abs(percent) < 0.01) return `${percent.toExponential(1)}%`;
  return `${Number(percent.toPrecision(3))}%`;
}
