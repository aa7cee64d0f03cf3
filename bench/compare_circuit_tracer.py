"""Glassbox vs circuit-tracer: same graph? how fast?

Runs circuit-tracer (in its own venv, given by --ct-python; see COMPARE_CIRCUIT_TRACER.md) and
Glassbox (this venv) on one prompt, each in a fresh process, saves both graphs as plain
tensors, aligns the nodes (features by (layer, pos, feature), errors by (layer, pos), tokens by
pos, logits by token id) and prints a Markdown summary: tokens, active features, activations,
logit targets, selected-feature overlap, and edge differences per edge type.

    CT=--ct-python=path/to/ctvenv/bin/python
    .venv/bin/python bench/compare_circuit_tracer.py $CT                    # 1000 nodes, 2 timed runs each
    .venv/bin/python bench/compare_circuit_tracer.py $CT --nodes 1000 none  # also the full graph
    .venv/bin/python bench/compare_circuit_tracer.py --compare-only         # reuse saved graphs
    ... --threads 1    # torch threads in the timed runs; ... --oracle  # intervention check (HF model)
    .venv/bin/python bench/compare_circuit_tracer.py $CT --native           # transcoder layouts

The default mode runs the demo model (Gemma 3 270M, --model-dir) with the reference set
(--transcoders). `--native` writes one random set for tiny Gemma 2 and Gemma 3 models in
circuit-tracer's layout and in each native layout (GemmaScope .npz, GemmaScope-2, SAELens),
checks that Glassbox's graphs are identical across layouts, and compares each with
circuit-tracer 0.5.0 reading the same folder through its own reader for that layout.

Conventions this script knows about (they are not counted as differences):
- circuit-tracer's nnsight backend takes the raw embedding row as a token node's vector. For
  Gemma 3, whose embedding module already multiplies by sqrt(d_model), its token-source edges
  are therefore smaller by exactly that factor; they are rescaled before comparing, and the
  factor is checked (Gemma 2 scales after the module, and its token edges agree as they are).
- Glassbox holds the BOS position's transcoder skip path constant; circuit-tracer keeps it
  live, which changes only the BOS token's column. `--native` leaves that column out for sets
  with skip connections.
- circuit-tracer 0.5.0 ignores `activation: topk` / `k` in config.yaml and builds ReLU
  transcoders. The circuit-tracer runner here loads the set with circuit-tracer's own loader
  and then sets its own `TopK(k)` activation on every layer, as config.yaml asks.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROMPT = "The opposite of small is large, and the opposite of hot is"
DEMO_MODEL = "gemma-3-270m"  # under GLASSBOX_HOME/models (glassbox models pull gemma-3-270m)
TRANSCODERS = Path(__file__).resolve().parents[2] / "shared/transcoders/gemma-3-270m-plt-2k"
OUT_DIR = Path(tempfile.gettempdir()) / "glassbox_ct_compare"


# ---- runners (each in its own process) ----------------------------------------------------

def _rss_gb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)


def _ct_transcoders(folder: Path):
    """circuit-tracer's own loader on a temp config with absolute paths, then TopK from config."""
    import torch
    import yaml
    from circuit_tracer.transcoder.activation_functions import TopK
    from circuit_tracer.utils.hf_utils import load_transcoders

    cfg = yaml.safe_load((folder / "config.yaml").read_text())
    cfg["transcoders"] = [str(folder / p) for p in cfg["transcoders"]]
    cfg["scan"] = folder.name
    tcs = load_transcoders(cfg, device=torch.device("cpu"), dtype=torch.float32)
    if cfg.get("activation") == "topk":  # 0.5.0's loader ignores these keys (ReLU otherwise)
        for tc in tcs.transcoders:
            tc.activation_function = TopK(int(cfg["k"]))
    return tcs


def run_ct(nodes: int | None, batch_size: int, save: Path, model_dir: Path, transcoders: Path) -> dict:
    import torch
    from circuit_tracer import ReplacementModel, attribute

    t0 = time.perf_counter()
    tcs = _ct_transcoders(transcoders)
    model = ReplacementModel.from_pretrained_and_transcoders(
        str(model_dir), tcs, backend="nnsight", device=torch.device("cpu"), dtype=torch.float32)
    t_load = time.perf_counter() - t0
    rss_before = _rss_gb()
    t1, c1 = time.perf_counter(), time.process_time()
    g = attribute(PROMPT, model, max_feature_nodes=nodes, batch_size=batch_size)
    seconds, cpu = time.perf_counter() - t1, time.process_time() - c1
    g.to_pt(str(save.with_suffix(".ct.pt")))  # circuit-tracer's own format (needs its classes)
    torch.save(ct_graph_tensors(g), save)
    return {"tool": "circuit-tracer", "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
            "threads": torch.get_num_threads(), "seconds_load": round(t_load, 2),
            "rss_before_gb": rss_before, "peak_rss_gb": _rss_gb(),
            "active": int(g.active_features.shape[0]), "selected": int(g.selected_features.shape[0])}


def ct_graph_tensors(g) -> dict:  # noqa: ANN001 - circuit-tracer's Graph
    """A circuit-tracer graph as plain tensors (readable without circuit-tracer)."""
    import torch

    return {
        "input_tokens": g.input_tokens.cpu(), "active_features": g.active_features.cpu(),
        "activation_values": g.activation_values.cpu().float(),
        "selected_features": g.selected_features.cpu(), "adjacency_matrix": g.adjacency_matrix.cpu(),
        "logit_ids": torch.tensor([int(t.vocab_idx) for t in g.logit_targets]),
        "logit_probabilities": g.logit_probabilities.cpu().float(), "n_layers": int(g.cfg.n_layers),
    }


