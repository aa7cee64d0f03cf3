// Pinned nodes (Ctrl/Cmd-click, or "Pin" in the details) laid out with a force simulation,
// supernodes drawn as one node, edges between them summed from the full graph. Layers still
// pull nodes up and positions pull them across, so the picture reads like the main graph.
//
// The drawing is in real pixels (one SVG unit = one CSS pixel, sized to the panel), so labels
// stay readable at any panel size: they wrap to three lines and keep their full text in a
// tooltip, and every node's box (shape plus label) is pushed apart from the others until none
// overlap (label-layout.js), so a click always lands on the node under the pointer. The panel
// is resizable (drag its corner) and can be enlarged over the graph; "Group nodes" groups
// pinned nodes into a supernode with clicks or taps (holding g works too). The simulation runs
// a fixed number of ticks from fixed starting points: the same pins give the same picture.
// "Suggest subgraph" pins the graph's suggested subgraph (glassbox/graph/guide.py, through the
// api or the graph JSON's own) and sets `guide`, whose note guide-note.js shows.
import d3 from "./d3.js";
import { el, replace, svg } from "../lib/dom.js";
import { fmt } from "./format.js";
import { labelOf } from "./graph-model.js";
import { separateBoxes, wrapLabel } from "./label-layout.js";
import { subgraphScores } from "./scores.js";

const TICKS = 160;
const PAD = 12;
const FONT_PX = 11;
const LINE_H = 13;
const SHAPE = 16; // shape box (px)
const MAX_CHARS = 22;
const MIN_WIDTH = 260;
const MIN_HEIGHT = 160;

const SCORE_HELP = "Subgraph scores, Neuronpedia's definitions computed from this graph's links: every feature "
  + "you have not pinned counts as unexplained, like an error node. Replacement: of the influence on the outputs "
  + "that enters from tokens or unexplained nodes, the share that comes from tokens through pinned features. "
  + "Completeness: the share of node inputs that come from pinned nodes or tokens rather than unexplained ones, "
  + "weighted by influence. 1.00 would mean the pinned nodes explain the outputs completely.";

function subgraphItems(model, state) {
  const memberOf = new Map();
  const items = [];
  state.supernodes.forEach(([name, ...ids], i) => {
    const key = `supernode-${i}`;
    items.push({ key, name, ids, kind: "supernode", supernode: i });
    ids.forEach((id) => memberOf.set(id, key));
  });
  for (const id of state.pinnedIds) {
    if (memberOf.has(id) || !model.idToIndex.has(id)) continue;
    items.push({ key: id, ids: [id], kind: model.nodes[model.idToIndex.get(id)].kind });
    memberOf.set(id, id);
  }
  return { items, memberOf };
}

function subgraphLinks(model, items, memberOf) {
  const sums = new Map();
  for (const item of items) {
    for (const id of item.ids) {
      const s = model.idToIndex.get(id);
      const { offsets, edges } = model.outgoing;
      for (let j = offsets[s]; j < offsets[s + 1]; j += 1) {
        const e = edges[j];
        const target = memberOf.get(model.nodes[model.edges.tgt[e]].id);
        if (!target || target === item.key) continue;
        const key = `${item.key}\u0000${target}`;
        sums.set(key, (sums.get(key) ?? 0) + model.edges.weight[e]);
      }
    }
  }
  return [...sums].map(([key, weight]) => {
    const [source, target] = key.split("\u0000");
    return { source, target, weight };
  }).sort((a, b) => Math.abs(a.weight) - Math.abs(b.weight)); // weakest first: strongest drawn on top
}

/** Each item's label lines and box size (px), from a text measurer. */
function sizeItems(items, labels, measure) {
  return items.map((item) => {
    const lines = wrapLabel(labels.get(item.key), { maxChars: MAX_CHARS, maxLines: 3 });
    const textWidth = Math.max(0, ...lines.map(measure));
    const shapeWidth = item.kind === "supernode" ? 30 : SHAPE;
    return { ...item, lines, w: Math.ceil(Math.max(shapeWidth, textWidth) + 6), h: SHAPE + 4 + lines.length * LINE_H };
  });
}

