"""Causal self-attention, written once for every live pass: the recorded forward, training's
spliced forward and the replacement model's runs, incremental generation included.

The layer's own Hugging Face projections, q/k norms and rotary embedding do the work, so the
numbers match the reference implementation. What this adds is what attribution and
interventions need: the softmax pattern is returned, query rows of a recorded prompt can be
held at their recorded pattern, and a K/V cache lets a pass continue a sequence.

Shapes: B batch, n query positions in this pass (absolute positions start..start+n-1),
S key positions (cached + this pass), H heads, K kv-heads, hd head size, d model width.
"""

from __future__ import annotations

import torch
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

from glassbox.models.arch import ArchSpec

RopeTable = tuple[torch.Tensor, torch.Tensor]  # cos, sin: (B, n, hd)


def rotary_tables(rotary: torch.nn.Module, x: torch.Tensor, spec: ArchSpec, *,
                  start: int = 0) -> dict[str, RopeTable]:
    """cos/sin of positions start..start+n-1 for x (B, n, d), per layer type (Gemma 3 has two)."""
    B, n = x.shape[:2]
    position_ids = torch.arange(start, start + n, device=x.device)[None].expand(B, n)
    if spec.rotary_per_layer_type:
        return {lt: rotary(x, position_ids, lt) for lt in set(spec.layer_types)}
    table = rotary(x, position_ids)
    return {lt: table for lt in set(spec.layer_types)}


def causal_mask(q_pos: torch.Tensor, k_pos: torch.Tensor, window: int | None) -> torch.Tensor:
    """(n, S) True where the query at absolute position q_pos may attend to the key at k_pos."""
    allowed = k_pos[None, :] <= q_pos[:, None]
    if window is not None:
        allowed &= (q_pos[:, None] - k_pos[None, :]) < window
    return allowed


class KVCache:
    """Per-layer keys (after rotary) and values of every position run so far."""

    def __init__(self, n_layers: int) -> None:
        self.keys: list[torch.Tensor | None] = [None] * n_layers  # (B, K, S, hd)
        self.values: list[torch.Tensor | None] = [None] * n_layers  # (B, K, S, hd)

    @property
    def length(self) -> int:
        return 0 if self.keys[0] is None else int(self.keys[0].shape[2])

    def extend(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append this pass's (B, K, n, hd) keys and values; return all of them (B, K, S, hd)."""
        if self.keys[layer] is not None:
            k = torch.cat([self.keys[layer], k], dim=2)
            v = torch.cat([self.values[layer], v], dim=2)
        self.keys[layer], self.values[layer] = k, v
        return k, v


def attention(attn: torch.nn.Module, x: torch.Tensor, rope: RopeTable, spec: ArchSpec, layer: int, *,
              start: int = 0, cache: KVCache | None = None,
              held: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Output (B, n, d) and pattern (B, H, n, S) of attention on the normalised input x (B, n, d).

    start: absolute position of x's first row. cache: keys and values of the positions before
    `start`, extended in place. held: a recorded pattern (1, H, T0, T0); query rows inside the
    recorded prompt (positions < T0) use it instead of their own.
    """
    q, k, v = _project(attn, x, rope, spec)
    if cache is not None:
        k, v = cache.extend(layer, k, v)  # (B, K, S, hd)
    pattern = _softmax_pattern(q, k, spec, spec.window(layer), start)
    if held is not None:
        pattern = _hold_rows(pattern, held, start)
    return attn.o_proj(mix_values(pattern, v, spec)), pattern


def mix_values(pattern: torch.Tensor, v: torch.Tensor, spec: ArchSpec) -> torch.Tensor:
    """The heads' outputs before o_proj: pattern (B, H, n, S) applied to values (B, K, S, hd)."""
    B, H, n, _ = pattern.shape
    v = v.repeat_interleave(spec.n_heads // spec.n_kv_heads, dim=1)  # (B, H, S, hd)
    return (pattern @ v).transpose(1, 2).reshape(B, n, H * spec.head_dim)  # (B, n, H*hd)


def _project(attn: torch.nn.Module, x: torch.Tensor, rope: RopeTable,
             spec: ArchSpec) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Queries (B, H, n, hd), keys (B, K, n, hd) after q/k norms and rotary, values (B, K, n, hd)."""
    B, n, _ = x.shape
    q = attn.q_proj(x).view(B, n, spec.n_heads, spec.head_dim)
    k = attn.k_proj(x).view(B, n, spec.n_kv_heads, spec.head_dim)
    v = attn.v_proj(x).view(B, n, spec.n_kv_heads, spec.head_dim).transpose(1, 2)  # (B, K, n, hd)
    if spec.qk_norm:
        q, k = attn.q_norm(q), attn.k_norm(k)
    q, k = q.transpose(1, 2), k.transpose(1, 2)  # (B, H, n, hd), (B, K, n, hd)
    cos, sin = rope
    q, k = apply_rotary_pos_emb(q, k, cos, sin)
    return q, k, v


def _softmax_pattern(q: torch.Tensor, k: torch.Tensor, spec: ArchSpec, window: int | None,
                     start: int) -> torch.Tensor:
    """Softmax weights (B, H, n, S): scaled, soft-capped (Gemma 2), causally masked scores."""
    n, S = q.shape[2], k.shape[2]
    k = k.repeat_interleave(spec.n_heads // spec.n_kv_heads, dim=1)  # (B, H, S, hd)
    scores = (q @ k.transpose(-1, -2)) * spec.attn_scale  # (B, H, n, S)
    if spec.attn_softcap is not None:
        scores = torch.tanh(scores / spec.attn_softcap) * spec.attn_softcap
    q_pos = torch.arange(start, start + n, device=q.device)
    allowed = causal_mask(q_pos, torch.arange(S, device=q.device), window)
    scores = scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)
    softmax_dtype = torch.promote_types(torch.float32, q.dtype)  # fp32, or fp64 in tests
    return torch.softmax(scores, dim=-1, dtype=softmax_dtype).to(q.dtype)


def _hold_rows(pattern: torch.Tensor, held: torch.Tensor, start: int) -> torch.Tensor:
    """The pattern (B, H, n, S) with the query rows of the recorded prompt set to `held`."""
    T0 = held.shape[-1]
    rows = min(pattern.shape[2], T0 - start)  # query rows inside the recorded prompt
    if rows <= 0:
        return pattern
    pattern = pattern.clone()
    pattern[:, :, :rows] = 0
    pattern[:, :, :rows, :T0] = held[:, :, start:start + rows, :T0]
    return pattern
