"""The setup's transcoders: a budgeted run of the one trainer API (glassbox.training.api).

The run works in `<out_dir>.training` and resumes from the checkpoint a stopped setup left
there; the finished set is then moved to `out_dir` in one rename, so a folder at `out_dir` is
always a whole set (the setup's "transcoders" step checks for it).
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

from firststart.pipeline import StepProgress
from glassbox.training.api import train_transcoders as train
from glassbox.training.config import TrainConfig
from glassbox.training.hardware import detect

log = logging.getLogger(__name__)

CHECKPOINT_EVERY_S = 60.0


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

    The hardware sets the batch (larger on a GPU, so the same budget buys far more tokens) and the
    CPU threads (every usable core), and the progress says which it is.
    options: more TrainConfig fields (tests use tiny sequences and a token budget)."""
    hardware = detect(model.device)
    values: dict[str, Any] = {
        "model": model.name,
        "corpus": corpus,
        "n_features": n_features,
        "budget_s": budget_s,
        "checkpoint_every_s": CHECKPOINT_EVERY_S,
        **hardware.train_options(),
    }
    config = TrainConfig(**(values | (options or {})))
    work = out_dir.with_name(out_dir.name + ".training")
    where = hardware.describe(budget_s, config.batch_size)

    def on_step(info: dict[str, Any]) -> None:
        fvu = info.get("mean_fvu")
        detail = f"{where}: step {info.get('step')}/{info.get('total_steps')}"
        progress(float(info.get("fraction", 0.0)), detail + (f", FVU {fvu:.3f}" if fvu is not None else ""))

    progress(0.0, where)
    log.info("%s: transcoders for %s into %s", where, model.name, out_dir)
    with hardware.in_use():
        train(config, work, model=model, resume=True, evaluate=False, progress=on_step, name=name)
    _publish(work, out_dir)
    return out_dir


def _publish(work: Path, out_dir: Path) -> None:
    """Move the finished set into place: `out_dir` appears complete or not at all."""
    tmp = out_dir.with_name(f".{out_dir.name}.{os.getpid()}.old")
    if out_dir.exists():
        os.rename(out_dir, tmp)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    os.rename(work, out_dir)
    shutil.rmtree(tmp, ignore_errors=True)
