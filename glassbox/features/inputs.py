"""What each transcoder reads, from a forward pass: `glassbox.models.hooks.read_input` in the
two forms the dashboard builder (an MLP override's arguments, no layer records kept) and tests
(kept `LayerRecord`s) have at hand.
"""

from __future__ import annotations

import torch

from glassbox.models.forward import LayerRecord
from glassbox.models.hooks import read_input


def input_from_record(hook: str, rec: LayerRecord) -> torch.Tensor:
    """Transcoder input (B, T, d) from a kept layer record."""
    return read_input(hook, rec.resid_mid, mlp_in=rec.mlp_in, mlp_in_inv_rms=rec.mlp_in_inv_rms)


def input_from_override(hook: str, mlp_in: torch.Tensor, resid_mid: torch.Tensor, eps: float) -> torch.Tensor:
    """Transcoder input (B, T, d) from the arguments an MLP override receives."""
    return read_input(hook, resid_mid, mlp_in=mlp_in, eps=eps)