def gb_graph_tensors(g) -> dict:  # noqa: ANN001 - glassbox.Graph
    import torch

    return {
        "input_tokens": g.input_tokens, "active_features": g.active_features,
        "activation_values": g.activation_values.float(), "selected_features": g.selected_features,
        "adjacency_matrix": g.adjacency_matrix,
        "logit_ids": torch.tensor([t.vocab_idx for t in g.logit_targets]),
        "logit_probabilities": g.logit_probabilities.float(), "n_layers": g.n_layers,
    }


def run_gb(nodes: int | None, batch_size: int, save: Path, model_dir: Path, transcoders: Path) -> dict:
    import torch

    import glassbox

    t0 = time.perf_counter()
    model = glassbox.load_model(str(model_dir))
    tcs = glassbox.load_transcoders(transcoders)
    t_load = time.perf_counter() - t0
    rss_before = _rss_gb()
    t1, c1 = time.perf_counter(), time.process_time()
    g = glassbox.attribute(PROMPT, model, tcs, max_feature_nodes=nodes, batch_size=batch_size)
    seconds, cpu = time.perf_counter() - t1, time.process_time() - c1
    torch.save(gb_graph_tensors(g), save)
    return {"tool": "glassbox", "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
            "threads": torch.get_num_threads(), "seconds_load": round(t_load, 2),
            "rss_before_gb": rss_before, "peak_rss_gb": _rss_gb(),
            "active": int(g.active_features.shape[0]), "selected": g.n_selected}


def spawn(tool: str, nodes: int | None, batch_size: int, save: Path, ct_python: str,
          threads: int | None = None, *, model_dir: Path, transcoders: Path) -> dict:
    """Run one attribution in a fresh process; returns its stats plus the load average around it."""
    python = ct_python if tool == "ct" else sys.executable
    cmd = [python, __file__, "--run", tool, "--nodes", str(nodes).lower(),
           "--batch-size", str(batch_size), "--save", str(save), "--model-dir", str(model_dir),
           "--transcoders", str(transcoders)]
    if threads:
        cmd += ["--threads", str(threads)]
    load_before = os.getloadavg()[0]
    out = subprocess.run(cmd, capture_output=True, text=True,
                         env={**os.environ, "TQDM_DISABLE": "1", "TOKENIZERS_PARALLELISM": "false"})
    if out.returncode != 0:
        raise RuntimeError(f"{tool} run failed:\n{out.stderr[-4000:]}")
    stats = json.loads(out.stdout.strip().splitlines()[-1])
    stats.update(nodes=nodes, load_before=round(load_before, 2), load_after=round(os.getloadavg()[0], 2))
    return stats


# ---- comparison ---------------------------------------------------------------------------

def node_keys(g: dict) -> list[tuple]:
    """Graph node keys in node order: features, errors, tokens, logits."""
    af = g["active_features"][g["selected_features"]].tolist()
    n_pos, L = len(g["input_tokens"]), g["n_layers"]
    keys: list[tuple] = [("feature", *map(int, f)) for f in af]
    keys += [("error", layer, p) for layer in range(L) for p in range(n_pos)]
    keys += [("token", p) for p in range(n_pos)]
    keys += [("logit", int(t)) for t in g["logit_ids"]]
    return keys


def edge_stats(ref, new, *, scale: float = 1.0) -> dict:
    """Max abs / relative differences of new vs scale * ref (relative to max |edge|)."""
    import torch

    ref = ref.double() * scale
    new = new.double()
    diff = (new - ref).abs()
    big = ref.abs() >= 1e-3 * max(float(ref.abs().max()) if ref.numel() else 0.0, 1e-30)
    rel = (diff[big] / ref.abs()[big]) if bool(big.any()) else torch.zeros(1, dtype=torch.float64)
    peak = float(ref.abs().max()) if ref.numel() else 0.0
    return {"n": int(ref.numel()), "nonzero": int((ref != 0).sum()), "max_abs_ref": peak,
            "max_abs_diff": float(diff.max()) if diff.numel() else 0.0,
            "max_diff_over_max_ref": (float(diff.max()) / peak) if peak else 0.0,
            "max_rel_elementwise": float(rel.max()), "median_rel_elementwise": float(rel.median())}


