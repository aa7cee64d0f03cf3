// The note of the suggested subgraph (glassbox/graph/guide.py), in a strip under the graph
// header while that subgraph is pinned: what carries the most likely output, what pushes
// against it, how much of it the transcoders do not explain. The note is computed from the
// graph's numbers by the engine; this only shows it. "Hide note" removes it; so does clearing
// the subgraph (actions.clearSubgraph).
import { el, replace } from "../lib/dom.js";

export function createGuideNote({ store }) {
  const element = el("div", { class: "gbv-suggestion-bar" });

  function render(state) {
    const guide = state.guide;
    if (!guide) {
      replace(element);
      return;
    }
    replace(element, el("div", { class: "gbv-suggestion", role: "note", "aria-label": "About the suggested subgraph" },
      el("div", { class: "gbv-suggestion-head" },
        el("strong", { text: "Suggested subgraph: the ringed nodes, drawn in the Subgraph panel" }),
        el("button", { type: "button", text: "Enlarge subgraph", onClick: () => store.set({ subgraphExpanded: true }) }),
        el("button", { type: "button", text: "Hide note", onClick: () => store.set({ guide: null }) })),
      guide.note.map((line) => el("p", { text: String(line) }))));
  }

  const off = store.on(["guide"], render);
  render(store.snapshot());
  return { element, destroy: off };
}
