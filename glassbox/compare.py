"""Compare attribution graphs: shared features, how much each matters, aligned token positions.

Two questions:

* Same model and transcoders, different prompts (say "What is the opposite of small?" in
  English, French and Chinese): which transcoder features appear in both graphs (same layer
  and feature index, at any position), how much each carries in each graph, and what changed.
  A feature's weight in a graph is its influence on the logits (`glassbox.graph.prune`),
  summed over its positions, as a share of the graph's total node influence, so graphs of
  different sizes compare.
* The same prompt on two models: which token positions correspond. Both token lists are laid
  over the prompt's characters; positions whose character spans overlap pair up, and
  positions whose tokens end at the same character have read the same text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from glassbox.errors import GlassboxError
from glassbox.graph.graph import Graph
from glassbox.graph.prune import find_threshold, node_influence

# ---- features of one graph ---------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureStat:
    """One transcoder feature (layer, index) in one graph, over all its positions."""

    layer: int
    feature: int
    positions: tuple[int, ...]
    influence: float  # summed node influence on the logits
    share: float  # influence / total influence of the graph's nodes
    max_activation: float

    def to_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "feature": self.feature, "positions": list(self.positions),
                "influence": self.influence, "share": self.share, "max_activation": self.max_activation}


def feature_stats(graph: Graph, *, node_threshold: float | None = None,
                  influence: torch.Tensor | None = None) -> dict[tuple[int, int], FeatureStat]:
    """(layer, feature) -> stats over the graph's feature nodes.

    node_threshold: keep only feature nodes that survive node pruning at this threshold
    (the nodes carrying that fraction of the influence), as the pruned graph shows them.
    """
    infl = (node_influence(graph) if influence is None else influence).double()  # (N,)
    total = float(infl.sum())
    keep = torch.ones(graph.n_selected, dtype=torch.bool)
    if node_threshold is not None:
        if not 0.0 <= node_threshold <= 1.0:
            raise GlassboxError(f"node_threshold must be between 0 and 1, got {node_threshold}")
        keep = infl[: graph.n_selected] >= find_threshold(infl.float(), node_threshold)
    triples = graph.selected_feature_triples().tolist()  # (n_selected, 3)
    acts = graph.activation_values[graph.selected_features].tolist()
    groups: dict[tuple[int, int], list[int]] = {}
    for node, (layer, _pos, feat) in enumerate(triples):
        if keep[node]:
            groups.setdefault((layer, feat), []).append(node)
    stats = {}
    for (layer, feat), nodes in groups.items():
        inf = float(infl[nodes].sum())
        stats[(layer, feat)] = FeatureStat(
            layer=layer, feature=feat, positions=tuple(sorted({triples[n][1] for n in nodes})),
            influence=inf, share=inf / total if total > 0 else 0.0,
            max_activation=max(acts[n] for n in nodes))
    return stats


# ---- two graphs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureComparison:
    """One feature in graph a and/or graph b."""

    layer: int
    feature: int
    a: FeatureStat | None
    b: FeatureStat | None

    @property
    def in_both(self) -> bool:
        return self.a is not None and self.b is not None

    @property
    def share_a(self) -> float:
        return 0.0 if self.a is None else self.a.share

    @property
    def share_b(self) -> float:
        return 0.0 if self.b is None else self.b.share

    @property
    def change(self) -> float:
        """share in b - share in a (a feature missing from a graph has share 0 there)."""
        return self.share_b - self.share_a

    def to_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "feature": self.feature, "in_both": self.in_both,
                "share_a": self.share_a, "share_b": self.share_b, "change": self.change,
                "a": None if self.a is None else self.a.to_dict(),
                "b": None if self.b is None else self.b.to_dict()}


@dataclass
class Comparison:
    """Features of two graphs of one model: shared, only in one, and the difference view."""

    shared: list[FeatureComparison]  # in both, by combined share (largest first)
    only_a: list[FeatureComparison]  # by share in a
    only_b: list[FeatureComparison]  # by share in b
    prompt_a: str = ""
    prompt_b: str = ""

    @property
    def shared_share_a(self) -> float:
        """How much of graph a's feature influence sits in features graph b also has."""
        return sum(c.share_a for c in self.shared)

    @property
    def shared_share_b(self) -> float:
        return sum(c.share_b for c in self.shared)

    @property
    def weighted_overlap(self) -> float:
        """sum min(share_a, share_b) / sum max(share_a, share_b) over all features (0..1)."""
        every = self.shared + self.only_a + self.only_b
        top = sum(max(c.share_a, c.share_b) for c in every)
        return sum(min(c.share_a, c.share_b) for c in every) / top if top > 0 else 0.0

    def differences(self) -> list[FeatureComparison]:
        """Every feature, by the size of its change in share (the difference view)."""
        every = self.shared + self.only_a + self.only_b
        return sorted(every, key=lambda c: (-abs(c.change), c.layer, c.feature))

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt_a": self.prompt_a, "prompt_b": self.prompt_b,
            "n_shared": len(self.shared), "n_only_a": len(self.only_a), "n_only_b": len(self.only_b),
            "shared_share_a": self.shared_share_a, "shared_share_b": self.shared_share_b,
            "weighted_overlap": self.weighted_overlap,
            "shared": [c.to_dict() for c in self.shared],
            "only_a": [c.to_dict() for c in self.only_a],
            "only_b": [c.to_dict() for c in self.only_b],
        }


