// The graph page's "Explain features" menu (templates/graph.html): queue a job that asks the LLM
// explainer about the graph's features without an explanation (POST /api/graphs/{slug}/explain),
// follow it, then offer a reload, after which the viewer labels those features with their
// explanations (a person's label still comes first).
import { el, replace } from "../lib/dom.js";
import { api } from "../lib/http.js";

const POLL_MS = 1000;
const RUNNING = new Set(["queued", "running"]);

const menu = document.getElementById("explain-menu");
const button = document.getElementById("explain-features");
const status = document.getElementById("explain-features-status");
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function say(text, { error = false } = {}) {
  status.textContent = text;
  status.classList.toggle("gb-error", error);
}

/** One sentence from the job's result (worker/explain.py). */
export function summary(result) {
  const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
  const parts = [];
  if (result.failed) parts.push(`${result.failed} failed`);
  if (result.already_explained) parts.push(`${result.already_explained} had one already`);
  if (result.no_dashboard) parts.push(`${result.no_dashboard} without a dashboard`);
  if (result.over_limit) parts.push(`${result.over_limit} left for another run`);
  const rest = parts.length ? ` (${parts.join(", ")})` : "";
  return `Explained ${plural(result.explained ?? 0, "feature")}${rest}.`;
}

async function explainFeatures() {
  button.disabled = true;
  say("Queueing…");
  try {
    let job = await api("POST", `/api/graphs/${encodeURIComponent(menu.dataset.slug)}/explain`);
    while (RUNNING.has(job.status)) {
      say(job.status === "queued" ? "Waiting for a worker…" : `${job.phase ?? "Explaining"} (${Math.round(job.progress * 100)}%)`);
      await sleep(POLL_MS);
      job = await api("GET", `/api/jobs/${encodeURIComponent(job.id)}`);
    }
    if (job.status !== "done") throw new Error(`the job ${job.status}${job.error ? `: ${job.error}` : ""}`);
    say("");
    replace(status, `${summary(job.result ?? {})} `, el("a", { href: location.href, text: "Reload to see them" }));
  } catch (error) {
    say(`Not explained: ${error.message}`, { error: true });
  } finally {
    button.disabled = false;
  }
}

if (menu && button && status) button.addEventListener("click", explainFeatures);
