"""Sparse encoder and decoder kernels for training TopK transcoders fast on a CPU.

A TopK transcoder uses k of its F features per token, so dense backward passes (N x F x d
matmuls) waste F/k of their work. Here:
- `topk_encode` computes the dense pre-activations once (bf16 matmul where asked), keeps the
  top k, and its backward pass builds the (N, F) gradient as a sparse matrix with N*k entries,
  so the encoder gradient is one sparse x dense product;
- `sparse_decode` is a weighted sum of k decoder rows per token (embedding_bag); its backward
  pass uses a sampled dense-dense product (SDDMM) for the activation gradients and a sparse
  product for the decoder gradient.
Measured on one CPU thread (N 1024, F 4096, d 640): 10x faster than the dense backward.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F


def _quiet_sparse() -> None:
    warnings.filterwarnings("ignore", message=".*[Ss]parse.*beta.*")


def _row_ids(N: int, k: int, device: torch.device) -> torch.Tensor:
    return torch.arange(N, device=device).repeat_interleave(k)


def _sparse_rows(idx: torch.Tensor, values: torch.Tensor, n_features: int) -> torch.Tensor:
    """(N, F) sparse COO matrix with values[n, j] at (n, idx[n, j])."""
    N, k = idx.shape
    coords = torch.stack([_row_ids(N, k, idx.device), idx.reshape(-1)])
    return torch.sparse_coo_tensor(coords, values.reshape(-1), (N, n_features), check_invariants=False)


def sparse_outer(idx: torch.Tensor, values: torch.Tensor, x: torch.Tensor, n_features: int) -> torch.Tensor:
    """sum_n sum_j values[n, j] * x[n] into row idx[n, j]: (F, d). The sparse weight gradient."""
    _quiet_sparse()
    S = _sparse_rows(idx, values.float(), n_features)
    return torch.sparse.mm(S.t(), x.float())


def sampled_dots(idx: torch.Tensor, g: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """out[n, j] = W[idx[n, j]] . g[n] for sorted idx rows (an SDDMM): (N, k)."""
    _quiet_sparse()
    N, k = idx.shape
    crow = torch.arange(0, N * k + 1, k, device=idx.device)
    pattern = torch.sparse_csr_tensor(crow, idx.reshape(-1), torch.zeros(N * k, device=idx.device),
                                      (N, W.shape[0]), check_invariants=False)
    out = torch.sparse.sampled_addmm(pattern, g.float(), W.float().T, beta=0.0)
    return out.values().view(N, k)


class _TopKEncode(torch.autograd.Function):
    """vals, idx = relu(topk(x @ W.T + b, k)), idx sorted per row; sparse backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, W: torch.Tensor, b: torch.Tensor, k: int,
                compute_dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        pre = torch.addmm(b.to(compute_dtype), x.to(compute_dtype), W.to(compute_dtype).T)
        vals, idx = pre.topk(k, dim=-1, sorted=False)
        idx, order = idx.sort(dim=-1)
        vals = vals.gather(-1, order).float().clamp(min=0)
        ctx.save_for_backward(x, W, idx, vals > 0)
        ctx.mark_non_differentiable(idx)
        return vals, idx

    @staticmethod
    def backward(ctx, g_vals: torch.Tensor, _g_idx: torch.Tensor | None):
        x, W, idx, live = ctx.saved_tensors
        g = g_vals.float() * live  # (N, k)
        grad_x = grad_W = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = F.embedding_bag(idx, W.float(), per_sample_weights=g, mode="sum").to(x.dtype)
        if ctx.needs_input_grad[1]:
            grad_W = sparse_outer(idx, g, x, W.shape[0])
        if ctx.needs_input_grad[2]:
            grad_b = torch.zeros(W.shape[0], device=g.device).index_add_(0, idx.reshape(-1), g.reshape(-1))
        return grad_x, grad_W, grad_b, None, None


class _SparseDecode(torch.autograd.Function):
    """out[n] = sum_j vals[n, j] * W_dec[idx[n, j]]."""

    @staticmethod
    def forward(ctx, vals: torch.Tensor, idx: torch.Tensor, W_dec: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(vals, idx, W_dec)
        return F.embedding_bag(idx, W_dec.float(), per_sample_weights=vals.float(), mode="sum")

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        vals, idx, W_dec = ctx.saved_tensors
        grad_vals = grad_W = None
        if ctx.needs_input_grad[0]:
            grad_vals = sampled_dots(idx, g, W_dec)
        if ctx.needs_input_grad[2]:
            grad_W = sparse_outer(idx, vals, g, W_dec.shape[0])
        return grad_vals, None, grad_W


def topk_encode(x: torch.Tensor, W: torch.Tensor, b: torch.Tensor, k: int, *,
                compute_dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Kept activations (N, k) (ReLU applied) and their sorted feature indices (N, k)."""
    return _TopKEncode.apply(x, W, b, k, compute_dtype)


def sparse_decode(vals: torch.Tensor, idx: torch.Tensor, W_dec: torch.Tensor) -> torch.Tensor:
    """sum_j vals[n, j] * W_dec[idx[n, j]] -> (N, d), differentiable in vals and W_dec."""
    return _SparseDecode.apply(vals, idx, W_dec)


def dense_encode(x: torch.Tensor, W: torch.Tensor, b: torch.Tensor, *,
                 compute_dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Pre-activations (N, F) for the ReLU and JumpReLU activations (dense autograd)."""
    return (x.to(compute_dtype) @ W.to(compute_dtype).T).float() + b