/** Positions: force layout towards (position, layer) targets inside width x height, then boxes pushed apart. */
function runLayout(model, sized, links, width, height) {
  const mean = (item, f) => item.ids.reduce((sum, id) => sum + f(model.nodes[model.idToIndex.get(id)]), 0) / item.ids.length;
  const rowOf = (item) => Math.round(mean(item, (n) => n.row));
  const colOf = (item) => Math.round(mean(item, (n) => n.ctx));
  const rows = [...new Set(sized.map(rowOf))].sort((a, b) => b - a); // top row first
  const cols = [...new Set(sized.map(colOf))].sort((a, b) => a - b);
  const tallest = Math.max(SHAPE, ...sized.map((item) => item.h));
  const w = Math.max(MIN_WIDTH, width);
  const h = Math.max(MIN_HEIGHT, height, rows.length * (tallest * 0.8));
  const usable = Math.max(0, h - 2 * PAD - tallest);
  const spread = (rank, count) => (count > 1 ? rank / (count - 1) : 0.5);
  const nodes = sized.map((item, i) => {
    const across = PAD + item.w / 2 + spread(cols.indexOf(colOf(item)), cols.length) * Math.max(0, w - 2 * PAD - item.w);
    const tx = Math.min(w - PAD - item.w / 2, Math.max(PAD + item.w / 2, across));
    const ty = PAD + tallest / 2 + spread(rows.indexOf(rowOf(item)), rows.length) * usable;
    return { ...item, tx, ty, x: tx + ((i * 37) % 23) - 11, y: ty + ((i * 53) % 17) - 8 };
  });
  const simLinks = links.map((l) => ({ ...l }));
  const maxW = links.reduce((most, l) => Math.max(most, Math.abs(l.weight)), 1e-9);
  d3.forceSimulation(nodes)
    .force("link", d3.forceLink(simLinks).id((d) => d.key).distance(60).strength((l) => 0.03 + 0.1 * Math.abs(l.weight) / maxW))
    .force("charge", d3.forceManyBody().strength(-40))
    .force("x", d3.forceX((d) => d.tx).strength(0.3))
    .force("y", d3.forceY((d) => d.ty).strength(0.6))
    .force("collide", d3.forceCollide((d) => Math.hypot(d.w, d.h) / 2.4))
    .stop()
    .tick(TICKS);
  for (const n of nodes) n.x = Math.min(w - PAD - n.w / 2, Math.max(PAD + n.w / 2, n.x)); // stay inside the panel
  const boxes = separateBoxes(nodes.map((n) => ({ x0: n.x - n.w / 2, x1: n.x + n.w / 2, y0: n.y - n.h / 2, y1: n.y + n.h / 2 })), { pad: 6, xCost: 2 });
  nodes.forEach((n, i) => Object.assign(n, boxes[i], { x: (boxes[i].x0 + boxes[i].x1) / 2, cy: boxes[i].y0 + SHAPE / 2 + 1 }));
  return { nodes, links: simLinks.map((l) => ({ ...l, source: l.source.key ?? l.source, target: l.target.key ?? l.target })), maxW };
}

/** The drawing's frame: the panel's area, grown to hold every box (the view then scrolls). */
function frameOf(nodes, width, height) {
  const x0 = Math.min(0, ...nodes.map((n) => n.x0 - PAD));
  const x1 = Math.max(width, ...nodes.map((n) => n.x1 + PAD));
  const y0 = Math.min(0, ...nodes.map((n) => n.y0 - PAD));
  const y1 = Math.max(Math.min(height, Math.max(...nodes.map((n) => n.y1 + PAD))), ...nodes.map((n) => n.y1 + PAD));
  return { x: x0, y: y0, w: x1 - x0, h: y1 - y0 };
}

