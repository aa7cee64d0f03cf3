"""`glassbox transcoders ...` commands: train a per-layer set, evaluate any set."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from glassbox.cli.common import fail_cleanly

app = typer.Typer(help="Train and evaluate transcoders.", no_args_is_help=True)
log = logging.getLogger(__name__)


def _threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


class _TrainBar:
    """tqdm bar over the run's fraction done (steps, or time for a budget), with live numbers."""

    def __init__(self, quiet: bool) -> None:
        from tqdm import tqdm

        self.bar = None if quiet else tqdm(
            total=1000, file=sys.stderr, desc="train",
            bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining} {postfix}")

    def __call__(self, info: dict[str, Any]) -> None:
        if self.bar is None:
            return
        kl = f" kl {info['kl_ema']:.3f}" if info.get("kl_ema") is not None else ""
        self.bar.set_description_str(f"train ({info['phase']})", refresh=False)
        text = (f"step {info['step']}/{info['total_steps']} {info['tokens']:,} tok "
                f"{info['tokens_per_s']:.0f} tok/s fvu {info['mean_fvu']:.3f}{kl}")
        self.bar.set_postfix_str(text, refresh=False)
        self.bar.n = int(1000 * min(1.0, info["fraction"]))
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@app.command("train")
@fail_cleanly
def train_command(
    model: Annotated[str, typer.Option("--model", "-m", help="Model: demo name, HF folder or hub id.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the transcoder set.")],
    corpus: Annotated[str, typer.Option("--corpus", "-c", help="Built corpus name or folder, text "
                                        "files or folder, or a hub dataset.")] = "offline",
    features: Annotated[int, typer.Option("--features", help="Features per layer.")] = 4096,
    activation: Annotated[str, typer.Option("--activation", help="topk, jumprelu or relu.")] = "topk",
    k: Annotated[int, typer.Option("--k", help="Active features per token (topk).")] = 48,
    skip: Annotated[bool, typer.Option("--skip/--no-skip", help="Affine skip connection.")] = True,
    tokens: Annotated[str | None, typer.Option("--tokens", help="Training tokens, e.g. 2M.")] = None,
    budget: Annotated[str | None, typer.Option("--budget", help="Training time, e.g. 15m or 2h.")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Sequences per step.")] = 16,
    seq_len: Annotated[int, typer.Option("--seq-len", help="Tokens per sequence, BOS included.")] = 128,
    lr: Annotated[float, typer.Option("--lr", help="Adam learning rate.")] = 2e-3,
    seed: Annotated[int, typer.Option("--seed", help="Seed for weights and data order.")] = 0,
    e2e_frac: Annotated[float, typer.Option("--e2e-frac", help="Share of the run for end-to-end KL "
                                            "fine-tuning (0 = off).")] = 0.0,
    splice_max: Annotated[float, typer.Option("--splice-max", help="Share of batch rows trained on "
                                              "spliced-model inputs (0 = off).")] = 0.0,
    input_hook: Annotated[str, typer.Option("--input-hook")] = "mlp.hook_in",
    output_hook: Annotated[str, typer.Option("--output-hook", help="mlp.hook_out (the MLP's own output; "
                                             "for Gemma before its post-norm) or hook_mlp_out.")
                           ] = "mlp.hook_out",
    dtype: Annotated[str, typer.Option("--dtype", help="Model dtype for the activations.")] = "bfloat16",
    save_dtype: Annotated[str, typer.Option("--save-dtype", help="float32 or bfloat16 files.")] = "float32",
    device: Annotated[str | None, typer.Option("--device", help="cpu, cuda, cuda:1 (default: GPU if any).")
                      ] = None,
    threads: Annotated[int | None, typer.Option("--threads", help="CPU threads for torch.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in OUTPUT from its checkpoint.")
                      ] = False,
    force: Annotated[bool, typer.Option("--force", help="Start over even if OUTPUT holds a run.")] = False,
    evaluate: Annotated[bool, typer.Option("--eval/--no-eval", help="Evaluate after training.")] = True,
    graphs: Annotated[bool, typer.Option("--graphs/--no-graphs", help="Trace the standard prompts in eval.")
                      ] = True,
    keep_checkpoint: Annotated[bool, typer.Option("--keep-checkpoint", help="Keep checkpoint.pt at the end.")
                               ] = False,
    checkpoint_every: Annotated[str, typer.Option("--checkpoint-every", help="Time between checkpoints.")
                                ] = "5m",
    stop_after_steps: Annotated[int | None, typer.Option("--stop-after-steps", hidden=True)] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Train per-layer transcoders on streamed activations (circuit-tracer layout, metrics, README)."""
    from glassbox.training.api import EvalOptions, train_transcoders
    from glassbox.training.config import TrainConfig, parse_count, parse_duration

    _threads(threads)
    config = TrainConfig(
        model=model, corpus=corpus, n_features=features, activation=activation, k=k, skip=skip,
        tokens=parse_count(tokens) if tokens else None, budget_s=parse_duration(budget) if budget else None,
        batch_size=batch_size, seq_len=seq_len, lr=lr, seed=seed, e2e_frac=e2e_frac, splice_max=splice_max,
        input_hook=input_hook, output_hook=output_hook, model_dtype=dtype, save_dtype=save_dtype,
        checkpoint_every_s=parse_duration(checkpoint_every),
    ).validate()
    bar = _TrainBar(quiet)
    try:
        outcome = train_transcoders(config, output, device=device, resume=resume, force=force,
                                    evaluate=evaluate, eval_options=EvalOptions(graphs=graphs), progress=bar,
                                    stop_after_steps=stop_after_steps, keep_checkpoint=keep_checkpoint)
    finally:
        bar.close()
    if not outcome.finished:
        typer.echo(f"stopped; checkpoint in {output} (continue with --resume)")
        return
    tr = outcome.metrics["training"]
    minutes = tr["seconds"] / 60
    typer.echo(f"trained {tr['tokens']:,} tokens in {minutes:.1f} min ({tr['tokens_per_s']:.0f} tok/s)")
    if "eval" in outcome.metrics:
        from glassbox.training.report import eval_text

        typer.echo(eval_text(outcome.metrics["eval"]))
    typer.echo(str(output))


@app.command("eval")
@fail_cleanly
def eval_command(
    model: Annotated[str, typer.Option("--model", "-m", help="Model: demo name, HF folder or hub id.")],
    transcoders: Annotated[str, typer.Option("--transcoders", "-t", help="Transcoder folder or hub repo.")],
    corpus: Annotated[str, typer.Option("--corpus", "-c", help="Corpus whose test split is used.")
                      ] = "offline",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="JSON file for the results (default: "
                                                "TRANSCODERS/eval.json, or ./<name>-eval.json).")] = None,
    fvu_tokens: Annotated[int, typer.Option("--fvu-tokens", help="Tokens for FVU, L0, dead features.")
                          ] = 20_000,
    ce_tokens: Annotated[int, typer.Option("--ce-tokens", help="Tokens for CE with all MLPs replaced.")
                         ] = 8_000,
    single_layer_tokens: Annotated[int, typer.Option("--single-layer-tokens",
                                                     help="Tokens for each one-layer splice (0 = skip).")
                                   ] = 2_000,
    heldout: Annotated[list[str] | None, typer.Option("--heldout", help="Held-out corpus to evaluate on too "
                       "(repeat; default: every held-out set, built when missing; see `glassbox corpus "
                       "recipes`).")] = None,
    no_heldout: Annotated[bool, typer.Option("--no-heldout", help="Only the corpus' own test split.")
                          ] = False,
    heldout_tokens: Annotated[int, typer.Option("--heldout-tokens", help="Tokens per held-out set.")] = 8_000,
    checks: Annotated[bool, typer.Option("--checks/--no-checks", help="Next-token checks on the example "
                                         "prompts, original vs every MLP replaced.")] = True,
    graphs: Annotated[bool, typer.Option("--graphs/--no-graphs", help="Trace graphs and report their "
                                         "replacement scores and error shares.")] = True,
    graph_prompts: Annotated[str, typer.Option("--graph-prompts", help="standard (three prompts) or "
                                               "featured (the setup's ten featured examples).")
                             ] = "standard",
    max_feature_nodes: Annotated[int, typer.Option("--max-feature-nodes", help="Per graph.")] = 256,
    seq_len: Annotated[int, typer.Option("--seq-len", help="Tokens per evaluation sequence.")] = 128,
    dtype: Annotated[str, typer.Option("--dtype", help="Model dtype.")] = "bfloat16",
    device: Annotated[str | None, typer.Option("--device")] = None,
    threads: Annotated[int | None, typer.Option("--threads", help="CPU threads for torch.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Per-layer FVU, L0, dead features; CE recovered (one layer, every layer) on the corpus' test split
    and on held-out text; next-token checks; graph replacement scores."""
    from glassbox.cli.common import progress_bar
    from glassbox.corpus.recipes import HELDOUT_SETS
    from glassbox.models import load_model
    from glassbox.training.evaluate import (
        default_checks,
        evaluate_transcoders,
        graph_prompt_set,
        heldout_corpora,
    )
    from glassbox.training.report import eval_text
    from glassbox.transcoders import load_transcoders

    _threads(threads)
    prompts = graph_prompt_set(graph_prompts) if graphs else ()
    loaded = load_model(model, dtype=dtype, device=device)
    tset = load_transcoders(transcoders, device=loaded.device)
    held = [] if no_heldout else heldout_corpora(heldout or HELDOUT_SETS, tokenizer=model)
    with progress_bar("eval") if not quiet else _null_progress() as report:
        result = evaluate_transcoders(loaded, tset, corpus, fvu_tokens=fvu_tokens, ce_tokens=ce_tokens,
                                      single_layer_tokens=single_layer_tokens, heldout=held,
                                      heldout_tokens=heldout_tokens,
                                      checks=default_checks() if checks else (),
                                      prompts=prompts,
                                      max_feature_nodes=max_feature_nodes, seq_len=seq_len, progress=report)
    path = output or _default_eval_path(transcoders, tset.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1))
    typer.echo(json.dumps(result, indent=1) if as_json else eval_text(result))
    typer.echo(f"saved {path}", err=True)


def _default_eval_path(transcoders: str, name: str) -> Path:
    folder = Path(transcoders).expanduser()
    if folder.is_dir() and os.access(folder, os.W_OK):
        return folder / "eval.json"
    return Path.cwd() / f"{Path(name).name or 'transcoders'}-eval.json"


class _null_progress:
    def __enter__(self):
        return lambda phase, frac: None

    def __exit__(self, *exc: object) -> None:
        return None
