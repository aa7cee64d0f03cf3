"""One forward pass for every supported decoder, with the values attribution must freeze.

We run the Hugging Face modules ourselves, layer by layer, instead of calling the model, so
that we can (1) record attention patterns and every normalisation scale, which the
replacement model freezes, and (2) swap an MLP's output for a transcoder's without hooks.
The result equals the HF model's own forward (tested on every family).

Shapes: B batch, T positions, H heads, K kv-heads, hd head size, d model width.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from glassbox.models.arch import ArchSpec, LayerModules
from glassbox.models.attention import RopeTable, attention, rotary_tables
from glassbox.models.norms import inv_rms

# An MLP override receives (layer, mlp_in (B,T,d), resid_mid (B,T,d), true contribution or
# None) and returns the tensor to add to the residual stream instead of the MLP's output.
MlpOverride = Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]


@dataclass
class LayerRecord:
    """Everything one layer computed, kept for attribution and transcoder training."""

    resid_pre: torch.Tensor  # (B, T, d)
    attn_in_inv_rms: torch.Tensor  # (B, T, 1) float32
    pattern: torch.Tensor  # (B, H, T, T) softmax weights
    attn_out_inv_rms: torch.Tensor | None  # (B, T, 1) Gemma post-attention norm
    attn_out: torch.Tensor  # (B, T, d) what attention adds to the residual
    resid_mid: torch.Tensor  # (B, T, d)
    mlp_in_inv_rms: torch.Tensor  # (B, T, 1)
    mlp_in: torch.Tensor  # (B, T, d) MLP input, after the norm gain
    mlp_raw_out: torch.Tensor | None  # (B, T, d) MLP output before a post-norm (Gemma)
    mlp_out_inv_rms: torch.Tensor | None  # (B, T, 1)
    mlp_out: torch.Tensor  # (B, T, d) what the MLP block adds to the residual (true model)
    mlp_used: torch.Tensor  # (B, T, d) what was actually added (differs under an override)


@dataclass
class ForwardResult:
    logits: torch.Tensor  # (B, T_out, V) after any final soft-cap
    embeddings: torch.Tensor  # (B, T, d) token embeddings as they enter the residual stream
    final_resid: torch.Tensor  # (B, T, d)
    final_inv_rms: torch.Tensor  # (B, T, 1)
    layers: list[LayerRecord] = field(default_factory=list)


def run_layer(
    mods: LayerModules,
    resid: torch.Tensor,
    rope: RopeTable,
    spec: ArchSpec,
    layer: int,
    mlp_override: MlpOverride | None,
) -> LayerRecord:
    """One decoder layer on resid (B, T, d), every intermediate value and norm scale recorded."""
    eps = spec.norm_eps
    attn_in_inv = inv_rms(resid, eps)
    attn_out, pattern = attention(mods.attn, mods.attn_norm(resid), rope, spec, layer)
    attn_out_inv = None
    if mods.attn_out_norm is not None:
        attn_out_inv = inv_rms(attn_out, eps)
        attn_out = mods.attn_out_norm(attn_out)
    resid_mid = resid + attn_out

    mlp_in_inv = inv_rms(resid_mid, eps)
    mlp_in = mods.mlp_norm(resid_mid)
    raw = mods.mlp(mlp_in)
    raw_out, out_inv, mlp_out = None, None, raw
    if mods.mlp_out_norm is not None:
        raw_out, out_inv = raw, inv_rms(raw, eps)
        mlp_out = mods.mlp_out_norm(raw)
    used = mlp_out if mlp_override is None else mlp_override(layer, mlp_in, resid_mid, mlp_out)
    return LayerRecord(
        resid_pre=resid,
        attn_in_inv_rms=attn_in_inv,
        pattern=pattern,
        attn_out_inv_rms=attn_out_inv,
        attn_out=attn_out,
        resid_mid=resid_mid,
        mlp_in_inv_rms=mlp_in_inv,
        mlp_in=mlp_in,
        mlp_raw_out=raw_out,
        mlp_out_inv_rms=out_inv,
        mlp_out=mlp_out,
        mlp_used=used,
    )


def unembed(hf_model: torch.nn.Module, final: torch.Tensor, spec: ArchSpec, *,
            softcap: bool = True) -> torch.Tensor:
    """Logits (.., V) of final normalised residuals (.., d); softcap=False skips Gemma 2's soft-cap."""
    logits = hf_model.lm_head(final)
    if softcap and spec.final_softcap is not None:
        logits = torch.tanh(logits / spec.final_softcap) * spec.final_softcap
    return logits


@torch.no_grad()
def run_forward(
    model: LoadedModelLike,
    tokens: torch.Tensor,
    *,
    mlp_override: MlpOverride | None = None,
    keep_layers: bool = True,
    logits_at: str = "all",
    stop_after_layer: int | None = None,
) -> ForwardResult:
    """Run the model on tokens (B, T); optionally replace MLP outputs; record every layer.

    logits_at: "all" positions, "last" position only (saves (T-1) x V floats), or "none".
    stop_after_layer: skip later layers and the unembedding (used when only MLP
    activations of early layers are needed).
    """
    spec = model.spec
    dec = model.decoder
    embeddings = dec.embed_tokens(tokens)  # Gemma's module already multiplies by sqrt(d)
    resid = embeddings
    ropes = rotary_tables(dec.rotary_emb, resid, spec)
    records: list[LayerRecord] = []
    last = spec.n_layers - 1 if stop_after_layer is None else stop_after_layer
    for layer in range(last + 1):
        rec = run_layer(model.layer_mods[layer], resid, ropes[spec.layer_types[layer]], spec, layer,
                        mlp_override)
        resid = rec.resid_mid + rec.mlp_used
        if keep_layers:
            records.append(rec)
    final_inv = inv_rms(resid, spec.norm_eps)
    if stop_after_layer is not None or logits_at == "none":
        logits = resid.new_zeros((resid.shape[0], 0, 0))
    else:
        final_in = resid[:, -1:] if logits_at == "last" else resid
        logits = unembed(model.hf_model, dec.norm(final_in), spec)
    return ForwardResult(logits=logits, embeddings=embeddings, final_resid=resid,
                         final_inv_rms=final_inv, layers=records)


class LoadedModelLike:  # pragma: no cover - typing aid only
    spec: ArchSpec
    decoder: torch.nn.Module
    layer_mods: list[LayerModules]
    hf_model: torch.nn.Module
