"""Training losses: reconstruction (FVU), sparsity, dead-feature revival (AuxK), logit KL."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from glassbox.training.sparse import sparse_decode, topk_encode
from glassbox.training.stack import LayerOutput, TranscoderStack, step_l0


def fvu(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Squared error over the batch variance of the target: 0 perfect, 1 = predicting the mean."""
    var = (y - y.mean(0)).pow(2).sum().clamp(min=1e-12)
    return (y_hat - y).pow(2).sum() / var


def sparsity_penalty(stack: TranscoderStack, layer: int, out: LayerOutput, *, l1_coef: float,
                     l0_coef: float) -> torch.Tensor:
    """ReLU: L1 of activations weighted by decoder norms; JumpReLU: L0 (straight-through)."""
    if stack.activation == "relu":
        norms = stack.W_dec[layer].norm(dim=-1)
        return l1_coef * (out.vals * norms).sum(-1).mean()
    if stack.activation == "jumprelu":
        return l0_coef * step_l0(out.pre, stack.threshold(layer), stack.bandwidth)
    return out.y.new_zeros(())


def aux_k_loss(stack: TranscoderStack, layer: int, x: torch.Tensor, residual: torch.Tensor,
               dead: torch.Tensor, aux_k: int, compute_dtype: torch.dtype, *,
               max_rows: int | None = None) -> torch.Tensor:
    """How well the top aux_k dead features reconstruct what the live ones missed (Gao et al.).

    Only every n-th row takes part when there are more than `max_rows`: revival needs a gradient
    for the dead features, not the whole batch, and on a CPU the full batch cost as much as the
    rest of the step's encoders."""
    dead_idx = dead.nonzero().squeeze(-1)
    if dead_idx.numel() == 0:
        return residual.new_zeros(())
    if max_rows and x.shape[0] > max_rows:
        stride = -(-x.shape[0] // max_rows)
        x, residual = x[::stride], residual[::stride]
    W = stack.W_enc[layer].index_select(0, dead_idx)
    b = stack.b_enc[layer].index_select(0, dead_idx)
    vals, local = topk_encode(x, W, b, min(aux_k, dead_idx.numel()), compute_dtype=compute_dtype)
    recon = sparse_decode(vals, local, stack.W_dec[layer].index_select(0, dead_idx))
    return fvu(recon, residual)


def kl_to_teacher(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """Mean KL(teacher || student) per position, in nats."""
    t = F.log_softmax(teacher_logits.float(), dim=-1)
    s = F.log_softmax(student_logits.float(), dim=-1)
    return (t.exp() * (t - s)).sum(-1).mean()
