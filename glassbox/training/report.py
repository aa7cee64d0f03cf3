"""What a trained set carries besides its weights: metrics.json and a README with provenance.

Also the plain-text tables the CLI prints for `glassbox transcoders eval`.
"""

from __future__ import annotations

import hashlib
import json
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from glassbox.training.config import TrainConfig


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def model_provenance(model_name: str) -> dict[str, Any]:
    """What we know about where the model came from (the demo manifest when there is one)."""
    info: dict[str, Any] = {"name": model_name}
    try:
        from glassbox.models.loaded import _resolve

        folder = Path(_resolve(model_name))
    except Exception:  # noqa: BLE001 - provenance is best effort
        return info
    manifest = folder / "glassbox-model.json"
    if manifest.is_file():
        data = json.loads(manifest.read_text())
        info.update({k: data.get(k) for k in ("description", "source", "license", "sha256") if data.get(k)})
    info["folder"] = str(folder)
    return info


def corpus_provenance(corpus: str) -> dict[str, Any]:
    from glassbox.corpus import find_corpus
    from glassbox.corpus.store import load_manifest

    folder = find_corpus(corpus)
    if folder is None:
        return {"name": str(corpus), "kind": "files or dataset"}
    manifest = load_manifest(folder) or {}
    sources = [{"name": s["name"], "weight": s.get("weight"), "origin": s.get("origin"),
                "train_tokens": (s.get("tokens") or {}).get("train")} for s in manifest.get("sources", [])]
    return {"name": folder.name, "kind": "built corpus", "created": manifest.get("created"),
            "seed": manifest.get("seed"), "sources": sources, "totals": manifest.get("totals")}


def environment() -> dict[str, Any]:
    import transformers

    from glassbox import __version__

    device = "cuda: " + torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    return {"glassbox": __version__, "torch": torch.__version__, "transformers": transformers.__version__,
            "python": platform.python_version(), "machine": platform.machine(),
            "processor": platform.processor(), "device": device, "threads": torch.get_num_threads(),
            "date": datetime.now(UTC).isoformat(timespec="seconds")}


def training_summary(state, config: TrainConfig) -> dict[str, Any]:
    tokens, secs = state.tokens, state.elapsed_s
    return {"steps": state.step, "tokens": tokens, "calibration_tokens": state.calib.get("tokens"),
            "seconds": round(secs, 1), "tokens_per_s": round(tokens / max(secs, 1e-9), 1),
            "phase_steps": state.phase_steps,
            "phase_seconds": {k: round(v, 1) for k, v in state.phase_s.items()},
            "plan": state.plan.to_dict() if state.plan else None, "final_fvu_ema": state.fvu_ema,
            "final_kl_ema": state.kl_ema,
            "scales": {"s_in": state.calib.get("s_in"), "s_out": state.calib.get("s_out")},
            "history": state.history}


def write_metrics(out_dir: Path, metrics: dict[str, Any]) -> Path:
    path = Path(out_dir) / "metrics.json"
    path.write_text(json.dumps(metrics, indent=1, default=_json_default))
    return path


def _json_default(o: Any) -> Any:
    if isinstance(o, torch.Tensor):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o)}")


# ---- tables ----------------------------------------------------------------------------------

def layer_table(ev: dict[str, Any]) -> str:
    """Markdown table: per-layer FVU, L0, dead features, single-layer CE."""
    single = {r["layer"]: r for r in (ev.get("single_layer") or {}).get("layers", [])}
    block = "fvu_block_out" in ev["per_layer"][0]
    extra = " FVU of the block output (frozen norm) |" if block else ""
    lines = [f"| layer | FVU |{extra} L0 | dead | CE, this layer spliced (delta) |",
             "|---|---|" + ("---|" if block else "") + "---|---|---|"]
    for r in ev["per_layer"]:
        s = single.get(r["layer"])
        ce = f"{s['ce']:.3f} ({s['delta']:+.3f})" if s else "-"
        dead = f"{100 * r['dead_frac']:.1f}%"
        cell = f" {r['fvu_block_out']:.4f} |" if block else ""
        lines.append(f"| {r['layer']} | {r['fvu']:.4f} |{cell} {r['l0']:.1f} | {dead} | {ce} |")
    orig = f"orig {ev['single_layer']['ce_orig']:.3f}" if ev.get("single_layer") else "-"
    dead = f"{100 * ev['mean_dead_frac']:.1f}%"
    cell = f" **{ev['mean_fvu_block_out']:.4f}** |" if block else ""
    lines.append(f"| **mean** | **{ev['mean_fvu']:.4f}** |{cell} {ev['mean_l0']:.1f} | {dead} | {orig} |")
    return "\n".join(lines)


