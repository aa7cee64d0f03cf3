"""Training options, validated once, stored in checkpoints and in the output's metrics.json."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from glassbox.errors import GlassboxError
from glassbox.transcoders.base import ACTIVATIONS, INPUT_HOOKS, OUTPUT_HOOKS

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|hr)?\s*$")
_UNITS = {None: 1.0, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "hr": 3600.0}


def parse_duration(text: str) -> float:
    """'15m' -> 900.0, '2h' -> 7200.0, '90s' or '90' -> 90.0."""
    m = _DURATION.match(str(text).lower())
    if not m:
        raise GlassboxError(f"cannot read duration {text!r}; use e.g. 90s, 15m or 2h")
    seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if seconds <= 0:
        raise GlassboxError(f"duration must be positive, got {text!r}")
    return seconds


def parse_count(text: str | int) -> int:
    """'2M' -> 2_000_000, '500k' -> 500_000, '1234' -> 1234."""
    if isinstance(text, int):
        return text
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)\s*", str(text))
    if not m:
        raise GlassboxError(f"cannot read count {text!r}; use e.g. 500k or 2M")
    scale = {"": 1, "k": 1_000, "m": 1_000_000, "g": 1_000_000_000}[m.group(2).lower()]
    return int(float(m.group(1)) * scale)


@dataclass
class TrainConfig:
    """Everything that decides what a training run computes (not where it writes)."""

    model: str
    corpus: str
    n_features: int = 4096
    activation: str = "topk"
    k: int = 48
    skip: bool = True
    tokens: int | None = None  # stop after this many training tokens ...
    budget_s: float | None = None  # ... or after this much training time (planned by measured speed)
    batch_size: int = 16  # sequences per step
    seq_len: int = 128  # tokens per sequence, BOS included
    lr: float = 2e-3
    seed: int = 0
    input_hook: str = "mlp.hook_in"
    # mlp.hook_out: the MLP's own output. For Gemma this is *before* post_feedforward_layernorm, which then
    # runs on the transcoder's output and fixes its scale: errors no longer compound across layers
    # (measured: 74% CE recovered with every MLP replaced vs -40% writing hook_mlp_out, same budget)
    output_hook: str = "mlp.hook_out"
    model_dtype: str = "bfloat16"  # the model forward that produces the activations
    compute_dtype: str = "bfloat16"  # encoder and skip matmuls (master weights stay fp32)
    # compounding-error remedies
    splice_start: float = 0.3  # share of local steps after which spliced rows are mixed in
    splice_max: float = 0.0  # share of rows in a batch run through the spliced model (at most)
    splice_target: str = "mlp"  # spliced rows learn: "mlp" (the true MLP on that input) or "clean"
    # (what makes the spliced residual stream equal the clean one after the layer: corrects upstream errors)
    e2e_frac: float = 0.0  # share of the run spent fine-tuning end to end (KL to the model's logits)
    e2e_kl_positions: int = 32  # positions per sequence whose logits enter the KL
    e2e_local_coef: float = 1.0  # weight of the local FVU loss during the end-to-end phase
    e2e_lr_scale: float = 0.3  # end-to-end learning rate = lr * this
    affine_init: bool = True  # least-squares fit of skip + b_dec before training (needs skip)
    enc_init_scale: float = 0.1  # norm of the encoder rows at the start
    data_init: bool = True  # feature i starts from calibration token i (else random tied directions)
    # sparsity
    l1_coef: float = 3e-4  # relu: L1 on activations x decoder norms (normalised units)
    l0_coef: float = 1e-3  # jumprelu: L0 coefficient
    aux_k: int = 256  # TopK: AuxK features for dead-feature revival
    aux_coef: float = 1 / 32
    aux_rows: int = 512  # rows of each batch that the AuxK loss sees (0 = all)
    dead_tokens: int = 50_000  # a feature is dead after this many tokens without firing
    # schedule
    warmup_steps: int = 50
    decay_start: float = 0.6  # cosine decay over the last 40% of the local phase
    calib_batches: int = 4
    checkpoint_every_s: float = 300.0
    save_dtype: str = "float32"
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> TrainConfig:
        if self.activation not in ACTIVATIONS:
            raise GlassboxError(f"unknown activation {self.activation!r}; use one of "
                                f"{', '.join(ACTIVATIONS)}")
        if self.input_hook not in INPUT_HOOKS or self.output_hook not in OUTPUT_HOOKS:
            raise GlassboxError(f"hooks must be one of {INPUT_HOOKS} -> {OUTPUT_HOOKS}")
        if self.activation == "topk" and not 0 < self.k < self.n_features // 2:
            raise GlassboxError(f"k must be in 1..{self.n_features // 2 - 1} for {self.n_features} features")
        if self.n_features < 8:
            raise GlassboxError("need at least 8 features")
        if (self.tokens is None) == (self.budget_s is None):
            raise GlassboxError("give exactly one of a token count (--tokens) or a time budget (--budget)")
        if self.tokens is not None and self.tokens <= 0:
            raise GlassboxError("--tokens must be positive")
        if self.aux_rows < 0:
            raise GlassboxError("aux_rows must be 0 (every row) or positive")
        if self.batch_size < 1 or self.seq_len < 4:
            raise GlassboxError("need batch_size >= 1 and seq_len >= 4")
        if self.lr <= 0:
            raise GlassboxError("learning rate must be positive")
        for name in ("splice_start", "splice_max", "e2e_frac", "decay_start"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise GlassboxError(f"{name} must be between 0 and 1")
        if self.splice_target not in ("mlp", "clean"):
            raise GlassboxError(f"splice_target must be 'mlp' or 'clean', not {self.splice_target!r}")
        if self.splice_target == "clean" and self.output_hook == "mlp.hook_out":
            raise GlassboxError("splice_target 'clean' needs the output hook hook_mlp_out")
        if self.affine_init and not self.skip:
            self.affine_init = False
        return self

    @property
    def trained_features(self) -> int:
        """Features that learn; TopK keeps k more as null features (see stack.py)."""
        return self.n_features - self.k if self.activation == "topk" else self.n_features

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def same_run(self, other: TrainConfig) -> list[str]:
        """Options that differ (a resume must not change what is computed)."""
        mine, theirs = self.to_dict(), other.to_dict()
        ignore = {"checkpoint_every_s"}
        return sorted(k for k in mine if k not in ignore and mine[k] != theirs.get(k))
