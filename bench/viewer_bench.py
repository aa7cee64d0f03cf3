"""Graph viewer bench: first render and hover latency on a 5,000-node / 50,000-edge graph in
headless Chromium (goals: first render <= 1.5 s, hover <= 50 ms), plus the JSON size.

    .venv/bin/python bench/viewer_bench.py [--nodes 5000] [--edges 50000] [--runs 3] [--hovers 60]

The graph is synthetic but schema-valid and shaped like a pruned circuit-tracer export (18 layers,
24 positions, 10 logits, one error node per layer and position, float32 weights written in full).
It is written to test-artifacts/bench/. Results print as JSON and as a Markdown table.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import random
import statistics
import struct
import sys
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests" / "frontend"))

from viewer_harness import SCHEMAS, launch_chromium, static_server, viewer_url, wait_for_viewer  # noqa: E402

logger = logging.getLogger(__name__)

N_LAYERS = 18
N_POS = 24
N_LOGITS = 10
WORDS = [
    "<bos>",
    "The",
    " quick",
    " brown",
    " fox",
    " jumps",
    " over",
    " the",
    " lazy",
    " dog",
    ".",
    " Then",
    " it",
    " ran",
    " to",
    " the",
    " capital",
    " of",
    " Texas",
    ",",
    " which",
    " is",
    " called",
    " the",
]


def _f32(x: float) -> float:
    """Round to float32 and back, as exported weights are."""
    return struct.unpack("f", struct.pack("f", x))[0]


def _cantor(layer: int, index: int) -> int:
    return (layer + index) * (layer + index + 1) // 2 + index


def _feature_nodes(rng: random.Random, count: int) -> list[dict[str, Any]]:
    seen: set[tuple[int, int, int]] = set()
    nodes = []
    while len(nodes) < count:
        layer = rng.randrange(N_LAYERS)
        pos = min(N_POS - 1, 1 + int(rng.triangular(0, N_POS - 1, N_POS - 1)))
        index = rng.randrange(16384)
        if (layer, index, pos) in seen:
            continue
        seen.add((layer, index, pos))
        nodes.append(
            {
                "node_id": f"{layer}_{index}_{pos}",
                "feature": _cantor(layer, index),
                "layer": str(layer),
                "ctx_idx": pos,
                "feature_type": "cross layer transcoder",
                "jsNodeId": f"{layer}_{index}-0",
                "clerp": f"feature {index} at layer {layer}" if rng.random() < 0.3 else "",
                "influence": None,
                "activation": _f32(rng.expovariate(0.3)),
            }
        )
    return nodes


def _assign_influence(rng: random.Random, nodes: list[dict[str, Any]]) -> None:
    """Cumulative influence fractions by rank (smaller = more important), up to 0.8 like a pruned graph."""
    weights = [rng.paretovariate(1.2) for _ in nodes]
    order = sorted(range(len(nodes)), key=lambda i: -weights[i])
    total = sum(weights)
    running = 0.0
    for i in order:
        running += weights[i]
        nodes[i]["influence"] = _f32(0.8 * running / total)


def make_graph(n_nodes: int, n_edges: int, seed: int = 0) -> dict[str, Any]:
    rng = random.Random(seed)
    embeddings = [
        {
            "node_id": f"E_{1000 + pos}_{pos}",
            "feature": pos,
            "layer": "E",
            "ctx_idx": pos,
            "feature_type": "embedding",
            "jsNodeId": f"E_{1000 + pos}-{pos}",
            "clerp": "",
            "influence": None,
            "activation": None,
        }
        for pos in range(N_POS)
    ]
    errors = [
        {
            "node_id": f"{layer}_-1_{pos}",
            "feature": -1,
            "layer": str(layer),
            "ctx_idx": pos,
            "feature_type": "mlp reconstruction error",
            "jsNodeId": f"{layer}_-1-{pos}",
            "clerp": "",
            "influence": None,
            "activation": None,
        }
        for layer in range(N_LAYERS)
        for pos in range(N_POS)
    ]
    probs = sorted((rng.random() for _ in range(N_LOGITS)), reverse=True)
    probs = [p / sum(probs) * 0.95 for p in probs]
    logits = [
        {
            "node_id": f"{N_LAYERS + 1}_{2000 + i}_{N_POS - 1}",
            "feature": 2000 + i,
            "layer": str(N_LAYERS + 1),
            "ctx_idx": N_POS - 1,
            "feature_type": "logit",
            "jsNodeId": f"L_{2000 + i}-{N_POS - 1}",
            "clerp": f'Output " word{i}" (p={p:.3f})',
            "token_prob": p,
            "influence": None,
            "activation": None,
        }
        for i, p in enumerate(probs)
    ]
    features = _feature_nodes(rng, n_nodes - len(embeddings) - len(errors) - len(logits))
    _assign_influence(rng, features + errors)
    nodes = features + errors + embeddings + logits
    links = _make_links(rng, features, errors, embeddings, logits, n_edges)
    return {
        "metadata": {
            "slug": f"bench-{n_nodes}x{n_edges}",
            "scan": "bench-model",
            "prompt_tokens": WORDS[:N_POS],
            "prompt": "".join(WORDS[1:N_POS]),
            "node_threshold": 0.8,
        },
        "qParams": {"pinnedIds": [], "supernodes": [], "linkType": "both", "clickedId": "", "sg_pos": ""},
        "nodes": nodes,
        "links": links,
    }


def _make_links(
    rng: random.Random, features: list, errors: list, embeddings: list, logits: list, n_edges: int
) -> list[dict[str, Any]]:
    """Edges only go up a layer or more and never to an earlier position, as attribution edges do."""
    level = {
        n["node_id"]: (int(n["layer"]) + 1 if n["layer"] != "E" else 0)
        for n in features + errors + embeddings
    }
    sources_by = {}
    for node in features + errors + embeddings:
        sources_by.setdefault((level[node["node_id"]], node["ctx_idx"]), []).append(node["node_id"])
    targets = features + logits
    seen: set[tuple[str, str]] = set()
    links = []
    while len(links) < n_edges:
        target = rng.choice(targets) if rng.random() < 0.97 else rng.choice(logits)
        top = N_LAYERS + 1 if target["feature_type"] == "logit" else int(target["layer"]) + 1
        cells = [
            (lv, pos) for lv in range(top) for pos in range(target["ctx_idx"] + 1) if (lv, pos) in sources_by
        ]
        if not cells:
            continue
        lv, pos = cells[min(len(cells) - 1, int(rng.triangular(0, len(cells), len(cells))))]
        source = rng.choice(sources_by[(lv, pos)])
        if (source, target["node_id"]) in seen:
            continue
        seen.add((source, target["node_id"]))
        sign = 1 if rng.random() < 0.7 else -1
        links.append(
            {
                "source": source,
                "target": target["node_id"],
                "weight": _f32(sign * rng.lognormvariate(-1.0, 1.2)),
            }
        )
    return links


FIRST_FRAME_JS = """async () => {
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  const h = window.glassboxDev.handle;
  return {mountStart: h.timings.start, firstPaintMs: h.timings.firstPaintMs, fetchMs: h.timings.fetchMs,
          parseMs: h.timings.parseMs, modelMs: h.timings.modelMs, layoutMs: h.graphTimings.layoutMs,
          baseDrawMs: h.graphTimings.baseMs, frameAfterNavMs: performance.now(),
          visible: h.visibleNodeIds().length};
}"""

HOVER_JS = """async (count) => {
  const h = window.glassboxDev.handle;
  const canvas = document.querySelector('.gbv-canvas-top');
  const ids = h.visibleNodeIds();
  const frame = () => new Promise(r => requestAnimationFrame(r));
  const out = [];
  let seed = 7;
  const pick = () => ids[(seed = (seed * 16807) % 2147483647) % ids.length];
  for (let i = 0; i < count; i += 1) {
    const id = pick();
    if (h.getState().hoveredId === id) continue;
    const p = h.nodeScreenPosition(id);
    const t0 = performance.now();
    canvas.dispatchEvent(new PointerEvent('pointermove', {clientX: p.x, clientY: p.y, bubbles: true}));
    await frame();
    await frame();
    const t1 = performance.now();
    const last = h.graphTimings.lastHover;
    if (!last || last.id !== id || last.painted === null) throw new Error('hover missed ' + id);
    out.push({work: last.painted - last.start, tooltip: last.tooltip - last.start, twoFrames: t1 - t0,
              ok: document.querySelector('.gbv-tooltip-label').textContent.length > 0});
  }
  return out;
}"""


SERVER_PAGE_JS = """async () => {
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  return performance.now();
}"""


def _server_page(graph_url: str) -> str:
    """The server's graph page (frontend/templates/graph.html) for the bench graph."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(REPO_ROOT / "frontend" / "templates"), autoescape=True
    )
    graph = {
        "slug": "bench",
        "prompt": "bench graph",
        "scan": "bench-model",
        "model": None,
        "transcoders": None,
        "data_url": graph_url,
    }
    return env.get_template("graph.html").render(graph=graph, user=None)