def ce_table(ev: dict[str, Any]) -> str:
    return "\n".join([
        "| model | CE (nats/token) |", "|---|---|",
        f"| original | {ev['ce_orig']:.4f} |",
        f"| every MLP replaced by its transcoder (spliced) | {ev['ce_spliced']:.4f} |",
        f"| every MLP zero-ablated | {ev['ce_zero_ablation']:.4f} |",
        "",
        "CE loss recovered = (CE_zero - CE_spliced) / (CE_zero - CE_orig) = "
        f"**{ev['ce_loss_recovered']:.3f}** ({ev['ce_tokens']:,} predicted tokens).",
    ])


def graph_table(ev: dict[str, Any]) -> str:
    if not ev.get("graphs"):
        return "(no graphs traced)"
    lines = ["| prompt | replacement | completeness | error share of influence | active features |",
             "|---|---|---|---|---|"]
    for g in ev["graphs"]:
        share = "" if g.get("error_share") is None else f"{100 * g['error_share']:.1f}%"
        lines.append(f"| `{g['prompt']}` | {g['replacement']:.3f} | {g['completeness']:.3f} | {share} | "
                     f"{g.get('active_features', '')} |")
    if len(ev["graphs"]) > 1 and ev.get("mean_error_share") is not None:
        lines.append(f"| **mean** | {ev['mean_replacement']:.3f} | | {100 * ev['mean_error_share']:.1f}% | |")
    return "\n".join(lines)


def eval_text(ev: dict[str, Any]) -> str:
    """Everything `glassbox transcoders eval` prints."""
    head = (f"{ev['transcoders']} on {ev['model']} ({ev['d_transcoder']} features, {ev['activation']}"
            f"{', k=' + str(ev['k']) if ev.get('k') else ''}{', skip' if ev['skip'] else ''}); "
            f"{ev['per_layer'][0]['tokens']:,} held-out tokens of {ev['corpus']}")
    parts = [head, layer_table(ev), ce_table(ev)]
    if ev.get("heldout"):
        parts.append(heldout_table(ev))
    if ev.get("prompt_checks"):
        parts.append(prompt_table(ev))
    return "\n\n".join([*parts, graph_table(ev)])


def heldout_table(ev: dict[str, Any]) -> str:
    """One row per evaluation text: the training corpus' own test split first, then each held-out set."""
    rows = ["| text | tokens | CE recovered (all MLPs replaced) | mean FVU | mean L0 | dead |",
            "|---|---|---|---|---|---|",
            f"| {ev['corpus']} (test split, like the training text) | {ev['ce_tokens']:,} | "
            f"{100 * ev['ce_loss_recovered']:.1f}% | {ev['mean_fvu']:.3f} | {ev['mean_l0']:.1f} | "
            f"{100 * ev['mean_dead_frac']:.1f}% |"]
    for name, h in ev["heldout"].items():
        rows.append(f"| {name} (held out) | {h['ce_tokens']:,} | {100 * h['ce_loss_recovered']:.1f}% | "
                    f"{h['mean_fvu']:.3f} | {h['mean_l0']:.1f} | {100 * h['mean_dead_frac']:.1f}% |")
    rows.append(f"| **held-out mean** | | **{100 * ev['heldout_mean_ce_loss_recovered']:.1f}%** | "
                f"**{ev['heldout_mean_fvu']:.3f}** | | |")
    return "\n".join(rows)


