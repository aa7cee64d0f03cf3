"""Trained stack -> a TranscoderSet in raw units, written in circuit-tracer's per-layer layout.

Folding the normalisation: the stack computes y/s_out = f(x/s_in), so in raw units
W_enc' = W_enc / s_in, W_dec' = W_dec * s_out, b_dec' = b_dec * s_out,
W_skip' = W_skip * s_out / s_in (b_enc and JumpReLU thresholds are unchanged).
TopK sets get k null features appended (see stack.py).
"""

from __future__ import annotations

import torch

from glassbox.models.loaded import parse_dtype
from glassbox.training.config import TrainConfig
from glassbox.training.stack import TranscoderStack
from glassbox.transcoders.base import LayerWeights, TranscoderSet
from glassbox.transcoders.lazy import DenseRows


@torch.no_grad()
def to_transcoder_set(stack: TranscoderStack, config: TrainConfig, *, model_name: str, name: str = "",
                      dtype: torch.dtype | str = torch.float32) -> TranscoderSet:
    dtype = parse_dtype(dtype)
    n_null = config.k if config.activation == "topk" else 0
    layers = []
    for layer in range(stack.n_layers):
        s_in, s_out = float(stack.s_in[layer]), float(stack.s_out[layer])
        W_enc = _pad(stack.W_enc[layer] / s_in, n_null)
        b_enc = _pad(stack.b_enc[layer], n_null)
        W_dec = _pad(stack.W_dec[layer] * s_out, n_null)
        threshold = None
        if stack.log_threshold is not None:
            threshold = stack.threshold(layer).detach().cpu().to(dtype)
        skip = None if stack.W_skip is None else (stack.W_skip[layer] * (s_out / s_in)).cpu().to(dtype)
        layers.append(LayerWeights(W_enc=W_enc.cpu().to(dtype), b_enc=b_enc.cpu().to(dtype),
                                   W_dec=DenseRows(W_dec.cpu().to(dtype)),
                                   b_dec=(stack.b_dec[layer] * s_out).cpu().to(dtype),
                                   threshold=threshold, skip=skip))
    return TranscoderSet(layers, kind="plt", activation=config.activation,
                         k=config.k if config.activation == "topk" else None,
                         input_hook=config.input_hook, output_hook=config.output_hook,
                         name=name, model_name=model_name)


def _pad(t: torch.Tensor, n: int) -> torch.Tensor:
    """Append n all-zero rows (null features)."""
    if n == 0:
        return t.detach()
    return torch.cat([t.detach(), t.new_zeros((n, *t.shape[1:]))], dim=0)


def null_features(config: TrainConfig) -> list[int]:
    """Indices of the null features of each layer (the last k of a TopK set)."""
    if config.activation != "topk":
        return []
    return list(range(config.trained_features, config.n_features))