def compare(ct: dict, gb: dict, embed_scale: float, exclude: frozenset = frozenset()) -> dict:
    """Both graphs side by side; `exclude`: node keys left out of the edge comparison."""
    import torch

    res: dict = {}
    res["tokens_equal"] = ct["input_tokens"].tolist() == gb["input_tokens"].tolist()
    res["tokens"] = gb["input_tokens"].tolist()
    ct_af = {tuple(map(int, f)): i for i, f in enumerate(ct["active_features"].tolist())}
    gb_af = {tuple(map(int, f)): i for i, f in enumerate(gb["active_features"].tolist())}
    common = sorted(set(ct_af) & set(gb_af))
    res["active"] = {"ct": len(ct_af), "gb": len(gb_af), "common": len(common),
                     "only_ct": len(set(ct_af) - set(gb_af)), "only_gb": len(set(gb_af) - set(ct_af))}
    if common:
        a = ct["activation_values"][[ct_af[k] for k in common]].double()
        b = gb["activation_values"][[gb_af[k] for k in common]].double()
        res["activation_max_abs_diff"] = float((a - b).abs().max())
        res["activation_max_rel_diff"] = float(((a - b).abs() / a.abs().clamp(min=1e-12)).max())
    res["logits_equal"] = ct["logit_ids"].tolist() == gb["logit_ids"].tolist()
    res["logit_ids"] = gb["logit_ids"].tolist()
    if res["logits_equal"]:
        res["logit_prob_max_abs_diff"] = float(
            (ct["logit_probabilities"].double() - gb["logit_probabilities"].double()).abs().max())
    sel_ct = {tuple(map(int, ct["active_features"][i])) for i in ct["selected_features"].tolist()}
    sel_gb = {tuple(map(int, gb["active_features"][i])) for i in gb["selected_features"].tolist()}
    res["selected"] = {"ct": len(sel_ct), "gb": len(sel_gb), "common": len(sel_ct & sel_gb)}

    kc, kg = node_keys(ct), node_keys(gb)
    ic, ig = {k: i for i, k in enumerate(kc)}, {k: i for i, k in enumerate(kg)}
    both = [k for k in kg if k in ic and k not in exclude]
    by_type: dict[str, list[tuple]] = {}
    for k in both:
        by_type.setdefault(k[0], []).append(k)
    A_ct, A_gb = ct["adjacency_matrix"], gb["adjacency_matrix"]
    edges = {}
    for tgt in ("feature", "logit"):
        rows_c = torch.tensor([ic[k] for k in by_type.get(tgt, [])], dtype=torch.long)
        rows_g = torch.tensor([ig[k] for k in by_type.get(tgt, [])], dtype=torch.long)
        for src in ("feature", "error", "token"):
            cols_c = torch.tensor([ic[k] for k in by_type.get(src, [])], dtype=torch.long)
            cols_g = torch.tensor([ig[k] for k in by_type.get(src, [])], dtype=torch.long)
            sub_c = A_ct[rows_c][:, cols_c]
            sub_g = A_gb[rows_g][:, cols_g]
            scale = embed_scale if src == "token" else 1.0
            st = edge_stats(sub_c, sub_g, scale=scale)
            if src == "token":
                nz = sub_c.abs() >= 1e-3 * float(sub_c.abs().max())
                ratio = (sub_g[nz].double() / sub_c[nz].double())
                c64, g64 = sub_c.double().flatten(), sub_g.double().flatten()
                st["ratio_gb_over_ct_fit"] = float((c64 @ g64) / (c64 @ c64))
                st["ratio_gb_over_ct_min"] = float(ratio.min())
                st["ratio_gb_over_ct_max"] = float(ratio.max())
                st["ratio_gb_over_ct_median"] = float(ratio.median())
            edges[f"{src}->{tgt}"] = st
    res["edges"] = edges
    # Sources that only one graph has: every edge from them is, by construction, missing in the other.
    return res


# ---- independent oracle: interventions on the HF model itself ------------------------------

