"""The setup's one call into the transcoder trainer (glassbox.training): a budgeted run.

`train_transcoders` trains every layer of `model` for `budget_s` seconds, resuming from the
checkpoint a stopped run left in `<out_dir>.training`, and writes the finished set to
`out_dir` in circuit-tracer's layout (config.yaml last, so a folder with a config is whole).
It is the only place that knows the trainer's API; when the trainer is missing it fails with
one line that says how to go on without it.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

from glassbox.setup.pipeline import SetupError, StepProgress

log = logging.getLogger(__name__)


def _trainer_api() -> tuple[Any, Any, Any]:
    try:
        from glassbox.training.config import TrainConfig
        from glassbox.training.export import to_transcoder_set
        from glassbox.training.trainer import Trainer
    except ImportError as exc:
        raise SetupError(
            f"the transcoder trainer (glassbox.training) is not available ({exc}); set "
            "GLASSBOX_SETUP_TRANSCODERS to a transcoder folder or hub id to set up without training"
        ) from exc
    return TrainConfig, Trainer, to_transcoder_set


def train_transcoders(
    model: Any,
    *,
    corpus: str,
    out_dir: Path,
    budget_s: float,
    n_features: int,
    name: str,
    progress: StepProgress,
    options: dict[str, Any] | None = None,
) -> Path:
    """Train a per-layer set on `corpus` within `budget_s` seconds; returns `out_dir`.

    options: more TrainConfig fields (tests use tiny sequences and a token budget)."""
    from glassbox.transcoders.io import save_transcoders

    TrainConfig, Trainer, to_transcoder_set = _trainer_api()
    values: dict[str, Any] = {
        "model": model.name,
        "corpus": corpus,
        "n_features": n_features,
        "budget_s": budget_s,
        "checkpoint_every_s": 60.0,
    }
    values.update(options or {})
    config = TrainConfig(**values)
    work = out_dir.with_name(out_dir.name + ".training")

    def on_step(info: dict[str, Any]) -> None:
        fvu = info.get("mean_fvu")
        detail = f"training step {info.get('step')}/{info.get('total_steps')}"
        progress(float(info.get("fraction", 0.0)), detail + (f", FVU {fvu:.3f}" if fvu is not None else ""))

    log.info("training transcoders for %s into %s (budget %.0f s)", model.name, out_dir, budget_s)
    result = Trainer(config, model, work, progress=on_step).run(resume=True)
    tset = to_transcoder_set(result.stack, config, model_name=model.name, name=name)
    _save_whole(tset, out_dir, save_transcoders, extra={"scan": name})
    shutil.rmtree(work, ignore_errors=True)
    return out_dir


def _save_whole(tset: Any, out_dir: Path, save: Any, *, extra: dict[str, Any]) -> None:
    """Write into a sibling folder, then rename: `out_dir` appears complete or not at all."""
    tmp = out_dir.with_name(f".{out_dir.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    save(tset, tmp, extra_config=extra)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    os.rename(tmp, out_dir)
