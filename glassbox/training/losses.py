"""Training losses: reconstruction (FVU), sparsity, dead-feature revival (AuxK), logit KL."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from glassbox.training.sparse import sparse_decode
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
               dead: torch.Tensor, aux_k: int, compute_dtype: torch.dtype) -> torch.Tensor:
    """How well the top aux_k dead features reconstruct what the live ones missed (Gao et al.)."""
    dead_idx = dead.nonzero().squeeze(-1)
    if dead_idx.numel() == 0:
        return residual.new_zeros(())
    W = stack.W_enc[layer].index_select(0, dead_idx)
    b = stack.b_enc[layer].index_select(0, dead_idx)
    pre = (x.to(compute_dtype) @ W.to(compute_dtype).T).float() + b
    vals, local = pre.topk(min(aux_k, dead_idx.numel()), dim=-1)
    W_dec = stack.W_dec[layer].index_select(0, dead_idx)
    recon = sparse_decode(vals.clamp(min=0), local, W_dec)
    return fvu(recon, residual)


def kl_to_teacher(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """Mean KL(teacher || student) per position, in nats."""
    t = F.log_softmax(teacher_logits.float(), dim=-1)
    s = F.log_softmax(student_logits.float(), dim=-1)
    return (t.exp() * (t - s)).sum(-1).mean()
