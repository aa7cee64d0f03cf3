// The first-start setup's banner (templates/_setup_progress.html) on the home and new-graph pages.
// While it shows, it polls GET /api/setup/status and redraws itself: the step, the progress bar,
// the time left, and when tracing, the featured graphs and the dashboards become available.
//
// On the new-graph page the trace form cannot be submitted while no transcoder set exists; once
// one does, the form is let go, and the page is drawn again when its form had no transcoder set
// to offer. On the home page the featured and recent graphs are fetched again whenever featured
// graphs appear and when the setup ends. Nobody has to reload by hand.
import { el } from "../lib/dom.js";
import { api } from "../lib/http.js";
import { refreshSections } from "./common.js";

const STATUS_URL = "/api/setup/status";
const MAX_WAIT_S = 60; // between polls after failures
const ACTIVE = new Set(["queued", "running"]);

const banner = document.getElementById("setup-banner");
const $ = (id) => document.getElementById(id);
const onNewGraphPage = location.pathname === "/new";

let canTrace = banner?.dataset.canTrace === "true";
let state = banner?.dataset.state ?? "idle";
let featured = Number(banner?.dataset.featured ?? 0);
let pollS = Number(banner?.dataset.pollS) || 5;
let failures = 0;
let timer = 0;

// ---- the banner ------------------------------------------------------------------------------

function render(status) {
  banner.dataset.state = status.state;
  banner.dataset.canTrace = String(status.can_trace);
  banner.dataset.featured = String(status.featured);
  $("setup-headline").textContent = status.headline;
  const bar = banner.querySelector(".gb-setup-bar");
  bar.hidden = status.progress === null;
  $("setup-bar").value = status.progress ?? 0;
  $("setup-percent").textContent = `${Math.round((status.progress ?? 0) * 100)}% done`;
  $("setup-time-left").textContent = status.time_left ? `, ${status.time_left}` : "";
  const activity = $("setup-activity");
  activity.textContent = status.activity;
  activity.hidden = !status.activity;
  $("setup-milestones").replaceChildren(
    ...status.milestones.map((m) => el("li", { dataset: { key: m.key, ready: String(m.ready) } }, m.text)),
  );
}

function announce(text) {
  const live = $("setup-announce");
  if (live) live.textContent = text;
}

// ---- the trace form: no submitting before a transcoder set exists ---------------------------

const form = document.getElementById("trace-form");
let locked = false;
let wanted = null; // the submit button's disabled state as the form itself last set it

const watcher = new MutationObserver(() => {
  const button = submitButton();
  if (!locked || !button) return;
  wanted = button.disabled;
  if (!button.disabled) setDisabled(button, true);
});

function submitButton() {
  return form?.querySelector("button[type=submit], input[type=submit]") ?? null;
}

/** Change the button without the watcher taking it for the form's own change. */
function setDisabled(button, value) {
  button.disabled = value;
  watcher.takeRecords();
}

function lockForm() {
  const button = submitButton();
  if (locked || !button) return;
  locked = true;
  wanted = button.disabled;
  setDisabled(button, true);
  button.dataset.setupLocked = "true";
  button.setAttribute("aria-describedby", [button.getAttribute("aria-describedby"), "setup-milestones"].filter(Boolean).join(" "));
  watcher.observe(button, { attributes: true, attributeFilter: ["disabled"] });
}

function unlockForm() {
  const button = submitButton();
  if (!locked || !button) return;
  locked = false;
  watcher.disconnect();
  delete button.dataset.setupLocked;
  const described = (button.getAttribute("aria-describedby") ?? "").split(" ").filter((id) => id && id !== "setup-milestones");
  if (described.length) button.setAttribute("aria-describedby", described.join(" "));
  else button.removeAttribute("aria-describedby");
  button.disabled = Boolean(wanted);
}

// Runs before the form's own submit handler (capture, on the document).
document.addEventListener("submit", (event) => {
  if (!locked || event.target !== form) return;
  event.preventDefault();
  event.stopImmediatePropagation();
  announce("Tracing is not open yet: no transcoder set exists. The setup above says when it opens.");
}, true);

// ---- the page's own sections -----------------------------------------------------------------

function tracingOpened() {
  announce("Tracing is open.");
  if (!onNewGraphPage) return;
  unlockForm();
  const sets = $("transcoders");
  // The form was drawn without any transcoder set to offer (or not at all): draw it again. The
  // form keeps what was typed in it across a reload (new-graph.js, sessionStorage).
  if (!form || !sets || !sets.options.length) location.reload();
}

// ---- polling ---------------------------------------------------------------------------------

function apply(status) {
  render(status);
  const opened = status.can_trace && !canTrace;
  const ended = ACTIVE.has(state) && !ACTIVE.has(status.state);
  const more = status.featured > featured;
  canTrace = status.can_trace;
  state = status.state;
  featured = status.featured;
  pollS = status.poll_s || pollS;
  if (opened) tracingOpened();
  if (!onNewGraphPage && (opened || ended || more)) refreshSections(["featured", "recent"]);
  if (!status.show) {
    banner.hidden = true;
    if (ended) announce("The setup is done.");
  }
  return status.show;
}

function schedule(seconds) {
  clearTimeout(timer);
  timer = setTimeout(poll, seconds * 1000);
}

async function poll() {
  if (document.hidden) {
    schedule(pollS);
    return;
  }
  let status;
  try {
    status = await api("GET", STATUS_URL);
    failures = 0;
  } catch {
    failures += 1;
    schedule(Math.min(pollS * 2 ** failures, MAX_WAIT_S));
    return;
  }
  if (apply(status)) schedule(pollS);
}

if (banner) {
  if (onNewGraphPage && !canTrace) lockForm();
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && !banner.hidden) poll();
  });
  schedule(pollS);
}
