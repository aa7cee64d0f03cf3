"""The per-layer file formats circuit-tracer reads, recognised by their content, and their
conversion to circuit-tracer's own layout (the one Glassbox memory-maps).

| format          | file                        | tensors (shapes; d = d_model, f = features)            |
|-----------------|-----------------------------|--------------------------------------------------------|
| circuit-tracer  | layer_{i}.safetensors       | W_enc (f,d), W_dec (f,d), b_enc, b_dec, optional        |
|                 |                             | W_skip (d,d) applied x @ W_skip.T, threshold            |
| circuit-tracer  | W_enc_{i}, W_dec_{i}        | W_enc_i (f,d), b_enc_i, b_dec_i, threshold_i;           |
| (cross-layer)   | .safetensors                | W_dec_i (f, n_layers - i, d)                            |
| GemmaScope      | params.npz                  | W_enc (d,f), W_dec (f,d), b_enc, b_dec, threshold       |
| GemmaScope-2    | params.safetensors          | w_enc (d,f), w_dec (f,d) or, cross-layer, (f,L,d),      |
|                 |                             | b_enc, b_dec, threshold, optional affine_skip_connection |
|                 |                             | (d,d) applied x @ affine_skip_connection                |
| SAELens         | cfg.json +                  | W_enc (d,f), W_dec (f,d), b_enc, b_dec, optional        |
|                 | sae_weights.safetensors     | threshold, W_skip (d,d) applied x @ W_skip.T            |

GemmaScope and GemmaScope-2 are JumpReLU: a = z * (z > threshold). SAELens' JumpReLU is
relu(z) * (z > threshold), which is the same gate with the threshold raised to at least 0.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from glassbox.errors import TranscoderError
from glassbox.models.hooks import BLOCK_OUT, LN2_NORMALIZED, MLP_IN, RESID_MID
from glassbox.transcoders.arrays import (
    StoredArray,
    npz_arrays,
    out_tensor,
    safetensors_arrays,
    write_safetensors,
)
from glassbox.transcoders.lazy import read_header

CIRCUIT_TRACER = "circuit-tracer"
CT_CLT_ENCODER = "circuit-tracer-clt-encoder"
CT_CLT_DECODER = "circuit-tracer-clt-decoder"
GEMMASCOPE = "gemmascope"
GEMMASCOPE_2 = "gemmascope-2"
SAELENS = "saelens"

# Hooks each native format was trained on, in circuit-tracer's names (used without config.yaml).
DEFAULT_HOOKS = {
    GEMMASCOPE: (LN2_NORMALIZED, BLOCK_OUT),  # as circuit-tracer's GemmaScope config.yaml
    GEMMASCOPE_2: (MLP_IN, BLOCK_OUT),  # pre_feedforward_layernorm's output -> post's output
    CIRCUIT_TRACER: (MLP_IN, BLOCK_OUT),
    CT_CLT_ENCODER: (RESID_MID, BLOCK_OUT),
}
SAELENS_ARCHITECTURES = ("transcoder", "skip_transcoder", "jumprelu_transcoder",
                         "jumprelu_skip_transcoder")


def sniff(path: Path) -> str:
    """Which format a layer file is in, from its first bytes and tensor names."""
    with path.open("rb") as f:
        magic = f.read(2)
    if magic == b"PK":
        return GEMMASCOPE
    keys = set(_header_keys(path))
    if "w_enc" in keys:
        return GEMMASCOPE_2
    if "W_enc" in keys:
        return CIRCUIT_TRACER
    if any(re.fullmatch(r"W_enc_\d+", k) for k in keys):
        return CT_CLT_ENCODER
    if any(re.fullmatch(r"W_dec_\d+", k) for k in keys):
        return CT_CLT_DECODER
    raise TranscoderError(
        f"{path}: not a transcoder file in a layout circuit-tracer reads (tensors {sorted(keys)})")


def _header_keys(path: Path) -> list[str]:
    try:
        header, _ = read_header(path)
    except TranscoderError:
        raise TranscoderError(f"{path} is not a safetensors file nor an .npz archive") from None
    return [k for k in header if k != "__metadata__"]


def link_or_copy(src: Path, dst: Path) -> None:
    """Put `src` at `dst` without a second copy on disk when possible (a hard link to the
    resolved file survives the hub cache being cleaned), else copy it."""
    src = src.resolve()
    dst.unlink(missing_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


# ---- per-layer conversion -------------------------------------------------------------------

def _need(arrays: dict[str, StoredArray], names: list[str], path: Path) -> None:
    for n in names:
        if n not in arrays:
            raise TranscoderError(f"{path.name} lacks tensor {n!r} (has {sorted(arrays)})")


def _expect(path: Path, name: str, arr: StoredArray, shape: tuple[int, ...]) -> None:
    if arr.shape != shape:
        raise TranscoderError(f"{path}: {name} has shape {arr.shape}, expected {shape}")


def _encoder_dims(path: Path, w_enc: StoredArray) -> tuple[int, int]:
    """(d_model, features) of an encoder stored as (d_model, features)."""
    if w_enc.ndim != 2:
        raise TranscoderError(f"{path}: encoder has shape {w_enc.shape}, expected (d_model, features)")
    return w_enc.shape


def convert_gemmascope(src: Path, out: Path) -> None:
    """GemmaScope params.npz -> circuit-tracer layer file."""
    a = npz_arrays(src)
    _need(a, ["W_enc", "W_dec", "b_enc", "b_dec", "threshold"], src)
    _write_plt(src, out, a, names=("W_enc", "W_dec", "b_enc", "b_dec", "threshold"), skip=None,
               fmt=GEMMASCOPE)


def convert_gemmascope_2(src: Path, out: Path) -> None:
    """GemmaScope-2 params.safetensors (per-layer) -> circuit-tracer layer file."""
    a = safetensors_arrays(src)
    _need(a, ["w_enc", "w_dec", "b_enc", "b_dec", "threshold"], src)
    skip = a.get("affine_skip_connection")
    # x @ affine == x @ W_skip.T  =>  W_skip = affine.T
    _write_plt(src, out, a, names=("w_enc", "w_dec", "b_enc", "b_dec", "threshold"),
               skip=None if skip is None else out_tensor("W_skip", skip, transpose=True),
               fmt=GEMMASCOPE_2)


def convert_saelens(cfg_path: Path, src: Path, out: Path) -> dict[str, Any]:
    """SAELens transcoder folder -> circuit-tracer layer file; returns its cfg.json."""
    cfg = read_saelens_cfg(cfg_path)
    a = safetensors_arrays(src)
    _need(a, ["W_enc", "W_dec", "b_enc", "b_dec"], src)
    skip = a.get("W_skip")
    threshold = a.get("threshold")
    if "jumprelu" in cfg["architecture"] and threshold is None:
        raise TranscoderError(f"{src.name} lacks tensor 'threshold' for a {cfg['architecture']}")
    if threshold is not None:  # relu(z) * (z > t)  ==  z * (z > max(t, 0))
        threshold = _clamped_at_zero(threshold)
    arrays = {**a, "threshold": threshold} if threshold is not None else a
    names = ("W_enc", "W_dec", "b_enc", "b_dec", "threshold" if threshold is not None else None)
    _write_plt(src, out, arrays, names=names,
               skip=None if skip is None else out_tensor("W_skip", skip), fmt=SAELENS)
    return cfg


def _write_plt(src: Path, out: Path, a: dict[str, StoredArray], *, names: tuple, skip, fmt: str) -> None:
    enc, dec, b_enc, b_dec, thr = names
    d, f = _encoder_dims(src, a[enc])
    _expect(src, dec, a[dec], (f, d))
    _expect(src, b_enc, a[b_enc], (f,))
    _expect(src, b_dec, a[b_dec], (d,))
    tensors = [out_tensor("W_enc", a[enc], transpose=True), out_tensor("W_dec", a[dec]),
               out_tensor("b_enc", a[b_enc]), out_tensor("b_dec", a[b_dec])]
    if thr is not None:
        _expect(src, thr, a[thr], (f,))
        tensors.append(out_tensor("activation_function.threshold", a[thr]))
    if skip is not None:
        if skip.shape != (d, d):
            raise TranscoderError(f"{src}: skip connection has shape {skip.shape}, expected {(d, d)}")
        tensors.append(skip)
    write_safetensors(out, tensors, {"converted_from": fmt})


def gemmascope_2_clt_layers(src: Path) -> int:
    """How many layers a GemmaScope-2 cross-layer file writes to (0 for a per-layer file)."""
    if sniff(src) != GEMMASCOPE_2:
        return 0
    w_dec = safetensors_arrays(src).get("w_dec")
    return w_dec.shape[1] if w_dec is not None and w_dec.ndim == 3 else 0


def convert_gemmascope_2_clt(src: Path, layer: int, enc_out: Path, dec_out: Path) -> None:
    """Layer `layer` of a GemmaScope-2 cross-layer set -> W_enc_{layer} and W_dec_{layer}."""
    a = safetensors_arrays(src)
    _need(a, ["w_enc", "w_dec", "b_enc", "b_dec", "threshold"], src)
    d, f = _encoder_dims(src, a["w_enc"])
    w_dec = a["w_dec"]
    if w_dec.ndim != 3 or w_dec.shape[0] != f or w_dec.shape[2] != d or w_dec.shape[1] <= layer:
        raise TranscoderError(f"{src}: w_dec has shape {w_dec.shape}, expected ({f}, n_layers, {d}) "
                              f"with n_layers > {layer}")
    for name, shape in (("b_enc", (f,)), ("b_dec", (d,)), ("threshold", (f,))):
        _expect(src, name, a[name], shape)
    i = layer
    enc = [out_tensor(f"W_enc_{i}", a["w_enc"], transpose=True), out_tensor(f"b_enc_{i}", a["b_enc"]),
           out_tensor(f"b_dec_{i}", a["b_dec"]), out_tensor(f"threshold_{i}", a["threshold"])]
    if "affine_skip_connection" in a:  # circuit-tracer's CLT files apply x @ W_skip_i
        skip = a["affine_skip_connection"]
        _expect(src, "affine_skip_connection", skip, (d, d))
        enc.append(out_tensor(f"W_skip_{i}", skip))
    write_safetensors(enc_out, enc, {"converted_from": GEMMASCOPE_2})
    write_safetensors(dec_out, [out_tensor(f"W_dec_{i}", w_dec, index=(slice(None), slice(i, None)))],
                      {"converted_from": GEMMASCOPE_2})


# ---- SAELens configs ------------------------------------------------------------------------

def read_saelens_cfg(path: Path) -> dict[str, Any]:
    """A SAELens cfg.json, checked to describe an MLP transcoder Glassbox can run as is."""
    try:
        cfg = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise TranscoderError(f"cannot read {path}: {exc}") from None
    arch = cfg.get("architecture")
    if arch not in SAELENS_ARCHITECTURES:
        raise TranscoderError(f"{path}: architecture {arch!r} is not a transcoder; supported: "
                              f"{', '.join(SAELENS_ARCHITECTURES)}")
    if cfg.get("normalize_activations", "none") not in ("none", None):
        raise TranscoderError(f"{path}: normalize_activations={cfg['normalize_activations']!r} "
                              "is not supported (fold the scaling into the weights first)")
    if cfg.get("apply_b_dec_to_input"):
        raise TranscoderError(f"{path}: apply_b_dec_to_input is not supported for transcoders")
    if cfg.get("d_out", cfg.get("d_in")) != cfg.get("d_in"):
        raise TranscoderError(f"{path}: d_in {cfg.get('d_in')} != d_out {cfg.get('d_out')}")
    return cfg


def saelens_field(cfg: dict[str, Any], key: str) -> Any:
    """A field SAELens keeps in `metadata` (newer files) or at the top level (older ones)."""
    meta = cfg.get("metadata") or {}
    return meta.get(key) if meta.get(key) is not None else cfg.get(key)


def saelens_layer(cfg: dict[str, Any], path: Path) -> int:
    hook = saelens_field(cfg, "hook_name") or ""
    m = re.match(r"blocks\.(\d+)\.", hook)
    if m:
        return int(m.group(1))
    layer = saelens_field(cfg, "hook_layer")
    if layer is None:
        raise TranscoderError(f"{path}: cannot tell the layer (hook_name {hook!r}, no hook_layer)")
    return int(layer)


def saelens_hooks(cfg: dict[str, Any]) -> tuple[str, str]:
    """circuit-tracer hook names for a SAELens transcoder's TransformerLens hooks."""
    def short(name: str | None, default: str) -> str:
        name = re.sub(r"^blocks\.\d+\.", "", name or default)
        return RESID_MID if name == "hook_mlp_in" else name  # TransformerLens: == resid_mid
    return (short(saelens_field(cfg, "hook_name"), LN2_NORMALIZED),
            short(saelens_field(cfg, "hook_name_out"), BLOCK_OUT))


def _clamped_at_zero(arr: StoredArray) -> StoredArray:
    """max(arr, 0), in the array's own storage dtype (bf16 travels as raw uint16)."""
    import torch

    t = torch.from_numpy(np.array(arr.values))
    if arr.st_dtype == "BF16":
        t = t.view(torch.bfloat16)
    clamped = t.clamp(min=0)
    if arr.st_dtype == "BF16":
        clamped = clamped.view(torch.uint16)
    values = clamped.numpy()
    return StoredArray(arr.shape, arr.st_dtype, lambda: values)
