// New graph page: transcoder sets follow the chosen model, the prompt (or the chat messages,
// through the model's chat template; offered only for models that have one) is tokenized as you
// type (debounced; stale answers are dropped), a custom target is checked as you type (each side
// must be one token; submit waits until it is), and the form posts to /api/traces, then opens
// the job page. The fields are kept in sessionStorage, so Back, a reload or a refused request
// finds them as they were.
import { el } from "../lib/dom.js";
import { api } from "../lib/http.js";
import { debounce, setStatus } from "./common.js";

const PREVIEW_DELAY_MS = 300;
const STORE_KEY = "glassbox-new-graph";
const ROLES = ["system", "user", "assistant"];
const PARAMS = ["max_feature_nodes", "max_n_logits", "desired_logit_prob", "node_threshold", "edge_threshold", "batch_size"];
const TARGETS = ["logit_plus", "logit_minus"];
const TEXT_FIELDS = ["prompt", ...TARGETS, ...PARAMS, "visibility", "slug"];

const data = JSON.parse(document.getElementById("page-data")?.textContent ?? "null");
const form = document.getElementById("trace-form");
const $ = (id) => document.getElementById(id);
let submitting = false; // a request to /api/traces is on its way

function selectedModel() {
  return data.models.find((m) => m.name === $("model").value) ?? data.models[0];
}

function fillTranscoders() {
  const sets = selectedModel()?.transcoder_sets ?? [];
  const select = $("transcoders");
  select.replaceChildren(...sets.map((t) => el("option", { value: t.name, selected: t.is_default }, t.name)));
  select.disabled = !sets.length;
  showTranscodersHelp();
}

function showTranscodersHelp() {
  const sets = selectedModel()?.transcoder_sets ?? [];
  const t = sets.find((s) => s.name === $("transcoders").value);
  const parts = t ? [t.description, t.n_layers ? `${t.n_layers} layers` : ""].filter(Boolean) : ["This model has no transcoder set yet."];
  $("transcoders-help").textContent = parts.join(" · ");
}

function mode() {
  return form.querySelector("input[name=mode]:checked").value;
}

function setMode(value) {
  form.querySelector(`input[name=mode][value=${value}]`).checked = true;
}

// ---- chat messages -----------------------------------------------------------------------

const chatRadio = () => form.querySelector("input[name=mode][value=chat]");

/** Chat input only for a model whose tokenizer has a chat template (the models API says). */
function showChatAvailability() {
  const model = selectedModel();
  const available = model?.chat_template === true;
  chatRadio().disabled = !available;
  $("chat-help").textContent = available ? ""
    : model?.chat_template === false ? `${model.display_name} has no chat template: give a plain prompt.`
      : "Chat messages need the model's chat template, which is not known yet: give a plain prompt.";
  if (!available && mode() === "chat") {
    setMode("prompt");
    showMode();
  }
}

function renumberMessages() {
  $("messages").querySelectorAll(".gb-message").forEach((row, i) => {
    row.querySelector("select").setAttribute("aria-label", `Role of message ${i + 1}`);
    row.querySelector("textarea").setAttribute("aria-label", `Message ${i + 1}`);
    row.querySelector("button").setAttribute("aria-label", `Remove message ${i + 1}`);
  });
}

function addMessage(role = "user", { focus = false, content = "" } = {}) {
  const select = el("select", { class: "gb-role" }, ROLES.map((r) => el("option", { value: r, selected: r === role }, r)));
  const text = el("textarea", { rows: 2, maxlength: 20000 });
  text.value = content;
  const remove = el("button", { type: "button" }, "Remove");
  const row = el("div", { class: "gb-message" }, select, text, remove);
  remove.addEventListener("click", () => {
    row.remove();
    renumberMessages();
    saveForm();
    schedulePreview();
    $("add-message").focus();
  });
  select.addEventListener("change", schedulePreview);
  $("messages").append(row);
  renumberMessages();
  if (focus) text.focus();
}

function allMessages() {
  return [...$("messages").querySelectorAll(".gb-message")]
    .map((row) => ({ role: row.querySelector("select").value, content: row.querySelector("textarea").value }));
}

