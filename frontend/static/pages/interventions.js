// The graph page's interventions panel (issue 7). The features come from the viewer's
// selection as the page URL carries it (clickedId, pinnedIds: the viewer keeps them in sync),
// so the panel needs no handle on the viewer. Each row is a feature at a position (default: the
// node's) set to a value, ablated or scaled; "Run" posts to /api/graphs/{slug}/interventions,
// follows the job and draws the before/after table of top next tokens and both continuations.
import { api, el, setStatus } from "./common.js";
import { buildModel } from "../viewer/graph-model.js";

const POLL_MS = 500;
const HIGHLIGHT = 0.001; // a probability change at least this large is highlighted
const MODES = ["ablate", "set", "scale"];

const panel = document.getElementById("interventions");
const data = panel && {
  slug: panel.dataset.slug,
  data_url: panel.dataset.dataUrl,
  tokens: JSON.parse(panel.dataset.tokens || "[]"),
  signed_in: panel.dataset.signedIn === "true",
};
const $ = (id) => document.getElementById(id);
let modelPromise = null;

function graphModel() {
  modelPromise ??= fetch(data.data_url, { credentials: "same-origin" }).then((r) => r.json()).then(buildModel);
  return modelPromise;
}

function selectedIds() {
  const params = new URLSearchParams(location.search);
  const ids = (params.get("pinnedIds") ?? "").split(",").filter(Boolean);
  const clicked = params.get("clickedId");
  if (clicked && !ids.includes(clicked)) ids.unshift(clicked);
  return ids;
}

function positionSelect(pos) {
  const options = [el("option", { value: "" }, "every position")];
  data.tokens.forEach((token, i) => {
    if (i === 0 && /^<.+>$/.test(token)) return; // BOS carries no features
    options.push(el("option", { value: i, selected: i === pos }, `${i}: ${token}`));
  });
  return el("select", { class: "iv-pos", "aria-label": "Position" }, options);
}

function addRow(node) {
  const body = $("iv-items").tBodies[0];
  const key = `${node.layer}/${node.featureIndex}/${node.ctx}`;
  if (body.querySelector(`tr[data-key="${CSS.escape(key)}"]`)) return false;
  const mode = el("select", { class: "iv-mode", "aria-label": "Change" }, MODES.map((m) => el("option", { value: m }, m)));
  const value = el("input", { type: "number", class: "iv-value", step: "any", value: "0", disabled: true, "aria-label": "Value" });
  mode.addEventListener("change", () => {
    value.disabled = mode.value === "ablate";
    if (mode.value === "scale" && value.value === "0") value.value = "2";
  });
  const remove = el("button", { type: "button", "aria-label": `Remove feature ${node.featureIndex} of layer ${node.layer}` }, "×");
  const row = el("tr", { "data-key": key, "data-layer": node.layer, "data-feature": node.featureIndex },
    el("td", {}, `L${node.layer} #${node.featureIndex}`, node.clerp ? el("div", { class: "gb-hint" }, node.clerp) : null),
    el("td", {}, positionSelect(node.ctx)), el("td", {}, mode), el("td", {}, value), el("td", {}, remove));
  remove.addEventListener("click", () => row.remove());
  body.append(row);
  return true;
}

async function addSelected() {
  const model = await graphModel();
  const nodes = selectedIds().map((id) => model.nodes[model.idToIndex.get(id)])
    .filter((n) => n && n.kind === "feature" && Number.isInteger(n.featureIndex));
  if (!nodes.length) {
    setStatus($("iv-add-status"), "Click or pin a feature node first.", { error: true });
    return;
  }
  const added = nodes.filter(addRow).length;
  setStatus($("iv-add-status"), `${added} feature${added === 1 ? "" : "s"} added.`);
}

function items() {
  return [...$("iv-items").tBodies[0].rows].map((row) => {
    const mode = row.querySelector(".iv-mode").value;
    const pos = row.querySelector(".iv-pos").value;
    return {
      layer: Number(row.dataset.layer), feature: Number(row.dataset.feature),
      pos: pos === "" ? null : Number(pos), mode,
      value: mode === "ablate" ? 0 : Number(row.querySelector(".iv-value").value),
    };
  });
}

const pct = (p) => `${(p * 100).toFixed(2)}%`;

function showResult(result) {
  const rows = result.rows.map((r) => {
    const cls = Math.abs(r.delta) >= HIGHLIGHT ? (r.delta > 0 ? "gb-up" : "gb-down") : null;
    const sign = r.delta > 0 ? "+" : r.delta < 0 ? "−" : "";
    return el("tr", { class: cls ? `gb-changed ${cls}` : null },
      el("td", {}, el("code", {}, JSON.stringify(r.token))),
      el("td", { class: "gb-num" }, pct(r.prob_before)), el("td", { class: "gb-num" }, pct(r.prob_after)),
      el("td", { class: `gb-num ${cls ?? ""}`.trim() }, `${sign}${pct(Math.abs(r.delta))}`));
  });
  $("iv-table").tBodies[0].replaceChildren(...rows);
  $("iv-cont-before").textContent = result.continuation_before.text;
  $("iv-cont-after").textContent = result.continuation_after.text;
  $("iv-result").hidden = false;
}

async function follow(job) {
  while (job.status === "queued" || job.status === "running") {
    setStatus($("iv-status"), `Job ${job.status}${job.phase ? ` (${job.phase})` : ""}…`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    job = await api("GET", `/api/jobs/${encodeURIComponent(job.id)}`);
  }
  return job;
}

async function run() {
  const list = items();
  if (!list.length) {
    setStatus($("iv-status"), "Add at least one feature.", { error: true });
    return;
  }
  $("iv-run").disabled = true;
  try {
    const body = { interventions: list, max_new_tokens: Number($("iv-tokens").value) || 20, constrained: $("iv-constrained").checked };
    const job = await follow(await api("POST", `/api/graphs/${encodeURIComponent(data.slug)}/interventions`, body));
    if (job.status !== "done") {
      setStatus($("iv-status"), `The job ${job.status}: ${job.error ?? ""}`, { error: true });
      return;
    }
    showResult(job.result);
    setStatus($("iv-status"), "Done.");
  } catch (error) {
    setStatus($("iv-status"), error.message, { error: true });
  } finally {
    $("iv-run").disabled = !data.signed_in;
  }
}

if (panel && data) {
  $("iv-add").addEventListener("click", () => addSelected().catch((e) => setStatus($("iv-add-status"), e.message, { error: true })));
  $("iv-run").addEventListener("click", run);
}
