"""Which logits a graph explains: the most likely next tokens, chosen tokens, or custom
directions such as a logit difference (" Austin" minus " Dallas").

Each target is a direction in the final normalised residual at the last position. Token
targets use the demeaned unembedding row W_U[v] - mean_v' W_U[v'] (pre soft-cap), as
circuit-tracer does; its weight in influence computations is the token's probability.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from glassbox.errors import GlassboxError
from glassbox.graph.graph import LogitTarget
from glassbox.models.loaded import LoadedModel


@dataclass(frozen=True)
class CustomTarget:
    """A direction to attribute with its own label and weight (e.g. a logit difference)."""

    label: str
    weight: float
    vec: torch.Tensor  # (d,)


@dataclass
class Targets:
    logit_targets: list[LogitTarget]
    probabilities: torch.Tensor  # (k,) weights used for influence
    vectors: torch.Tensor  # (k, d)


TargetSpec = None | Sequence[str] | Sequence[int] | Sequence[CustomTarget] | str | CustomTarget


def demeaned_unembedding(model: LoadedModel, ids: torch.Tensor) -> torch.Tensor:
    """(k, d) demeaned unembedding rows for token ids."""
    W_U = model.unembedding  # (V, d)
    W_U = W_U.to(torch.promote_types(W_U.dtype, torch.float32))  # fp32, or fp64 in tests
    return W_U[ids.to(W_U.device)] - W_U.mean(0)


def token_id(model: LoadedModel, token: str | int) -> int:
    """The single vocabulary id of a token string (or an id, checked)."""
    if isinstance(token, int):
        if not 0 <= token < model.vocab_size:
            raise GlassboxError(f"token id {token} is outside the vocabulary (size {model.vocab_size})")
        return token
    ids = model.tokenizer(token, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        raise GlassboxError(
            f"target {token!r} is {len(ids)} tokens ({model.decode_tokens(ids)}); a logit target "
            "must be exactly one token (mind the leading space, e.g. ' Austin')"
        )
    return int(ids[0])


def logit_difference(model: LoadedModel, logits: torch.Tensor, plus: str, minus: str) -> CustomTarget:
    """The direction of logit(plus) - logit(minus); weighted by the probability of `plus`."""
    a, b = token_id(model, plus), token_id(model, minus)
    W_U = model.unembedding.float()
    probs = torch.softmax(logits.float(), -1)
    return CustomTarget(label=f"{plus} - {minus}", weight=float(probs[a]), vec=W_U[a] - W_U[b])


def prompt_logit_difference(model: LoadedModel, prompt: str, plus: str, minus: str) -> CustomTarget:
    """`logit_difference` at the last position of `prompt` (one forward pass for the weight)."""
    ids = model.tokenize(prompt)
    logits = model.forward(ids, keep_layers=False, logits_at="last").logits[0, -1]
    return logit_difference(model, logits, plus, minus)


def salient_targets(model: LoadedModel, logits: torch.Tensor, *, max_n_logits: int,
                    desired_logit_prob: float) -> Targets:
    """Top tokens by probability until their cumulative probability reaches the goal."""
    if max_n_logits < 1:
        raise GlassboxError("max_n_logits must be at least 1")
    if not 0 < desired_logit_prob <= 1:
        raise GlassboxError("desired_logit_prob must be in (0, 1]")
    probs = torch.softmax(logits.float(), dim=-1)
    top_p, top_i = probs.topk(min(max_n_logits, probs.shape[-1]))
    goal = torch.tensor(desired_logit_prob, device=top_p.device)
    cutoff = int(torch.searchsorted(torch.cumsum(top_p, 0), goal)) + 1
    top_p, top_i = top_p[:cutoff], top_i[:cutoff]
    return _token_targets(model, top_i, top_p)


def _token_targets(model: LoadedModel, ids: torch.Tensor, probs: torch.Tensor) -> Targets:
    strs = model.decode_tokens(ids)
    return Targets(
        logit_targets=[LogitTarget(s, int(i)) for s, i in zip(strs, ids, strict=True)],
        probabilities=probs.float().cpu(),
        vectors=demeaned_unembedding(model, ids),
    )


def resolve_targets(model: LoadedModel, logits: torch.Tensor, spec: TargetSpec, *,
                    max_n_logits: int, desired_logit_prob: float) -> Targets:
    """Turn any accepted target specification into directions and weights."""
    if spec is None:
        return salient_targets(model, logits, max_n_logits=max_n_logits,
                               desired_logit_prob=desired_logit_prob)
    if isinstance(spec, (str, int, CustomTarget)):
        spec = [spec]  # type: ignore[list-item]
    items = list(spec)
    if not items:
        raise GlassboxError("the list of targets is empty")
    if all(isinstance(t, (str, int)) for t in items):
        ids = torch.tensor([token_id(model, t) for t in items], dtype=torch.long)
        probs = torch.softmax(logits.float(), -1)[ids.to(logits.device)]
        return _token_targets(model, ids, probs)
    if all(isinstance(t, CustomTarget) for t in items):
        base = model.vocab_size
        return Targets(
            logit_targets=[LogitTarget(t.label, base + i) for i, t in enumerate(items)],
            probabilities=torch.tensor([t.weight for t in items], dtype=torch.float32),
            vectors=torch.stack([t.vec.float().to(model.device) for t in items]),
        )
    raise GlassboxError("targets must be all token strings/ids or all CustomTarget")
