// Interventions on the graph's own prompt. The features come from the viewer's selection (the
// clicked node, then the pinned ones) as the store holds it; each row sets, ablates or scales one
// feature at a position (by default the node's own). "Run" hands the rows to
// api.runInterventions (on the Glassbox server, a job on the worker) and draws the before/after
// table of top next tokens and both greedy continuations. The pure helpers are exported for tests.
import { el, replace } from "../lib/dom.js";
import { quoteToken } from "./draw.js";
import { labelOf } from "./graph-model.js";

export const MODES = ["ablate", "set", "scale"];
/** A probability change at least this large (0.1 percentage points) is highlighted. */
export const HIGHLIGHT = 0.001;
/** What the server accepts for the continuations' length. */
export const NEW_TOKENS = { min: 1, max: 64, default: 20 };
const NAMED_IN_SELECTION = 4;

/** Selected feature nodes, the clicked one first: the nodes an intervention can edit. */
export function selectedFeatures(model, state) {
  const ids = [...new Set([state.clickedId, ...state.pinnedIds])].filter((id) => id !== null);
  return ids.map((id) => model.nodes[model.idToIndex.get(id)])
    .filter((node) => node?.kind === "feature" && Number.isInteger(node.layer) && Number.isInteger(node.featureIndex));
}

/** A new row for a feature node: ablate it at its own position. */
export function newItem(node) {
  return { nodeId: node.id, layer: node.layer, featureIndex: node.featureIndex, pos: node.ctx, mode: "ablate", value: "0" };
}

/** [position, token] pairs a feature can be edited at: a leading special token (BOS) has none. */
export function editablePositions(tokens) {
  return tokens.map((token, i) => [i, token]).filter(([i, token]) => !(i === 0 && /^<.+>$/.test(token)));
}

/** The adapter's payload for the rows; throws an Error whose message tells the user what to fix. */
export function interventionPayload(items, { maxNewTokens, constrained }) {
  if (!items.length) throw new Error("Add at least one feature.");
  const interventions = items.map(({ nodeId, layer, featureIndex, pos, mode, value }) => {
    const number = mode === "ablate" ? 0 : String(value).trim() === "" ? Number.NaN : Number(value);
    if (!Number.isFinite(number)) throw new Error(`Give L${layer} #${featureIndex} a number to ${mode === "set" ? "set it to" : "scale it by"}.`);
    return { nodeId, layer, featureIndex, pos, mode, value: number };
  });
  const asked = Math.round(Number(maxNewTokens));
  const tokens = Number.isFinite(asked) ? Math.min(NEW_TOKENS.max, Math.max(NEW_TOKENS.min, asked)) : NEW_TOKENS.default;
  return { interventions, maxNewTokens: tokens, constrained: Boolean(constrained) };
}

/** A probability as a percentage with two decimals. */
export function percent(p) {
  return `${(p * 100).toFixed(2)}%`;
}

/** A change of probability with its sign (a real minus sign for a fall). */
export function signedPercent(delta) {
  const sign = delta > 0 ? "+" : delta < 0 ? "\u2212" : "";
  return `${sign}${percent(Math.abs(delta))}`;
}

/** "up" or "down" for a change worth highlighting, else null. */
export function changeDirection(delta) {
  if (!(Math.abs(delta) >= HIGHLIGHT)) return null;
  return delta > 0 ? "up" : "down";
}

/** The label a row shows under "L3 #401", or "" when the node has only its placeholder. */
function rowLabel(model, state, node) {
  const label = labelOf(model, state, node.index);
  return label === node.defaultLabel && !node.clerp ? "" : label;
}

function selectionText(nodes) {
  if (!nodes.length) return "Click or pin feature nodes in the graph, then add them here.";
  const names = nodes.slice(0, NAMED_IN_SELECTION).map((n) => `L${n.layer} #${n.featureIndex}`);
  const more = nodes.length > NAMED_IN_SELECTION ? ` and ${nodes.length - NAMED_IN_SELECTION} more` : "";
  return `Selected: ${names.join(", ")}${more}.`;
}

function resultRow(row) {
  const direction = changeDirection(row.delta);
  return el("tr", { class: direction ? `gbv-iv-changed gbv-iv-${direction}` : null },
    el("td", {}, el("code", { text: JSON.stringify(row.token) })),
    el("td", { class: "gbv-num", text: percent(row.prob_before) }),
    el("td", { class: "gbv-num", text: percent(row.prob_after) }),
    el("td", { class: `gbv-num${direction ? ` gbv-iv-${direction}` : ""}`, text: signedPercent(row.delta) }));
}

/** The before/after table and both continuations of a finished run. */
function renderResult(result) {
  return [
    el("h3", { text: "Top next tokens" }),
    el("table", { class: "gbv-iv-table", "aria-label": "Top next tokens before and after" },
      el("thead", {}, el("tr", {}, ["Token", "Before", "After", "Change"].map((name) => el("th", { scope: "col", text: name })))),
      el("tbody", {}, result.rows.map(resultRow))),
    el("h3", { text: "Continuations" }),
    el("h4", { text: "Before" }),
    el("p", { class: "gbv-iv-text gbv-iv-before", text: result.continuation_before?.text ?? "" }),
    el("h4", { text: "After" }),
    el("p", { class: "gbv-iv-text gbv-iv-after", text: result.continuation_after?.text ?? "" }),
  ];
}