class FrozenGemma:
    """Gemma 3 (HF) with attention patterns and norm scales frozen at a clean pass, MLP outputs
    replaced by (clean output + skip-path change + injected deltas): the replacement model both
    tools linearise. Uses only transformers, torch and the transcoder files, in float64.
    """

    def __init__(self, tokens: list[int], model_dir: Path, transcoders: Path) -> None:
        import torch
        import yaml
        from safetensors.torch import load_file
        from transformers import AutoModelForCausalLM

        torch.set_grad_enabled(False)
        hf = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float64, attn_implementation="eager")
        self.base = hf.model.eval()
        self.W_U = hf.lm_head.weight.detach()  # (V, d), tied
        cfg = yaml.safe_load((transcoders / "config.yaml").read_text())
        self.k = int(cfg["k"])
        self.tc = [{n: t.double() for n, t in load_file(transcoders / p).items()} for p in cfg["transcoders"]]
        self.ids = torch.tensor([tokens])
        self.T, self.L = len(tokens), len(self.base.layers)
        self.frozen = False
        self.cache: dict = {}
        self._hooks()
        self.clean_run()

    def _norm_hook(self, key: str):
        def hook(mod, args, out):
            x = args[0]
            if not self.frozen:
                self.cache[key] = (x.pow(2).mean(-1, keepdim=True) + mod.eps).rsqrt()
                return None
            return x * self.cache[key] * (1.0 + mod.weight)
        return hook

    def _hooks(self) -> None:
        layers = self.base.layers
        self.base.embed_tokens.register_forward_hook(self._embed_hook)
        self.base.norm.register_forward_hook(self._norm_hook("final"))
        for i, layer in enumerate(layers):
            for name in ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm"):
                getattr(layer, name).register_forward_hook(self._norm_hook(f"{name}{i}"))
            layer.pre_feedforward_layernorm.register_forward_hook(self._mlp_in_hook(i))
            layer.self_attn.register_forward_hook(self._attn_hook(i), with_kwargs=True)
            layer.post_feedforward_layernorm.register_forward_hook(self._mlp_out_hook(i))

    def _embed_hook(self, mod, args, out):
        if not self.frozen:
            self.cache["embed"] = out
            return None
        return out + self.delta_embed

    def _mlp_in_hook(self, i: int):
        def hook(mod, args, out):
            self.mlp_in[i] = out  # runs after the freezing norm hook (registered later)
        return hook

    def _attn_hook(self, i: int):
        def hook(mod, args, kwargs, out):
            weights = out[1]
            if not self.frozen:
                if weights is None:
                    raise RuntimeError("eager attention did not return its pattern")
                self.cache[f"pattern{i}"] = weights
                return None
            h = args[0] if args else kwargs["hidden_states"]
            B, T, _ = h.shape
            v = mod.v_proj(h).view(B, T, -1, mod.head_dim).transpose(1, 2)  # (B, K, T, hd)
            v = v.repeat_interleave(mod.num_key_value_groups, dim=1)
            z = (self.cache[f"pattern{i}"].to(v.dtype) @ v).transpose(1, 2).reshape(B, T, -1)
            return mod.o_proj(z), weights
        return hook

    def _mlp_out_hook(self, i: int):
        def hook(mod, args, out):
            if not self.frozen:
                self.cache[f"mlp_out{i}"] = out
                return None
            skip = (self.mlp_in[i] - self.cache[f"mlp_in{i}"]) @ self.tc[i]["W_skip"].T
            return self.cache[f"mlp_out{i}"] + skip + self.delta_out[:, i]
        return hook

    def forward(self, B: int):
        """Frozen forward of B copies of the prompt; returns (mlp inputs per layer, final state)."""
        self.mlp_in = [None] * self.L
        hidden = self.base(input_ids=self.ids.expand(B, -1)).last_hidden_state
        return self.mlp_in, hidden

    def clean_run(self) -> None:
        import torch

        self.frozen = False
        mlp_in, hidden = self.forward(1)
        for i in range(self.L):
            self.cache[f"mlp_in{i}"] = mlp_in[i]
        # Transcoder activations (TopK on pre-activations; BOS zeroed), reconstruction, errors.
        self.acts, self.errors = [], []
        for i, w in enumerate(self.tc):
            x = mlp_in[i][0]
            pre = x @ w["W_enc"].T + w["b_enc"]
            val, idx = pre.topk(self.k, dim=-1)
            a = torch.zeros_like(pre).scatter(-1, idx, val)
            a[0] = 0
            recon = a @ w["W_dec"] + w["b_dec"] + x @ w["W_skip"].T
            err = self.cache[f"mlp_out{i}"][0] - recon
            err[0] = 0
            self.acts.append(a)
            self.errors.append(err)
        self.clean_hidden = hidden
        self.frozen = True

    def targets(self, mlp_in, hidden, feats: list[tuple], logit_ids: list[int]):
        """(B, n_feats + n_logits): feature pre-activations and demeaned logits (last position)."""
        import torch

        key = (tuple(feats), tuple(logit_ids))
        if getattr(self, "_target_key", None) != key:  # gather encoder rows once per target set
            self._target_key = key
            self._groups = []
            ft = torch.tensor(feats, dtype=torch.long).view(-1, 3)
            for layer in ft[:, 0].unique().tolist():
                idx = torch.nonzero(ft[:, 0] == layer).flatten()
                w = self.tc[layer]
                f = ft[idx, 2]
                self._groups.append((layer, idx, ft[idx, 1], w["W_enc"][f], w["b_enc"][f]))
            self._W_logit = self.W_U[logit_ids] - self.W_U.mean(0)
        out = hidden.new_zeros(hidden.shape[0], len(feats) + len(logit_ids))
        for layer, idx, pos, W, b in self._groups:
            out[:, idx] = torch.einsum("bnd,nd->bn", mlp_in[layer][:, pos], W) + b
        out[:, len(feats):] = hidden[:, -1] @ self._W_logit.T
        return out

    def zero_deltas(self, B: int) -> None:
        import torch

        d = self.W_U.shape[1]
        self.delta_embed = torch.zeros(B, self.T, d, dtype=torch.float64)
        self.delta_out = torch.zeros(B, self.L, self.T, d, dtype=torch.float64)

    def columns(self, sources: list[tuple], feats: list[tuple], logit_ids: list[int], chunk: int = 32):
        """Edge columns (targets x sources): change in each target when the source is removed."""
        import torch

        self.zero_deltas(1)
        base = self.targets(*self.forward(1), feats, logit_ids)[0]
        out = []
        for s in range(0, len(sources), chunk):
            part = sources[s:s + chunk]
            B = len(part)
            self.zero_deltas(B)
            for b, src in enumerate(part):
                if src[0] == "token":
                    self.delta_embed[b, src[1]] = -self.cache["embed"][0, src[1]]
                elif src[0] == "error":
                    self.delta_out[b, src[1], src[2]] = -self.errors[src[1]][src[2]]
                else:
                    _, layer, pos, f = src
                    self.delta_out[b, layer, pos] = -self.acts[layer][pos, f] * self.tc[layer]["W_dec"][f]
            out.append(base[None] - self.targets(*self.forward(B), feats, logit_ids))
        return torch.cat(out).T  # (targets, sources)


