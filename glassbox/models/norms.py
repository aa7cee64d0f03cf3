"""RMSNorm taken apart: the scale it computes, the gain it applies, and the norm with its scale held.

Attribution and constrained interventions freeze every norm's 1/RMS at its value on the prompt,
which makes the model linear in the residual stream. This module is the one place that
arithmetic is written; it needs only torch, so the hook table can import it cheaply.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from glassbox.models.arch import ArchSpec


def inv_rms(x: torch.Tensor, eps: float) -> torch.Tensor:
    """1 / RMS(x) over the last dim in float32, the scale an RMSNorm multiplies by: (.., 1)."""
    return torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + eps)


def norm_gain(norm: torch.nn.Module, spec: ArchSpec) -> torch.Tensor:
    """The per-channel gain (d,) an RMSNorm applies after scaling: w, or (1 + w) for Gemma."""
    return norm.weight.float() + spec.norm_offset


def scale_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype frozen scales are kept and applied in: at least float32, like the live norms."""
    return torch.promote_types(torch.float32, dtype)


def frozen_norm(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """An RMSNorm whose 1/RMS is held fixed: x * scale (scale = inv_rms * gain), in x's dtype.

    The product is taken in at least float32, as the live norm computes it.
    """
    ct = scale_dtype(x.dtype)
    return (x.to(ct) * scale.to(ct)).to(x.dtype)
