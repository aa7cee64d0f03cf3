// Search nodes by label, token or id. Matches are ringed on the graph; the first few are listed
// as buttons (Enter picks the first, arrow keys walk the list).
import { el, replace } from "../lib/dom.js";
import { layerName } from "./format.js";
import { labelOf } from "./graph-model.js";

const MAX_MATCHES = 500;
const MAX_LISTED = 12;

export function findMatches(model, state, query) {
  const q = query.trim().toLowerCase();
  if (!q) return [];
  const matches = [];
  for (const node of model.nodes) {
    const label = labelOf(model, state, node.index).toLowerCase();
    const token = node.kind === "embedding" || node.kind === "logit" ? node.token.toLowerCase() : "";
    if (label.includes(q) || token.includes(q) || node.id.toLowerCase() === q) matches.push(node.id);
    if (matches.length >= MAX_MATCHES) break;
  }
  return matches;
}

export function createSearch({ store, model, actions }) {
  const input = el("input", {
    type: "search", class: "gbv-search-input", placeholder: "Search label or token (/)",
    "aria-label": "Search nodes by label or token", autocomplete: "off",
  });
  const results = el("ul", { class: "gbv-search-results", "aria-label": "Search results", hidden: true });
  const element = el("div", { class: "gbv-search", role: "search" }, input, results);

  function pick(id) {
    actions.selectNode(id);
    results.hidden = true;
  }

  function renderResults(state) {
    const listed = state.searchMatches.slice(0, MAX_LISTED);
    results.hidden = !state.search.trim();
    replace(results, listed.length ? listed.map((id) => {
      const node = model.nodes[model.idToIndex.get(id)];
      return el("li", {},
        el("button", { type: "button", class: "gbv-search-hit", dataset: { nodeId: id }, onClick: () => pick(id) },
          el("span", { class: "gbv-conn-label", text: labelOf(model, state, node.index) }),
          el("span", { class: "gbv-muted", text: ` ${layerName(model, node)} · ${node.ctx}` })));
    }) : el("li", { class: "gbv-muted", text: "No matching nodes" }),
    state.searchMatches.length > MAX_LISTED
      ? el("li", { class: "gbv-muted", text: `${state.searchMatches.length - MAX_LISTED} more ringed on the graph` }) : null);
  }

  input.addEventListener("input", () => store.set({ search: input.value }));
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      const first = store.get("searchMatches")[0];
      if (first) pick(first);
    } else if (event.key === "ArrowDown") {
      event.preventDefault();
      results.querySelector("button")?.focus();
    }
  });
  results.addEventListener("keydown", (event) => {
    const buttons = [...results.querySelectorAll("button")];
    const at = buttons.indexOf(event.target);
    if (event.key === "ArrowDown" && at >= 0) buttons[Math.min(buttons.length - 1, at + 1)].focus();
    else if (event.key === "ArrowUp" && at >= 0) (at === 0 ? input : buttons[at - 1]).focus();
    else return;
    event.preventDefault();
  });

  const offs = [
    store.on(["search", "clerps", "serverLabels"], (state) => {
      if (input.value !== state.search) input.value = state.search;
      store.set({ searchMatches: findMatches(model, state, state.search) });
    }),
    store.on(["searchMatches"], renderResults),
  ];
  return { element, focus: () => input.focus(), destroy: () => offs.forEach((off) => off()) };
}
