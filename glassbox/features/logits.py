"""Top and bottom output logits of each feature's decoder direction, demeaned over the vocabulary.

Convention (the same direction attribution injects into a logit, see FACTS.md):

    u_f      = direction_f * g               g: the final norm's gain (1 + w for Gemma)
    logit_fv = u_f . W_U[v] - mean_v' (u_f . W_U[v'])      (before any final soft-cap)

direction_f is what one unit of the feature adds to the residual stream: its decoder row for a
PLT whose output hook is `hook_mlp_out`; the row times the post-MLP norm gain when the output
hook sits before that norm (`mlp.hook_out` on Gemma); the sum over output layers of a CLT's
decoder rows. Positive scales that depend on the position (the final norm's 1/RMS, the post-MLP
norm's 1/RMS) are left out: they do not change the ranking. Demeaning subtracts a constant per
feature, so it does not change the ranking either; it makes values comparable across features.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from glassbox.models.hooks import hooks_at
from glassbox.models.loaded import LoadedModel
from glassbox.models.norms import norm_gain
from glassbox.transcoders.base import TranscoderSet


@dataclass
class LogitTable:
    top_ids: torch.Tensor  # (N, n) int64, largest demeaned logit first
    top_values: torch.Tensor  # (N, n) float32
    bottom_ids: torch.Tensor  # (N, n) int64, most negative first
    bottom_values: torch.Tensor  # (N, n) float32


def feature_directions(model: LoadedModel, transcoders: TranscoderSet, layer: int) -> torch.Tensor:
    """(F, d) float32 residual-stream write of one unit of each feature of `layer`."""
    feats = torch.arange(transcoders.d_transcoder)
    rows = transcoders.decoder_rows(layer, feats).float().cpu()  # (F, n_out, d)
    direction = rows.sum(dim=1)  # a PLT has n_out = 1; a CLT writes to every later layer
    gain = hooks_at(model, layer, transcoders.input_hook, transcoders.output_hook).write_gain()
    if gain is not None and transcoders.kind == "plt":  # the row passes through the post-MLP norm
        direction = direction * gain.float().cpu()
    return direction


def unembedding_inputs(model: LoadedModel, directions: torch.Tensor) -> torch.Tensor:
    """(N, d) directions as the unembedding sees them: through the final norm's gain."""
    gain = norm_gain(model.decoder.norm, model.spec).float().cpu()  # (d,)
    return directions.float() * gain


def top_bottom_logits(model: LoadedModel, directions: torch.Tensor, *, n: int,
                      vocab_chunk: int = 16384, feature_chunk: int = 512) -> LogitTable:
    """Demeaned top/bottom-n logits of each direction (N, d); ids -1 for a zero direction.

    With a bf16/fp16 unembedding, candidates (4n per side) are found with a matmul in that dtype
    (2-3x faster on CPU) and re-ranked exactly in float32; otherwise the product is exact.
    """
    W_U = model.unembedding.detach()  # (V, d)
    V = W_U.shape[0]
    n = min(n, V)
    u = unembedding_inputs(model, directions)  # (N, d) float32
    fast = W_U.dtype in (torch.bfloat16, torch.float16)
    m = min(V, 4 * n) if fast else n
    tables = [_extremes(u[i: i + feature_chunk], W_U, n=n, m=m, chunk=vocab_chunk)
              for i in range(0, u.shape[0], feature_chunk)]
    table = LogitTable(*(torch.cat([getattr(t, name) for t in tables]) for name in
                         ("top_ids", "top_values", "bottom_ids", "bottom_values")))
    shift = (u.double() @ _mean_row(W_U, vocab_chunk).double()).float()[:, None]  # (N, 1) mean logit
    table.top_values -= shift
    table.bottom_values -= shift
    null = u.abs().sum(dim=1) == 0  # a zero decoder row promotes nothing
    for ids, vals in ((table.top_ids, table.top_values), (table.bottom_ids, table.bottom_values)):
        ids[null], vals[null] = -1, 0.0
    return table


def _mean_row(W_U: torch.Tensor, chunk: int) -> torch.Tensor:
    total = torch.zeros(W_U.shape[1], dtype=torch.float64)
    for i in range(0, W_U.shape[0], chunk):
        total += W_U[i: i + chunk].double().cpu().sum(dim=0)
    return (total / W_U.shape[0]).float()


def _extremes(u: torch.Tensor, W_U: torch.Tensor, *, n: int, m: int, chunk: int) -> LogitTable:
    """Top-n and bottom-n of u @ W_U.T for a chunk of features (m >= n candidates per side)."""
    uc = u.to(W_U.dtype)
    logits = torch.cat([uc @ W_U[s: s + chunk].T for s in range(0, W_U.shape[0], chunk)], dim=1)  # (c, V)
    top = logits.topk(m, dim=1).indices  # (c, m)
    bottom = (-logits).topk(m, dim=1).indices
    del logits
    t_ids, t_vals = _exact(u, W_U, top, n, largest=True)
    b_ids, b_vals = _exact(u, W_U, bottom, n, largest=False)
    return LogitTable(top_ids=t_ids, top_values=t_vals, bottom_ids=b_ids, bottom_values=b_vals)


def _exact(u: torch.Tensor, W_U: torch.Tensor, cand: torch.Tensor, n: int, *, largest: bool):
    """Exact float32 logits of candidate ids (c, m); the n best of them, best first."""
    rows = W_U[cand].float()  # (c, m, d)
    exact = torch.einsum("cd,cmd->cm", u.float(), rows)  # (c, m)
    vals, sel = exact.topk(n, dim=1, largest=largest)
    return cand.gather(1, sel), vals