/** The panel; `loginUrl` (nobody signed in) shows a link to it and keeps Run disabled. */
export function createInterventionsPanel({ store, model, api, loginUrl = null }) {
  const items = [];
  const positions = editablePositions(model.promptTokens);
  const selection = el("p", { class: "gbv-muted gbv-iv-selection" });
  const addStatus = el("span", { class: "gbv-muted", role: "status" });
  const body = el("tbody");
  const constrained = el("input", { type: "checkbox" });
  const newTokens = el("input", {
    type: "number", class: "gbv-iv-tokens", min: NEW_TOKENS.min, max: NEW_TOKENS.max, step: 1, value: String(NEW_TOKENS.default),
  });
  const addButton = el("button", { type: "button", text: "Add selected features", onClick: addSelected });
  const runButton = el("button", { type: "button", class: "gbv-primary", text: "Run intervention", disabled: Boolean(loginUrl), onClick: run });
  const status = el("p", { class: "gbv-iv-status", role: "status", "aria-live": "polite" });
  const result = el("section", { class: "gbv-iv-result", "aria-label": "Intervention result", hidden: true });
  const element = el("details", { class: "gbv-panel gbv-interventions" },
    el("summary", {}, el("h2", { text: "Interventions" })),
    loginUrl ? el("p", { class: "gbv-muted" }, el("a", { href: loginUrl, text: "Log in" }), " to run interventions.") : null,
    selection,
    el("div", { class: "gbv-row" }, addButton, addStatus),
    el("table", { class: "gbv-iv-items", "aria-label": "Interventions" },
      el("thead", {}, el("tr", {},
        ["Feature", "Position", "Change", "Value"].map((name) => el("th", { scope: "col", text: name })),
        el("th", { scope: "col" }, el("span", { class: "gbv-sr-only", text: "Remove" })))),
      body),
    el("div", { class: "gbv-row" },
      el("label", { class: "gbv-check" }, constrained, "Constrained (linear paths only)"),
      el("label", { class: "gbv-check" }, "New tokens", newTokens)),
    el("div", { class: "gbv-row" }, runButton),
    status,
    result);

  function setStatus(node, text, { error = false } = {}) {
    node.textContent = text;
    node.classList.toggle("gbv-error", error);
  }

  function itemRow(item) {
    const node = model.nodes[model.idToIndex.get(item.nodeId)];
    const pos = el("select", { class: "gbv-iv-pos", "aria-label": "Position" },
      el("option", { value: "", text: "every position" }),
      positions.map(([i, token]) => el("option", { value: String(i), selected: i === item.pos, text: `${i}: ${quoteToken(token)}` })));
    const mode = el("select", { class: "gbv-iv-mode", "aria-label": "Change" }, MODES.map((m) => el("option", { value: m, text: m })));
    const value = el("input", { type: "number", class: "gbv-iv-value", step: "any", value: item.value, disabled: item.mode === "ablate", "aria-label": "Value" });
    pos.addEventListener("change", () => {
      item.pos = pos.value === "" ? null : Number(pos.value);
    });
    mode.addEventListener("change", () => {
      item.mode = mode.value;
      value.disabled = item.mode === "ablate";
      if (item.mode === "scale" && value.value === "0") value.value = "2";
      item.value = value.value;
    });
    value.addEventListener("input", () => {
      item.value = value.value;
    });
    const name = `L${item.layer} #${item.featureIndex}`;
    const remove = el("button", { type: "button", class: "gbv-icon-button", text: "×", "aria-label": `Remove ${name}` });
    const row = el("tr", { dataset: { nodeId: item.nodeId } },
      el("td", {}, name, el("div", { class: "gbv-muted gbv-iv-label", text: rowLabel(model, store.snapshot(), node) })),
      el("td", {}, pos), el("td", {}, mode), el("td", {}, value), el("td", {}, remove));
    remove.addEventListener("click", () => {
      items.splice(items.indexOf(item), 1);
      const next = row.nextElementSibling ?? row.previousElementSibling;
      row.remove();
      (next?.querySelector("button") ?? addButton).focus();
    });
    return row;
  }

  function addSelected() {
    const nodes = selectedFeatures(model, store.snapshot());
    if (!nodes.length) {
      setStatus(addStatus, "Click or pin a feature node first.", { error: true });
      return;
    }
    const fresh = nodes.filter((node) => !items.some((item) => item.nodeId === node.id)).map(newItem);
    items.push(...fresh);
    body.append(...fresh.map(itemRow));
    const added = fresh.length ? `${fresh.length} feature${fresh.length === 1 ? "" : "s"} added.` : "Already in the list.";
    setStatus(addStatus, added);
  }

  async function run() {
    let payload;
    try {
      payload = interventionPayload(items, { maxNewTokens: newTokens.value, constrained: constrained.checked });
      newTokens.value = String(payload.maxNewTokens); // show the length that is used
    } catch (error) {
      setStatus(status, error.message, { error: true });
      return;
    }
    runButton.disabled = true;
    setStatus(status, "Starting…");
    try {
      const answer = await api.runInterventions(payload, {
        onProgress: ({ status: job, phase }) => setStatus(status, `Job ${job}${phase ? ` (${phase})` : ""}…`),
      });
      replace(result, renderResult(answer));
      result.hidden = false;
      setStatus(status, "Done.");
    } catch (error) {
      setStatus(status, error?.message ?? String(error), { error: true });
    } finally {
      runButton.disabled = Boolean(loginUrl);
    }
  }

  function showSelection(state) {
    selection.textContent = selectionText(selectedFeatures(model, state));
  }

  function showLabels(state) {
    for (const row of body.rows) {
      const node = model.nodes[model.idToIndex.get(row.dataset.nodeId)];
      row.querySelector(".gbv-iv-label").textContent = rowLabel(model, state, node);
    }
  }

  const offs = [store.on(["clickedId", "pinnedIds"], showSelection), store.on(["clerps", "serverLabels"], showLabels)];
  showSelection(store.snapshot());
  return { element, destroy: () => offs.forEach((off) => off()) };
}
