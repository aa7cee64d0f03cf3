"""Transcoder sets: per-layer (PLT) and cross-layer (CLT), behind one interface.

A PLT is a CLT whose features write only to their own layer, so attribution treats both as
"a feature at layer l writes decoder row W_dec[l][f, j] into the MLP output of layer l + j".

    encode:  pre = x @ W_enc.T + b_enc          x: the layer's input hook value (.., d)
    act:     relu | jumprelu(threshold) | topk(k) (circuit-tracer's TopK keeps negatives)
    decode:  out_l = sum_{l' <= l} a_{l'} @ W_dec[l'][:, l - l'] + b_dec_l + x_l @ S_l
where S_l is the skip matrix (W_skip.T for circuit-tracer PLT files, W_skip for CLT files).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from glassbox.errors import TranscoderError
from glassbox.models.hooks import BLOCK_OUT, INPUT_HOOKS, MLP_IN, OUTPUT_HOOKS, normalize_hook
from glassbox.transcoders.lazy import DenseRows, LazyRows

ACTIVATIONS = ("relu", "jumprelu", "topk")


@dataclass
class LayerWeights:
    """One layer's encoder (in memory) and decoder (lazy or dense)."""

    W_enc: torch.Tensor  # (d_tc, d)
    b_enc: torch.Tensor  # (d_tc,)
    W_dec: LazyRows | DenseRows  # (d_tc, d) for PLT, (d_tc, n_layers - layer, d) for CLT
    b_dec: torch.Tensor  # (d,) bias of this layer's output
    threshold: torch.Tensor | None = None  # (d_tc,) JumpReLU
    skip: torch.Tensor | None = None  # (d, d) S with out = x @ S