def oracle_check(ct: dict, gb: dict, embed_scale: float, model_dir: Path, transcoders: Path) -> dict:
    """Every edge of both graphs between nodes they share, against interventions on the HF model."""
    import torch

    kc, kg = node_keys(ct), node_keys(gb)
    ic, ig = {k: i for i, k in enumerate(kc)}, {k: i for i, k in enumerate(kg)}
    shared = [k for k in kg if k in ic]
    # Many small ops: on a shared 2-core machine one thread avoids OpenMP barrier stalls.
    torch.set_num_threads(1)
    fm = FrozenGemma(gb["input_tokens"].tolist(), model_dir, transcoders)
    fm.zero_deltas(1)
    replay = float((fm.forward(1)[1] - fm.clean_hidden).abs().max())
    # The oracle's own activations must be the tools' (same TopK, same inputs).
    gb_af = gb["active_features"].tolist()
    mine = torch.stack([fm.acts[layer][pos, f] for layer, pos, f in gb_af])
    act_diff = float((mine - gb["activation_values"].double()).abs().max())
    tgt = [k for k in shared if k[0] in ("feature", "logit")]
    src = [k for k in shared if k[0] != "logit"]
    feats = [k[1:] for k in tgt if k[0] == "feature"]
    logit_ids = [k[1] for k in tgt if k[0] == "logit"]
    O = fm.columns(src, feats, logit_ids)  # (len(tgt), len(src))
    rows_c = torch.tensor([ic[k] for k in tgt])
    rows_g = torch.tensor([ig[k] for k in tgt])
    res = {"act_diff_vs_gb": act_diff, "frozen_replay_max_abs_diff": replay,
           "edges": {}}
    for t_kind in ("feature", "logit"):
        rmask = torch.tensor([k[0] == t_kind for k in tgt])
        for s_kind in ("feature", "error", "token"):
            cmask = torch.tensor([k[0] == s_kind for k in src])
            cols_c = torch.tensor([ic[k] for k in src])[cmask]
            cols_g = torch.tensor([ig[k] for k in src])[cmask]
            o = O[rmask][:, cmask]
            g = gb["adjacency_matrix"][rows_g[rmask]][:, cols_g].double()
            c = ct["adjacency_matrix"][rows_c[rmask]][:, cols_c].double()
            peak = float(o.abs().max()) if o.numel() else 0.0
            entry = {"n": int(o.numel()), "max_abs_oracle": peak,
                     "gb_max_abs_diff": float((g - o).abs().max()) if o.numel() else 0.0,
                     "ct_max_abs_diff": float((c - o).abs().max()) if o.numel() else 0.0}
            if s_kind == "token":
                entry["ct_scaled_max_abs_diff"] = float((c * embed_scale - o).abs().max())
            res["edges"][f"{s_kind}->{t_kind}"] = entry
    return res


def oracle_markdown(res: dict) -> list[str]:
    lines = ["", "Independent check (HF model in float64, attention patterns and norm scales frozen, "
             "MLP outputs = clean + skip change; each source removed, every target measured): "
             f"oracle activations vs Glassbox max abs diff {res['act_diff_vs_gb']:.2g}; "
             f"frozen replay vs clean pass max abs diff {res['frozen_replay_max_abs_diff']:.2g}.",
             "", "| edge | entries | max abs (oracle) | Glassbox max abs diff | circuit-tracer max abs diff "
             "| circuit-tracer x sqrt(d) max abs diff |", "|---|---|---|---|---|---|"]
    for name, e in res["edges"].items():
        scaled = f"{e['ct_scaled_max_abs_diff']:.3g}" if "ct_scaled_max_abs_diff" in e else ""
        lines.append(f"| {name} | {e['n']} | {e['max_abs_oracle']:.4g} | {e['gb_max_abs_diff']:.3g} | "
                     f"{e['ct_max_abs_diff']:.3g} | {scaled} |")
    return lines


# ---- why the selected features differ: replay the influence-ordered selection -------------

def replay_selection(full: dict, n_visit: int, batch_size: int, *, token_scale: float = 1.0,
                     update_interval: int = 4) -> set[tuple]:
    """The (layer, pos, feature) set that influence-ordered selection picks, replayed on the rows
    of a complete graph: visit the top update_interval * batch_size unvisited features by
    partial influence (logit rows + rows visited so far), re-rank, repeat (both tools' rule).
    token_scale multiplies the token columns first (sqrt(d) puts circuit-tracer's in Gemma units).
    """
    import torch

    A, n, k = full["adjacency_matrix"], full["active_features"].shape[0], len(full["logit_ids"])
    n_cols = A.shape[0] - k
    t0, n_pos = n + full["n_layers"] * len(full["input_tokens"]), len(full["input_tokens"])
    col_scale = torch.ones(n_cols)
    col_scale[t0:t0 + n_pos] = token_scale
    norm = lambda r: (r * col_scale).abs() / (r * col_scale).abs().sum(1, keepdim=True).clamp(min=1e-10)  # noqa: E731
    logit_W, feat_W = norm(A[-k:, :n_cols]), norm(A[:n, :n_cols])
    p = full["logit_probabilities"].float()
    visited, order = torch.zeros(n, dtype=torch.bool), torch.zeros(0, dtype=torch.long)
    while len(order) < n_visit:
        flow, infl = p @ logit_W, torch.zeros(n_cols)
        while bool(flow.any()):
            infl += flow
            flow = flow[:n][order] @ feat_W[order] if len(order) else torch.zeros(n_cols)
        rank = torch.argsort(infl[:n], descending=True, stable=True)
        take = rank[~visited[rank]][: min(update_interval * batch_size, n_visit - len(order))]
        visited[take] = True
        order = torch.cat([order, take])
    return set(map(tuple, full["active_features"][order].tolist()))


def selection_check(full_ct: dict, full_gb: dict, ct: dict, gb: dict, n_visit: int, batch_size: int,
                    embed_scale: float) -> dict:
    pick = lambda g: set(map(tuple, g["active_features"][g["selected_features"]].tolist()))  # noqa: E731
    sel_ct, sel_gb = pick(ct), pick(gb)
    r_ct = replay_selection(full_ct, n_visit, batch_size)
    r_gb = replay_selection(full_gb, n_visit, batch_size)
    r_ct_scaled = replay_selection(full_ct, n_visit, batch_size, token_scale=embed_scale)
    return {"replay_ct_vs_ct": len(r_ct & sel_ct), "replay_gb_vs_gb": len(r_gb & sel_gb),
            "replay_ct_scaled_vs_gb": len(r_ct_scaled & sel_gb), "n": n_visit}


