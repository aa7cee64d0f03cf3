"""Glassbox vs circuit-tracer on the demo model: same graph? how fast?

Runs circuit-tracer (in its own venv, default /tmp/ctvenv) and Glassbox (this venv) on one
prompt, each in a fresh process, saves both graphs as plain tensors, aligns the nodes
(features by (layer, pos, feature), errors by (layer, pos), tokens by pos, logits by token
id) and prints a Markdown summary: tokens, active features, activations, logit targets,
selected-feature overlap, and edge differences per edge type.

    .venv/bin/python bench/compare_circuit_tracer.py                    # 1000 nodes, 2 timed runs each
    .venv/bin/python bench/compare_circuit_tracer.py --nodes 1000 none  # also the full graph
    .venv/bin/python bench/compare_circuit_tracer.py --compare-only     # reuse saved graphs
    ... --threads 1    # torch threads in the timed runs; ... --oracle  # intervention check (HF model)

Conventions this script knows about (they are not counted as differences):
- circuit-tracer's nnsight backend takes the raw embedding row as a token node's vector,
  while Gemma's residual stream gets row * sqrt(d_model). Its token-source edges are therefore
  smaller by exactly that factor; they are rescaled before comparing, and the factor is checked.
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
MODEL_DIR = Path.home() / ".cache/glassbox/models/gemma-3-270m"
TRANSCODERS = Path(__file__).resolve().parents[2] / "shared/transcoders/gemma-3-270m-plt-2k"
CT_PYTHON = "/tmp/ctvenv/bin/python"
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


def run_ct(nodes: int | None, batch_size: int, save: Path) -> dict:
    import torch
    from circuit_tracer import ReplacementModel, attribute

    t0 = time.perf_counter()
    tcs = _ct_transcoders(TRANSCODERS)
    model = ReplacementModel.from_pretrained_and_transcoders(
        str(MODEL_DIR), tcs, backend="nnsight", device=torch.device("cpu"), dtype=torch.float32)
    t_load = time.perf_counter() - t0
    rss_before = _rss_gb()
    t1, c1 = time.perf_counter(), time.process_time()
    g = attribute(PROMPT, model, max_feature_nodes=nodes, batch_size=batch_size)
    seconds, cpu = time.perf_counter() - t1, time.process_time() - c1
    g.to_pt(str(save.with_suffix(".ct.pt")))  # circuit-tracer's own format (needs its classes)
    ids = [int(t.vocab_idx) for t in g.logit_targets]
    torch.save({
        "input_tokens": g.input_tokens.cpu(), "active_features": g.active_features.cpu(),
        "activation_values": g.activation_values.cpu().float(),
        "selected_features": g.selected_features.cpu(), "adjacency_matrix": g.adjacency_matrix.cpu(),
        "logit_ids": torch.tensor(ids), "logit_probabilities": g.logit_probabilities.cpu().float(),
        "n_layers": int(g.cfg.n_layers),
    }, save)
    return {"tool": "circuit-tracer", "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
            "threads": torch.get_num_threads(), "seconds_load": round(t_load, 2),
            "rss_before_gb": rss_before, "peak_rss_gb": _rss_gb(),
            "active": int(g.active_features.shape[0]), "selected": int(g.selected_features.shape[0])}


def run_gb(nodes: int | None, batch_size: int, save: Path) -> dict:
    import torch

    import glassbox

    t0 = time.perf_counter()
    model = glassbox.load_model("gemma-3-270m")
    tcs = glassbox.load_transcoders(TRANSCODERS)
    t_load = time.perf_counter() - t0
    rss_before = _rss_gb()
    t1, c1 = time.perf_counter(), time.process_time()
    g = glassbox.attribute(PROMPT, model, tcs, max_feature_nodes=nodes, batch_size=batch_size)
    seconds, cpu = time.perf_counter() - t1, time.process_time() - c1
    torch.save({
        "input_tokens": g.input_tokens, "active_features": g.active_features,
        "activation_values": g.activation_values.float(), "selected_features": g.selected_features,
        "adjacency_matrix": g.adjacency_matrix,
        "logit_ids": torch.tensor([t.vocab_idx for t in g.logit_targets]),
        "logit_probabilities": g.logit_probabilities.float(), "n_layers": g.n_layers,
    }, save)
    return {"tool": "glassbox", "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
            "threads": torch.get_num_threads(), "seconds_load": round(t_load, 2),
            "rss_before_gb": rss_before, "peak_rss_gb": _rss_gb(),
            "active": int(g.active_features.shape[0]), "selected": g.n_selected}


def spawn(tool: str, nodes: int | None, batch_size: int, save: Path, ct_python: str,
          threads: int | None = None) -> dict:
    """Run one attribution in a fresh process; returns its stats plus the load average around it."""
    python = ct_python if tool == "ct" else sys.executable
    cmd = [python, __file__, "--run", tool, "--nodes", str(nodes).lower(),
           "--batch-size", str(batch_size), "--save", str(save)]
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


def compare(ct: dict, gb: dict, embed_scale: float) -> dict:
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
    both = [k for k in kg if k in ic]
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

    def __init__(self, tokens: list[int]) -> None:
        import torch
        import yaml
        from safetensors.torch import load_file
        from transformers import AutoModelForCausalLM

        torch.set_grad_enabled(False)
        hf = AutoModelForCausalLM.from_pretrained(MODEL_DIR, dtype=torch.float64, attn_implementation="eager")
        self.base = hf.model.eval()
        self.W_U = hf.lm_head.weight.detach()  # (V, d), tied
        cfg = yaml.safe_load((TRANSCODERS / "config.yaml").read_text())
        self.k = int(cfg["k"])
        self.tc = [{n: t.double() for n, t in load_file(TRANSCODERS / p).items()} for p in cfg["transcoders"]]
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


def oracle_check(ct: dict, gb: dict, embed_scale: float) -> dict:
    """Every edge of both graphs between nodes they share, against interventions on the HF model."""
    import torch

    kc, kg = node_keys(ct), node_keys(gb)
    ic, ig = {k: i for i, k in enumerate(kc)}, {k: i for i, k in enumerate(kg)}
    shared = [k for k in kg if k in ic]
    # Many small ops: on a shared 2-core machine one thread avoids OpenMP barrier stalls.
    torch.set_num_threads(1)
    fm = FrozenGemma(gb["input_tokens"].tolist())
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", choices=["ct", "gb"], help=argparse.SUPPRESS)
    ap.add_argument("--save", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--nodes", nargs="+", default=["1000"], help="max_feature_nodes values ('none' = all)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=2, help="timed runs per tool and setting")
    ap.add_argument("--ct-python", default=CT_PYTHON)
    ap.add_argument("--threads", type=int, help="torch threads in the timed runs (default: torch's)")
    ap.add_argument("--out", type=Path, default=OUT_DIR)
    ap.add_argument("--compare-only", action="store_true", help="reuse graphs saved in --out")
    ap.add_argument("--json", type=Path, help="also write the raw results here")
    ap.add_argument("--oracle", action="store_true",
                    help="also check every shared edge against interventions on the HF model (float64)")
    args = ap.parse_args()
    settings = [None if n.lower() == "none" else int(n) for n in args.nodes]
    if args.run:
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        fn = run_ct if args.run == "ct" else run_gb
        print(json.dumps(fn(settings[0], args.batch_size, args.save)))
        return

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
                                      args.threads))
                    print(json.dumps(runs[-1]), file=sys.stderr)
        ct, gb = torch.load(paths["ct"]), torch.load(paths["gb"])
        results[str(nodes)] = compare(ct, gb, embed_scale)
        if args.oracle:
            results[str(nodes)]["oracle"] = oracle_check(ct, gb, embed_scale)
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
