"""One call from options to a finished transcoder folder: train, export, evaluate, document."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from glassbox.errors import GlassboxError
from glassbox.models.loaded import LoadedModel, load_model
from glassbox.training import report
from glassbox.training.checkpoint import checkpoint_path
from glassbox.training.config import TrainConfig
from glassbox.training.evaluate import evaluate_transcoders
from glassbox.training.export import null_features, to_transcoder_set
from glassbox.training.trainer import Progress, Trainer
from glassbox.transcoders.io import save_transcoders

log = logging.getLogger(__name__)


@dataclass
class EvalOptions:
    fvu_tokens: int = 20_000
    ce_tokens: int = 8_000
    single_layer_tokens: int = 2_000
    graphs: bool = True
    max_feature_nodes: int | None = 256
    corpus: str | None = None  # default: the training corpus' test split
    seq_len: int | None = None  # default: the training sequence length

    def kwargs(self) -> dict[str, Any]:
        from glassbox.training.evaluate import STANDARD_PROMPTS

        return {"fvu_tokens": self.fvu_tokens, "ce_tokens": self.ce_tokens,
                "single_layer_tokens": self.single_layer_tokens,
                "prompts": STANDARD_PROMPTS if self.graphs else (),
                "max_feature_nodes": self.max_feature_nodes}


@dataclass
class TrainOutcome:
    folder: Path
    finished: bool
    metrics: dict[str, Any] = field(default_factory=dict)


def prepare_output(out_dir: Path, *, resume: bool, force: bool) -> None:
    """Refuse to mix runs: an existing run needs --resume (continue) or --force (start over)."""
    ckpt = checkpoint_path(out_dir)
    existing = ckpt.is_file() or (out_dir / "config.yaml").is_file()
    if existing and not (resume or force):
        raise GlassboxError(f"{out_dir} already holds a training run or a transcoder set; use --resume to "
                            "continue it or --force to start over")
    if force and not resume and ckpt.is_file():
        ckpt.unlink()


def train_transcoders(
    config: TrainConfig,
    out_dir: str | Path,
    *,
    model: LoadedModel | None = None,
    device: str | torch.device | None = None,
    resume: bool = False,
    force: bool = False,
    evaluate: bool = True,
    eval_options: EvalOptions | None = None,
    progress: Progress | None = None,
    eval_progress: Callable[[str, float], None] | None = None,
    stop_after_steps: int | None = None,
    keep_checkpoint: bool = False,
    name: str | None = None,
) -> TrainOutcome:
    """Train a per-layer transcoder set and write it (weights, metrics.json, README.md) to out_dir.

    `name` is the set's name (config.yaml's `scan`; default: the folder's name). Without
    `resume`, an out_dir holding a run or a set is refused unless `force` is given."""
    config.validate()
    out_dir = Path(out_dir)
    name = name or out_dir.name
    prepare_output(out_dir, resume=resume, force=force)
    if model is None:
        model = load_model(config.model, dtype=config.model_dtype, device=device)
    trainer = Trainer(config, model, out_dir, progress=progress)
    result = trainer.run(resume=resume, stop_after_steps=stop_after_steps)
    if not result.finished:
        return TrainOutcome(out_dir, finished=False)
    tset = to_transcoder_set(result.stack, config, model_name=model.name, name=name, dtype=config.save_dtype)
    save_transcoders(tset, out_dir, extra_config={"scan": name})
    metrics = _metrics(config, result.state, model)
    if evaluate:
        opts = eval_options or EvalOptions()
        metrics["eval"] = evaluate_transcoders(model, tset, opts.corpus or config.corpus,
                                               seq_len=opts.seq_len or config.seq_len, progress=eval_progress,
                                               **opts.kwargs())
    files = sorted(p.name for p in out_dir.iterdir() if p.suffix == ".safetensors")
    metrics["files_sha256"] = {f: report.sha256(out_dir / f) for f in files}
    report.write_metrics(out_dir, metrics)
    listing = ["config.yaml", *files, "metrics.json", "README.md"]
    (out_dir / "README.md").write_text(report.readme(name=name, config=config, metrics=metrics,
                                                     files=listing))
    if not keep_checkpoint:
        checkpoint_path(out_dir).unlink(missing_ok=True)
    return TrainOutcome(out_dir, finished=True, metrics=metrics)


def _metrics(config: TrainConfig, state, model: LoadedModel) -> dict[str, Any]:
    return {
        "format": "glassbox-transcoder-metrics", "format_version": 1,
        "model": report.model_provenance(config.model) | {"name": model.name},
        "corpus": report.corpus_provenance(config.corpus),
        "environment": report.environment(),
        "config": config.to_dict(),
        "training": report.training_summary(state, config),
        "null_features": {"per_layer": null_features(config),
                          "why": "zero rows: circuit-tracer's TopK (keeps negatives) = trained ReLU-TopK"},
    }
