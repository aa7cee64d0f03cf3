// Pinned nodes (Ctrl/Cmd-click) laid out with a force simulation, supernodes drawn as one node,
// edges between them summed from the full graph. Layers still pull nodes up and positions pull
// them across, so the picture reads like the main graph. The simulation runs a fixed number of
// ticks from fixed starting points, so the same pins always give the same picture.
import d3 from "./d3.js";
import { el, replace, svg } from "./dom.js";
import { fmt } from "./format.js";
import { labelOf } from "./graph-model.js";

const W = 480;
const H = 320;
const TICKS = 160;

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
  });
}

function runLayout(model, items, links) {
  const mean = (item, f) => item.ids.reduce((sum, id) => sum + f(model.nodes[model.idToIndex.get(id)]), 0) / item.ids.length;
  const nodes = items.map((item, i) => {
    const tx = 30 + ((W - 60) * (mean(item, (n) => n.ctx) + 0.5)) / model.nPos;
    const ty = H - 30 - ((H - 60) * mean(item, (n) => n.row)) / Math.max(1, model.nRows - 1);
    return { ...item, tx, ty, x: tx + ((i * 37) % 23) - 11, y: ty + ((i * 53) % 17) - 8 };
  });
  const simLinks = links.map((l) => ({ ...l }));
  const maxW = links.reduce((most, l) => Math.max(most, Math.abs(l.weight)), 1e-9);
  d3.forceSimulation(nodes)
    .force("link", d3.forceLink(simLinks).id((d) => d.key).distance(80).strength((l) => 0.05 + 0.25 * Math.abs(l.weight) / maxW))
    .force("charge", d3.forceManyBody().strength(-160))
    .force("x", d3.forceX((d) => d.tx).strength(0.15))
    .force("y", d3.forceY((d) => d.ty).strength(0.5))
    .force("collide", d3.forceCollide(22))
    .stop()
    .tick(TICKS);
  return { nodes, links: simLinks, maxW };
}

function extent(values) {
  return values.reduce(([lo, hi], v) => [Math.min(lo, v), Math.max(hi, v)], [Infinity, -Infinity]);
}

/** Bounding box of the nodes plus room for labels, never smaller than 320x200 (few nodes stay small). */
function viewBox(nodes) {
  if (!nodes.length) return `0 0 ${W} ${H}`;
  const [x0, x1] = extent(nodes.map((n) => n.x));
  const [y0, y1] = extent(nodes.map((n) => n.y));
  const pad = 44;
  const cx = (x0 + x1) / 2;
  const cy = (y0 + y1) / 2;
  const w = Math.max(320, x1 - x0 + 2 * pad);
  const h = Math.max(200, y1 - y0 + 2 * pad);
  return `${(cx - w / 2).toFixed(1)} ${(cy - h / 2).toFixed(1)} ${w.toFixed(1)} ${h.toFixed(1)}`;
}

function shape(kind) {
  if (kind === "supernode") return svg("rect", { x: -14, y: -9, width: 28, height: 18, rx: 5 });
  if (kind === "error") return svg("path", { d: "M0,-8L8,0L0,8L-8,0Z" });
  if (kind === "embedding" || kind === "logit") return svg("rect", { x: -7, y: -7, width: 14, height: 14 });
  return svg("circle", { r: 7 });
}

function truncate(text, max = 22) {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

export function createSubgraphPanel({ store, model, actions, api }) {
  const element = el("section", { class: "gbv-panel gbv-subgraph", "aria-label": "Subgraph", tabIndex: -1 });
  let cached = { signature: null, layout: null };

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
    const picture = svg("svg", { class: "gbv-sg-svg", viewBox: viewBox(layout.nodes), role: "group", "aria-label": "Pinned nodes" });
    const byKey = new Map(layout.nodes.map((n) => [n.key, n]));
    for (const link of layout.links) {
      const s = typeof link.source === "object" ? link.source : byKey.get(link.source);
      const t = typeof link.target === "object" ? link.target : byKey.get(link.target);
      picture.append(svg("line", {
        x1: s.x, y1: s.y, x2: t.x, y2: t.y,
        class: link.weight < 0 ? "gbv-sg-link gbv-neg-stroke" : "gbv-sg-link gbv-pos-stroke",
        "stroke-width": (0.6 + 4 * Math.abs(link.weight) / layout.maxW).toFixed(2),
      }, svg("title", { text: `weight ${fmt(link.weight)}` })));
    }
    for (const item of layout.nodes) {
      const label = itemLabel(item, state);
      const classes = ["gbv-sg-node", `gbv-kind-${item.kind}`];
      if (item.ids.includes(state.clickedId)) classes.push("gbv-is-clicked");
      if (item.ids.some((id) => state.grouping.includes(id))) classes.push("gbv-is-grouping");
      const node = svg("g", {
        class: classes.join(" "), transform: `translate(${item.x.toFixed(1)},${item.y.toFixed(1)})`,
        tabindex: 0, role: "button", "aria-label": label, "data-node-id": item.ids[0], "data-key": item.key,
      }, shape(item.kind), svg("text", { y: 20, "text-anchor": "middle", text: truncate(label) }), svg("title", { text: label }));
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

  /** Redraw, putting focus back on the same subgraph node (or the panel) if it was inside. */
  function render() {
    const active = document.activeElement;
    const hadFocus = element.contains(active);
    const key = active?.getAttribute?.("data-key");
    draw();
    if (!hadFocus || element.contains(document.activeElement)) return;
    const again = key ? [...element.querySelectorAll("[data-key]")].find((n) => n.getAttribute("data-key") === key) : null;
    (again ?? element).focus({ preventScroll: true });
  }

  function draw() {
    const state = store.snapshot();
    const { items, memberOf } = subgraphItems(model, state);
    const signature = JSON.stringify([state.pinnedIds, state.supernodes]);
    if (cached.signature !== signature) cached = { signature, layout: runLayout(model, items, subgraphLinks(model, items, memberOf)) };
    replace(element,
      el("div", { class: "gbv-panel-head" },
        el("h2", { text: `Subgraph (${state.pinnedIds.length} pinned)` }),
        state.pinnedIds.length ? el("button", { type: "button", text: "Clear", onClick: () => actions.clearSubgraph() }) : null),
      items.length ? renderGraph(state, cached.layout)
        : el("p", { class: "gbv-muted", text: "Ctrl/Cmd-click nodes to pin them here. Hold g and click nodes to group them into a supernode." }),
      supernodeList(state),
      saveForm(state));
  }

  const off = store.on(["pinnedIds", "supernodes", "clerps", "serverLabels", "clickedId", "grouping"], (state, changed) => {
    // Do not wipe a subgraph name being typed when only highlights changed.
    const typing = element.contains(document.activeElement) && document.activeElement.tagName === "INPUT";
    if (typing && !changed.has("pinnedIds") && !changed.has("supernodes")) return;
    render();
  });
  render();
  return { element, destroy: off };
}
