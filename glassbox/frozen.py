"""The local replacement model of one prompt: the model with every attention pattern and norm
scale frozen at its value on the prompt, and each MLP output written as its value there plus
what changes through the transcoder's skip path and the writes a run adds.

    resid    = token embeddings
    per layer:
        h        = attn_in * resid                           frozen attention-input norm
        attn     = o_proj(pattern @ v_proj(h))                frozen pattern
        resid    = resid + attn_out * attn                    frozen post-attention norm (Gemma)
        x        = tc_in * resid                              the transcoder's input (by input hook)
        y        = y0 + (x - x0) @ S + writes                 y0, x0: their values on the prompt
        resid    = resid + tc_out * y + steering              frozen post-MLP norm, if y is written before it
    final    = final_scale * resid

This map is linear in the embeddings, the writes and the steering, and with none of them
changed it is the model's own forward on the prompt. `AttributionContext` takes its transpose
(rows of the adjacency matrix) and checks them against `FrozenPrompt.run`; `ReplacementModel`'s
constrained runs are `FrozenPrompt.run`. The skip path is cut at held positions (BOS), whose MLP
output is a constant (see `AttributionContext.linear_forward` for why).

Shapes: T positions, d model width, H heads, K kv-heads, hd head size, b rows of a batch,
P positions a backward sweep touches.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from glassbox.models.arch import ArchSpec
from glassbox.models.attention import mix_values
from glassbox.models.hooks import LayerHooks, layer_hooks
from glassbox.models.norms import frozen_norm, norm_gain, scale_dtype

if TYPE_CHECKING:
    from glassbox.models.forward import ForwardResult, LayerRecord
    from glassbox.models.loaded import LoadedModel
    from glassbox.transcoders.base import TranscoderSet

InputObserver = Callable[[int, torch.Tensor], None]  # (layer, transcoder input (T, d))


@dataclass
class FrozenLayer:
    """One layer of the local replacement model: frozen scales, prompt values, weights."""

    pattern: torch.Tensor  # (H, T, T)
    attn_in: torch.Tensor  # (T, d) frozen attention-input norm: h = attn_in * resid
    attn_out: torch.Tensor | None  # (T, d) Gemma post-attention norm
    tc_in: torch.Tensor  # (T, d) transcoder input: x = tc_in * resid_mid
    tc_out: torch.Tensor | None  # (T, d) residual += tc_out * y (written before a post-MLP norm)
    x0: torch.Tensor  # (T, d) transcoder input on the prompt
    y0: torch.Tensor  # (T, d) true output-hook value on the prompt
    W_V: torch.Tensor  # (K*hd, d)
    W_O: torch.Tensor  # (d, H*hd)
    v_bias: torch.Tensor | None  # (K*hd,)
    o_bias: torch.Tensor | None  # (d,)
    skip: torch.Tensor | None  # (d, d) S: the transcoder's output includes x @ S


@dataclass
class FrozenPrompt:
    """Everything the local replacement model of one prompt holds fixed."""

    spec: ArchSpec
    embeddings: torch.Tensor  # (T, d)
    layers: list[FrozenLayer]
    final: torch.Tensor  # (T, d) final norm scale
    held: int  # leading positions (BOS, or a chat prefix) whose MLP output is a constant

    @property
    def n_pos(self) -> int:
        return int(self.embeddings.shape[0])

    # ---- the forward map ---------------------------------------------------------------------
    def run(self, resid: torch.Tensor, *, writes: Sequence[torch.Tensor | None] | None = None,
            steering: Sequence[torch.Tensor | None] | None = None,
            on_input: InputObserver | None = None) -> torch.Tensor:
        """The final residual stream (1, T, d), from the residual stream (1, T, d) at the embeddings.

        writes[l] (T, d): added to layer l's output-hook value (decoder writes, error changes).
        steering[l] (T, d): added to the residual stream after layer l.
        on_input(l, x): called with every layer's transcoder input x (T, d).
        """
        for l, fl in enumerate(self.layers):
            attn = self.attention(l, frozen_norm(resid, fl.attn_in))  # (1, T, d)
            if fl.attn_out is not None:
                attn = frozen_norm(attn, fl.attn_out)
            resid_mid = resid + attn
            x = resid_mid[0].to(fl.tc_in.dtype) * fl.tc_in  # (T, d), in the scales' precision
            if on_input is not None:
                on_input(l, x)
            y = fl.y0
            if fl.skip is not None:
                y = y + self._skip_change(fl, x).to(y.dtype)
            if writes is not None and writes[l] is not None:
                y = y + writes[l]
            out = y if fl.tc_out is None else frozen_norm(y, fl.tc_out)
            resid = resid_mid + out[None]
            if steering is not None and steering[l] is not None:
                resid = resid + steering[l][None]
        return resid

    def attention(self, layer: int, h: torch.Tensor) -> torch.Tensor:
        """o_proj(pattern @ v_proj(h)) with the frozen pattern: (1, T, d) -> (1, T, d)."""
        fl, spec = self.layers[layer], self.spec
        T = h.shape[1]
        v = F.linear(h, fl.W_V, fl.v_bias).view(1, T, spec.n_kv_heads, spec.head_dim)
        v = v.transpose(1, 2)  # (1, K, T, hd)
        return F.linear(mix_values(fl.pattern[None], v, spec), fl.W_O, fl.o_bias)

    def _skip_change(self, fl: FrozenLayer, x: torch.Tensor) -> torch.Tensor:
        """(x - x0) @ S (T, d): how the skip path moves with the input; zero at held positions."""
        change = (x - fl.x0).to(fl.skip.dtype) @ fl.skip
        change[: self.held] = 0
        return change

    # ---- its transpose, for attribution -----------------------------------------------------
    def attention_vjp(self, layer: int, G: torch.Tensor, P: int) -> torch.Tensor:
        """Gradient (b, P, d) w.r.t. the normalised attention input, for G (b, P, d) at its output."""
        fl, spec = self.layers[layer], self.spec
        b = G.shape[0]
        g = G if fl.attn_out is None else G * fl.attn_out[:P]
        gz = (g @ fl.W_O).view(b, P, spec.n_heads, spec.head_dim)  # (b, P, H, hd)
        gz = gz.permute(2, 0, 1, 3)  # (H, b, P, hd)
        pat_t = fl.pattern[:, :P, :P].transpose(1, 2)  # (H, k, q)
        gv = pat_t[:, None] @ gz  # (H, b, P, hd): sum over queries of A[q, k] g_z[q]
        groups = spec.n_heads // spec.n_kv_heads
        gv = gv.view(spec.n_kv_heads, groups, b, P, spec.head_dim).sum(1)  # (K, b, P, hd)
        gv = gv.permute(1, 2, 0, 3).reshape(b, P, spec.n_kv_heads * spec.head_dim)  # (b, P, K*hd)
        return gv @ fl.W_V


# ---- recording it from a clean forward --------------------------------------------------------


def freeze(model: LoadedModel, transcoders: TranscoderSet, fwd: ForwardResult, *, dtype: torch.dtype,
           held: int, skip_dtype: torch.dtype | None = None) -> FrozenPrompt:
    """The local replacement model of the prompt a forward (batch of 1, layers kept) ran on.

    dtype: what the frozen forward runs in (patterns, weights, output-hook values); norm scales
    and transcoder inputs are kept in at least float32, as the live norms compute them.
    skip_dtype: the skip matrices' dtype (None: the transcoders' own, as `TranscoderSet.skip`
    applies them).
    """
    hooks = layer_hooks(model, transcoders.input_hook, transcoders.output_hook)
    layers = [_freeze_layer(rec, hooks[l], transcoders.layers[l].skip, dtype=dtype, skip_dtype=skip_dtype)
              for l, rec in enumerate(fwd.layers)]
    final = fwd.final_inv_rms[0] * norm_gain(model.decoder.norm, model.spec)
    return FrozenPrompt(spec=model.spec, embeddings=fwd.embeddings[0].to(dtype), layers=layers,
                        final=final.to(scale_dtype(dtype)), held=held)


def _freeze_layer(rec: LayerRecord, hooks: LayerHooks, skip: torch.Tensor | None, *, dtype: torch.dtype,
                  skip_dtype: torch.dtype | None) -> FrozenLayer:
    spec, mods, attn = hooks.spec, hooks.mods, hooks.mods.attn
    st = scale_dtype(dtype)

    def scale(inv: torch.Tensor | None, norm: torch.nn.Module | None) -> torch.Tensor | None:
        return None if norm is None else (inv[0] * norm_gain(norm, spec)).to(st)

    def weight(t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else t.to(dtype)

    mlp_inv = rec.mlp_in_inv_rms[0]  # (T, 1)
    tc_out = hooks.write_scale(None if rec.mlp_out_inv_rms is None else rec.mlp_out_inv_rms[0])
    return FrozenLayer(
        pattern=rec.pattern[0].to(dtype),
        attn_in=scale(rec.attn_in_inv_rms, mods.attn_norm),
        attn_out=scale(rec.attn_out_inv_rms, mods.attn_out_norm),
        tc_in=hooks.read_scale(mlp_inv).to(st),
        tc_out=None if tc_out is None else tc_out.to(st),
        x0=hooks.read(rec.resid_mid[0], mlp_in=rec.mlp_in[0], mlp_in_inv_rms=mlp_inv).to(st),
        y0=hooks.target(rec)[0].to(dtype),
        W_V=weight(attn.v_proj.weight),
        W_O=weight(attn.o_proj.weight),
        v_bias=weight(attn.v_proj.bias),
        o_bias=weight(attn.o_proj.bias),
        skip=None if skip is None else skip.to(skip_dtype or skip.dtype),
    )