def measure_server_page(graph_file: Path, runs: int) -> list[float]:
    """First render of the page the server sends: preloaded graph JSON, boot.js, no test hooks."""
    from playwright.sync_api import sync_playwright

    page_file = graph_file.with_name("graph-page.html")
    page_file.write_text(_server_page("/api/graphs/bench/data"))
    aliases = {
        "/static/": REPO_ROOT / "frontend" / "static",
        "/api/graphs/bench/data": graph_file,
        "/graph/bench": page_file,
    }
    times = []
    with static_server(aliases=aliases) as base, sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            for _ in range(runs):
                context = browser.new_context(viewport={"width": 1280, "height": 800})
                page = context.new_page()
                page.goto(f"{base}/graph/bench")
                page.wait_for_selector("[data-viewer-ready]", state="attached", timeout=60_000)
                times.append(page.evaluate(SERVER_PAGE_JS))
                context.close()
        finally:
            browser.close()
    return times


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(graph_path: str, runs: int, hovers: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    results: dict[str, Any] = {"first_render": [], "hover": {}}
    with static_server() as base, sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            for _ in range(runs):
                context = browser.new_context(viewport={"width": 1280, "height": 800})
                page = context.new_page()
                t0 = time.perf_counter()
                page.goto(viewer_url(base, graph_path, pruningThreshold="1", edgeThreshold="1"))
                wait_for_viewer(page, timeout_ms=60_000)
                wall = (time.perf_counter() - t0) * 1000
                timing = page.evaluate(FIRST_FRAME_JS)
                timing["wallGotoToReadyMs"] = wall
                results["first_render"].append(timing)
                context.close()
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            page = context.new_page()
            page.goto(viewer_url(base, graph_path, pruningThreshold="1", edgeThreshold="1"))
            wait_for_viewer(page, timeout_ms=60_000)
            samples = page.evaluate(HOVER_JS, hovers)
            results["hover"]["in_page"] = samples
            results["hover"]["playwright"] = _playwright_hovers(page, 20)
            context.close()
        finally:
            browser.close()
    return results


def _playwright_hovers(page: Any, count: int) -> list[float]:
    """Real mouse moves over the DevTools protocol until the tooltip shows (includes automation overhead)."""
    ids = page.evaluate("window.glassboxDev.handle.visibleNodeIds()")
    rng = random.Random(3)
    times = []
    for node_id in rng.sample(ids, count):
        pos = page.evaluate("id => window.glassboxDev.handle.nodeScreenPosition(id)", node_id)
        t0 = time.perf_counter()
        page.mouse.move(pos["x"], pos["y"])
        page.wait_for_function(
            "id => window.glassboxDev.handle.getState().hoveredId === id"
            " && !document.querySelector('.gbv-tooltip').hidden",
            arg=node_id,
        )
        times.append((time.perf_counter() - t0) * 1000)
    return times


def summarize(results: dict[str, Any], sizes: dict[str, int], graph: dict[str, Any]) -> dict[str, Any]:
    first = results["first_render"]
    med = lambda key: statistics.median(r[key] for r in first)  # noqa: E731
    work = [s["work"] for s in results["hover"]["in_page"]]
    frames = [s["twoFrames"] for s in results["hover"]["in_page"]]
    pw = results["hover"]["playwright"]
    return {
        "graph": {"nodes": len(graph["nodes"]), "edges": len(graph["links"]), **sizes},
        "first_render_ms": {
            "navigation_to_first_frame_median": med("frameAfterNavMs"),
            "mount_to_first_paint_median": med("firstPaintMs"),
            "fetch": med("fetchMs"),
            "json_parse": med("parseMs"),
            "model": med("modelMs"),
            "layout": med("layoutMs"),
            "canvas_draw": med("baseDrawMs"),
            "playwright_goto_to_ready_median": med("wallGotoToReadyMs"),
            "runs": len(first),
            "visible_nodes": first[0]["visible"],
        },
        "hover_ms": {
            "event_to_overlay_painted_median": statistics.median(work),
            "event_to_overlay_painted_p95": _percentile(work, 0.95),
            "event_to_second_frame_median": statistics.median(frames),
            "event_to_second_frame_p95": _percentile(frames, 0.95),
            "playwright_mouse_to_tooltip_median": statistics.median(pw),
            "playwright_mouse_to_tooltip_p95": _percentile(pw, 0.95),
            "samples": len(work),
        },
    }


def _row(what: str, median: float, p95: float | None = None, goal: str = "", digits: int = 1) -> str:
    p95_text = f"{p95:.{digits}f} ms" if p95 is not None else ""
    return f"| {what} | {median:.{digits}f} ms | {p95_text} | {goal} |"


def markdown(summary: dict[str, Any]) -> str:
    g, f, h = summary["graph"], summary["first_render_ms"], summary["hover_ms"]
    parts = f"fetch {f['fetch']:.0f}, parse {f['json_parse']:.0f}, model {f['model']:.0f}, "
    parts += f"layout {f['layout']:.0f}, draw {f['canvas_draw']:.0f}"
    return "\n".join(
        [
            f"Graph: {g['nodes']} nodes, {g['edges']} edges; JSON {g['json_bytes'] / 1e6:.2f} MB, "
            f"{g['json_gzip_bytes'] / 1e6:.2f} MB gzipped.",
            "",
            "| measure | median | p95 | goal |",
            "|---|---|---|---|",
            _row(
                "first render, server page (templates/graph.html): navigation to first painted frame",
                f["server_page_navigation_to_first_frame_median"],
                goal="<= 1500 ms",
                digits=0,
            ),
            _row(
                "first render, dev page: navigation to first painted frame",
                f["navigation_to_first_frame_median"],
                goal="<= 1500 ms",
                digits=0,
            ),
            _row(
                f"first render: mount() to first paint ({parts})", f["mount_to_first_paint_median"], digits=0
            ),
            _row(
                "hover: pointer event to tooltip + overlay painted",
                h["event_to_overlay_painted_median"],
                h["event_to_overlay_painted_p95"],
                "<= 50 ms",
            ),
            _row(
                "hover: pointer event to the second animation frame",
                h["event_to_second_frame_median"],
                h["event_to_second_frame_p95"],
            ),
            _row(
                "hover: Playwright mouse.move to tooltip shown (incl. automation round trips)",
                h["playwright_mouse_to_tooltip_median"],
                h["playwright_mouse_to_tooltip_p95"],
            ),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--edges", type=int, default=50000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--hovers", type=int, default=60)
    parser.add_argument("--no-validate", action="store_true", help="skip the JSON schema check")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    graph = make_graph(args.nodes, args.edges)
    if not args.no_validate:
        import jsonschema

        schema = json.loads((SCHEMAS / "graph-schema.json").read_text())
        jsonschema.validate(graph, schema)
    out_dir = REPO_ROOT / "test-artifacts" / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"viewer-graph-{args.nodes}x{args.edges}.json"
    text = json.dumps(graph)
    path.write_text(text)
    sizes = {"json_bytes": len(text.encode()), "json_gzip_bytes": len(gzip.compress(text.encode(), 6))}
    logger.info("graph written to %s (%d bytes)", path, sizes["json_bytes"])

    results = measure(f"/{path.relative_to(REPO_ROOT)}", args.runs, args.hovers)
    summary = summarize(results, sizes, graph)
    server_page = measure_server_page(path, args.runs)
    summary["first_render_ms"]["server_page_navigation_to_first_frame_median"] = statistics.median(
        server_page
    )
    print(json.dumps(summary, indent=2))
    print()
    print(markdown(summary))


if __name__ == "__main__":
    main()
