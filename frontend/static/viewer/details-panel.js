// Details of the clicked node (the pinned feature card): its facts, a link to its feature page,
// label editing (saved through the api adapter), the feature dashboard, and its input and
// output connections sorted by |weight|.
import { el, replace } from "../lib/dom.js";
import { fmt, layerName, nodeFacts } from "./format.js";
import { connections, labelOf } from "./graph-model.js";
import { renderDashboard } from "./dashboard.js";

const LIST_LIMIT = 40;

function connectionList(model, state, actions, title, list) {
  const shown = list.slice(0, LIST_LIMIT);
  const maxAbs = Math.max(1e-9, ...shown.map((c) => Math.abs(c.weight)));
  return el("section", { class: "gbv-connections", "aria-label": title },
    el("h3", { text: `${title} (${list.length})` }),
    list.length ? el("ol", { class: "gbv-conn-list" }, shown.map((c) => {
      const other = model.nodes[c.other];
      return el("li", { dataset: { nodeId: other.id, weight: String(c.weight) } },
        el("button", { type: "button", class: "gbv-conn", onClick: () => actions.selectNode(other.id),
          title: `${other.id} · ${layerName(model, other)} · position ${other.ctx}` },
          el("span", { class: "gbv-conn-label", text: labelOf(model, state, c.other) }),
          el("span", { class: `gbv-conn-weight ${c.weight < 0 ? "gbv-neg" : "gbv-pos"}`, text: fmt(c.weight) }),
          el("span", { class: "gbv-conn-bar", style: { "--gbv-bar": (Math.abs(c.weight) / maxAbs).toFixed(3) } })));
    })) : el("p", { class: "gbv-muted", text: "None" }),
    list.length > LIST_LIMIT ? el("p", { class: "gbv-muted", text: `Showing the ${LIST_LIMIT} strongest.` }) : null);
}

function labelEditor(model, node, state, actions, status, container) {
  const input = el("input", {
    type: "text", class: "gbv-label-input", value: labelOf(model, state, node.index), maxLength: 500,
    "aria-label": "Label for this feature",
  });
  const message = el("span", {
    class: "gbv-label-status", role: "status", dataset: { statusFor: node.id }, text: status.get(node.id) ?? "",
  });
  const form = el("form", { class: "gbv-label-form" },
    input,
    el("button", { type: "submit", text: "Save label" }),
    message);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const label = input.value.trim();
    status.set(node.id, "Saving…");
    message.textContent = "Saving…";
    try {
      const result = await actions.saveLabel(node.id, label);
      status.set(node.id, result.cleared ? "Label override removed" : result.saved ? "Saved" : "Saved in this view");
    } catch (error) {
      status.set(node.id, `Not saved: ${error?.message ?? error}`);
    }
    // The panel may have been redrawn meanwhile: update whichever status line is live now.
    const live = form.isConnected ? message : container.querySelector(`[data-status-for="${CSS.escape(node.id)}"]`);
    if (live) live.textContent = status.get(node.id);
  });
  return form;
}

/** What a first-time reader needs to know, shown while no node is selected. */
function readingGuide() {
  const item = (text) => el("li", { text });
  return el("div", { class: "gbv-guide" },
    el("p", { text: "How the model got from the prompt to its next-token prediction, in its own computations." }),
    el("ul", {},
      item("Bottom row: the prompt's tokens. Top row: the most likely next tokens (outputs), with their probabilities."),
      item("Circles are transcoder features, concepts the model computes, one row per layer, in the column of the token where they fire. Diamonds are error nodes: what the features do not explain."),
      item("Lines are direct effects: blue excites, red inhibits; thicker is stronger. Only the strongest are drawn: use the Nodes and Edges sliders for more."),
      item("Hover a node to highlight its connections and see what the feature responds to; click (or tap) it for its details, its feature page and every connection; Ctrl/Cmd-click or “Pin to subgraph” pins it to the subgraph below.")),
    el("p", { class: "gbv-muted", text: "Press ? for keyboard shortcuts." }));
}

/** A link to the feature's own page (dashboard, label history, comments), when there is one. */
function featureLink(url) {
  if (!url) return null;
  return el("p", { class: "gbv-feature-link" },
    el("a", { href: url, target: "_blank", rel: "noopener", text: "Open feature page ↗" }));
}

export function createDetailsPanel({ store, model, actions }) {
  const element = el("section", { class: "gbv-panel gbv-details", "aria-label": "Node details", tabIndex: -1 });
  const saveStatus = new Map();

  /** Redraw; if focus was inside (say on a connection just clicked), it stays in the panel. */
  function render() {
    const hadFocus = element.contains(document.activeElement);
    draw();
    if (hadFocus && !element.contains(document.activeElement)) element.focus({ preventScroll: true });
  }

  function draw() {
    const state = store.snapshot();
    const index = state.clickedId === null ? -1 : model.idToIndex.get(state.clickedId) ?? -1;
    if (index < 0) {
      replace(element, el("h2", { text: "How to read this graph" }), readingGuide());
      return;
    }
    const node = model.nodes[index];
    const pinned = state.pinnedIds.includes(node.id);
    if (node.kind === "feature") actions.loadDashboard(node.id);
    replace(element,
      el("div", { class: "gbv-details-head" },
        el("h2", { class: "gbv-details-label", text: labelOf(model, state, index) }),
        el("button", { type: "button", class: "gbv-icon-button", "aria-label": "Close details", text: "×",
          onClick: () => actions.selectNode(null) })),
      el("p", { class: "gbv-muted gbv-node-id", text: node.id }),
      featureLink(actions.featurePageUrl(node.id)),
      el("dl", { class: "gbv-facts" }, nodeFacts(model, node).map(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })])),
      el("div", { class: "gbv-row" },
        el("button", { type: "button", "aria-pressed": String(pinned), onClick: () => actions.togglePin(node.id),
          text: pinned ? "Unpin from subgraph" : "Pin to subgraph" })),
      node.kind === "feature" ? labelEditor(model, node, state, actions, saveStatus, element) : null,
      node.kind === "feature" ? renderDashboard(state.dashboards.get(node.id)) : null,
      connectionList(model, state, actions, "Inputs", connections(model, index, "incoming")),
      connectionList(model, state, actions, "Outputs", connections(model, index, "outgoing")));
  }

  const off = store.on(["clickedId", "pinnedIds", "clerps", "serverLabels", "dashboards"], (state, changed) => {
    // Keep a half-typed label: only the label itself or another node redraws the editor.
    const editing = element.contains(document.activeElement) && document.activeElement.matches(".gbv-label-input");
    if (editing && !changed.has("clickedId") && !changed.has("clerps")) {
      if (changed.has("dashboards")) element.querySelector(".gbv-dashboard")?.replaceWith(renderDashboard(state.dashboards.get(state.clickedId)));
      return;
    }
    render();
  });
  render();
  return { element, destroy: off };
}