function shape(kind) {
  if (kind === "supernode") return svg("rect", { x: -14, y: -8, width: 28, height: 16, rx: 5 });
  if (kind === "error") return svg("path", { d: "M0,-8L8,0L0,8L-8,0Z" });
  if (kind === "embedding" || kind === "logit") return svg("rect", { x: -7, y: -7, width: 14, height: 14 });
  return svg("circle", { r: 7 });
}

function scoreLine(model, state) {
  const members = [...state.pinnedIds, ...state.supernodes.flatMap(([, ...ids]) => ids)];
  const inner = members.filter((id) => ["feature", "error"].includes(model.nodes[model.idToIndex.get(id)]?.kind));
  if (!inner.length) return null;
  const scores = subgraphScores(model, members);
  const show = (value) => (value === null ? "—" : value.toFixed(2));
  return el("p", { class: "gbv-sg-scores", title: SCORE_HELP, tabIndex: 0 },
    el("span", { class: "gbv-muted", text: "Replacement " }), el("strong", { dataset: { score: "replacement" }, text: show(scores.replacement) }),
    el("span", { class: "gbv-muted", text: " · Completeness " }), el("strong", { dataset: { score: "completeness" }, text: show(scores.completeness) }),
    el("span", { class: "gbv-help-mark", "aria-hidden": "true", text: "?" }));
}

const SUGGEST_HELP = "Pin the features with the most influence on the most likely output and the strongest "
  + "direct edges for and against it, grouped by position and meaning, with a note on what the numbers say.";

