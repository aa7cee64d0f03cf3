"""Reading and writing transcoder sets.

`load_transcoders` takes a folder or a hub reference in any per-layer layout circuit-tracer
reads (its own, GemmaScope, GemmaScope-2, cross-layer sets, config.yaml with hf:// entries)
or a SAELens transcoder set. Folders already in circuit-tracer's layout are memory-mapped in
place; everything else is converted once into Glassbox's cache (see cache.py) and read from
there. circuit-tracer's layout:

PLT folder: config.yaml + layer_{i}.safetensors (W_enc (d_tc,d), W_dec (d_tc,d), b_enc, b_dec,
optional W_skip (d,d) applied as x @ W_skip.T, optional activation_function.threshold).
CLT folder: W_enc_{i}.safetensors (W_enc_i, b_enc_i, b_dec_i, optional threshold_i, W_skip_i)
and W_dec_{i}.safetensors (W_dec_i: (d_tc, n_layers - i, d)).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors import safe_open
from safetensors.torch import save_file

from glassbox.errors import TranscoderError
from glassbox.models.hooks import BLOCK_OUT, MLP_IN, RESID_MID
from glassbox.transcoders import formats as fm
from glassbox.transcoders.base import LayerWeights, TranscoderSet
from glassbox.transcoders.cache import converted
from glassbox.transcoders.lazy import DenseRows, LazyRows
from glassbox.transcoders.sources import SetPlan, Source, plan_set

log = logging.getLogger(__name__)

ACTIVATION_ALIASES = {"relu": "relu", "topk": "topk", "jumprelu": "jumprelu", "jump_relu": "jumprelu"}
# circuit-tracer zeroes <bos><start_of_turn>user\n for instruction-tuned Gemma 3 (its token ids)
GEMMA3_IT_PREFIX = (2, 105, 2364, 107)


# ---- loading -------------------------------------------------------------------------------

def load_transcoders(
    path_or_hub_id: str | Path,
    *,
    device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float32,
    lazy_decoder: bool = True,
    refresh: bool = False,
    progress: bool = True,
) -> TranscoderSet:
    """Load a PLT or CLT set from a folder or a hub reference, validating every file.

    Hub references: `owner/repo[/folder][@revision]`, `hf://...`, or circuit-tracer's aliases
    `gemma` and `llama`. The first use of a hub set (or of a folder in another layout)
    converts it into Glassbox's cache, with a progress bar when `progress`; later uses are
    offline. `refresh=True` converts again (to follow a moving branch, for instance).
    """
    src = Source.from_spec(str(path_or_hub_id))
    dev = torch.device(device) if device is not None else torch.device("cpu")
    if src.is_local:
        plan = plan_set(src)
        if _readable_in_place(src, plan):
            return _read_set(src, plan, dev, dtype, lazy_decoder)
    cached = Source(folder=converted(src, refresh=refresh, progress=progress))
    return _read_set(cached, plan_set(cached), dev, dtype, lazy_decoder)


def _readable_in_place(src: Source, plan: SetPlan) -> bool:
    """True when every layer file is already in circuit-tracer's layout on this disk."""
    if plan.saelens or plan.remote:
        return False
    if plan.kind == "clt":
        return all(len(files) == 2 for files in plan.layers)
    return all(fm.sniff(src.fetch(files[0])) == fm.CIRCUIT_TRACER for files in plan.layers)


def _read_set(src: Source, plan: SetPlan, device: torch.device, dtype: torch.dtype,
              lazy: bool) -> TranscoderSet:
    config = plan.config
    if plan.kind == "plt":
        layers = [_plt_layer(src.fetch(files[0]), device, dtype, lazy) for files in plan.layers]
    else:
        layers = [_clt_layer(i, src.fetch(enc), src.fetch(dec), device, dtype, lazy)
                  for i, (enc, dec) in enumerate(plan.layers)]
    activation, k = _activation(config, layers)
    model_name = str(config.get("model_name") or "")
    default_in = MLP_IN if plan.kind == "plt" else RESID_MID
    return TranscoderSet(
        layers,
        kind=plan.kind,
        activation=activation,
        k=k,
        input_hook=config.get("feature_input_hook", default_in),
        output_hook=config.get("feature_output_hook", BLOCK_OUT),
        name=str(config.get("scan") or src.label),
        model_name=model_name,
        ignored_prefix=ignored_prefix(model_name),
    )


def ignored_prefix(model_name: str) -> tuple[int, ...]:
    """Leading tokens held constant for a model: circuit-tracer's rule for Gemma 3 chat models
    (a model name containing 'gemma-3' and ending in '-it')."""
    name = model_name.lower()
    return GEMMA3_IT_PREFIX if "gemma-3" in name and name.endswith("-it") else ()


