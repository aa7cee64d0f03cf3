"""Forward passes with transcoders in place of the MLPs (where they read and write: `models.hooks`).

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

from glassbox.models.attention import attention, rotary_tables
from glassbox.models.forward import LayerRecord, unembed
from glassbox.models.hooks import hooks_at, layer_hooks
from glassbox.models.loaded import LoadedModel

# A transcoder for one layer in raw units: input-hook value (..., d) -> output-hook value (..., d).
LayerFn = Callable[[torch.Tensor], torch.Tensor]


def record_io(model: LoadedModel, layer: int, rec: LayerRecord, input_hook: str,
              output_hook: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(transcoder input, target) of one layer's record, (B, T, d) each."""
    hooks = hooks_at(model, layer, input_hook, output_hook)
    return hooks.read_record(rec), hooks.target(rec)


def splice_override(model: LoadedModel, fns: Sequence[LayerFn | None], *, input_hook: str,
                    output_hook: str, rows: torch.Tensor | None = None):
    """An mlp_override splicing fns[l] into every layer l with fns[l] set, for `rows` (bool (B,)) only."""
    hooks = layer_hooks(model, input_hook, output_hook)

    def override(layer: int, mlp_in: torch.Tensor, resid_mid: torch.Tensor,
                 true_out: torch.Tensor | None) -> torch.Tensor:
        fn = fns[layer]
        if fn is None:
            return true_out
        h = hooks[layer]
        out = h.write(fn(h.read(resid_mid, mlp_in=mlp_in))).to(true_out.dtype)
        keep = torch.zeros(out.shape[:2], dtype=torch.bool, device=out.device)
        keep[:, 0] = True  # BOS keeps the true MLP output
        if rows is not None:
            keep |= ~rows.to(out.device)[:, None]
        return torch.where(keep[..., None], true_out, out)

    return override


def spliced_forward(model: LoadedModel, tokens: torch.Tensor, fns: Sequence[LayerFn], *, input_hook: str,
                    output_hook: str) -> torch.Tensor:
    """Final residual stream (B, T, d) with every MLP replaced (but at BOS), differentiable in fns."""
    spec, dec = model.spec, model.decoder
    hooks = layer_hooks(model, input_hook, output_hook)
    resid = dec.embed_tokens(tokens)  # (B, T, d)
    ropes = rotary_tables(dec.rotary_emb, resid, spec)
    for layer in range(spec.n_layers):
        mods, h = model.layer_mods[layer], hooks[layer]
        attn_out, _ = attention(mods.attn, mods.attn_norm(resid), ropes[spec.layer_types[layer]], spec, layer)
        if mods.attn_out_norm is not None:
            attn_out = mods.attn_out_norm(attn_out)
        resid_mid = resid + attn_out
        out = h.write(fns[layer](h.read(resid_mid)[:, 1:])).to(resid.dtype)  # (B, T-1, d)
        with torch.no_grad():
            bos = h.block_out(mods.mlp_norm(resid_mid[:, :1]))  # the true MLP block at BOS
        resid = resid_mid + torch.cat([bos, out], dim=1)
    return resid


def logits_at(model: LoadedModel, final_resid: torch.Tensor) -> torch.Tensor:
    """Logits (float32) from final residuals (..., d): final norm, unembedding, soft-cap."""
    return unembed(model.hf_model, model.decoder.norm(final_resid), model.spec).float()