export function createSubgraphPanel({ store, model, actions, api }) {
  const element = el("section", { class: "gbv-panel gbv-subgraph", "aria-label": "Subgraph", tabIndex: -1 });
  const ownGuide = model.metadata?.glassbox?.guide ?? null;
  const canSuggest = typeof api.suggestSubgraph === "function" || Array.isArray(ownGuide?.pinned_ids);
  let suggesting = false;
  let suggestError = "";

  async function suggest() {
    suggesting = true;
    suggestError = "";
    render();
    try {
      actions.showGuide(typeof api.suggestSubgraph === "function" ? await api.suggestSubgraph() : ownGuide);
    } catch (error) {
      suggestError = `No suggestion: ${error?.message ?? error}`;
    } finally {
      suggesting = false;
      render();
    }
  }
  const view = el("div", { class: "gbv-sg-view" });
  let cached = { signature: null, layout: null };
  let measureCtx = null;
  let lastSize = { width: 0, height: 0 }; // the view's inner size, for the layout

  function measure(text) {
    if (!measureCtx) {
      measureCtx = el("canvas").getContext("2d");
      measureCtx.font = `${FONT_PX}px ${getComputedStyle(element).fontFamily || "sans-serif"}`;
    }
    return measureCtx.measureText(text).width;
  }

  /** The view's inner size; while it is hidden (nothing pinned yet), the panel's width. */
  function viewSize() {
    const width = view.clientWidth || element.clientWidth - 20 || lastSize.width || MIN_WIDTH;
    const height = view.clientHeight || lastSize.height || MIN_HEIGHT;
    return { width, height };
  }

  const sizeKey = (size) => `${Math.round(size.width / 40)}x${Math.round(size.height / 40)}`;

  function itemLabel(item, state) {
    if (item.kind === "supernode") return item.name;
    return labelOf(model, state, model.idToIndex.get(item.ids[0]));
  }

  function activate(item, event) {
    if (event.ctrlKey || event.metaKey) {
      if (item.kind === "supernode") actions.ungroup(item.supernode);
      else actions.togglePin(item.ids[0]);
    } else if (store.get("groupingActive")) {
      item.ids.forEach((id) => actions.toggleGrouping(id));
    } else {
      actions.selectNode(item.ids[0]);
    }
  }

  function renderGraph(state, layout) {
    const frame = frameOf(layout.nodes, Math.max(MIN_WIDTH, lastSize.width), lastSize.height);
    const picture = svg("svg", {
      class: "gbv-sg-svg", width: Math.ceil(frame.w), height: Math.ceil(frame.h),
      viewBox: `${frame.x.toFixed(1)} ${frame.y.toFixed(1)} ${frame.w.toFixed(1)} ${frame.h.toFixed(1)}`,
      role: "group", "aria-label": "Pinned nodes",
    });
    const byKey = new Map(layout.nodes.map((n) => [n.key, n]));
    for (const link of layout.links) {
      const s = byKey.get(link.source);
      const t = byKey.get(link.target);
      picture.append(svg("line", {
        x1: s.x, y1: s.cy, x2: t.x, y2: t.cy,
        class: link.weight < 0 ? "gbv-sg-link gbv-neg-stroke" : "gbv-sg-link gbv-pos-stroke",
        "stroke-width": (0.8 + 4 * Math.abs(link.weight) / layout.maxW).toFixed(2),
      }, svg("title", { text: `weight ${fmt(link.weight)}` })));
    }
    for (const item of layout.nodes) {
      const label = itemLabel(item, state);
      const classes = ["gbv-sg-node", `gbv-kind-${item.kind}`];
      if (item.ids.includes(state.clickedId)) classes.push("gbv-is-clicked");
      if (item.ids.some((id) => state.grouping.includes(id))) classes.push("gbv-is-grouping");
      const text = svg("text", { y: SHAPE / 2 + 2 + FONT_PX, "text-anchor": "middle" },
        item.lines.map((line, i) => svg("tspan", { x: 0, dy: i === 0 ? 0 : LINE_H, text: line })));
      const node = svg("g", {
        class: classes.join(" "), transform: `translate(${item.x.toFixed(1)},${item.cy.toFixed(1)})`,
        tabindex: 0, role: "button", "aria-label": label, "data-node-id": item.ids[0], "data-key": item.key,
      },
      svg("rect", { class: "gbv-sg-hit", x: -item.w / 2, y: -SHAPE / 2 - 1, width: item.w, height: item.h }),
      shape(item.kind), text, svg("title", { text: label }));
      node.addEventListener("click", (event) => activate(item, event));
      node.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          activate(item, event);
        }
      });
      picture.append(node);
    }
    return picture;
  }

  function supernodeList(state) {
    if (!state.supernodes.length) return null;
    return el("ul", { class: "gbv-supernodes", "aria-label": "Supernodes" }, state.supernodes.map(([name, ...ids], i) =>
      el("li", { dataset: { supernode: String(i) } },
        el("span", { class: "gbv-supernode-name", text: name }),
        el("span", { class: "gbv-muted", text: ` ${ids.length} node${ids.length === 1 ? "" : "s"} ` }),
        el("button", { type: "button", text: "Ungroup", "aria-label": `Ungroup ${name}`, onClick: () => actions.ungroup(i) }))));
  }

  function saveForm(state) {
    if (typeof api.saveSubgraph !== "function") return null;
    const input = el("input", { type: "text", placeholder: "Subgraph name", "aria-label": "Subgraph name", maxLength: 200 });
    const status = el("span", { class: "gbv-muted", role: "status" });
    const form = el("form", { class: "gbv-row gbv-save-subgraph" }, input, el("button", { type: "submit", text: "Save subgraph" }), status);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const name = input.value.trim();
      if (!name) {
        status.textContent = "Give it a name first.";
        return;
      }
      status.textContent = "Saving…";
      const s = store.snapshot();
      try {
        await api.saveSubgraph({
          name, pinnedIds: s.pinnedIds, supernodes: s.supernodes,
          clerps: [...s.clerps].map(([id, label]) => [model.nodes[model.idToIndex.get(id)].featureKey, label]),
          labelOverrides: Object.fromEntries(s.clerps),
          pruningThreshold: s.pruningThreshold, densityThreshold: s.densityThreshold, clickedId: s.clickedId,
        });
        status.textContent = "Saved";
      } catch (error) {
        status.textContent = `Not saved: ${error?.message ?? error}`;
      }
    });
    return state.pinnedIds.length ? form : null;
  }

  function buttons(state) {
    const grouping = state.groupingActive;
    return el("div", { class: "gbv-sg-buttons" },
      canSuggest ? el("button", {
        type: "button", class: "gbv-sg-suggest", title: SUGGEST_HELP, disabled: suggesting,
        text: suggesting ? "Suggesting…" : "Suggest subgraph", onClick: suggest,
      }) : null,
      el("button", {
        type: "button", class: grouping ? "gbv-sg-group gbv-primary" : "gbv-sg-group", "aria-pressed": String(grouping),
        title: "Click or tap nodes (in the graph or here), then press again to name the supernode. Holding g works too.",
        text: grouping ? `Finish group (${state.grouping.length})` : "Group nodes",
        onClick: () => actions.setGroupingActive(!grouping),
      }),
      el("button", {
        type: "button", class: "gbv-sg-expand", "aria-pressed": String(state.subgraphExpanded),
        text: state.subgraphExpanded ? "Shrink" : "Enlarge",
        onClick: () => store.set({ subgraphExpanded: !state.subgraphExpanded }),
      }),
      state.pinnedIds.length ? el("button", { type: "button", text: "Clear", onClick: () => actions.clearSubgraph() }) : null);
  }

  /** Redraw, putting focus back on the same subgraph node (or the panel) if it was inside. */
  function render() {
    const active = document.activeElement;
    const hadFocus = element.contains(active);
    const key = active?.getAttribute?.("data-key");
    const focusClass = ["gbv-sg-group", "gbv-sg-expand", "gbv-sg-suggest"].find((name) => active?.classList?.contains(name));
    draw();
    if (!hadFocus || element.contains(document.activeElement)) return;
    const again = key ? [...element.querySelectorAll("[data-key]")].find((n) => n.getAttribute("data-key") === key)
      : focusClass ? element.querySelector(`.${focusClass}`) : null;
    (again ?? element).focus({ preventScroll: true });
  }

  function draw() {
    const state = store.snapshot();
    lastSize = viewSize();
    const { items, memberOf } = subgraphItems(model, state);
    const labels = new Map(items.map((item) => [item.key, itemLabel(item, state)]));
    const signature = JSON.stringify([state.pinnedIds, state.supernodes, [...labels], sizeKey(lastSize)]);
    if (items.length && cached.signature !== signature) {
      const sized = sizeItems(items, labels, measure);
      cached = { signature, layout: runLayout(model, sized, subgraphLinks(model, items, memberOf), lastSize.width, lastSize.height) };
    }
    replace(view, items.length ? renderGraph(state, cached.layout) : null);
    view.hidden = !items.length;
    replace(element,
      el("div", { class: "gbv-panel-head gbv-sg-head" },
        el("h2", {}, "Subgraph", el("span", { class: "gbv-muted gbv-sg-count", text: ` (${state.pinnedIds.length} pinned)` })),
        buttons(state)),
      suggestError ? el("p", { class: "gbv-error", role: "alert", text: suggestError }) : null,
      items.length ? scoreLine(model, state) : el("p", { class: "gbv-muted", text: `Ctrl/Cmd-click nodes, or use “Pin to subgraph” in the details, to pin them here. “Group nodes” (or holding g) groups them into a supernode.${canSuggest ? " “Suggest subgraph” pins a starting set for you." : ""}` }),
      view,
      supernodeList(state),
      saveForm(state));
  }

  const offs = [
    store.on(["pinnedIds", "supernodes", "clerps", "serverLabels", "clickedId", "grouping", "groupingActive", "subgraphExpanded"], (state, changed) => {
      // Do not wipe a subgraph name being typed when only highlights changed.
      const typing = element.contains(document.activeElement) && document.activeElement.tagName === "INPUT";
      if (typing && !changed.has("pinnedIds") && !changed.has("supernodes")) return;
      render();
    }),
  ];
  const observer = new ResizeObserver(() => {
    if (!view.hidden && view.clientWidth && sizeKey(viewSize()) !== sizeKey(lastSize)) render();
  });
  observer.observe(view);
  render();
  return {
    element,
    destroy() {
      offs.forEach((off) => off());
      observer.disconnect();
    },
  };
}
