"""Atomic checkpoints: written to a temporary file, flushed, then renamed over the old one.

A kill at any moment leaves either the previous checkpoint or the new one, never half a file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from glassbox.errors import GlassboxError

FORMAT = "glassbox-transcoder-training"
VERSION = 1
NAME = "checkpoint.pt"


def checkpoint_path(out_dir: Path) -> Path:
    return Path(out_dir) / NAME


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save({"format": FORMAT, "version": VERSION, **payload}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        data = torch.load(Path(path), map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError) as exc:
        raise GlassboxError(f"cannot read checkpoint {path}: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise GlassboxError(f"{path} is not a Glassbox transcoder-training checkpoint")
    if data.get("version") != VERSION:
        raise GlassboxError(f"{path}: checkpoint version {data.get('version')} is not supported")
    return data