def _tensors(path: Path, names: list[str], optional: list[str], device, dtype) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    try:
        with safe_open(str(path), framework="pt") as f:
            keys = set(f.keys())
            for n in names:
                if n not in keys:
                    raise TranscoderError(f"{path.name} lacks tensor {n!r} (has {sorted(keys)})")
                out[n] = f.get_tensor(n).to(device=device, dtype=dtype)
            for n in optional:
                if n in keys:
                    out[n] = f.get_tensor(n).to(device=device, dtype=dtype)
    except TranscoderError:
        raise
    except Exception as exc:  # noqa: BLE001 - corrupt header, truncated file, ...
        raise TranscoderError(f"cannot read {path}: {exc}") from None
    return out


def _decoder(path: Path, name: str, lazy: bool, device, dtype) -> LazyRows | DenseRows:
    if lazy:
        return LazyRows(path, name)
    return DenseRows(_tensors(path, [name], [], device, dtype)[name])


def _plt_layer(path: Path, device, dtype, lazy: bool) -> LayerWeights:
    t = _tensors(path, ["W_enc", "b_enc", "b_dec"],
                 ["W_skip", "activation_function.threshold", "threshold"], device, dtype)
    threshold = t.get("activation_function.threshold", t.get("threshold"))
    skip = t.get("W_skip")
    log.debug("loaded PLT layer from %s", path)
    return LayerWeights(
        W_enc=t["W_enc"], b_enc=t["b_enc"], b_dec=t["b_dec"],
        W_dec=_decoder(path, "W_dec", lazy, device, dtype),
        threshold=None if threshold is None else threshold.reshape(-1),
        skip=None if skip is None else skip.T.contiguous(),  # file: x @ W_skip.T
    )


def _clt_layer(i: int, enc: Path, dec: Path, device, dtype, lazy: bool) -> LayerWeights:
    t = _tensors(enc, [f"W_enc_{i}", f"b_enc_{i}", f"b_dec_{i}"],
                 [f"threshold_{i}", f"W_skip_{i}"], device, dtype)
    threshold = t.get(f"threshold_{i}")
    return LayerWeights(
        W_enc=t[f"W_enc_{i}"], b_enc=t[f"b_enc_{i}"], b_dec=t[f"b_dec_{i}"],
        W_dec=_decoder(dec, f"W_dec_{i}", lazy, device, dtype),
        threshold=None if threshold is None else threshold.reshape(-1),
        skip=t.get(f"W_skip_{i}"),  # CLT files: x @ W_skip
    )


def _activation(config: dict[str, Any], layers: list[LayerWeights]) -> tuple[str, int | None]:
    name = str(config.get("activation", "")).lower()
    if layers[0].threshold is not None and name in ("", "jumprelu", "jump_relu"):
        return "jumprelu", None
    if not name:
        return "relu", None
    if name not in ACTIVATION_ALIASES:
        raise TranscoderError(f"config.yaml: unknown activation {name!r}")
    act = ACTIVATION_ALIASES[name]
    k = config.get("k")
    return act, (int(k) if k is not None else None)


# ---- saving --------------------------------------------------------------------------------

def save_transcoders(tset: TranscoderSet, folder: str | Path, *, extra_config: dict | None = None,
                     layout: str = "circuit-tracer") -> Path:
    """Write a set in circuit-tracer's layout (bf16/fp32 as held), with config.yaml, or in
    another tool's native layout (`layout`: gemmascope, gemmascope-2, saelens; fp32)."""
    if layout != "circuit-tracer":
        from glassbox.transcoders.layouts import write_layout

        return write_layout(tset, folder, layout)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cpu = torch.device("cpu")
    config: dict[str, Any] = {
        "model_kind": "transcoder_set" if tset.kind == "plt" else "cross_layer_transcoder",
        "model_name": tset.model_name,
        "feature_input_hook": tset.input_hook,
        "feature_output_hook": tset.output_hook,
    }
    if tset.activation == "topk":
        config.update(activation="topk", k=int(tset.k))
    elif tset.activation == "relu":
        config["activation"] = "relu"
    for i, lw in enumerate(tset.layers):
        dec = lw.W_dec.full(dtype=lw.W_enc.dtype, device=cpu).contiguous()
        if tset.kind == "plt":
            sd = {"W_enc": lw.W_enc, "b_enc": lw.b_enc, "W_dec": dec, "b_dec": lw.b_dec}
            if lw.skip is not None:
                sd["W_skip"] = lw.skip.T
            if lw.threshold is not None:
                sd["activation_function.threshold"] = lw.threshold
            save_file(_cpu(sd), str(folder / f"layer_{i}.safetensors"))
        else:
            sd = {f"W_enc_{i}": lw.W_enc, f"b_enc_{i}": lw.b_enc, f"b_dec_{i}": lw.b_dec}
            if lw.threshold is not None:
                sd[f"threshold_{i}"] = lw.threshold
            if lw.skip is not None:
                sd[f"W_skip_{i}"] = lw.skip
            save_file(_cpu(sd), str(folder / f"W_enc_{i}.safetensors"))
            save_file({f"W_dec_{i}": dec}, str(folder / f"W_dec_{i}.safetensors"))
    if tset.kind == "plt":
        config["transcoders"] = [f"layer_{i}.safetensors" for i in range(tset.n_layers)]
    config.update(extra_config or {})
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return folder


def _cpu(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous() for k, v in sd.items()}