function messages() {
  return allMessages().filter((m) => m.content.trim());
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

// ---- custom target: each side one token, checked as it is typed -------------------------------

/** Per field: the problem the server found with its text (null: fine or empty). */
const targetProblems = Object.fromEntries(TARGETS.map((id) => [id, null]));
const targetSeq = Object.fromEntries(TARGETS.map((id) => [id, 0]));

function showTargetProblem(id, problem, note = "") {
  targetProblems[id] = problem;
  const input = $(id);
  input.setAttribute("aria-invalid", problem ? "true" : "false");
  setStatus($(`${id}-check`), problem ?? note, { error: Boolean(problem) });
  updateSubmit();
}

async function checkTarget(id) {
  const seq = ++targetSeq[id];
  const text = $(id).value;
  if (!text) {
    showTargetProblem(id, null);
    return;
  }
  try {
    const model = encodeURIComponent(selectedModel().name);
    const result = await api("POST", `/api/models/${model}/tokenize-target`, { text });
    if (seq !== targetSeq[id] || text !== $(id).value) return;
    showTargetProblem(id, result.problem, result.problem ? "" : `one token: ${JSON.stringify(result.tokens[0])}`);
  } catch (error) {
    if (seq === targetSeq[id]) showTargetProblem(id, null, `Not checked: ${error.message}`);
  }
}

const scheduleTargetChecks = Object.fromEntries(TARGETS.map((id) => [id, debounce(() => checkTarget(id), PREVIEW_DELAY_MS)]));

function checkTargets() {
  for (const id of TARGETS) scheduleTargetChecks[id]();
}

function updateSubmit() {
  const bad = TARGETS.some((id) => targetProblems[id]);
  $("submit").disabled = !data.signed_in || bad || submitting;
}

// ---- the form's state in sessionStorage ---------------------------------------------------------

function formState() {
  const state = { model: $("model").value, transcoders: $("transcoders").value, mode: mode(), messages: allMessages() };
  for (const id of TEXT_FIELDS) state[id] = $(id).value;
  return state;
}

function saveForm() {
  try {
    sessionStorage.setItem(STORE_KEY, JSON.stringify(formState()));
  } catch {
    // storage blocked or full: the form still works, it is just not kept
  }
}

function storedForm() {
  try {
    const state = JSON.parse(sessionStorage.getItem(STORE_KEY) ?? "null");
    return state && typeof state === "object" ? state : null;
  } catch {
    return null;
  }
}

const hasOption = (select, value) => [...select.options].some((o) => o.value === value);

/** Put a saved state back; values that no longer fit (a model taken off the site) are skipped. */
function restoreForm(state) {
  if (typeof state.model === "string" && hasOption($("model"), state.model)) $("model").value = state.model;
  fillTranscoders();
  if (typeof state.transcoders === "string" && hasOption($("transcoders"), state.transcoders)) {
    $("transcoders").value = state.transcoders;
    showTranscodersHelp();
  }
  for (const id of TEXT_FIELDS) {
    if (typeof state[id] !== "string") continue;
    if ($(id).tagName === "SELECT" && !hasOption($(id), state[id])) continue;
    $(id).value = state[id];
  }
  for (const m of Array.isArray(state.messages) ? state.messages : []) {
    if (m && typeof m.content === "string") addMessage(ROLES.includes(m.role) ? m.role : "user", { content: m.content });
  }
  showChatAvailability();
  if (state.mode === "chat" && !chatRadio().disabled) setMode("chat");
  if (TARGETS.some((id) => $(id).value)) $("target").open = true;
  if (PARAMS.some((id) => $(id).value !== $(id).defaultValue) || $("slug").value || $("visibility").selectedIndex > 0) {
    $("advanced").open = true;
  }
}

function clearForm() {
  try {
    sessionStorage.removeItem(STORE_KEY);
  } catch {
    // storage blocked: nothing was kept
  }
  form.reset();
  $("messages").replaceChildren();
  fillTranscoders();
  showChatAvailability();
  showMode();
  for (const id of TARGETS) showTargetProblem(id, null);
  setStatus($("form-status"), "");
  $("prompt").focus();
}

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
  if (!data.signed_in) {
    setStatus(status, "Log in to trace a graph.", { error: true });
    return;
  }
  saveForm();
  submitting = true;
  updateSubmit();
  setStatus(status, "Submitting…");
  try {
    const params = readParams();
    const body = {
      model: selectedModel().name,
      transcoders: $("transcoders").value || null,
      params,
      visibility: $("visibility").value,
    };
    if (mode() === "chat") {
      body.messages = messages();
      if (!body.messages.length) throw new Error("Write a message first.");
    } else {
      body.prompt = $("prompt").value;
      if (!body.prompt.trim()) throw new Error("Write a prompt first.");
    }
    const slug = $("slug").value.trim();
    if (slug) body.slug = slug;
    const job = await api("POST", "/api/traces", body);
    setStatus(status, job.deduplicated ? "The same trace exists already; opening it…" : "Queued; opening the job…");
    location.assign(`/jobs/${encodeURIComponent(job.id)}`);
  } catch (error) {
    setStatus(status, `Not started: ${error?.message ?? error}`, { error: true });
    submitting = false;
    updateSubmit();
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
  const saved = storedForm();
  if (saved) restoreForm(saved);
  else {
    fillTranscoders();
    showChatAvailability();
  }
  $("transcoders").addEventListener("change", showTranscodersHelp);
  $("model").addEventListener("change", () => {
    fillTranscoders();
    showChatAvailability();
    schedulePreview();
    checkTargets();
  });
  $("prompt").addEventListener("input", schedulePreview);
  $("messages").addEventListener("input", schedulePreview);
  for (const id of TARGETS) $(id).addEventListener("input", () => scheduleTargetChecks[id]());
  $("add-message").addEventListener("click", () => {
    addMessage("user", { focus: true });
    saveForm();
  });
  form.querySelectorAll("input[name=mode]").forEach((radio) => radio.addEventListener("change", showMode));
  form.addEventListener("input", saveForm);
  form.addEventListener("change", saveForm);
  form.addEventListener("submit", submit);
  $("clear-form").addEventListener("click", clearForm);
  // Back to this page from the job page: the browser may show it from its cache as it was left,
  // submit button included; it must be usable again.
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) {
      submitting = false;
      updateSubmit();
      setStatus($("form-status"), "");
    }
  });
  if (mode() === "chat") showMode();
  else if ($("prompt").value.trim()) schedulePreview();
  if (TARGETS.some((id) => $(id).value)) checkTargets();
}
