"""Where a transcoder reads and writes: hook names mapped to one decoder layer's tensors.

Hook names are TransformerLens / circuit-tracer's, without the `blocks.{layer}.` prefix.

Input hooks, the (.., d) vector the encoder reads. Under frozen norms each is s * resid_mid:

    mlp.hook_in          the MLP's input: the pre-MLP norm's output, gain included   s = inv_rms * gain
    ln2.hook_normalized  the same before the gain: resid_mid * inv_rms(resid_mid)    s = inv_rms
    hook_resid_mid       the residual stream between attention and the MLP           s = 1

Output hooks, the (.., d) vector the decoder writes, and how it reaches the residual stream:

    hook_mlp_out  what the MLP block adds to the residual stream   added as it is
    mlp.hook_out  the MLP's own output                             through the post-MLP norm, if any

Llama, Mistral and Qwen have no post-MLP norm, so there the two output hooks are one tensor.
Gemma 2 and 3 normalise the MLP's output (`post_feedforward_layernorm`), so a write at
`mlp.hook_out` passes through that norm: live in free runs and training, with its 1/RMS frozen
at the prompt's value in attribution and constrained runs.

`LayerHooks` answers every such question for one layer of one model; the engine (forward
records, the frozen replacement model, interventions, training, dashboards) asks it alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from glassbox.errors import TranscoderError
from glassbox.models.norms import inv_rms, norm_gain, scale_dtype

if TYPE_CHECKING:
    from glassbox.models.arch import ArchSpec, LayerModules
    from glassbox.models.forward import LayerRecord
    from glassbox.models.loaded import LoadedModel

MLP_IN = "mlp.hook_in"
LN2_NORMALIZED = "ln2.hook_normalized"
RESID_MID = "hook_resid_mid"
BLOCK_OUT = "hook_mlp_out"
MLP_OUT = "mlp.hook_out"
INPUT_HOOKS = (MLP_IN, LN2_NORMALIZED, RESID_MID)
OUTPUT_HOOKS = (BLOCK_OUT, MLP_OUT)


def normalize_hook(name: str, allowed: tuple[str, ...], what: str) -> str:
    """'blocks.{layer}.mlp.hook_in' or 'mlp.hook_in' -> 'mlp.hook_in' (validated)."""
    short = re.sub(r"^blocks\.(\{layer\}|\d+)\.", "", name.strip())
    if short not in allowed:
        raise _unsupported(name, allowed, what)
    return short


def _unsupported(name: str, allowed: tuple[str, ...], what: str) -> TranscoderError:
    return TranscoderError(f"unsupported {what} hook {name!r}; supported: {', '.join(allowed)}")


def read_input(hook: str, resid_mid: torch.Tensor, *, mlp_in: torch.Tensor | None,
               mlp_in_inv_rms: torch.Tensor | None = None, eps: float | None = None) -> torch.Tensor:
    """The (.., d) value a transcoder with input hook `hook` reads.

    mlp_in: the MLP's input (needed by mlp.hook_in). mlp_in_inv_rms: the pre-MLP norm's 1/RMS
    (.., 1), recomputed from resid_mid with `eps` when not given (used by ln2.hook_normalized,
    which is computed in at least float32, as the norm computes it).
    """
    if hook == MLP_IN:
        if mlp_in is None:
            raise TranscoderError("input hook mlp.hook_in needs the MLP's input")
        return mlp_in
    if hook == LN2_NORMALIZED:
        if mlp_in_inv_rms is None:
            if eps is None:
                raise TranscoderError("input hook ln2.hook_normalized needs the pre-MLP norm's scale or eps")
            mlp_in_inv_rms = inv_rms(resid_mid, eps)
        return resid_mid.to(scale_dtype(resid_mid.dtype)) * mlp_in_inv_rms
    if hook == RESID_MID:
        return resid_mid
    raise _unsupported(hook, INPUT_HOOKS, "input")


@dataclass(frozen=True)
class LayerHooks:
    """Where the transcoder of one layer reads and writes, in one model's architecture."""

    input_hook: str
    output_hook: str
    mods: LayerModules
    spec: ArchSpec

    def __post_init__(self) -> None:
        if self.input_hook not in INPUT_HOOKS:
            raise _unsupported(self.input_hook, INPUT_HOOKS, "input")
        if self.output_hook not in OUTPUT_HOOKS:
            raise _unsupported(self.output_hook, OUTPUT_HOOKS, "output")

    # ---- reading -------------------------------------------------------------------------
    def read(self, resid_mid: torch.Tensor, *, mlp_in: torch.Tensor | None = None,
             mlp_in_inv_rms: torch.Tensor | None = None) -> torch.Tensor:
        """The transcoder input (.., d) of live values; what is not given is recomputed."""
        if mlp_in is None and self.input_hook == MLP_IN:
            mlp_in = self.mods.mlp_norm(resid_mid)
        return read_input(self.input_hook, resid_mid, mlp_in=mlp_in, mlp_in_inv_rms=mlp_in_inv_rms,
                          eps=self.spec.norm_eps)

    def read_record(self, rec: LayerRecord) -> torch.Tensor:
        """The transcoder input (B, T, d) of a forward pass's layer record."""
        return self.read(rec.resid_mid, mlp_in=rec.mlp_in, mlp_in_inv_rms=rec.mlp_in_inv_rms)

    def read_scale(self, mlp_in_inv_rms: torch.Tensor) -> torch.Tensor:
        """(T, d) s with transcoder input = s * resid_mid when the pre-MLP 1/RMS (T, 1) is frozen."""
        if self.input_hook == MLP_IN:
            return mlp_in_inv_rms * norm_gain(self.mods.mlp_norm, self.spec)
        if self.input_hook == LN2_NORMALIZED:
            return mlp_in_inv_rms.expand(-1, self.spec.d_model)
        return torch.ones_like(mlp_in_inv_rms).expand(-1, self.spec.d_model)

    # ---- writing -------------------------------------------------------------------------
    @property
    def post_norm(self) -> nn.Module | None:
        """The norm a decoder write passes through on its way to the residual stream, if any."""
        return self.mods.mlp_out_norm if self.output_hook == MLP_OUT else None

    def target(self, rec: LayerRecord) -> torch.Tensor:
        """The true model's value at the output hook (B, T, d): what the transcoder reconstructs."""
        return rec.mlp_out if self.post_norm is None else rec.mlp_raw_out

    def write(self, y: torch.Tensor) -> torch.Tensor:
        """What an output-hook value y (.., d) adds to the residual stream, norms live."""
        norm = self.post_norm
        return y if norm is None else norm(y.to(norm.weight.dtype))

    def write_gain(self) -> torch.Tensor | None:
        """The post-MLP norm's gain (d,) that multiplies a write, or None if it lands as it is."""
        return None if self.post_norm is None else norm_gain(self.post_norm, self.spec)

    def write_scale(self, mlp_out_inv_rms: torch.Tensor | None) -> torch.Tensor | None:
        """(T, d) frozen scale a write is multiplied by (the post-MLP 1/RMS (T, 1) times the gain)."""
        gain = self.write_gain()
        return None if gain is None else mlp_out_inv_rms * gain

    def block_out(self, mlp_in: torch.Tensor, delta: torch.Tensor | None = None) -> torch.Tensor:
        """What the MLP block adds to the residual stream (.., d), `delta` added at the output hook."""
        raw = self.mods.mlp(mlp_in)
        if self.post_norm is not None:
            return self.post_norm(raw if delta is None else raw + delta)
        out = raw if self.mods.mlp_out_norm is None else self.mods.mlp_out_norm(raw)
        return out if delta is None else out + delta


def hooks_at(model: LoadedModel, layer: int, input_hook: str, output_hook: str) -> LayerHooks:
    """The hooks of one layer of `model`."""
    return LayerHooks(input_hook, output_hook, model.layer_mods[layer], model.spec)


def layer_hooks(model: LoadedModel, input_hook: str, output_hook: str) -> list[LayerHooks]:
    """The hooks of every layer of `model`, in order."""
    return [hooks_at(model, layer, input_hook, output_hook) for layer in range(model.n_layers)]
