// Exports of the current view: the graph JSON (with this view's pins, supernodes, clicked node
// and label overrides written back), an SVG and a PNG of what is on screen.
import { el, svg } from "../lib/dom.js";
import {
  EDGE_ALPHA, EDGE_WIDTH, LABEL_FONT_SIZE, drawBase, drawOverlay, logitLabelLayout, quoteToken, screenRadius, sx, sy,
} from "./draw.js";
import { labelOf } from "./graph-model.js";

/** Graph JSON in the interchange schema, carrying this view in qParams and clerps. */
export function exportGraphJson(model, state) {
  const graph = model.graph;
  const qParams = {
    ...(graph.qParams ?? {}),
    pinnedIds: [...state.pinnedIds],
    supernodes: state.supernodes.map((group) => [...group]),
    clickedId: state.clickedId ?? "",
    linkType: graph.qParams?.linkType ?? "both",
  };
  const nodes = graph.nodes.map((raw) => {
    const override = state.clerps.get(String(raw.node_id));
    return override === undefined ? raw : { ...raw, clerp: override };
  });
  return { ...graph, qParams, nodes };
}

/** One path per run of same-coloured, same-width edges, in drawing order (weakest first). */
function edgePaths(scene) {
  const { model, edgeOrder } = scene;
  const { src, tgt, code } = model.edges;
  const runs = [];
  for (const e of edgeOrder) {
    if (!runs.length || runs[runs.length - 1].code !== code[e]) runs.push({ code: code[e], parts: [] });
    runs[runs.length - 1].parts.push(`M${sx(scene, src[e]).toFixed(1)},${sy(scene, src[e]).toFixed(1)}L${sx(scene, tgt[e]).toFixed(1)},${sy(scene, tgt[e]).toFixed(1)}`);
  }
  return runs.map((run) => svg("path", {
    d: run.parts.join(""), fill: "none",
    stroke: run.code & 4 ? scene.palette.neg : scene.palette.pos,
    "stroke-width": EDGE_WIDTH[run.code & 3], "stroke-opacity": EDGE_ALPHA[run.code & 3],
  }));
}

/** A text measurer with the labels' canvas font, so the SVG places labels as the screen does. */
function canvasMeasure(palette) {
  const ctx = el("canvas").getContext("2d");
  ctx.font = `${LABEL_FONT_SIZE}px ${palette.font}`;
  return (text) => ctx.measureText(text).width;
}

function nodeShape(kind, x, y, r, fill) {
  if (kind === "feature") return svg("circle", { cx: x.toFixed(1), cy: y.toFixed(1), r: r.toFixed(1), fill });
  if (kind === "error") {
    const d = r * 1.25;
    return svg("path", { d: `M${x},${y - d}L${x + d},${y}L${x},${y + d}L${x - d},${y}Z`, fill });
  }
  const d = kind === "logit" ? r * 1.3 : r * 1.05;
  return svg("rect", { x: (x - d).toFixed(1), y: (y - d).toFixed(1), width: (2 * d).toFixed(1), height: (2 * d).toFixed(1), fill });
}

/** An SVG document (string) of the current view; labels are text nodes, serialised escaped. */
export function exportSvg(scene, state) {
  const { model, layout, visible, palette, width, height } = scene;
  const r = screenRadius(scene);
  const labels = logitLabelLayout(scene, canvasMeasure(palette));
  const text = (attrs, content) => svg("text", { "font-family": palette.font, "font-size": 11, fill: palette.fg, ...attrs, text: content });
  const picture = svg("svg", { xmlns: "http://www.w3.org/2000/svg", width, height, viewBox: `0 0 ${width} ${height}` },
    svg("title", { text: model.metadata.prompt ?? "Attribution graph" }),
    svg("rect", { width, height, fill: palette.bg }),
    svg("g", { class: "edges" }, edgePaths(scene)),
    svg("g", { class: "nodes" }, model.nodes.filter((n) => visible[n.index]).map((node) => {
      const shape = nodeShape(node.kind, sx(scene, node.index), sy(scene, node.index), r, palette[node.kind]);
      shape.append(svg("title", { text: labelOf(model, state, node.index) }));
      return shape;
    })),
    svg("g", { class: "row-labels" }, model.rowLabels.map((label, row) =>
      text({ x: 4, y: layout.rowY[row] * scene.transform.k + scene.transform.y, "dominant-baseline": "middle", fill: palette.muted }, label))),
    svg("g", { class: "token-labels" }, layout.columns.map((column) => {
      const x = column.center * scene.transform.k + scene.transform.x;
      return text({ transform: `translate(${x.toFixed(1)},${height - 44}) rotate(-36)`, "text-anchor": "end" },
        quoteToken(model.promptTokens[column.ctx] ?? "", 12));
    })),
    svg("g", { class: "logit-labels" }, labels.map((label) => {
      const shown = text({ x: label.x0.toFixed(1), y: label.y.toFixed(1), "dominant-baseline": "middle" }, label.text);
      shown.append(svg("title", { text: label.full }));
      return shown;
    })));
  return new XMLSerializer().serializeToString(picture);
}

/** A PNG blob of the current view at twice the screen resolution. */
export function exportPng(scene, marks) {
  const scale = 2;
  const canvas = el("canvas", { width: scene.width * scale, height: scene.height * scale });
  const ctx = canvas.getContext("2d");
  ctx.setTransform(scale, 0, 0, scale, 0, 0);
  drawBase(ctx, scene, { dim: marks.clicked >= 0 });
  const top = el("canvas", { width: scene.width * scale, height: scene.height * scale });
  const topCtx = top.getContext("2d");
  topCtx.setTransform(scale, 0, 0, scale, 0, 0);
  drawOverlay(topCtx, scene, marks);
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.drawImage(top, 0, 0);
  return new Promise((resolve, reject) => canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error("PNG export failed"))), "image/png"));
}

/** Save a blob through a temporary link with the download attribute. */
export function download(host, blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = el("a", { href: url, download: filename, hidden: true });
  host.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 30_000);
}

export function fileStem(model) {
  const slug = String(model.metadata.slug ?? "graph").replace(/[^A-Za-z0-9._-]+/g, "-").slice(0, 80);
  return slug || "graph";
}
