// New graph page: transcoder sets follow the chosen model, the prompt (or the chat messages,
// through the model's chat template) is tokenized as you type (debounced; stale answers are
// dropped), and the form posts to /api/traces, then opens the job page.
import { el } from "../lib/dom.js";
import { api } from "../lib/http.js";
import { debounce, setStatus } from "./common.js";

const PREVIEW_DELAY_MS = 300;
const ROLES = ["system", "user", "assistant"];
const PARAMS = ["max_feature_nodes", "max_n_logits", "desired_logit_prob", "node_threshold", "edge_threshold", "batch_size"];

const data = JSON.parse(document.getElementById("page-data")?.textContent ?? "null");
const form = document.getElementById("trace-form");
const $ = (id) => document.getElementById(id);

function selectedModel() {
  return data.models.find((m) => m.name === $("model").value) ?? data.models[0];
}

function fillTranscoders() {
  const sets = selectedModel()?.transcoder_sets ?? [];
  const select = $("transcoders");
  select.replaceChildren(...sets.map((t) => el("option", { value: t.name, selected: t.is_default }, t.name)));
  select.disabled = !sets.length;
  const chosen = () => sets.find((t) => t.name === select.value);
  const help = () => {
    const t = chosen();
    const parts = t ? [t.description, t.n_layers ? `${t.n_layers} layers` : ""].filter(Boolean) : ["This model has no transcoder set yet."];
    $("transcoders-help").textContent = parts.join(" · ");
  };
  select.onchange = help;
  help();
}

function mode() {
  return form.querySelector("input[name=mode]:checked").value;
}

// ---- chat messages -----------------------------------------------------------------------

function renumberMessages() {
  $("messages").querySelectorAll(".gb-message").forEach((row, i) => {
    row.querySelector("select").setAttribute("aria-label", `Role of message ${i + 1}`);
    row.querySelector("textarea").setAttribute("aria-label", `Message ${i + 1}`);
    row.querySelector("button").setAttribute("aria-label", `Remove message ${i + 1}`);
  });
}

function addMessage(role = "user", focus = false) {
  const select = el("select", { class: "gb-role" }, ROLES.map((r) => el("option", { value: r, selected: r === role }, r)));
  const text = el("textarea", { rows: 2, maxlength: 20000 });
  const remove = el("button", { type: "button" }, "Remove");
  const row = el("div", { class: "gb-message" }, select, text, remove);
  remove.addEventListener("click", () => {
    row.remove();
    renumberMessages();
    schedulePreview();
    $("add-message").focus();
  });
  select.addEventListener("change", schedulePreview);
  $("messages").append(row);
  renumberMessages();
  if (focus) text.focus();
}

function messages() {
  return [...$("messages").querySelectorAll(".gb-message")]
    .map((row) => ({ role: row.querySelector("select").value, content: row.querySelector("textarea").value }))
    .filter((m) => m.content.trim());
}

/** The prompt text a trace gets: the textarea, or the chat messages through the chat template. */
async function promptText(signal) {
  if (mode() === "prompt") return $("prompt").value;
  const list = messages();
  if (!list.length) return "";
  const result = await api("POST", "/new/chat-prompt", { model: selectedModel().name, messages: list }, { signal });
  return result.prompt;
}

// ---- live tokenization ---------------------------------------------------------------------

let previewSeq = 0;
let previewAbort = null;

function showTokens(result) {
  const over = result.n_tokens > result.max_tokens;
  const count = $("token-count");
  count.replaceChildren(
    el("span", { class: over ? "gb-over" : null }, `${result.n_tokens} of at most ${result.max_tokens} tokens`),
    over ? " — too long to trace" : "");
  count.classList.remove("gb-error");
  $("tokens").replaceChildren(...result.tokens.map((token, i) => el("li", { title: `id ${result.token_ids[i]}` }, token)));
  $("next-tokens").replaceChildren(...result.top_next.map((t) => el("li", {},
    el("span", { class: "gb-tok-chip" }, t.token),
    el("span", { class: "gb-bar", style: { "--p": t.prob.toFixed(4) }, "aria-hidden": "true" }),
    el("span", { class: "gb-num" }, `${(t.prob * 100).toFixed(1)}%`))));
}