class TranscoderSet:
    """A full set of transcoders for one model, ready for the replacement model.

    `ignored_prefix`: token ids every prompt must start with, whose positions are held constant
    like BOS (features and errors zeroed). Sets for instruction-tuned Gemma 3 use the chat
    template's `<bos><start_of_turn>user` and newline, as circuit-tracer does; empty otherwise.
    """

    def __init__(
        self,
        layers: list[LayerWeights],
        *,
        kind: str,
        activation: str,
        k: int | None = None,
        input_hook: str = MLP_IN,
        output_hook: str = BLOCK_OUT,
        name: str = "",
        model_name: str = "",
        ignored_prefix: tuple[int, ...] = (),
    ) -> None:
        if kind not in ("plt", "clt"):
            raise TranscoderError(f"unknown transcoder kind {kind!r}")
        if activation not in ACTIVATIONS:
            raise TranscoderError(f"unknown activation {activation!r}; use one of {ACTIVATIONS}")
        if activation == "topk" and (k is None or k <= 0):
            raise TranscoderError("activation 'topk' needs a positive k")
        if activation == "jumprelu" and any(lw.threshold is None for lw in layers):
            raise TranscoderError("activation 'jumprelu' needs a threshold in every layer")
        self.layers = layers
        self.kind = kind
        self.activation = activation
        self.k = k
        self.input_hook = normalize_hook(input_hook, INPUT_HOOKS, "input")
        self.output_hook = normalize_hook(output_hook, OUTPUT_HOOKS, "output")
        self.name = name
        self.model_name = model_name
        self.ignored_prefix = tuple(int(t) for t in ignored_prefix)
        self._check_shapes()

    # ---- facts ---------------------------------------------------------------------------
    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @property
    def d_model(self) -> int:
        return int(self.layers[0].W_enc.shape[1])

    @property
    def d_transcoder(self) -> int:
        return int(self.layers[0].W_enc.shape[0])

    @property
    def has_skip(self) -> bool:
        return any(lw.skip is not None for lw in self.layers)

    @property
    def device(self) -> torch.device:
        return self.layers[0].W_enc.device

    @property
    def dtype(self) -> torch.dtype:
        return self.layers[0].W_enc.dtype

    def n_out(self, layer: int) -> int:
        """How many MLP outputs a feature of this layer writes to."""
        return 1 if self.kind == "plt" else self.n_layers - layer

    def held_positions(self, tokens: list[int], special_ids: set[int]) -> int:
        """How many leading positions of a prompt attribution holds constant (their features
        and errors zeroed): the ignored prefix, which the prompt must then start with, else
        BOS (a special first token), else none."""
        if self.ignored_prefix:
            n = len(self.ignored_prefix)
            if tuple(tokens[:n]) != self.ignored_prefix:
                raise TranscoderError(
                    f"transcoder set {self.name!r} is for a chat model: prompts must start with token "
                    f"ids {list(self.ignored_prefix)} (its chat template's opening), not {list(tokens[:n])}")
            return n
        return 1 if tokens and tokens[0] in special_ids else 0

    def _check_shapes(self) -> None:
        if not self.layers:
            raise TranscoderError("a transcoder set needs at least one layer")
        d, d_tc = self.d_model, self.d_transcoder
        for i, lw in enumerate(self.layers):
            want_dec = (d_tc, d) if self.kind == "plt" else (d_tc, self.n_layers - i, d)
            checks = [
                ("W_enc", tuple(lw.W_enc.shape), (d_tc, d)),
                ("b_enc", tuple(lw.b_enc.shape), (d_tc,)),
                ("W_dec", tuple(lw.W_dec.shape), want_dec),
                ("b_dec", tuple(lw.b_dec.shape), (d,)),
            ]
            if lw.threshold is not None:
                checks.append(("threshold", tuple(lw.threshold.shape), (d_tc,)))
            if lw.skip is not None:
                checks.append(("W_skip", tuple(lw.skip.shape), (d, d)))
            for what, got, want in checks:
                if got != want:
                    raise TranscoderError(f"layer {i}: {what} has shape {got}, expected {want}")

    def check_compatible(self, model) -> None:  # noqa: ANN001 - LoadedModel, avoids a cycle
        """Raise a clear error if this set cannot be used with the model, and move its
        in-memory weights to the model's device (a set loaded on the CPU works with a GPU model)."""
        if self.n_layers != model.n_layers:
            raise TranscoderError(
                f"transcoder set {self.name!r} has {self.n_layers} layers but model "
                f"{model.name!r} has {model.n_layers}; is it for another model?"
            )
        if self.d_model != model.d_model:
            raise TranscoderError(
                f"transcoder set {self.name!r} reads vectors of width {self.d_model} but model "
                f"{model.name!r} has d_model {model.d_model}; is it for another model?"
            )
        if self.device != model.device:
            self.to(device=model.device)

    # ---- math ----------------------------------------------------------------------------
    def encode(self, layer: int, x: torch.Tensor) -> torch.Tensor:
        """Pre-activations (.., d_tc) of a layer's features for input x (.., d)."""
        lw = self.layers[layer]
        return x.to(lw.W_enc.dtype) @ lw.W_enc.T + lw.b_enc

    def activate(self, layer: int, pre: torch.Tensor) -> torch.Tensor:
        if self.activation == "relu":
            return pre.clamp(min=0)
        if self.activation == "jumprelu":
            return pre * (pre > self.layers[layer].threshold)
        values, idx = pre.topk(min(int(self.k), pre.shape[-1]), dim=-1)
        return torch.zeros_like(pre).scatter(-1, idx, values)

    def decoder_rows(self, layer: int, feats: torch.Tensor) -> torch.Tensor:
        """Decoder vectors (n, n_out, d) of features `feats` of `layer` (read lazily)."""
        rows = self.layers[layer].W_dec.rows(feats, dtype=self.dtype, device=self.device)
        return rows[:, None, :] if self.kind == "plt" else rows

    def encoder_rows(self, layer: int, feats: torch.Tensor) -> torch.Tensor:
        return self.layers[layer].W_enc[feats.to(self.device)]

    def skip(self, layer: int, x: torch.Tensor) -> torch.Tensor | None:
        s = self.layers[layer].skip
        return None if s is None else x.to(s.dtype) @ s

    def to(self, *, device: torch.device | None = None, dtype: torch.dtype | None = None) -> TranscoderSet:
        """Move in-memory tensors (encoders, biases, skips) in place; decoders follow on read."""
        def mv(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device=device or t.device, dtype=dtype or t.dtype)

        for lw in self.layers:
            lw.W_enc, lw.b_enc, lw.b_dec = mv(lw.W_enc), mv(lw.b_enc), mv(lw.b_dec)
            lw.threshold, lw.skip = mv(lw.threshold), mv(lw.skip)
        return self

    def __repr__(self) -> str:
        return (f"TranscoderSet(name={self.name!r}, kind={self.kind}, layers={self.n_layers}, "
                f"d_transcoder={self.d_transcoder}, activation={self.activation}"
                f"{f', k={self.k}' if self.k else ''}, skip={self.has_skip})")
