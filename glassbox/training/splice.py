"""Where transcoders read and write, and forward passes with transcoders in place of the MLPs.

Two spliced forwards:
- `splice_override`: an `mlp_override` for `run_forward` (no gradients) that replaces the MLP
  output of chosen batch rows by the transcoders' output, at every position but BOS. The
  records then hold the MLP inputs the spliced model produces, and `mlp_out` holds the true
  MLP's answer to them: training pairs from the distribution the transcoders meet when they
  replace the MLPs.
- `spliced_forward`: the same computation with autograd, from the tokens to the logits, for the
  end-to-end fine-tuning pass (gradients reach every layer's transcoder through the later
  layers; the model's own weights stay frozen).
BOS (position 0) always keeps the true MLP output, as circuit-tracer treats it separately.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from glassbox.models.forward import (
    LayerRecord,
    attention_output,
    attention_pattern,
    inv_rms,
    rotary_tables,
    unembed,
)
from glassbox.models.loaded import LoadedModel

# A transcoder for one layer in raw units: input-hook value (..., d) -> output-hook value (..., d).
LayerFn = Callable[[torch.Tensor], torch.Tensor]


def hook_input(model: LoadedModel, layer: int, resid_mid: torch.Tensor, mlp_in: torch.Tensor | None,
               hook: str) -> torch.Tensor:
    """The value a transcoder reads at `hook`, from the layer's resid_mid (or its MLP input)."""
    if hook == "mlp.hook_in":
        return mlp_in if mlp_in is not None else model.layer_mods[layer].mlp_norm(resid_mid)
    if hook == "ln2.hook_normalized":
        return resid_mid.float() * inv_rms(resid_mid, model.spec.norm_eps)
    return resid_mid


def record_io(model: LoadedModel, layer: int, rec: LayerRecord, input_hook: str,
              output_hook: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(transcoder input, target) of one layer's record, (B, T, d) each."""
    x = hook_input(model, layer, rec.resid_mid, rec.mlp_in, input_hook)
    y = rec.mlp_raw_out if output_hook == "mlp.hook_out" and rec.mlp_raw_out is not None else rec.mlp_out
    return x, y


def contribution(model: LoadedModel, layer: int, y: torch.Tensor, output_hook: str) -> torch.Tensor:
    """What an output-hook value adds to the residual stream (Gemma's post-norm for mlp.hook_out)."""
    norm = model.layer_mods[layer].mlp_out_norm
    if output_hook == "mlp.hook_out" and norm is not None:
        return norm(y.to(model.dtype))
    return y


def splice_override(model: LoadedModel, fns: Sequence[LayerFn | None], *, input_hook: str,
                    output_hook: str, rows: torch.Tensor | None = None):
    """An mlp_override splicing fns[l] into every layer l with fns[l] set, for `rows` (bool (B,)) only."""

    def override(layer: int, mlp_in: torch.Tensor, resid_mid: torch.Tensor,
                 true_out: torch.Tensor | None) -> torch.Tensor:
        fn = fns[layer]
        if fn is None:
            return true_out
        x = hook_input(model, layer, resid_mid, mlp_in, input_hook)
        out = contribution(model, layer, fn(x), output_hook).to(true_out.dtype)
        keep = torch.zeros(out.shape[:2], dtype=torch.bool, device=out.device)
        keep[:, 0] = True  # BOS keeps the true MLP output
        if rows is not None:
            keep |= ~rows.to(out.device)[:, None]
        return torch.where(keep[..., None], true_out, out)

    return override


def spliced_forward(model: LoadedModel, tokens: torch.Tensor, fns: Sequence[LayerFn], *, input_hook: str,
                    output_hook: str) -> torch.Tensor:
    """Final residual stream (B, T, d) with every MLP replaced (but at BOS), differentiable in fns."""
    spec = model.spec
    dec = model.decoder
    resid = dec.embed_tokens(tokens)
    ropes = rotary_tables(dec.rotary_emb, resid, spec)
    for layer in range(spec.n_layers):
        mods = model.layer_mods[layer]
        pattern, v = attention_pattern(mods.attn, mods.attn_norm(resid), ropes[spec.layer_types[layer]],
                                       spec, layer)
        attn_out = attention_output(mods.attn, pattern, v, spec)
        if mods.attn_out_norm is not None:
            attn_out = mods.attn_out_norm(attn_out)
        resid_mid = resid + attn_out
        x = hook_input(model, layer, resid_mid, None, input_hook)
        out = contribution(model, layer, fns[layer](x[:, 1:]), output_hook).to(resid.dtype)
        with torch.no_grad():
            bos = _true_mlp(model, layer, resid_mid[:, :1])
        resid = resid_mid + torch.cat([bos, out], dim=1)
    return resid


def _true_mlp(model: LoadedModel, layer: int, resid_mid: torch.Tensor) -> torch.Tensor:
    mods = model.layer_mods[layer]
    out = mods.mlp(mods.mlp_norm(resid_mid))
    return mods.mlp_out_norm(out) if mods.mlp_out_norm is not None else out


def logits_at(model: LoadedModel, final_resid: torch.Tensor) -> torch.Tensor:
    """Logits (float32) from final residuals (..., d): final norm, unembedding, soft-cap."""
    return unembed(model.hf_model, model.decoder.norm(final_resid), model.spec).float()