def prompt_table(ev: dict[str, Any]) -> str:
    """Original vs fully spliced next token, per prompt."""
    def prob(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    rows = ["| prompt | expected | original top-1 | spliced top-1 | p(expected) original / spliced | kept |",
            "|---|---|---|---|---|---|"]
    for r in ev["prompt_checks"]:
        shown = " ".join(r["prompt"].split())[-48:]
        rows.append(f"| `{shown}` | {r['expected']!r} | {r['original_top1']!r} {r['original_top1_prob']:.2f} "
                    f"| {r['spliced_top1']!r} {r['spliced_top1_prob']:.2f} "
                    f"| {prob(r['original_expected_prob'])} / {prob(r['spliced_expected_prob'])} "
                    f"| {'yes' if r['top1_kept'] else 'no'} |")
    kept, total = ev["prompt_top1_kept"], len(ev["prompt_checks"])
    rows.append(f"\nTop-1 kept with every MLP replaced: {kept} of {total}.")
    return "\n".join(rows)


# ---- README ----------------------------------------------------------------------------------

def readme(*, name: str, config: TrainConfig, metrics: dict[str, Any], files: list[str]) -> str:
    c, tr, ev = config, metrics["training"], metrics.get("eval")
    model, corpus, env = metrics["model"], metrics["corpus"], metrics["environment"]
    act = f"TopK (k = {c.k}, ReLU on the kept values)" if c.activation == "topk" else c.activation
    quality = "not evaluated (trained with --no-eval; run `glassbox transcoders eval`)."
    if ev:
        graphs = "."
        if ev.get("mean_replacement") is not None:
            graphs = f"; mean graph replacement score {ev['mean_replacement']:.3f}."
        quality = (f"mean per-layer FVU **{ev['mean_fvu']:.3f}**; with every MLP replaced at once the model "
                   f"recovers **{100 * ev['ce_loss_recovered']:.1f}%** of the CE loss "
                   f"(CE {ev['ce_spliced']:.3f} vs {ev['ce_orig']:.3f} original and "
                   f"{ev['ce_zero_ablation']:.3f} with the MLPs zero-ablated){graphs}")
    parts = [
        f"# {name}: per-layer transcoders for {model['name']}",
        f"{c.n_features} features per layer, {act}, {'with' if c.skip else 'without'} a skip connection; "
        f"trained by `glassbox transcoders train` on {tr['tokens']:,} tokens in {tr['seconds'] / 60:.1f} min "
        f"({tr['tokens_per_s']:.0f} tokens/s, {env['device']}, {env['threads']} threads).",
        f"**Quality:** {quality}",
        "## Files",
        "circuit-tracer's per-layer layout (`model_kind: transcoder_set`): `config.yaml` and "
        "`layer_{i}.safetensors` with `W_enc` (F, d), `b_enc` (F), `W_dec` (F, d), `b_dec` (d)"
        + (", `W_skip` (d, d) applied as `x @ W_skip.T`" if c.skip else "")
        + (", `activation_function.threshold` (F)" if c.activation == "jumprelu" else "")
        + f"; {c.save_dtype}. Raw activations in, raw activations out (the training normalisation is "
        f"folded in). Input hook `{c.input_hook}`, output hook `{c.output_hook}`. `metrics.json` holds "
        "every number below plus the training history.",
        "```\n" + "\n".join(files) + "\n```",
    ]
    if c.output_hook == "mlp.hook_out":
        parts.append(
            "**Output hook.** `mlp.hook_out` is the MLP's own output. In models with a norm after the MLP "
            "(Gemma 2/3: `post_feedforward_layernorm`) that norm is applied to the transcoder's output: live "
            "when the transcoders replace the MLPs, with its scale frozen at the true value in attribution "
            "graphs. The norm fixes the scale of every replaced MLP's contribution, which is what keeps "
            "errors from compounding when every MLP is replaced at once.")
    if c.activation == "topk":
        parts.append(
            f"**Null features.** Features {c.trained_features}..{c.n_features - 1} of every layer are null "
            "(zero encoder row, bias and decoder row). Training used ReLU on the TopK values; "
            "circuit-tracer's TopK keeps negative values when fewer than k are positive, and a null "
            "feature's pre-activation is exactly 0, so TopK picks nulls (activation 0) before any negative "
            "value and the files compute exactly what was trained. Effectively each layer has "
            f"{c.trained_features} usable features.")
    parts += [
        "## Provenance",
        f"* **Model**: {model['name']}" + (f" — {model['description']}" if model.get("description") else "")
        + (f"; source: `{json.dumps(model['source'])}`" if model.get("source") else ""),
        f"* **Corpus**: {_corpus_line(corpus)}; windows of {c.seq_len} tokens (BOS + {c.seq_len - 1}), "
        "each from one document, shuffled across documents. BOS positions are excluded from training and "
        "from metrics. Evaluation uses the corpus' held-out test split.",
        f"* **Software**: glassbox {env['glassbox']}, torch {env['torch']}, "
        f"transformers {env['transformers']}; {env['date']}.",
        "## Training recipe",
        _recipe(c, tr),
        "## Hyperparameters",
        "```json\n" + json.dumps(c.to_dict(), indent=1) + "\n```",
    ]
    if ev:
        parts += [
            "## Evaluation",
            f"Held-out tokens; model run in {ev['model_dtype']}, transcoders in float32 with the saved "
            "files' own math. FVU = squared error / variance of the true output; L0 = nonzero activations "
            "per token; dead = never fired on the evaluation tokens. When MLPs are replaced, BOS keeps its "
            "true MLP output.",
            layer_table(ev),
            "### Every MLP replaced at once",
            ce_table(ev),
            *(["### Held-out text (sources no training corpus contains)", heldout_table(ev)]
              if ev.get("heldout") else []),
            *(["### Next-token checks", prompt_table(ev)] if ev.get("prompt_checks") else []),
            "### Attribution graphs (`glassbox.trace`)",
            graph_table(ev),
        ]
    parts += ["## Reproduce", "```\n" + reproduce_command(c) + "\n```"]
    return "\n\n".join(parts) + "\n"


def _corpus_line(corpus: dict[str, Any]) -> str:
    if corpus.get("kind") != "built corpus":
        return f"`{corpus['name']}`"
    mix = ", ".join(f"{s['name']} {s['weight']}" for s in corpus.get("sources", []))
    total = (corpus.get("totals") or {}).get("tokens")
    return f"built corpus `{corpus['name']}` (mix: {mix}" + (f"; {total} tokens in all)" if total else ")")


def _recipe(c: TrainConfig, tr: dict[str, Any]) -> str:
    steps = tr["phase_steps"]
    lines = [
        f"* Streaming: every step runs the model ({c.model_dtype}) on {c.batch_size} sequences and trains "
        "all layers on that batch; activations are never stored.",
        f"* Normalisation: per layer, inputs and outputs divided by their RMS per element (measured on "
        f"{tr['calibration_tokens']:,} calibration tokens); folded back into the saved weights.",
    ]
    if c.affine_init:
        lines.append("* Start: skip connection and `b_dec` set to the least-squares affine map from MLP "
                     f"input to output on the calibration tokens; encoder rows = {c.enc_init_scale:g} x "
                     "decoder rows (random, unit norm).")
    lines += [
        f"* Local phase ({steps.get('local', 0)} steps): per-layer FVU loss"
        + (f" + AuxK (k_aux {c.aux_k}, coefficient {c.aux_coef:.4g}, dead after {c.dead_tokens:,} tokens, "
           f"{'every row' if not c.aux_rows else f'at most {c.aux_rows} rows per step'})"
           if c.activation == "topk" else "")
        + f"; Adam lr {c.lr:g}, warmup {c.warmup_steps} steps, cosine decay to 10% over the last "
          f"{100 * (1 - c.decay_start):.0f}%; decoder rows kept at unit norm.",
        f"* Spliced inputs: from {100 * c.splice_start:.0f}% of the local phase on, up to "
        f"{100 * c.splice_max:.0f}% of each batch runs through the model with every MLP already replaced "
        "by the current transcoders, so each layer also trains on the inputs it meets in the replacement "
        "model (target: the true MLP's output for that input).",
        f"* End-to-end phase ({steps.get('e2e', 0)} steps): KL between the model's next-token distribution "
        f"and the all-spliced model's ({c.e2e_kl_positions} positions per sequence), back-propagated "
        f"through the frozen model into every transcoder, plus {c.e2e_local_coef:g} x the local FVU loss "
        f"on clean inputs; lr {c.lr * c.e2e_lr_scale:g}.",
    ]
    return "\n".join(lines)


def reproduce_command(c: TrainConfig) -> str:
    amount = f"--tokens {c.tokens}" if c.tokens is not None else f"--budget {int(c.budget_s)}s"
    skip = "--skip" if c.skip else "--no-skip"
    return (f"glassbox transcoders train --model {c.model} --corpus {c.corpus} -o OUT "
            f"--features {c.n_features} --activation {c.activation} --k {c.k} {skip} {amount} "
            f"--batch-size {c.batch_size} --lr {c.lr:g} --seed {c.seed} --e2e-frac {c.e2e_frac:g} "
            f"--splice-max {c.splice_max:g}")