def check_same_model(g1: Graph, g2: Graph) -> None:
    """Feature indices only mean the same thing under one model and one transcoder set."""
    for what, x, y in (("model", g1.model_name, g2.model_name),
                       ("transcoder set", g1.transcoder_name, g2.transcoder_name)):
        if x and y and x != y:
            raise GlassboxError(f"the graphs use different {what}s ({x!r} and {y!r}); feature indices "
                                "are only comparable within one model and transcoder set "
                                "(align_graph_positions compares one prompt on two models)")
    if g1.n_layers != g2.n_layers:
        raise GlassboxError(f"the graphs have {g1.n_layers} and {g2.n_layers} layers: not the same model")


def compare_graphs(g1: Graph, g2: Graph, *, node_threshold: float | None = None) -> Comparison:
    """Shared and distinct features of two graphs of the same model and transcoders."""
    check_same_model(g1, g2)
    a = feature_stats(g1, node_threshold=node_threshold)
    b = feature_stats(g2, node_threshold=node_threshold)
    both = [FeatureComparison(k[0], k[1], a[k], b[k]) for k in a.keys() & b.keys()]
    only_a = [FeatureComparison(k[0], k[1], a[k], None) for k in a.keys() - b.keys()]
    only_b = [FeatureComparison(k[0], k[1], None, b[k]) for k in b.keys() - a.keys()]
    return Comparison(
        shared=sorted(both, key=lambda c: (-(c.share_a + c.share_b), c.layer, c.feature)),
        only_a=sorted(only_a, key=lambda c: (-c.share_a, c.layer, c.feature)),
        only_b=sorted(only_b, key=lambda c: (-c.share_b, c.layer, c.feature)),
        prompt_a=g1.input_string, prompt_b=g2.input_string,
    )


# ---- one prompt, two tokenizers ------------------------------------------------------------------


def _special(token: str) -> bool:
    return len(token) > 2 and token.startswith("<") and token.endswith(">")


def _match(text: str, token: str, at: int) -> int | None:
    """End offset if `token` reads text at `at` (leading whitespace may differ), else None."""
    if token and text.startswith(token, at):
        return at + len(token)
    body = token.lstrip()
    skip = at
    while skip < len(text) and text[skip].isspace():
        skip += 1
    if body and text.startswith(body, skip) and (skip > at or body != token):
        return skip + len(body)
    return None


def _find(text: str, token: str, at: int) -> int | None:
    """Where `token` next reads in text from `at` (exactly, else without its whitespace)."""
    for body in (token, token.strip()):
        k = text.find(body, at) if body else -1
        if k >= 0:
            return k
    return None


def token_spans(text: str, tokens: Sequence[str]) -> list[tuple[int, int]]:
    """Character span [start, end) of each token in text.

    Special tokens (BOS, "<...>") that are not in the text are empty spans. Tokens that do not
    read as text (a byte of a multi-byte character decodes to U+FFFD) share the characters up
    to where the next readable token starts.
    """
    spans = [(0, 0)] * len(tokens)
    at, pending = 0, []
    for i, tok in enumerate(tokens):
        end = _match(text, tok, at)
        if end is None and pending:
            start = _find(text, tok, at)
            if start is not None:
                spans[pending[0]:pending[-1] + 1] = [(at, start)] * len(pending)
                pending, at = [], start
                end = _match(text, tok, at)
        if end is not None:
            for j in pending:  # unreadable tokens that cover no characters
                spans[j] = (at, at)
            pending = []
            spans[i], at = (at, end), end
        elif _special(tok) or not tok:
            spans[i] = (at, at)
        else:
            pending.append(i)
    for j in pending:
        spans[j] = (at, len(text))
    return spans


@dataclass
class TokenAlignment:
    """Positions of two tokenisations of one prompt, matched through character offsets."""

    text: str
    tokens_a: list[str]
    tokens_b: list[str]
    spans_a: list[tuple[int, int]]
    spans_b: list[tuple[int, int]]
    pairs: list[tuple[int, int]]  # (i, j): spans overlap (empty special tokens pair at one offset)
    same_end: list[tuple[int, int]]  # (i, j): both have read exactly text[:end]

    def positions_in_b(self, i: int) -> list[int]:
        return [j for a, j in self.pairs if a == i]

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "tokens_a": self.tokens_a, "tokens_b": self.tokens_b,
                "spans_a": [list(s) for s in self.spans_a], "spans_b": [list(s) for s in self.spans_b],
                "pairs": [list(p) for p in self.pairs], "same_end": [list(p) for p in self.same_end]}


def align_tokens(text: str, tokens_a: Sequence[str], tokens_b: Sequence[str]) -> TokenAlignment:
    """Align two token lists (decoded strings, BOS included) of the same text."""
    sa, sb = token_spans(text, tokens_a), token_spans(text, tokens_b)
    pairs, same_end = [], []
    for i, (a0, a1) in enumerate(sa):
        for j, (b0, b1) in enumerate(sb):
            empty_together = a0 == a1 and b0 == b1 and a0 == b0
            if max(a0, b0) < min(a1, b1) or empty_together:
                pairs.append((i, j))
            if a1 == b1 and (a0 < a1) == (b0 < b1):
                same_end.append((i, j))
    return TokenAlignment(text, list(tokens_a), list(tokens_b), sa, sb, pairs, same_end)


def align_graph_positions(g1: Graph, g2: Graph) -> TokenAlignment:
    """Token positions of one prompt traced on two models."""
    if g1.input_string != g2.input_string:
        raise GlassboxError("position alignment needs the same prompt in both graphs "
                            f"({g1.input_string!r} vs {g2.input_string!r})")
    for g in (g1, g2):
        if len(g.token_strings) != g.n_pos:
            raise GlassboxError(f"graph of {g.model_name or 'a model'} has no decoded token strings")
    return align_tokens(g1.input_string, g1.token_strings, g2.token_strings)
