"""Trace time, peak memory and JSON size on the demo model (Gemma 3 270M + a transcoder set).

Each configuration runs in a fresh process so that peak RSS belongs to that trace alone.

    python bench/trace_bench.py                      # the full grid, prints a Markdown table
    python bench/trace_bench.py --quick              # the anchor prompt only
    python bench/trace_bench.py --no-long            # the grid without the 512-token row
    python bench/trace_bench.py --one '{"n_tokens": 16, "max_feature_nodes": 1000, "dtype": "float32"}'
    python bench/trace_bench.py --one '{"n_tokens": 64, "device": "cuda", "model": M, "transcoders": T, ...}'
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ANCHOR = "The opposite of small is large, and the opposite of hot is"
# Plain English to cut prompts of exact token lengths from.
PASSAGE = (
    "The river wound slowly through the valley, past the old mill and the stone bridge that the "
    "villagers had built two hundred years before. In spring the water rose and covered the low "
    "fields, and the children would gather on the bank to watch the boats carry timber down to the "
    "sea. Their parents worked the land from dawn until the light failed, and in the evenings the "
    "whole village met in the square to share bread, news and songs. Nobody could remember a time "
    "when the river had run dry, although the oldest woman in the village said that her grandmother "
    "had once walked across its bed in a summer of terrible heat. The mill still turned, the bridge "
    "still stood, and every year the swallows came back to nest under its arches. "
) * 8
DEFAULT_TRANSCODERS = str(Path(__file__).resolve().parents[2] / "shared/transcoders/gemma-3-270m-plt-2k")


def run_one(cfg: dict) -> dict:
    import torch

    import glassbox
    from glassbox.graph.export import dumps_graph_json

    torch.manual_seed(0)
    model = glassbox.load_model(cfg.get("model", "gemma-3-270m"), dtype=cfg["dtype"],
                               device=cfg.get("device", "cpu"))
    tcs = glassbox.load_transcoders(cfg.get("transcoders", DEFAULT_TRANSCODERS), device=model.device)
    if cfg.get("prompt"):
        ids = model.tokenize(cfg["prompt"])
    else:
        ids = model.tokenize(PASSAGE)[: cfg["n_tokens"]]
    if model.device.type == "cuda":  # not timed: CUDA context, cuBLAS handles, kernel caches
        glassbox.trace(ids[:8], model=model, transcoders=tcs, max_feature_nodes=50)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    result = glassbox.trace(ids, model=model, transcoders=tcs,
                            max_feature_nodes=cfg.get("max_feature_nodes"),
                            batch_size=cfg.get("batch_size", 64))
    seconds = time.perf_counter() - t0
    raw = dumps_graph_json(result.to_json(slug="bench"))
    g = result.graph
    return {
        **cfg,
        "n_tokens": len(ids),
        "seconds": round(seconds, 2),
        "seconds_attribution": g.metadata["seconds_total"],
        "active_features": g.metadata["n_active_features"],
        "selected": g.n_selected,
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "rss_before_trace_gb": round(rss_before / 2**20, 2),
        "device": str(model.device),
        "peak_gpu_gb": (round(torch.cuda.max_memory_allocated() / 2**30, 2)
                        if model.device.type == "cuda" else None),
        "json_mb": round(len(raw) / 2**20, 2),
        "top_logit": g.logit_targets[0].token_str,
        "replacement": round(result.replacement_score, 3),
        "completeness": round(result.completeness_score, 3),
    }


def run_isolated(cfg: dict) -> dict:
    out = subprocess.run([sys.executable, __file__, "--one", json.dumps(cfg)], capture_output=True,
                         text=True, env={**os.environ, "TQDM_DISABLE": "1"})
    if out.returncode != 0:
        return {**cfg, "error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def grid(quick: bool, *, long: bool = True) -> list[dict]:
    anchor = [{"prompt": ANCHOR, "max_feature_nodes": 1000, "dtype": "float32", "batch_size": 64}]
    if quick:
        return anchor
    cfgs = []
    for dtype in ("float32", "bfloat16"):
        for n in (8, 16, 32, 64):
            for mfn in (1000, None):
                cfgs.append({"n_tokens": n, "max_feature_nodes": mfn, "dtype": dtype})
    tail = [{"n_tokens": 512, "max_feature_nodes": 1000, "dtype": "float32"}] if long else []
    return anchor + cfgs + tail


def table(rows: list[dict]) -> str:
    cols = ["n_tokens", "dtype", "max_feature_nodes", "active_features", "selected", "seconds",
            "peak_rss_gb", "json_mb", "top_logit", "replacement", "completeness"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        if "error" in r:
            what = r.get("n_tokens", r.get("prompt"))
            lines.append(f"| {what} | {r['dtype']} | {r.get('max_feature_nodes')} | error: {r['error']} |")
            continue
        cells = [str(r[c]) if r.get(c) is not None else "all" for c in cols]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--one")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-long", action="store_true", help="Skip the 512-token memory row (~5 min).")
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_one(json.loads(args.one))))
        return
    rows = []
    for cfg in grid(args.quick, long=not args.no_long):
        rows.append(run_isolated(cfg))
        print(json.dumps(rows[-1]), file=sys.stderr)
    print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
          f"{time.strftime('%Y-%m-%d')}\n")
    print(table(rows))


if __name__ == "__main__":
    main()
