// The toolbar: prompt, node / edge / feature-density filters, hide-errors toggle, search, theme,
// share, exports and help. Controls are built once and kept in sync with the state, so focus and
// slider drags are never interrupted by a redraw.
import { el } from "../lib/dom.js";
import { createSearch } from "./search.js";

let controlCount = 0;

const asPercent = (value) => `${Math.round(value * 100)}%`;

function slider({ id, label, help, step, format, onInput }) {
  const input = el("input", { type: "range", id, min: 0, max: 1, step, "aria-describedby": `${id}-help` });
  const output = el("output", { for: id, class: "gbv-slider-value" });
  input.addEventListener("input", () => onInput(Number(input.value)));
  const element = el("div", { class: "gbv-slider", title: help },
    el("label", { for: id, text: label }), input, output,
    el("span", { id: `${id}-help`, class: "gbv-sr-only", text: help }));
  return {
    element,
    update(value, { disabled = false } = {}) {
      const shown = value ?? 1;
      if (Number(input.value) !== shown) input.value = String(shown);
      output.textContent = value === null || value === undefined ? "off" : format(shown);
      input.disabled = disabled;
      element.classList.toggle("gbv-disabled", disabled);
    },
  };
}

/** True once any feature density is known (from the graph JSON or a loaded dashboard). */
function densitiesKnown(model, state) {
  return state.densities.size > 0 || model.nodes.some((n) => n.density !== null);
}

export function createControls({ store, model, actions, commands }) {
  controlCount += 1;
  const prefix = `gbv-${controlCount}`;
  const pruning = slider({
    id: `${prefix}-pruning`, label: "Nodes", step: 0.01, format: asPercent,
    help: "Show the most influential nodes, which together carry this share of the influence on the outputs "
      + "(the pruning threshold). Tokens, outputs and pinned nodes always show.",
    onInput: (value) => store.set({ pruningThreshold: value }),
  });
  const edges = slider({
    id: `${prefix}-edges`, label: "Edges", step: 0.01, format: asPercent,
    help: "Draw each node's strongest inputs that together carry this share of its input weight "
      + "(and each node's strongest output). 100% draws every edge between shown nodes.",
    onInput: (value) => store.set({ edgeThreshold: value }),
  });
  const density = slider({
    id: `${prefix}-density`, label: "Feature density", step: 0.001, format: (v) => v.toFixed(3),
    help: "Hide features that fire on more than this fraction of tokens (needs feature densities: they come "
      + "with the dashboards of features you hover or click).",
    onInput: (value) => store.set({ densityThreshold: value }),
  });
  const hideErrors = el("input", { type: "checkbox", id: `${prefix}-errors` });
  hideErrors.addEventListener("change", () => store.set({ hideErrors: hideErrors.checked }));
  const search = createSearch({ store, model, actions });
  const themeButton = el("button", { type: "button", class: "gbv-theme-toggle", onClick: () => store.set({ theme: store.get("theme") === "dark" ? "light" : "dark" }) });
  const prompt = String(model.metadata.prompt ?? model.promptTokens.join(""));

  const element = el("header", { class: "gbv-toolbar" },
    el("p", { class: "gbv-prompt", title: prompt }, el("span", { class: "gbv-muted", text: "Prompt " }), el("span", { class: "gbv-prompt-text", text: prompt })),
    el("div", { class: "gbv-controls", role: "group", "aria-label": "Graph controls" },
      pruning.element,
      edges.element,
      density.element,
      el("div", { class: "gbv-check" }, hideErrors, el("label", { for: `${prefix}-errors`, text: "Hide errors" })),
      search.element,
      el("div", { class: "gbv-buttons" },
        themeButton,
        el("button", { type: "button", class: "gbv-share-button", text: "Share", onClick: () => commands.share() }),
        el("span", { class: "gbv-export", role: "group", "aria-label": "Export" },
          el("button", { type: "button", text: "SVG", "aria-label": "Export SVG", onClick: () => commands.exportSvg() }),
          el("button", { type: "button", text: "PNG", "aria-label": "Export PNG", onClick: () => commands.exportPng() }),
          el("button", { type: "button", text: "JSON", "aria-label": "Export graph JSON", onClick: () => commands.exportJson() })),
        el("button", { type: "button", class: "gbv-help-button", text: "?", "aria-label": "Keyboard shortcuts",
          onClick: () => store.set({ dialog: "help" }) }))));

  function sync(state) {
    pruning.update(state.pruningThreshold);
    edges.update(state.edgeThreshold);
    density.update(state.densityThreshold, { disabled: state.densityThreshold === null && !densitiesKnown(model, state) });
    hideErrors.checked = state.hideErrors;
    themeButton.textContent = state.theme === "dark" ? "Light theme" : "Dark theme";
    themeButton.setAttribute("aria-label", `Switch to ${state.theme === "dark" ? "light" : "dark"} theme`);
  }
  const off = store.on(["pruningThreshold", "edgeThreshold", "densityThreshold", "densities", "hideErrors", "theme"], sync);
  sync(store.snapshot());
  return { element, focusSearch: search.focus, destroy: () => [off, search.destroy].forEach((f) => f()) };
}
