"""Latency of feature-dashboard lookups: p50/p99 of fetching 500 features at once.

    .venv/bin/python bench/features_bench.py \
        --store ~/.cache/glassbox/features/gemma-3-270m--gemma-3-270m-plt-2k
    .venv/bin/python bench/features_bench.py --synthetic /tmp/full-store   # demo-model shape, every slot full

--synthetic writes a store shaped like the demo model's (18 layers x 2048 features, default
BuildConfig) with every top-context and sample slot filled, i.e. the worst case of a long build,
through the same Finalizer/codec/StoreWriter as a real build; no model is run. Three request
shapes: every stored example, at most 4 per group (what the viewer shows), and none. Each repeat
fetches a fresh random set of features (a graph page's request). `--compare-json` also times the
same dashboards stored as gzip'd JSON per feature (the shape of the server's dashboard column).
Prints one JSON object: wall-clock and CPU-time (this process) percentiles, and the 1-minute
load average, since wall time on a shared machine mostly measures the other jobs.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import torch

from glassbox.features import BuildConfig, FeatureStore
from glassbox.features.codec import encode
from glassbox.features.finalize import Finalizer
from glassbox.features.logits import LogitTable
from glassbox.features.state import LayerState
from glassbox.features.store import FORMAT, VERSION, StoreWriter, write_manifest, write_vocab
from glassbox.features.tokens import save_tokens


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def synthetic_store(folder: Path, *, layers: int = 18, features: int = 2048, vocab: int = 262144,
                    rows: int = 7813, cfg: BuildConfig | None = None, seed: int = 0) -> Path:
    """A store with every slot filled (random values), shaped like a real build."""
    cfg = cfg or BuildConfig()
    gen = torch.Generator().manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    T = cfg.seq_len
    save_tokens(folder / "tokens.npy", torch.randint(0, vocab, (rows, T), generator=gen).int().numpy())
    write_vocab(folder, [f"tok{i}" for i in range(vocab)])
    writer = StoreWriter(folder, d_transcoder=features)
    fin = Finalizer(cfg)
    for layer in range(layers):
        st = _full_state(features, cfg, rows * T, gen)
        ids = torch.randint(0, vocab, (features, cfg.n_logits), generator=gen)
        vals = torch.randn(features, cfg.n_logits, generator=gen).sort(dim=1, descending=True).values
        table = LogitTable(top_ids=ids, top_values=vals, bottom_ids=ids.flip(1), bottom_values=-vals)
        writer.add_features(layer, ((s.feature, s.n_fires, s.act_max, s.act_mean, encode(s.blob))
                                    for s in fin.layer(st, table)))
        prov = {"kind": "auto", "method": "synthetic"}
        writer.add_labels(layer, "auto", ((f, f'"tok{f}" -> "tok{f + 1}"', prov) for f in range(features)))
    writer.commit()
    write_manifest(folder, {
        "format": FORMAT, "version": VERSION, "model": {"name": "synthetic"},
        "transcoders": {"name": "synthetic"}, "corpus": "synthetic", "n_rows": rows, "seq_len": T,
        "n_tokens": rows * T, "n_tokens_counted": rows * (T - 1), "layers": list(range(layers)),
        "d_transcoder": features, "config": cfg.to_dict(), "histogram_edges": cfg.edges().tolist(),
    })
    return folder


def _full_state(F: int, cfg: BuildConfig, n_tokens: int, gen: torch.Generator) -> LayerState:
    st = LayerState.empty(F, cfg)
    K, NB, R, W = cfg.top_k, cfg.n_bands, cfg.samples_per_band, cfg.window
    st.n_fires = torch.randint(1000, 50_000, (F,), generator=gen)
    st.act_sum = st.n_fires.double() * 2.0
    st.act_min = torch.full((F,), 0.011)
    st.hist = torch.randint(0, 3000, (F, cfg.n_hist), generator=gen)
    st.top_act = (torch.rand(F, K, generator=gen) * 50 + 1).sort(dim=1, descending=True).values
    st.top_index = torch.randint(0, n_tokens, (F, K), generator=gen)
    st.top_window = (torch.rand(F, K, W, generator=gen) * 5).half()
    st.smp_key = torch.randint(0, 1 << 31, (F, NB, R), generator=gen)
    lo = cfg.edges()[torch.arange(NB) * cfg.bins_per_band]  # (NB,) a value inside each band
    st.smp_act = lo[None, :, None].expand(F, NB, R).contiguous() * 1.01
    st.smp_index = torch.randint(0, n_tokens, (F, NB, R), generator=gen)
    st.smp_window = (torch.rand(F, NB, R, W, generator=gen) * 5).half()
    return st


def time_lookups(store: FeatureStore, *, n: int, repeats: int, examples: bool | int,
                 seed: int) -> tuple[list[float], list[float]]:
    """(wall seconds, CPU seconds) of `repeats` get_many calls on fresh random key sets."""
    keys = [(layer, f) for layer in store.layers for f in range(store.d_transcoder)]
    rng = random.Random(seed)
    wall, cpu = [], []
    for _ in range(repeats):
        batch = rng.sample(keys, n)
        t0, c0 = time.perf_counter(), time.process_time()
        store.get_many(batch, examples=examples)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return wall, cpu


def time_json_gz(store: FeatureStore, *, n: int, repeats: int, seed: int) -> list[float]:
    """The same dashboards as gzip'd JSON in SQLite (one row per feature), fetched the same way."""
    keys = [(layer, f) for layer in store.layers for f in range(store.d_transcoder)]
    rng = random.Random(seed)
    batches = [rng.sample(keys, n) for _ in range(repeats)]
    needed = sorted({k for b in batches for k in b})
    with tempfile.TemporaryDirectory() as tmp:
        db = sqlite3.connect(Path(tmp) / "json.sqlite")
        db.execute("CREATE TABLE d (id INTEGER PRIMARY KEY, data BLOB)")
        for start in range(0, len(needed), 500):
            part = needed[start: start + 500]
            db.executemany("INSERT INTO d VALUES (?, ?)", [
                (layer * store.d_transcoder + f, gzip.compress(json.dumps(d).encode(), 6))
                for (layer, f), d in zip(part, store.get_many(part), strict=True)])
        db.commit()
        wall, cpu = [], []
        for batch in batches:
            ids = [layer * store.d_transcoder + f for layer, f in batch]
            t0, c0 = time.perf_counter(), time.process_time()
            rows = db.execute(f"SELECT data FROM d WHERE id IN ({','.join('?' * len(ids))})", ids).fetchall()
            [json.loads(gzip.decompress(r[0])) for r in rows]
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        size = (Path(tmp) / "json.sqlite").stat().st_size
    return (wall, cpu), size / len(needed)


