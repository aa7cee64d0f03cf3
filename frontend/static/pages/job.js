// Job page: follows the job by server-sent events (/api/jobs/{id}/events), falling back to
// polling when the stream fails or stays silent; opens the graph once the job is done; on
// failure shows the reason and a Retry button.
import { api } from "../lib/http.js";
import { setStatus } from "./common.js";

const POLL_MS = 1000;
const SILENCE_MS = 10_000;
const TERMINAL = new Set(["done", "failed", "cancelled"]);

const section = document.getElementById("job");
const jobId = section?.dataset.jobId;
const $ = (id) => document.getElementById(id);

let source = null;
let pollTimer = 0;
let watchdog = 0;
let lastNews = Date.now();

function render(job) {
  lastNews = Date.now();
  section.dataset.status = job.status;
  section.className = `gb-job gb-job-${job.status}`;
  $("job-status").textContent = job.status;
  $("job-phase").textContent = job.status === "running" && job.phase ? job.phase : "";
  $("job-attempt").textContent = String(job.attempt);
  const progress = $("job-progress");
  progress.value = job.status === "done" ? 1 : job.progress;
  progress.textContent = `${Math.round(progress.value * 100)}%`;
  const error = $("job-error");
  error.hidden = !job.error;
  setStatus(error, job.error ?? "", { error: true });
  $("job-retry").hidden = !["failed", "cancelled"].includes(job.status);
  $("job-cancel").hidden = TERMINAL.has(job.status);
  const link = $("job-graph");
  link.hidden = !job.graph_slug;
  if (job.graph_slug) link.href = `/graph/${encodeURIComponent(job.graph_slug)}`;
  document.title = `Job ${job.status} · Glassbox`;
  if (TERMINAL.has(job.status)) stop();
  if (job.status === "done" && job.graph_slug) location.replace(link.href);
}

function stop() {
  source?.close();
  source = null;
  clearTimeout(pollTimer);
  pollTimer = 0;
  clearInterval(watchdog);
  watchdog = 0;
}

async function pollOnce() {
  try {
    render(await api("GET", `/api/jobs/${jobId}`));
  } catch (error) {
    setStatus($("job-phase"), `(could not reach the server: ${error.message}; retrying)`);
  }
}

function poll() {
  clearTimeout(pollTimer);
  pollTimer = setTimeout(async () => {
    await pollOnce();
    if (!TERMINAL.has(section.dataset.status)) poll();
  }, POLL_MS);
}

function follow() {
  stop();
  lastNews = Date.now();
  if (typeof EventSource !== "function") {
    poll();
    return;
  }
  source = new EventSource(`/api/jobs/${jobId}/events`);
  source.addEventListener("job", (event) => render(JSON.parse(event.data)));
  source.addEventListener("error", () => {
    // CLOSED: the server refused the stream; otherwise the browser reconnects by itself.
    if (source && source.readyState === EventSource.CLOSED) {
      source = null;
      poll();
    }
  });
  // A proxy that buffers the stream would leave the page silent: ask directly now and then.
  watchdog = setInterval(() => {
    if (Date.now() - lastNews > SILENCE_MS) pollOnce();
  }, SILENCE_MS / 2);
}

async function act(verb) {
  const button = $(`job-${verb}`);
  button.disabled = true;
  try {
    const job = await api("POST", `/api/jobs/${jobId}/${verb}`);
    render(job);
    if (!TERMINAL.has(job.status)) follow();
    // The pressed button hides itself; keep keyboard focus on the one that shows instead.
    const visible = ["job-cancel", "job-retry", "job-graph"].map($).find((b) => !b.hidden);
    visible?.focus();
  } catch (error) {
    $("job-error").hidden = false;
    setStatus($("job-error"), `Could not ${verb}: ${error.message}`, { error: true });
  } finally {
    button.disabled = false;
  }
}

if (section) {
  $("job-retry").addEventListener("click", () => act("retry"));
  $("job-cancel").addEventListener("click", () => act("cancel"));
  const status = section.dataset.status;
  const slug = section.dataset.graphSlug;
  if (status === "done" && slug) location.replace(`/graph/${encodeURIComponent(slug)}`);
  else if (!TERMINAL.has(status)) follow();
}
