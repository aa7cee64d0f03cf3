// The jobs admin page (templates/server/admin_jobs.html). Retry and Cancel call the jobs API
// (POST /api/jobs/{id}/retry|cancel), "Run setup" calls POST /api/admin/setup, and the "Add a
// model" form calls POST /api/admin/models; the page reloads after a write. While some job is
// queued or running, the page asks the JSON twin (GET /api/admin/jobs) every POLL_MS for
// progress and phase, updated in place, and reloads when a job changes status (its buttons change).
import { api } from "../lib/http.js";

const POLL_MS = 2_000;
const ACTIVE = new Set(["queued", "running"]);

const table = document.getElementById("admin-jobs");
const message = document.getElementById("admin-jobs-message");
const addForm = document.getElementById("add-model-form");
const addStatus = document.getElementById("add-model-status");

function urlFor(action, jobId) {
  if (action === "setup") return "/api/admin/setup";
  return `/api/jobs/${encodeURIComponent(jobId)}/${encodeURIComponent(action)}`;
}

async function act(button) {
  const row = button.closest("tr");
  button.disabled = true;
  try {
    await api("POST", urlFor(button.dataset.action, row.dataset.job));
    location.reload();
  } catch (error) {
    message.textContent = error.message;
    button.disabled = false;
  }
}

/** The form's non-empty fields, as the body of POST /api/admin/models. */
function addModelBody(form) {
  const body = {};
  for (const [name, value] of new FormData(form)) {
    if (String(value).trim()) body[name] = String(value).trim();
  }
  return body;
}

async function addModel(form) {
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  addStatus.textContent = "Queueing…";
  try {
    const job = await api("POST", "/api/admin/models", addModelBody(form));
    addStatus.textContent = job.deduplicated ? `Already queued or running: job ${job.id}.` : `Queued: job ${job.id}.`;
    location.reload();
  } catch (error) {
    addStatus.textContent = error.message;
    button.disabled = false;
  }
}

/** Update the rows from the JSON twin; true when a row's status changed (then the page reloads). */
function applyJobs(jobs) {
  let changed = false;
  for (const job of jobs) {
    const row = table.querySelector(`tr[data-job="${CSS.escape(job.id)}"]`);
    if (!row) continue;
    if (row.dataset.status !== job.status) changed = true;
    row.querySelector("progress").value = job.progress;
    row.querySelector("[data-cell=phase]").textContent = job.phase ?? "";
    row.querySelector("[data-cell=error]").textContent = job.error ?? "";
  }
  return changed;
}

async function poll() {
  try {
    const rows = table.querySelectorAll("tr[data-job]").length;
    const jobs = await api("GET", `/api/admin/jobs?limit=${Math.max(1, rows)}`);
    if (applyJobs(jobs)) {
      location.reload();
      return;
    }
    if (!jobs.some((job) => ACTIVE.has(job.status))) return;
  } catch (error) {
    message.textContent = error.message;
  }
  setTimeout(poll, POLL_MS);
}

if (table) {
  table.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (button) act(button);
  });
  if (table.dataset.active === "true") setTimeout(poll, POLL_MS);
}

if (addForm) {
  addForm.addEventListener("submit", (event) => {
    event.preventDefault();
    addModel(addForm);
  });
}
