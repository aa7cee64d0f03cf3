"""Hand-built and random attribution graphs for the graph tests (no model, no engine).

`hand_graph()` is small enough that its influences, pruning and scores are worked out by hand
in tests/test_graph_prune.py. `random_graph()` builds a layered DAG shaped like a real graph.
`write_circuit_tracer_pt()` writes a file the way circuit-tracer's `Graph.to_pt` does.
"""

from __future__ import annotations

import dataclasses
import sys
import types
from pathlib import Path
from typing import NamedTuple

import torch

from glassbox.graph.graph import Graph, LogitTarget

# ---- the hand graph -----------------------------------------------------------------------
#
# n_layers = 2, n_pos = 2, 4 features, 2 logits: 12 nodes.
#
#   index  0   1   2   3   4    5    6    7    8   9   10  11
#   node   F0  F1  F2  F3  E00  E01  E10  E11  T0  T1  L0  L1
#
# E{l}{p} is the error node of layer l at position p (index 4 + 2 l + p).
# Edges A[target, source] (signed; pruning only looks at |A|):
#   L0 <- F2 +3, E11 -1         L1 <- F2 -1, F1 +1
#   F2 <- F0 +2, F1 -1, E01 +1  F0 <- T1 +4
#   F1 <- T1 +1, T0 -1          F3 <- T0 +2     (F3 reaches no logit)
# Logit probabilities: L0 0.75, L1 0.25.

F0, F1, F2, F3, E00, E01, E10, E11, T0, T1, L0, L1 = range(12)
HAND_EDGES = {
    (L0, F2): 3.0, (L0, E11): -1.0,
    (L1, F2): -1.0, (L1, F1): 1.0,
    (F2, F0): 2.0, (F2, F1): -1.0, (F2, E01): 1.0,
    (F0, T1): 4.0,
    (F1, T1): 1.0, (F1, T0): -1.0,
    (F3, T0): 2.0,
}
# (layer, pos, feature index) of F0..F3; listed among other active features that were not
# selected, so selected_features is not the identity.
HAND_ACTIVE = [[0, 0, 11], [0, 1, 7], [0, 1, 3], [1, 1, 5], [1, 0, 2], [1, 1, 9]]
HAND_SELECTED = [1, 2, 3, 4]
HAND_ACTIVATIONS = [9.0, 1.5, 2.5, 3.5, 4.5, 8.0]


def hand_graph() -> Graph:
    adjacency = torch.zeros(12, 12)
    for (target, source), weight in HAND_EDGES.items():
        adjacency[target, source] = weight
    return Graph(
        input_string="ab",
        input_tokens=torch.tensor([2, 17]),
        active_features=torch.tensor(HAND_ACTIVE),
        activation_values=torch.tensor(HAND_ACTIVATIONS),
        selected_features=torch.tensor(HAND_SELECTED),
        adjacency_matrix=adjacency,
        logit_targets=[LogitTarget(" x", 40), LogitTarget(' "q"', 41)],
        logit_probabilities=torch.tensor([0.75, 0.25]),
        n_layers=2,
        vocab_size=50,
        model_name="tiny-model",
        transcoder_name="tiny-plt",
        token_strings=["<s>", "b"],
        metadata={"max_n_logits": 10, "desired_logit_prob": 0.95, "batch_size": 256,
                  "max_feature_nodes": None, "timings": {"total_s": 0.5}},
    )


def featureless_graph(rows: dict[int, dict[int, float]], n_layers: int = 1) -> Graph:
    """No features: n_layers * 2 errors, 2 tokens, 1 logit; `rows` = {target: {source: weight}}."""
    n = n_layers * 2 + 3
    adjacency = torch.zeros(n, n)
    for target, row in rows.items():
        for source, weight in row.items():
            adjacency[target, source] = weight
    return Graph(
        input_string="ab", input_tokens=torch.tensor([1, 2]),
        active_features=torch.zeros(0, 3, dtype=torch.long), activation_values=torch.zeros(0),
        selected_features=torch.zeros(0, dtype=torch.long), adjacency_matrix=adjacency,
        logit_targets=[LogitTarget("c", 3)], logit_probabilities=torch.tensor([0.5]),
        n_layers=n_layers, vocab_size=10, token_strings=["a", "b"],
    )


# ---- random layered DAGs ------------------------------------------------------------------


