"""What an intervention changes, checked against a model, and how it turns into MLP-output deltas.

Two kinds of change, both applied by `glassbox.ReplacementModel`:

* `FeatureEdit`: a transcoder feature at (layer, pos) gets a new activation, either a fixed
  value (`set`, `ablate` = set 0) or a multiple of its activation in the pass being run
  (`scale`). Value semantics follow circuit-tracer: the MLP output of the feature's layer
  (and, for a cross-layer transcoder, of every later layer it writes to) gains
  (new - current activation) * decoder row.
* `Steering`: a vector added to the residual stream at the output of a layer (after its MLP).

A position is an index into the token sequence, BOS included; `pos=None` means every position
after BOS, generated tokens too. The BOS position itself has no features (graphs zero them,
as circuit-tracer does), so a feature edit there is refused.

Plain tuples `(layer, pos, feature, value)` are accepted everywhere and mean `set`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from glassbox.errors import GlassboxError

MODES = ("set", "scale")


class InterventionError(GlassboxError):
    """An intervention names a layer, feature or position that does not exist, or a bad value."""


# ---- what to change -------------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureEdit:
    """Give feature `feature` of `layer` at `pos` a new activation."""

    layer: int
    pos: int | None
    feature: int
    value: float
    mode: str = "set"  # "set": a -> value; "scale": a -> value * a


@dataclass(frozen=True, eq=False)
class Steering:
    """Add `coefficient * vector` to the residual stream after `layer` at `pos` (None: all)."""

    layer: int
    vector: torch.Tensor  # (d,)
    pos: int | None = None
    coefficient: float = 1.0


Intervention = FeatureEdit | Steering | tuple[int, int | None, int, float]


def set_feature(layer: int, pos: int | None, feature: int, value: float) -> FeatureEdit:
    return FeatureEdit(layer, pos, feature, float(value), "set")


def ablate(layer: int, pos: int | None, feature: int) -> FeatureEdit:
    """Set the feature's activation to zero."""
    return FeatureEdit(layer, pos, feature, 0.0, "set")


def scale(layer: int, pos: int | None, feature: int, factor: float) -> FeatureEdit:
    """Multiply the feature's activation (as computed in the run) by `factor`."""
    return FeatureEdit(layer, pos, feature, float(factor), "scale")


def steer(layer: int, vector: torch.Tensor, pos: int | None = None, *, coefficient: float = 1.0) -> Steering:
    return Steering(layer, vector, pos, float(coefficient))


# ---- checking -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """What a model and its transcoders allow, and the positions a run covers."""

    n_layers: int
    d_transcoder: int
    d_model: int
    n_pos: int  # positions that exist (prompt, plus new tokens in generation)
    n_held: int  # leading positions held constant (BOS, or a chat set's template prefix)
    n_prompt: int = 0  # negative positions count back from the end of the prompt


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | torch.Tensor):
        raise InterventionError(f"{what} must be an integer, got {value!r}")
    if isinstance(value, torch.Tensor):
        if value.numel() != 1 or value.dtype.is_floating_point:
            raise InterventionError(f"{what} must be an integer, got a tensor {tuple(value.shape)}")
        value = int(value)
    return int(value)