def markdown(results: dict, runs: list[dict], embed_scale: float) -> str:
    lines = [f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
             f"{time.strftime('%Y-%m-%d %H:%M')}; prompt {PROMPT!r}; fp32, batch 64; "
             f"sqrt(d_model) = {embed_scale:.6f}", ""]
    lines += ["| tool | max_feature_nodes | threads | attribute s (wall) | attribute CPU s | load s "
              "| peak RSS GB | active | selected | load avg before/after |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(f"| {r['tool']} | {r['nodes']} | {r['threads']} | {r['seconds']} | {r['cpu_seconds']} | "
                     f"{r['seconds_load']} | "
                     f"{r['peak_rss_gb']} | {r['active']} | {r['selected']} | "
                     f"{r['load_before']} / {r['load_after']} |")
    for nodes, res in results.items():
        lines += ["", f"### max_feature_nodes = {nodes}", ""]
        a = res["active"]
        lines.append(f"- input tokens equal: {res['tokens_equal']} ({len(res['tokens'])} tokens, "
                     f"first {res['tokens'][0]})")
        lines.append(f"- active features: ct {a['ct']}, gb {a['gb']}, common {a['common']}; "
                     f"activation max abs diff {res.get('activation_max_abs_diff', float('nan')):.3g}, "
                     f"max rel {res.get('activation_max_rel_diff', float('nan')):.3g}")
        lines.append(f"- logit targets equal: {res['logits_equal']} ({len(res['logit_ids'])}); "
                     f"probability max abs diff {res.get('logit_prob_max_abs_diff', float('nan')):.3g}")
        s = res["selected"]
        lines.append(f"- selected features: ct {s['ct']}, gb {s['gb']}, common {s['common']} "
                     f"({100 * s['common'] / max(s['gb'], 1):.1f}%)")
        lines += ["", "| edge | entries | nonzero | max abs (ct) | max abs diff | diff / max | "
                  "max rel (entries >= 1e-3 max) | median rel | note |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for name, st in res["edges"].items():
            note = ""
            if "ratio_gb_over_ct_median" in st:
                note = (f"ct x sqrt(d); raw gb/ct: fit {st['ratio_gb_over_ct_fit']:.5f}, range "
                        f"{st['ratio_gb_over_ct_min']:.4f}..{st['ratio_gb_over_ct_max']:.4f}")
            lines.append(f"| {name} | {st['n']} | {st['nonzero']} | {st['max_abs_ref']:.4g} | "
                         f"{st['max_abs_diff']:.3g} | {st['max_diff_over_max_ref']:.3g} | "
                         f"{st['max_rel_elementwise']:.3g} | {st['median_rel_elementwise']:.3g} | {note} |")
        if "selection" in res:
            c = res["selection"]
            lines += ["", f"Selection replayed on the complete graphs: circuit-tracer's rows give its "
                      f"own picks ({c['replay_ct_vs_ct']}/{c['n']} equal), Glassbox's rows give "
                      f"Glassbox's ({c['replay_gb_vs_gb']}/{c['n']}); circuit-tracer's rows with token "
                      f"columns x sqrt(d) give Glassbox's picks ({c['replay_ct_scaled_vs_gb']}/{c['n']})."]
        if "oracle" in res:
            lines += oracle_markdown(res["oracle"])
    return "\n".join(lines)

# ---- native layouts: one random set, every layout, tiny Gemma 2 / Gemma 3 ------------------

NATIVE_PROMPT = "The capital of the state containing Dallas is"  # words of the tiny vocabulary
NATIVE_FAMILIES = ("gemma2", "gemma3")
# case -> (make_random_transcoders options, layouts besides circuit-tracer's own)
NATIVE_CASES = {
    "gemmascope": (dict(activation="jumprelu", skip=False, input_hook="ln2.hook_normalized"),
                   ["gemmascope"]),
    "gemmascope-2": (dict(activation="jumprelu", skip=True), ["gemmascope-2", "saelens"]),
    "gemmascope-2-clt": (dict(kind="clt", activation="jumprelu", skip=True), ["gemmascope-2"]),
}
# circuit-tracer 0.5.0 picks its GemmaScope readers by the repo name in the config it is given.
CT_REPO_MARKER = {"gemmascope": "mwhanna/gemma-scope-transcoders",
                  "gemmascope-2": "mwhanna/gemma-scope-2-tiny"}


def _ct_native_config(set_dir: Path, layout: str) -> dict:
    """The config circuit-tracer's own loader gets for a set folder written in `layout`."""
    import yaml

    cfg = yaml.safe_load((set_dir / "config.yaml").read_text())
    cfg["transcoders"] = [str(set_dir / p) for p in cfg["transcoders"]]
    cfg["scan"] = set_dir.name
    if layout in CT_REPO_MARKER:
        cfg["repo_id"] = CT_REPO_MARKER[layout]
    if cfg["model_kind"] == "cross_layer_transcoder":
        # 0.5.0's GemmaScope-2 cross-layer reader takes files 0 .. (last index - 1) of the list
        cfg["transcoders"].append(cfg["transcoders"][-1])
    return cfg


def run_ct_native(model_dir: Path, set_dir: Path, layout: str, batch_size: int, save: Path) -> None:
    """circuit-tracer reads the set with its own loader for `layout`, then attributes every feature."""
    import torch
    from circuit_tracer import ReplacementModel, attribute
    from circuit_tracer.utils.hf_utils import load_transcoders

    cpu = torch.device("cpu")
    tcs = load_transcoders(_ct_native_config(set_dir, layout), device=cpu, dtype=torch.float32)
    model = ReplacementModel.from_pretrained_and_transcoders(
        str(model_dir), tcs, backend="nnsight", device=torch.device("cpu"), dtype=torch.float32)
    g = attribute(NATIVE_PROMPT, model, max_feature_nodes=None, batch_size=batch_size)
    torch.save(ct_graph_tensors(g), save)


def _tiny_model_dir(folder: Path, family: str) -> Path:
    """A tiny random model saved so that both transformers 5 (Glassbox) and 4.57 (circuit-tracer)
    read it: transformers 5 names its tokenizer class TokenizersBackend, 4.57 does not know it."""
    from glassbox.testing import make_tiny_model_dir

    model_dir = make_tiny_model_dir(folder, family)
    tok_cfg = model_dir / "tokenizer_config.json"
    cfg = json.loads(tok_cfg.read_text())
    tok_cfg.write_text(json.dumps({**cfg, "tokenizer_class": "PreTrainedTokenizerFast"}))
    return model_dir


def _same_graph(a: dict, b: dict) -> bool:
    import torch

    return all(torch.equal(torch.as_tensor(a[k]), torch.as_tensor(b[k])) for k in
               ("input_tokens", "active_features", "activation_values", "adjacency_matrix", "logit_ids"))


def _token_scale(res: dict, d_model: int) -> float:
    """1 or sqrt(d_model), whichever the token edges' Glassbox / circuit-tracer ratio is nearer:
    circuit-tracer's nnsight backend scales Gemma 2's token edges right and Gemma 3's not."""
    import torch

    fit = res["edges"]["token->logit"]["ratio_gb_over_ct_fit"]
    root = float(torch.tensor(d_model**0.5, dtype=torch.float32))
    return root if abs(fit - root) < abs(fit - 1.0) else 1.0


def _overall(res: dict) -> float:
    """Largest edge difference over all compared edges / largest |edge| (tokens rescaled)."""
    edges = res["edges"].values()
    return max(e["max_abs_diff"] for e in edges) / max(e["max_abs_ref"] for e in edges)


def native_main(args) -> None:  # noqa: ANN001 - argparse namespace
    """Every layout of one random set: Glassbox graphs identical across layouts, and each
    graph against circuit-tracer 0.5.0 reading the same folder with its own loader."""
    os.environ["GLASSBOX_HOME"] = str(args.out / "native" / "home")  # conversions stay in --out
    import torch

    import glassbox
    from glassbox.models import load_model
    from glassbox.testing import make_random_transcoders
    from glassbox.transcoders import save_transcoders
    from glassbox.transcoders.layouts import write_layout

    rows = []
    for family in NATIVE_FAMILIES:
        base = args.out / "native" / family
        model_dir = _tiny_model_dir(base / "model", family)
        model = load_model(str(model_dir), device="cpu")
        for case, (options, layouts) in NATIVE_CASES.items():
            if family == "gemma2":  # 0.5.0's nnsight map for Gemma 2 has no mlp.hook_in
                options = {**options, "input_hook": "ln2.hook_normalized"}
            tset = make_random_transcoders(model, **options)
            folders = {"circuit-tracer": save_transcoders(tset, base / case / "circuit-tracer")}
            folders.update({lay: write_layout(tset, base / case / lay, lay) for lay in layouts})
            gb = {lay: gb_graph_tensors(glassbox.attribute(
                NATIVE_PROMPT, model, glassbox.load_transcoders(f, progress=False),
                max_feature_nodes=None, batch_size=args.batch_size)) for lay, f in folders.items()}
            # BOS: Glassbox holds its skip path constant, circuit-tracer keeps it live
            exclude = frozenset({("token", 0)}) if tset.has_skip else frozenset()
            for lay, folder in folders.items():
                row = {"family": family, "case": case, "layout": lay, "input_hook": tset.input_hook,
                       "glassbox_same_as_circuit_tracer_layout": _same_graph(gb[lay],
                                                                              gb["circuit-tracer"]),
                       "active": int(gb[lay]["active_features"].shape[0])}
                if lay != "saelens" and not (lay == "circuit-tracer" and tset.kind == "clt"):
                    save = base / case / f"ct_{lay}.pt"
                    cmd = [args.ct_python, __file__, "--run", "ct-native", "--model-dir", str(model_dir),
                           "--transcoders", str(folder), "--layout", lay,
                           "--batch-size", str(args.batch_size), "--save", str(save)]
                    out = subprocess.run(cmd, capture_output=True, text=True,
                                         env={**os.environ, "TQDM_DISABLE": "1"})
                    if out.returncode != 0:
                        raise RuntimeError(f"circuit-tracer on {save}: {out.stderr[-3000:]}")
                    ct = torch.load(save)
                    scale = _token_scale(compare(ct, gb[lay], 1.0, exclude), model.d_model)
                    res = compare(ct, gb[lay], scale, exclude)
                    row.update(ct=res, ct_diff_over_max=_overall(res), ct_token_scale=scale)
                rows.append(row)
                print(json.dumps({k: v for k, v in row.items() if k != "ct"}), file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    print(native_markdown(rows))


def native_markdown(rows: list[dict]) -> str:
    lines = [f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
             f"{time.strftime('%Y-%m-%d %H:%M')}; prompt {NATIVE_PROMPT!r}; fp32, every feature a node; "
             "BOS token column left out for sets with skip", "",
             "| model | set (input hook) | layout | Glassbox = its circuit-tracer-layout graph | active | "
             "circuit-tracer: tokens / features / logits equal | activation max diff | "
             "circuit-tracer token edges x | max edge diff / max edge |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ct = r.get("ct")
        unread = ("SAELens: not a circuit-tracer layout" if r["layout"] == "saelens" else
                  "not run: 0.5.0's reader of this layout needs the hub and drops W_skip")
        cmp = unread if ct is None else (
            f"{ct['tokens_equal']} / {ct['active']['common'] == ct['active']['ct'] == ct['active']['gb']}"
            f" / {ct['logits_equal']}")
        act = "" if ct is None else f"{ct.get('activation_max_abs_diff', float('nan')):.2g}"
        diff = "" if ct is None else f"{r['ct_diff_over_max']:.2g}"
        scale = "" if ct is None else f"{r['ct_token_scale']:g}"
        case = f"{r['case']} ({r['input_hook']})"
        same = r["glassbox_same_as_circuit_tracer_layout"]
        lines.append(f"| tiny {r['family']} | {case} | {r['layout']} | {same} | {r['active']} | "
                     f"{cmp} | {act} | {scale} | {diff} |")
    return "\n".join(lines)



def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", choices=["ct", "gb", "ct-native"], help=argparse.SUPPRESS)
    ap.add_argument("--save", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--layout", help=argparse.SUPPRESS)
    ap.add_argument("--native", action="store_true",
                    help="compare on tiny Gemma 2 / Gemma 3 models with one random set written in "
                         "each native transcoder layout (GemmaScope, GemmaScope-2, SAELens)")
    ap.add_argument("--model-dir", type=Path,
                    help=f"model folder (default: {DEMO_MODEL} under GLASSBOX_HOME/models)")
    ap.add_argument("--transcoders", type=Path, default=TRANSCODERS,
                    help="transcoder folder (default: the reference set next to the repo)")
    ap.add_argument("--nodes", nargs="+", default=["1000"], help="max_feature_nodes values ('none' = all)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=2, help="timed runs per tool and setting")
    ap.add_argument("--ct-python", help="python of a venv with circuit-tracer 0.5.0 (see "
                    "bench/COMPARE_CIRCUIT_TRACER.md)")
    ap.add_argument("--threads", type=int, help="torch threads in the timed runs (default: torch's)")
    ap.add_argument("--out", type=Path, default=OUT_DIR)
    ap.add_argument("--compare-only", action="store_true", help="reuse graphs saved in --out")
    ap.add_argument("--json", type=Path, help="also write the raw results here")
    ap.add_argument("--oracle", action="store_true",
                    help="also check every shared edge against interventions on the HF model (float64)")
    args = ap.parse_args()
    settings = [None if n.lower() == "none" else int(n) for n in args.nodes]
    if args.run == "ct-native":
        run_ct_native(args.model_dir, args.transcoders, args.layout, args.batch_size, args.save)
        return
    if args.run:
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        fn = run_ct if args.run == "ct" else run_gb
        print(json.dumps(fn(settings[0], args.batch_size, args.save, args.model_dir, args.transcoders)))
        return
    if not args.ct_python and not args.compare_only:
        ap.error("--ct-python is needed to run circuit-tracer")
    if args.native:
        native_main(args)
        return
    if args.model_dir is None:
        from glassbox.models.demo import models_dir

        args.model_dir = models_dir() / DEMO_MODEL

    import torch

    args.out.mkdir(parents=True, exist_ok=True)
    embed_scale = float(torch.tensor(640**0.5, dtype=torch.float32))  # Gemma's embed_scale in fp32
    runs, results = [], {}
    for nodes in settings:
        paths = {t: args.out / f"{t}_{str(nodes).lower()}.pt" for t in ("ct", "gb")}
        if not args.compare_only:
            for _ in range(args.repeats):
                for tool in ("ct", "gb"):
                    runs.append(spawn(tool, nodes, args.batch_size, paths[tool], args.ct_python,
                                      args.threads, model_dir=args.model_dir,
                                      transcoders=args.transcoders))
                    print(json.dumps(runs[-1]), file=sys.stderr)
        ct, gb = torch.load(paths["ct"]), torch.load(paths["gb"])
        results[str(nodes)] = compare(ct, gb, embed_scale)
        if args.oracle:
            results[str(nodes)]["oracle"] = oracle_check(ct, gb, embed_scale, args.model_dir,
                                                         args.transcoders)
    full = {t: args.out / f"{t}_none.pt" for t in ("ct", "gb")}
    if all(f.exists() for f in full.values()):
        full_g = {t: torch.load(f) for t, f in full.items()}
        for nodes in settings:
            if nodes is not None:
                ct, gb = (torch.load(args.out / f"{t}_{nodes}.pt") for t in ("ct", "gb"))
                results[str(nodes)]["selection"] = selection_check(
                    full_g["ct"], full_g["gb"], ct, gb, nodes, args.batch_size, embed_scale)
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "results": results}, indent=1))
    print(markdown(results, runs, embed_scale))


if __name__ == "__main__":
    main()