function clearTokens(message, { error = false } = {}) {
  setStatus($("token-count"), message, { error });
  $("tokens").replaceChildren();
  $("next-tokens").replaceChildren();
}

async function preview() {
  const seq = ++previewSeq;
  previewAbort?.abort();
  previewAbort = new AbortController();
  const { signal } = previewAbort;
  try {
    const prompt = await promptText(signal);
    if (seq !== previewSeq) return;
    if (!prompt.trim()) {
      clearTokens(mode() === "prompt" ? "Type a prompt to see its tokens." : "Write a message to see the tokens.");
      return;
    }
    const model = encodeURIComponent(selectedModel().name);
    const result = await api("POST", `/api/models/${model}/tokenize`, { prompt, top_k: data.limits.top_k }, { signal });
    if (seq === previewSeq) showTokens(result);
  } catch (error) {
    if (error.name === "AbortError" || seq !== previewSeq) return;
    clearTokens(error.message, { error: true });
  }
}

const schedulePreview = debounce(preview, PREVIEW_DELAY_MS);

// ---- submit --------------------------------------------------------------------------------

/** The advanced parameters, or throws naming the first invalid field (and focuses it). */
function readParams() {
  const params = {};
  for (const name of PARAMS) {
    const input = $(name);
    if (!input.checkValidity()) {
      $("advanced").open = true;
      input.focus();
      const label = form.querySelector(`label[for=${name}]`)?.firstChild?.textContent.trim() ?? name;
      throw new Error(`${label}: ${input.validationMessage}`);
    }
    if (input.value.trim() === "") {
      if (name === "max_feature_nodes") params[name] = null;
      continue;
    }
    params[name] = Number(input.value);
  }
  const diff = logitDiff();
  if (diff) params.logit_diff = diff;
  return params;
}

/** The custom target (logit of one token minus another's), or null; tokens keep their spaces. */
function logitDiff() {
  const plus = $("logit_plus").value;
  const minus = $("logit_minus").value;
  if (!plus && !minus) return null;
  if (!plus || !minus) {
    $("target").open = true;
    $(plus ? "logit_minus" : "logit_plus").focus();
    throw new Error("A logit difference needs both tokens (for example \" Austin\" minus \" Dallas\").");
  }
  return { plus, minus };
}

async function submit(event) {
  event.preventDefault();
  const status = $("form-status");
  const button = $("submit");
  if (!data.signed_in) {
    setStatus(status, "Log in to trace a graph.", { error: true });
    return;
  }
  button.disabled = true;
  setStatus(status, "Submitting…");
  try {
    const params = readParams();
    const prompt = await promptText();
    if (!prompt.trim()) throw new Error(mode() === "prompt" ? "Write a prompt first." : "Write a message first.");
    const body = {
      model: selectedModel().name,
      transcoders: $("transcoders").value || null,
      prompt,
      params,
      visibility: $("visibility").value,
    };
    const slug = $("slug").value.trim();
    if (slug) body.slug = slug;
    const job = await api("POST", "/api/traces", body);
    setStatus(status, job.deduplicated ? "The same trace exists already; opening it…" : "Queued; opening the job…");
    location.assign(`/jobs/${encodeURIComponent(job.id)}`);
  } catch (error) {
    setStatus(status, `Not started: ${error?.message ?? error}`, { error: true });
    button.disabled = false;
  }
}

function showMode() {
  const chat = mode() === "chat";
  $("prompt-field").hidden = chat;
  $("chat-field").hidden = !chat;
  if (chat && !$("messages").children.length) addMessage("user");
  schedulePreview();
}

if (form && data) {
  fillTranscoders();
  $("model").addEventListener("change", () => {
    fillTranscoders();
    schedulePreview();
  });
  $("prompt").addEventListener("input", schedulePreview);
  $("messages").addEventListener("input", schedulePreview);
  $("add-message").addEventListener("click", () => {
    addMessage("user", true);
  });
  form.querySelectorAll("input[name=mode]").forEach((radio) => radio.addEventListener("change", showMode));
  form.addEventListener("submit", submit);
  if ($("prompt").value.trim()) schedulePreview();
}