def _finite(value: Any, what: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise InterventionError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise InterventionError(f"{what} must be finite, got {out}")
    return out


def _layer(layer: Any, lim: Limits) -> int:
    layer = _int(layer, "layer")
    if not 0 <= layer < lim.n_layers:
        raise InterventionError(f"layer {layer} does not exist: the model has layers 0..{lim.n_layers - 1}")
    return layer


def _pos(pos: Any, lim: Limits, *, feature_edit: bool) -> int | None:
    """An absolute position; negatives count from the end of the prompt."""
    if pos is None:
        return None
    p = _int(pos, "pos")
    q = p + lim.n_prompt if p < 0 else p
    if p < 0 and q < 0:
        raise InterventionError(f"position {p} is before the start of the prompt of {lim.n_prompt} tokens")
    if not 0 <= q < lim.n_pos:
        raise InterventionError(f"position {p} is outside the sequence of {lim.n_pos} tokens "
                                f"(positions 0..{lim.n_pos - 1}, BOS at 0)")
    if feature_edit and q < lim.n_held:
        raise InterventionError(f"position {q} is held constant (BOS or the chat template's opening) and "
                                f"has no transcoder features (they are zeroed, as in graphs); choose a "
                                f"position from {lim.n_held}")
    return q


def check_edit(edit: FeatureEdit | tuple, lim: Limits) -> FeatureEdit:
    """A validated FeatureEdit with an absolute position."""
    if isinstance(edit, tuple):
        if len(edit) != 4:
            raise InterventionError(f"an intervention tuple is (layer, pos, feature, value); got {edit!r}")
        edit = FeatureEdit(edit[0], edit[1], edit[2], edit[3], "set")
    if edit.mode not in MODES:
        raise InterventionError(f"unknown intervention mode {edit.mode!r}; use one of {MODES}")
    layer = _layer(edit.layer, lim)
    feature = _int(edit.feature, "feature")
    if not 0 <= feature < lim.d_transcoder:
        raise InterventionError(f"feature {feature} does not exist: layer {layer} has features "
                                f"0..{lim.d_transcoder - 1}")
    value = _finite(edit.value, "the scale factor" if edit.mode == "scale" else "the value")
    return FeatureEdit(layer, _pos(edit.pos, lim, feature_edit=True), feature, value, edit.mode)


def check_steering(st: Steering, lim: Limits) -> Steering:
    layer = _layer(st.layer, lim)
    vec = st.vector
    if not isinstance(vec, torch.Tensor) or tuple(vec.shape) != (lim.d_model,):
        shape = tuple(vec.shape) if isinstance(vec, torch.Tensor) else type(vec).__name__
        raise InterventionError(f"a steering vector must be a tensor of shape ({lim.d_model},), got {shape}")
    if not bool(torch.isfinite(vec).all()):
        raise InterventionError("the steering vector holds NaN or inf")
    coef = _finite(st.coefficient, "the steering coefficient")
    return Steering(layer, vec.detach().clone(), _pos(st.pos, lim, feature_edit=False), coef)


def check_interventions(items: Iterable[Intervention], lim: Limits) -> list[FeatureEdit | Steering]:
    """Validate a list of interventions (tuples become `set` edits)."""
    if isinstance(items, FeatureEdit | Steering) or (isinstance(items, tuple) and len(items) == 4
                                                     and isinstance(items[0], int)):
        raise InterventionError("interventions must be a list, e.g. [(layer, pos, feature, value)]")
    out: list[FeatureEdit | Steering] = []
    for it in items:
        if isinstance(it, Steering):
            out.append(check_steering(it, lim))
        elif isinstance(it, FeatureEdit | tuple):
            out.append(check_edit(it, lim))
        else:
            raise InterventionError(f"not an intervention: {it!r}; use a (layer, pos, feature, value) "
                                    "tuple, FeatureEdit or Steering")
    return out


# ---- one pass: edits compiled to the positions it covers ------------------------------------


@dataclass
class LayerEdits:
    """The feature edits of one layer inside one pass, as index tensors."""

    pos: torch.Tensor  # (m,) positions local to the pass
    feat: torch.Tensor  # (m,)
    value: torch.Tensor  # (m,)
    is_scale: torch.Tensor  # (m,) bool

    def deltas(self, current: torch.Tensor) -> torch.Tensor:
        """(m,) new - current activation, given this pass's activations (n, d_tc)."""
        cur = current[self.pos, self.feat]
        value = self.value.to(cur.dtype)
        new = torch.where(self.is_scale, value * cur, value)
        return new - cur


@dataclass
class PassPlan:
    """Everything a pass over positions [start, start + n) must change."""

    start: int
    n: int
    edits: dict[int, LayerEdits] = field(default_factory=dict)  # layer -> edits
    steering: dict[int, torch.Tensor] = field(default_factory=dict)  # layer -> (n, d) to add

    @property
    def empty(self) -> bool:
        return not self.edits and not self.steering


def _covered(pos: int | None, start: int, n: int, n_held: int) -> list[int]:
    """Local indices in [start, start + n) that a position spec touches."""
    if pos is None:
        first = max(start, n_held)
        return list(range(first - start, n))
    return [pos - start] if start <= pos < start + n else []


def plan_pass(items: Sequence[FeatureEdit | Steering], *, start: int, n: int, n_held: int,
              d_model: int, device: torch.device, dtype: torch.dtype) -> PassPlan:
    """Compile validated interventions for one pass. Later edits of a (layer, pos, feature) win."""
    plan = PassPlan(start, n)
    per_layer: dict[int, dict[tuple[int, int], tuple[float, bool]]] = {}
    for it in items:
        local = _covered(it.pos, start, n, n_held)
        if not local:
            continue
        if isinstance(it, Steering):
            acc = plan.steering.setdefault(it.layer, torch.zeros(n, d_model, device=device, dtype=dtype))
            acc[local] += it.coefficient * it.vector.to(device=device, dtype=dtype)
            continue
        slot = per_layer.setdefault(it.layer, {})
        for p in local:
            slot.pop((p, it.feature), None)  # re-insert so the latest edit is last
            slot[(p, it.feature)] = (it.value, it.mode == "scale")
    for layer, slot in per_layer.items():
        keys, vals = list(slot), list(slot.values())
        plan.edits[layer] = LayerEdits(
            pos=torch.tensor([k[0] for k in keys], dtype=torch.long, device=device),
            feat=torch.tensor([k[1] for k in keys], dtype=torch.long, device=device),
            value=torch.tensor([v[0] for v in vals], dtype=torch.float64, device=device),
            is_scale=torch.tensor([v[1] for v in vals], dtype=torch.bool, device=device),
        )
    return plan


# ---- results --------------------------------------------------------------------------------


@dataclass
class InterventionResult:
    """Logits of every position after the intervention, and optionally every layer's features."""

    tokens: list[int]
    logits: torch.Tensor  # (T, V), or (1, V) for logits_at="last"; after any final soft-cap
    activations: torch.Tensor | None = None  # (L, T, d_tc); BOS position zero

    @property
    def last_logits(self) -> torch.Tensor:
        return self.logits[-1]


@dataclass(frozen=True)
class TokenChange:
    """One next-token candidate before and after an intervention."""

    token_id: int
    token: str
    prob_before: float
    prob_after: float
    logit_before: float
    logit_after: float

    def to_dict(self) -> dict[str, Any]:
        return {"token_id": self.token_id, "token": self.token, "prob_before": self.prob_before,
                "prob_after": self.prob_after, "logit_before": self.logit_before,
                "logit_after": self.logit_after}


@dataclass
class BeforeAfter:
    """Top next tokens without and with the interventions (each row carries both sides)."""

    before: list[TokenChange]  # the top k before, most likely first
    after: list[TokenChange]  # the top k after, most likely first

    def to_dict(self) -> dict[str, Any]:
        return {"before": [t.to_dict() for t in self.before], "after": [t.to_dict() for t in self.after]}


def before_after(tokenizer: Any, logits_before: torch.Tensor, logits_after: torch.Tensor,
                 k: int) -> BeforeAfter:
    """Build the before/after table from two (V,) logit vectors."""
    lb, la = logits_before.double(), logits_after.double()
    pb, pa = torch.softmax(lb, -1), torch.softmax(la, -1)
    k = min(k, lb.shape[-1])

    def row(i: int) -> TokenChange:
        return TokenChange(i, tokenizer.decode([i]), float(pb[i]), float(pa[i]), float(lb[i]), float(la[i]))

    return BeforeAfter(before=[row(int(i)) for i in pb.topk(k).indices],
                       after=[row(int(i)) for i in pa.topk(k).indices])


@dataclass
class GenerationResult:
    """A continuation: the prompt's ids, the new ids and their text."""

    prompt_ids: list[int]
    new_ids: list[int]
    text: str
    stop_reason: str  # "eos" | "length"

    @property
    def ids(self) -> list[int]:
        return self.prompt_ids + self.new_ids

    def to_dict(self) -> dict[str, Any]:
        return {"prompt_ids": self.prompt_ids, "new_ids": self.new_ids, "text": self.text,
                "stop_reason": self.stop_reason}
