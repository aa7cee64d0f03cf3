"""How good is a transcoder set? Reconstruction, sparsity, and what splicing it in does to the model.

Definitions (BOS, position 0, is excluded from reconstruction metrics and keeps its true MLP
output whenever MLPs are replaced, as circuit-tracer treats it separately):
- FVU of a layer = sum of squared errors / sum of squared deviations of the true output from
  its mean over the evaluation tokens;
- L0 = nonzero activations per token; a feature is dead if it never fires on the eval tokens;
- CE = mean next-token cross-entropy over every predicted token (all positions but the last);
- CE loss recovered = (CE_zero - CE_spliced) / (CE_zero - CE_orig), where CE_zero has every MLP
  output zeroed (but at BOS) and CE_spliced has every MLP replaced by its transcoder at once;
- single-layer rows replace one MLP only;
- replacement / completeness scores of standard prompts come from `glassbox.trace`;
- held-out sets (`heldout`): FVU, L0, dead features and CE recovered again, on corpora built from
  sources no training corpus contains (glassbox.corpus.recipes), so a set that only fits text like
  its training data shows it;
- prompt checks: for each prompt, the original and the fully spliced model's top-1 next token and
  the probability each gives the expected token.
All transcoder math is the saved set's own (`TranscoderSet.encode/activate`), in float32.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from glassbox.errors import GlassboxError
from glassbox.models.forward import run_forward
from glassbox.models.hooks import layer_hooks
from glassbox.models.loaded import LoadedModel
from glassbox.training.data import eval_batches
from glassbox.training.splice import logits_at, splice_override
from glassbox.transcoders.base import TranscoderSet

log = logging.getLogger(__name__)

STANDARD_PROMPTS = (
    "Fact: Michael Jordan plays the sport of",
    "The capital of the state containing Dallas is",
    'The opposite of "small" is "',
)
Report = Callable[[str, float], None]


def default_checks() -> tuple[PromptCheck, ...]:
    """The featured examples' prompts and answers (glassbox.examples): a set that loses them when it
    replaces every MLP makes graphs of a model that no longer says what the real one says."""
    from glassbox.examples import FEATURED

    return tuple(PromptCheck(item.prompt, item.expected) for item in FEATURED)


def graph_prompt_set(name: str) -> tuple[str, ...]:
    """The prompts `glassbox transcoders eval` traces: "standard" (three quick ones) or "featured" (the
    ten graphs the first-start setup stores, where a user first judges a transcoder set)."""
    if name == "standard":
        return STANDARD_PROMPTS
    if name == "featured":
        from glassbox.examples import FEATURED

        return tuple(item.prompt for item in FEATURED)
    raise GlassboxError(f"unknown graph prompt set {name!r}; use standard or featured")


def heldout_corpora(names: Sequence[str], *, tokenizer: str | None = None) -> list[str]:
    """The held-out corpora, built (from Debian packages) when missing; a clear error if one cannot be."""
    from glassbox.corpus import build_corpus, find_corpus
    from glassbox.corpus.recipes import RECIPES

    out = []
    for name in names:
        if find_corpus(name) is None and not Path(name).expanduser().exists():
            if name not in RECIPES or not RECIPES[name].heldout:
                raise GlassboxError(f"{name!r} is neither a built corpus nor a held-out set "
                                    f"({', '.join(n for n, r in RECIPES.items() if r.heldout)})")
            build_corpus(name, tokenizer=tokenizer, progress=False)
        out.append(name)
    return out


@dataclass(frozen=True)
class PromptCheck:
    """A prompt and the token a model that gets it right puts next ('' when there is none)."""

    prompt: str
    expected: str = ""


class DenseTranscoders:
    """A set's layers as dense float32 callables (decoders read once), raw units in and out."""

    def __init__(self, tset: TranscoderSet, device: torch.device) -> None:
        self.tset = tset.to(device=device, dtype=torch.float32)
        self.dec = [lw.W_dec.full(dtype=torch.float32, device=device) for lw in tset.layers]
        if tset.kind != "plt":
            self.dec = [d[:, 0] for d in self.dec]  # a CLT feature's own-layer decoder (approximation)

    def acts(self, layer: int, x: torch.Tensor) -> torch.Tensor:
        return self.tset.activate(layer, self.tset.encode(layer, x.float()))

    def decode(self, layer: int, x: torch.Tensor, acts: torch.Tensor) -> torch.Tensor:
        y = acts @ self.dec[layer] + self.tset.layers[layer].b_dec
        skip = self.tset.skip(layer, x.float())
        return y if skip is None else y + skip

    def __call__(self, layer: int, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        flat = x.reshape(-1, shape[-1]).float()
        return self.decode(layer, flat, self.acts(layer, flat)).reshape(shape)

    def layer_fn(self, layer: int) -> Callable[[torch.Tensor], torch.Tensor]:
        return lambda x: self(layer, x)


@torch.no_grad()
def reconstruction_metrics(model: LoadedModel, dense: DenseTranscoders, batches: Sequence[torch.Tensor]
                           ) -> list[dict[str, Any]]:
    """Per-layer FVU, L0, dead fraction, share of negative kept values, on clean activations.

    For sets that write before a post-MLP norm (Gemma's `mlp.hook_out`), `fvu_block_out` is the FVU of
    what the block adds to the residual stream with the norm scale frozen at its true value, as
    attribution uses it.
    """
    tset, L, d = dense.tset, model.n_layers, model.d_model
    hooks = layer_hooks(model, tset.input_hook, tset.output_hook)
    acc = [_Sums(d, tset.d_transcoder) for _ in range(L)]
    for tokens in batches:
        fwd = run_forward(model, tokens.to(model.device), stop_after_layer=L - 1)
        for layer, rec in enumerate(fwd.layers):
            h = hooks[layer]
            x, y = (t[:, 1:].reshape(-1, d).float() for t in (h.read_record(rec), h.target(rec)))
            acts = dense.acts(layer, x)
            y_hat = dense.decode(layer, x, acts)
            acc[layer].add(y, y_hat, acts)
            gain = h.write_gain()
            if gain is not None:  # the post-norm output, with the true norm scale
                inv = rec.mlp_out_inv_rms[:, 1:].reshape(-1, 1).float()
                acc[layer].add_block(rec.mlp_out[:, 1:].reshape(-1, d).float(), y_hat * inv * gain)
    return [{"layer": layer, **a.result()} for layer, a in enumerate(acc)]


class _Sums:
    """Running sums for one layer's reconstruction metrics."""

    def __init__(self, d: int, d_tc: int) -> None:
        self.sse, self.sum_y2, self.n, self.nnz, self.neg = 0.0, 0.0, 0, 0, 0
        self.sum_y = torch.zeros(d, dtype=torch.float64)
        self.fired = torch.zeros(d_tc, dtype=torch.bool)
        self.block: list[float] | None = None  # sse, sum_y2 of the block output
        self.block_sum = torch.zeros(d, dtype=torch.float64)

    def add(self, y: torch.Tensor, y_hat: torch.Tensor, acts: torch.Tensor) -> None:
        self.sse += float((y_hat - y).double().pow(2).sum())
        self.sum_y += y.double().sum(0).cpu()
        self.sum_y2 += float(y.double().pow(2).sum())
        self.n += y.shape[0]
        self.nnz += int((acts != 0).sum())
        self.neg += int((acts < 0).sum())
        self.fired |= (acts != 0).any(0).cpu()

    def add_block(self, c: torch.Tensor, c_hat: torch.Tensor) -> None:
        self.block = self.block or [0.0, 0.0]
        self.block[0] += float((c_hat - c).double().pow(2).sum())
        self.block[1] += float(c.double().pow(2).sum())
        self.block_sum += c.double().sum(0).cpu()

    def result(self) -> dict[str, Any]:
        total_var = self.sum_y2 - float(self.sum_y.pow(2).sum()) / self.n
        out = {"fvu": self.sse / max(total_var, 1e-12), "l0": self.nnz / self.n,
               "dead_frac": 1.0 - float(self.fired.float().mean()),
               "frac_negative": self.neg / max(self.nnz, 1), "tokens": self.n}
        if self.block is not None:
            block_var = self.block[1] - float(self.block_sum.pow(2).sum()) / self.n
            out["fvu_block_out"] = self.block[0] / max(block_var, 1e-12)
        return out


@torch.no_grad()
def mean_ce(model: LoadedModel, batches: Sequence[torch.Tensor], override=None, *, chunk: int = 256) -> float:
    """Mean next-token cross-entropy (nats) over all predicted tokens of the batches."""
    total, count = 0.0, 0
    for tokens in batches:
        tokens = tokens.to(model.device)
        fwd = run_forward(model, tokens, mlp_override=override, keep_layers=False, logits_at="none")
        resid = fwd.final_resid[:, :-1].reshape(-1, model.d_model)
        targets = tokens[:, 1:].reshape(-1)
        for s in range(0, resid.shape[0], chunk):
            logits = logits_at(model, resid[s:s + chunk])
            total += float(F.cross_entropy(logits, targets[s:s + chunk], reduction="sum"))
        count += targets.numel()
    return total / max(count, 1)


def zero_override(layers: Sequence[int] | None = None):
    """Every MLP output (or those of `layers`) set to zero, but at BOS."""
    chosen = None if layers is None else set(layers)

    def override(layer, mlp_in, resid_mid, true_out):
        if chosen is not None and layer not in chosen:
            return true_out
        out = torch.zeros_like(true_out)
        out[:, 0] = true_out[:, 0]
        return out

    return override


def ce_metrics(model: LoadedModel, dense: DenseTranscoders, batches: Sequence[torch.Tensor], *,
               single_batches: Sequence[torch.Tensor] | None, report: Report) -> dict[str, Any]:
    tset, L = dense.tset, model.n_layers
    hooks = dict(input_hook=tset.input_hook, output_hook=tset.output_hook)
    all_fns = [dense.layer_fn(layer) for layer in range(L)]
    report("CE original", 0.0)
    orig = mean_ce(model, batches)
    report("CE zero-ablated", 0.1)
    zero = mean_ce(model, batches, zero_override())
    report("CE spliced", 0.2)
    spliced = mean_ce(model, batches, splice_override(model, all_fns, **hooks))
    out: dict[str, Any] = {"ce_orig": orig, "ce_zero_ablation": zero, "ce_spliced": spliced,
                           "ce_loss_recovered": recovered(orig, zero, spliced),
                           "ce_tokens": sum(b.shape[0] * (b.shape[1] - 1) for b in batches)}
    if single_batches:
        base = mean_ce(model, single_batches)
        rows = []
        for layer in range(L):
            report(f"CE layer {layer} spliced", 0.3 + 0.7 * layer / L)
            fns = [dense.layer_fn(layer) if i == layer else None for i in range(L)]
            ce = mean_ce(model, single_batches, splice_override(model, fns, **hooks))
            rows.append({"layer": layer, "ce": ce, "delta": ce - base})
        tokens = sum(b.shape[0] * (b.shape[1] - 1) for b in single_batches)
        out["single_layer"] = {"ce_orig": base, "tokens": tokens, "layers": rows}
    return out


@torch.no_grad()
def prompt_checks(model: LoadedModel, dense: DenseTranscoders, checks: Sequence[PromptCheck]
                  ) -> list[dict[str, Any]]:
    """Top-1 next token and the expected token's probability, original and with every MLP replaced."""
    tset = dense.tset
    override = splice_override(model, [dense.layer_fn(layer) for layer in range(model.n_layers)],
                               input_hook=tset.input_hook, output_hook=tset.output_hook)
    rows = []
    for check in checks:
        ids = model.tokenize(check.prompt)
        expected = (model.tokenizer(check.expected, add_special_tokens=False)["input_ids"] or [None])[0] \
            if check.expected else None
        row: dict[str, Any] = {"prompt": check.prompt, "expected": check.expected or None}
        for name, mlp in (("original", None), ("spliced", override)):
            logits = model.forward(ids, mlp_override=mlp, keep_layers=False, logits_at="last").logits[0, -1]
            probs = torch.softmax(logits.float(), dim=-1)
            top = int(probs.argmax())
            row[f"{name}_top1"] = model.tokenizer.decode([top])
            row[f"{name}_top1_prob"] = float(probs[top])
            row[f"{name}_expected_prob"] = None if expected is None else float(probs[int(expected)])
        row["top1_kept"] = row["original_top1"] == row["spliced_top1"]
        rows.append(row)
    return rows


def corpus_metrics(model: LoadedModel, dense: DenseTranscoders, corpus: str, *, fvu_tokens: int,
                   ce_tokens: int, seq_len: int, batch_size: int, seed: int, report: Report,
                   split: str = "test") -> dict[str, Any]:
    """FVU, L0, dead features and CE recovered with every MLP replaced, on one corpus' `split`."""
    batches = eval_batches(corpus, model.tokenizer, seq_len=seq_len, batch_size=batch_size,
                           n_tokens=max(fvu_tokens, ce_tokens), seed=seed, split=split)
    layers = reconstruction_metrics(model, dense, _take(batches, fvu_tokens))
    ce = ce_metrics(model, dense, _take(batches, ce_tokens), single_batches=None, report=report)
    return {"corpus": str(corpus), **_layer_means(layers), "per_layer": layers, **ce}


def _layer_means(layers: list[dict[str, Any]]) -> dict[str, Any]:
    mean = lambda key: sum(r[key] for r in layers) / len(layers)  # noqa: E731
    return {"mean_fvu": mean("fvu"), "mean_l0": mean("l0"), "mean_dead_frac": mean("dead_frac"),
            "mean_fvu_block_out": mean("fvu_block_out") if "fvu_block_out" in layers[0] else None}


def recovered(orig: float, zero: float, spliced: float) -> float:
    return (zero - spliced) / (zero - orig) if zero != orig else float("nan")


def graph_scores(model: LoadedModel, tset: TranscoderSet, prompts: Sequence[str], *,
                 max_feature_nodes: int | None, report: Report) -> list[dict[str, Any]]:
    from glassbox.graph.prune import influence_shares
    from glassbox.tracing import trace

    rows = []
    for i, prompt in enumerate(prompts):
        report(f"graph {i + 1}/{len(prompts)}", i / max(len(prompts), 1))
        res = trace(prompt, model=model, transcoders=tset, max_feature_nodes=max_feature_nodes)
        shares = influence_shares(res.graph)
        rows.append({"prompt": prompt, "replacement": res.replacement_score,
                     "completeness": res.completeness_score, "error_share": shares["errors"],
                     "feature_share": shares["features"], "seconds": round(res.seconds, 2),
                     "active_features": res.graph.metadata.get("n_active_features")})
    return rows


def evaluate_transcoders(
    model: LoadedModel,
    tset: TranscoderSet,
    corpus: str,
    *,
    fvu_tokens: int = 20_000,
    ce_tokens: int = 8_000,
    single_layer_tokens: int = 2_000,
    prompts: Sequence[str] = STANDARD_PROMPTS,
    heldout: Sequence[str] = (),
    heldout_tokens: int = 8_000,
    checks: Sequence[PromptCheck] = (),
    max_feature_nodes: int | None = 256,
    seq_len: int = 128,
    batch_size: int = 8,
    seed: int = 12345,
    progress: Report | None = None,
) -> dict[str, Any]:
    """Every metric of the module docstring, as one JSON-ready dict."""
    report = progress or (lambda phase, frac: None)
    tset.check_compatible(model)
    t0 = time.perf_counter()
    dense = DenseTranscoders(tset, model.device)
    n = max(fvu_tokens, ce_tokens, single_layer_tokens)
    batches = eval_batches(corpus, model.tokenizer, seq_len=seq_len, batch_size=batch_size, n_tokens=n,
                           seed=seed)
    report("reconstruction", 0.0)
    layers = reconstruction_metrics(model, dense, _take(batches, fvu_tokens))
    ce = ce_metrics(model, dense, _take(batches, ce_tokens),
                    single_batches=_take(batches, single_layer_tokens) if single_layer_tokens else None,
                    report=report)
    held: dict[str, Any] = {}
    for i, name in enumerate(heldout):
        report(f"held-out {name}", i / max(len(heldout), 1))
        held[name] = corpus_metrics(model, dense, name, fvu_tokens=heldout_tokens, ce_tokens=heldout_tokens,
                                    seq_len=seq_len, batch_size=batch_size, seed=seed, report=report)
    report("prompt checks", 0.0)
    checked = prompt_checks(model, dense, checks) if checks else []
    graphs = (graph_scores(model, tset, prompts, max_feature_nodes=max_feature_nodes, report=report)
              if prompts else [])
    return {
        "transcoders": tset.name, "model": model.name, "corpus": str(corpus),
        "model_dtype": str(model.dtype).replace("torch.", ""),
        "activation": tset.activation, "k": tset.k, "d_transcoder": tset.d_transcoder, "skip": tset.has_skip,
        "input_hook": tset.input_hook, "output_hook": tset.output_hook,
        **_layer_means(layers), "per_layer": layers, **ce, "heldout": held,
        "heldout_mean_ce_loss_recovered": (sum(h["ce_loss_recovered"] for h in held.values()) / len(held))
        if held else None,
        "heldout_mean_fvu": (sum(h["mean_fvu"] for h in held.values()) / len(held)) if held else None,
        "prompt_checks": checked,
        "prompt_top1_kept": sum(r["top1_kept"] for r in checked) if checked else None,
        "graphs": graphs,
        "mean_replacement": (sum(g["replacement"] for g in graphs) / len(graphs)) if graphs else None,
        "mean_error_share": (sum(g["error_share"] for g in graphs) / len(graphs)) if graphs else None,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def _take(batches: Sequence[torch.Tensor], n_tokens: int) -> list[torch.Tensor]:
    """The first batches holding at least n_tokens predicted tokens."""
    out, total = [], 0
    for b in batches:
        if total >= n_tokens:
            break
        out.append(b)
        total += b.shape[0] * (b.shape[1] - 1)
    return out
