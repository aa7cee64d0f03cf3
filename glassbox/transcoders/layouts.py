"""Writing a transcoder set in other tools' native layouts: GemmaScope (.npz), GemmaScope-2
(params.safetensors) and SAELens (cfg.json + sae_weights.safetensors).

For sharing sets with those tools, and for checking that reading each layout gives back the
same set (see formats.py for the tensor names and orientations).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import yaml
from safetensors.torch import save_file

from glassbox.errors import TranscoderError
from glassbox.transcoders.base import TranscoderSet

LAYOUTS = ("gemmascope", "gemmascope-2", "saelens")
_CPU = torch.device("cpu")


def write_layout(tset: TranscoderSet, folder: str | Path, layout: str, *, config: bool = True) -> Path:
    """Write `tset` into `folder` in `layout`; with `config`, also a circuit-tracer config.yaml
    listing the layer files (without it, the loader finds them by name)."""
    writers = {"gemmascope": _gemmascope, "gemmascope-2": _gemmascope_2, "saelens": _saelens}
    if layout not in writers:
        raise TranscoderError(f"unknown layout {layout!r}; use one of {LAYOUTS}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = writers[layout](tset, folder)
    if config and layout != "saelens":
        cfg = {
            "model_kind": "transcoder_set" if tset.kind == "plt" else "cross_layer_transcoder",
            "model_name": tset.model_name,
            "feature_input_hook": tset.input_hook,
            "feature_output_hook": tset.output_hook,
            "transcoders": files,
        }
        (folder / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return folder


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().to(device=_CPU, dtype=torch.float32).contiguous().numpy()


def _cpu32(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to(device=_CPU, dtype=torch.float32).contiguous()


def _require_jumprelu(tset: TranscoderSet, layout: str) -> None:
    if tset.activation != "jumprelu":
        raise TranscoderError(f"{layout} stores JumpReLU transcoders; this set is {tset.activation}")


def _gemmascope(tset: TranscoderSet, folder: Path) -> list[str]:
    """layer_{i}/width_{f}/average_l0_0/params.npz with W_enc stored (d_model, features)."""
    _require_jumprelu(tset, "GemmaScope")
    if tset.kind != "plt" or tset.has_skip:
        raise TranscoderError("GemmaScope stores per-layer transcoders without a skip connection")
    files = []
    for i, lw in enumerate(tset.layers):
        rel = f"layer_{i}/width_{tset.d_transcoder}/average_l0_0/params.npz"
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        dec = lw.W_dec.full(dtype=torch.float32, device=_CPU)
        np.savez(folder / rel, W_enc=_np(lw.W_enc.T), W_dec=_np(dec), b_enc=_np(lw.b_enc),
                 b_dec=_np(lw.b_dec), threshold=_np(lw.threshold))
        files.append(rel)
    return files


def _gemmascope_2(tset: TranscoderSet, folder: Path) -> list[str]:
    """{transcoder_all|clt}/layer_{i}_width_{f}_l0_small[_affine]/params.safetensors, lowercase
    names, encoder (d_model, features), skip as x @ affine_skip_connection; a cross-layer
    decoder is (features, n_layers, d_model) with zeros for the layers before its own."""
    _require_jumprelu(tset, "GemmaScope-2")
    files = []
    d = tset.d_model
    for i, lw in enumerate(tset.layers):
        dec = _cpu32(lw.W_dec.full(dtype=torch.float32, device=_CPU))
        if tset.kind == "clt":
            dec = torch.cat([dec.new_zeros(dec.shape[0], i, d), dec], dim=1)  # (f, L, d)
        affine = "_affine" if lw.skip is not None else ""
        rel = (f"{'clt' if tset.kind == 'clt' else 'transcoder_all'}/"
               f"layer_{i}_width_{tset.d_transcoder}_l0_small{affine}/params.safetensors")
        sd = {"w_enc": _cpu32(lw.W_enc.T), "w_dec": dec, "b_enc": _cpu32(lw.b_enc),
              "b_dec": _cpu32(lw.b_dec), "threshold": _cpu32(lw.threshold)}
        if lw.skip is not None:
            sd["affine_skip_connection"] = _cpu32(lw.skip)
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        save_file(sd, str(folder / rel))
        files.append(rel)
    return files


def _saelens(tset: TranscoderSet, folder: Path) -> list[str]:
    """layer_{i}/cfg.json + sae_weights.safetensors (W_enc (d_model, features), W_skip applied
    x @ W_skip.T), JumpReLU gating relu(z) * (z > threshold)."""
    if tset.kind != "plt" or tset.activation not in ("relu", "jumprelu"):
        raise TranscoderError("SAELens stores per-layer ReLU or JumpReLU transcoders")
    files = []
    for i, lw in enumerate(tset.layers):
        if lw.threshold is not None and bool((lw.threshold < 0).any()):
            raise TranscoderError("SAELens' JumpReLU needs thresholds >= 0")
        arch = ("jumprelu_" if lw.threshold is not None else "") + (
            "skip_transcoder" if lw.skip is not None else "transcoder")
        cfg = {"architecture": arch, "d_in": tset.d_model, "d_sae": tset.d_transcoder,
               "d_out": tset.d_model, "dtype": "float32", "device": "cpu",
               "apply_b_dec_to_input": False, "normalize_activations": "none",
               "metadata": {"model_name": tset.model_name,
                            "hook_name": f"blocks.{i}.{tset.input_hook}",
                            "hook_name_out": f"blocks.{i}.{tset.output_hook}"}}
        sd = {"W_enc": _cpu32(lw.W_enc.T), "W_dec": _cpu32(lw.W_dec.full(dtype=torch.float32, device=_CPU)),
              "b_enc": _cpu32(lw.b_enc), "b_dec": _cpu32(lw.b_dec)}
        if lw.threshold is not None:
            sd["threshold"] = _cpu32(lw.threshold)
        if lw.skip is not None:
            sd["W_skip"] = _cpu32(lw.skip.T)
        sub = folder / f"layer_{i}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / "cfg.json").write_text(json.dumps(cfg, indent=1))
        save_file(sd, str(sub / "sae_weights.safetensors"))
        files.append(f"layer_{i}/sae_weights.safetensors")
    return files