def summary(times: list[float] | tuple[list[float], list[float]]) -> dict[str, float]:
    wall, cpu = times if isinstance(times, tuple) else (times, None)
    out = {"p50_ms": round(1000 * statistics.median(wall), 1),
           "p99_ms": round(1000 * percentile(wall, 0.99), 1),
           "max_ms": round(1000 * max(wall), 1), "n": len(wall)}
    if cpu is not None:
        out |= {"cpu_p50_ms": round(1000 * statistics.median(cpu), 1),
                "cpu_p99_ms": round(1000 * percentile(cpu, 0.99), 1)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--store", type=Path, help="An existing feature store folder.")
    where.add_argument("--synthetic", type=Path, help="Create (if missing) a full synthetic store here.")
    ap.add_argument("--n", type=int, default=500, help="Features per request.")
    ap.add_argument("--repeats", type=int, default=100)
    ap.add_argument("--compare-json", action="store_true", help="Also time gzip'd JSON per feature.")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (lookups use numpy/sqlite).")
    ap.add_argument("--json-out", type=Path, help="Also write the result here.")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    folder = args.store
    if args.synthetic is not None:
        folder = args.synthetic
        if not (folder / "manifest.json").is_file():
            t0 = time.perf_counter()
            synthetic_store(folder)
            print(f"# wrote synthetic store in {time.perf_counter() - t0:.0f} s", flush=True)
    t0 = time.perf_counter()
    store = FeatureStore.open(folder)
    store.get_many([(store.layers[0], 0)])  # opens sqlite, maps tokens, loads vocab
    open_s = time.perf_counter() - t0
    size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    out = {
        "store": str(folder), "layers": len(store.layers), "features_per_layer": store.d_transcoder,
        "n_tokens": store.manifest["n_tokens"], "disk_mb": round(size / 1e6, 1),
        "open_and_first_get_s": round(open_s, 2),
        "get_many_500_full": summary(time_lookups(store, n=args.n, repeats=args.repeats, examples=True,
                                                  seed=args.seed)),
        "get_many_500_viewer_4_per_group": summary(time_lookups(store, n=args.n, repeats=args.repeats,
                                                                examples=4, seed=args.seed + 4)),
        "get_many_500_no_examples": summary(time_lookups(store, n=args.n, repeats=args.repeats,
                                                         examples=False, seed=args.seed + 1)),
        "get_1_full": summary(time_lookups(store, n=1, repeats=args.repeats, examples=True,
                                           seed=args.seed + 2)),
    }
    if args.compare_json:
        times, per_feature = time_json_gz(store, n=args.n, repeats=min(args.repeats, 20), seed=args.seed + 3)
        out["json_gz_get_many_500"] = summary(times)
        out["json_gz_bytes_per_feature"] = round(per_feature)
        out["blob_bytes_per_feature"] = round((folder / "features.sqlite").stat().st_size /
                                              (len(store.layers) * store.d_transcoder))
    out["load_average_1m"] = round(os.getloadavg()[0], 1)
    print(json.dumps(out, indent=1))
    if args.json_out:
        args.json_out.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