def random_graph(
    seed: int = 0,
    *,
    n_layers: int = 3,
    n_pos: int = 4,
    n_features: int = 20,
    n_logits: int = 3,
    density: float = 0.5,
) -> Graph:
    """Edges only from a lower layer to a higher one at the same or an earlier position."""
    gen = torch.Generator().manual_seed(seed)
    feat_layer = torch.randint(0, n_layers, (n_features,), generator=gen)
    feat_pos = torch.randint(0, n_pos, (n_features,), generator=gen)
    feat_index = torch.randperm(max(1000, 2 * n_features), generator=gen)[:n_features]
    err_layer = torch.arange(n_layers).repeat_interleave(n_pos)
    err_pos = torch.arange(n_pos).repeat(n_layers)
    layer = torch.cat([feat_layer, err_layer, torch.full((n_pos,), -1), torch.full((n_logits,), n_layers)])
    pos = torch.cat([feat_pos, err_pos, torch.arange(n_pos), torch.full((n_logits,), n_pos - 1)])
    n = layer.numel()
    is_target = torch.zeros(n, dtype=torch.bool)  # errors and tokens have no inputs
    is_target[:n_features] = True
    is_target[n - n_logits:] = True
    allowed = (layer[None, :] < layer[:, None]) & (pos[None, :] <= pos[:, None]) & is_target[:, None]
    allowed[:, n - n_logits:] = False  # logits are never sources
    keep = torch.rand(n, n, generator=gen) < density
    adjacency = torch.randn(n, n, generator=gen) * (allowed & keep)
    probs = torch.rand(n_logits, generator=gen) + 0.1
    probs = probs / probs.sum() * 0.9
    active = torch.stack([feat_layer, feat_pos, feat_index], dim=1)
    return Graph(
        input_string=" ".join(f"t{i}" for i in range(n_pos)),
        input_tokens=torch.randint(0, 100, (n_pos,), generator=gen),
        active_features=active,
        activation_values=torch.rand(n_features, generator=gen) * 10,
        selected_features=torch.arange(n_features),
        adjacency_matrix=adjacency,
        logit_targets=[LogitTarget(f"tok{i}", 100 + i) for i in range(n_logits)],
        logit_probabilities=probs,
        n_layers=n_layers,
        vocab_size=200,
        model_name="random-model",
        token_strings=[f" t{i}" for i in range(n_pos)],
    )


# ---- circuit-tracer .pt files -------------------------------------------------------------


class _CTLogitTarget(NamedTuple):
    token_str: str
    vocab_idx: int


@dataclasses.dataclass
class _CTUnifiedConfig:
    n_layers: int
    d_model: int
    d_head: int
    n_heads: int
    d_mlp: int
    d_vocab: int
    tokenizer_name: str
    model_name: str
    original_architecture: str
    n_key_value_heads: int | None = None
    dtype: torch.dtype | None = None


@dataclasses.dataclass
class _CTHookedTransformerConfig:  # the transformer-lens config older graphs carry
    n_layers: int
    d_model: int
    d_vocab: int
    model_name: str
    tokenizer_name: str
    dtype: torch.dtype = torch.float32


_CT_CLASSES = {
    "circuit_tracer.attribution.targets": {"LogitTarget": _CTLogitTarget},
    "circuit_tracer.utils.tl_nnsight_mapping": {"UnifiedConfig": _CTUnifiedConfig},
    "transformer_lens.HookedTransformerConfig": {"HookedTransformerConfig": _CTHookedTransformerConfig},
}


def write_circuit_tracer_pt(path: Path, graph: Graph, *, legacy: bool = False) -> None:
    """Save `graph` as circuit-tracer would: its classes pickled under their own module names.

    legacy=False: today's `to_pt` keys (logit_targets as LogitTarget NamedTuples, vocab_size,
    scan_name, a UnifiedConfig). legacy=True: the first releases' keys (logit_tokens tensor,
    scan, a transformer-lens HookedTransformerConfig).
    """
    names = {".".join(m.split(".")[: i + 1]) for m in _CT_CLASSES for i in range(m.count(".") + 1)}
    saved = {name: sys.modules.get(name) for name in names}
    try:
        for name in sorted(names):  # packages before their modules
            sys.modules[name] = types.ModuleType(name)
        for module_name, classes in _CT_CLASSES.items():
            for name, cls in classes.items():
                cls.__module__, cls.__qualname__, cls.__name__ = module_name, name, name
                setattr(sys.modules[module_name], name, cls)
        torch.save(_circuit_tracer_dict(graph, legacy=legacy), path)
    finally:  # circuit-tracer is not importable when the file is read back
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def _circuit_tracer_dict(graph: Graph, *, legacy: bool) -> dict:
    common = {
        "input_string": graph.input_string,
        "adjacency_matrix": graph.adjacency_matrix,
        "active_features": graph.active_features,
        "logit_probabilities": graph.logit_probabilities,
        "input_tokens": graph.input_tokens,
        "selected_features": graph.selected_features,
        "activation_values": graph.activation_values,
    }
    if legacy:
        cfg = _CTHookedTransformerConfig(n_layers=graph.n_layers, d_model=8, d_vocab=graph.vocab_size,
                                         model_name=graph.model_name, tokenizer_name="tok")
        return {**common, "cfg": cfg, "logit_tokens": graph.logit_tokens, "scan": graph.transcoder_name}
    cfg = _CTUnifiedConfig(n_layers=graph.n_layers, d_model=8, d_head=4, n_heads=2, d_mlp=16,
                           d_vocab=graph.vocab_size, tokenizer_name="tok", model_name=graph.model_name,
                           original_architecture="Gemma2ForCausalLM", dtype=torch.bfloat16)
    targets = [_CTLogitTarget(t.token_str, t.vocab_idx) for t in graph.logit_targets]
    return {**common, "cfg": cfg, "logit_targets": targets, "vocab_size": graph.vocab_size,
            "scan_name": graph.transcoder_name}
