"""What each transcoder reads: its input hook's value, from a forward pass.

The same rule as `glassbox.attribution.context` uses when it freezes a prompt, factored so
that the dashboard builder (which sees the values through the forward pass's MLP override,
without keeping layer records) and tests (which keep `LayerRecord`s) share it.
"""

from __future__ import annotations

import torch

from glassbox.errors import TranscoderError
from glassbox.models.forward import LayerRecord, inv_rms

MLP_IN = "mlp.hook_in"  # MLP input after the pre-MLP norm and its gain
LN2_NORMALIZED = "ln2.hook_normalized"  # the same input before the gain
RESID_MID = "hook_resid_mid"  # the residual stream between attention and MLP


def transcoder_input(hook: str, *, mlp_in: torch.Tensor, resid_mid: torch.Tensor,
                     mlp_in_inv_rms: torch.Tensor | None) -> torch.Tensor:
    """The (.., d) value a transcoder with this input hook reads."""
    if hook == MLP_IN:
        return mlp_in
    if hook == LN2_NORMALIZED:
        if mlp_in_inv_rms is None:
            raise TranscoderError("input hook ln2.hook_normalized needs the MLP-input norm scale")
        return resid_mid.float() * mlp_in_inv_rms
    if hook == RESID_MID:
        return resid_mid
    raise TranscoderError(f"unsupported transcoder input hook {hook!r}")


def input_from_record(hook: str, rec: LayerRecord) -> torch.Tensor:
    """Transcoder input (B, T, d) from a kept layer record."""
    return transcoder_input(hook, mlp_in=rec.mlp_in, resid_mid=rec.resid_mid,
                            mlp_in_inv_rms=rec.mlp_in_inv_rms)


def input_from_override(hook: str, mlp_in: torch.Tensor, resid_mid: torch.Tensor, eps: float) -> torch.Tensor:
    """Transcoder input (B, T, d) from the arguments an MLP override receives."""
    scale = inv_rms(resid_mid, eps) if hook == LN2_NORMALIZED else None
    return transcoder_input(hook, mlp_in=mlp_in, resid_mid=resid_mid, mlp_in_inv_rms=scale)
