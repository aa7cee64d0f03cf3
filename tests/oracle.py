"""The intervention oracle, shared by the tiny-model and real-model attribution tests.

Remove one source (a feature's activation, an error vector, a token embedding) from the
frozen replacement model, run it forward, and compare the change of every target with that
source's column of the adjacency matrix: they must be equal (A[t, s] = effect of s on t).
"""

from __future__ import annotations

import torch

from glassbox.attribution.context import AttributionContext
from glassbox.attribution.targets import resolve_targets
from glassbox.graph import Graph


def graph_targets(ctx: AttributionContext, graph: Graph) -> torch.Tensor:
    """Directions of the graph's logit targets (token targets only)."""
    model = ctx.model
    tg = resolve_targets(model, ctx.logits, [t.vocab_idx for t in graph.logit_targets],
                         max_n_logits=len(graph.logit_targets), desired_logit_prob=1.0)
    return tg.vectors


def sources(ctx: AttributionContext, graph: Graph, *, max_per_kind: int | None = None,
            seed: int = 0) -> list[tuple[str, int, int, dict]]:
    """(kind, node column in graph, -, delta kwargs) for a sample of sources of each kind."""
    gen = torch.Generator().manual_seed(seed)
    out: list[tuple[str, int, int, dict]] = []
    sel = graph.selected_features.tolist()
    T, L = ctx.n_pos, ctx.n_layers

    def pick(n: int) -> list[int]:
        if max_per_kind is None or n <= max_per_kind:
            return list(range(n))
        return torch.randperm(n, generator=gen)[:max_per_kind].tolist()

    for i in pick(len(sel)):
        j = sel[i]
        da = torch.zeros(ctx.n_active, dtype=ctx.dtype)
        da[j] = -ctx.activation_values[j]
        out.append(("feature", i, j, {"delta_acts": da}))
    errs = [(l, p) for l in range(L) for p in range(ctx.held, T)]
    for i in pick(len(errs)):
        l, p = errs[i]
        de = torch.zeros(L, T, ctx.embeddings.shape[1], dtype=ctx.dtype)
        de[l, p] = -ctx.errors[l][p]
        out.append(("error", graph.error_node(l, p), l, {"delta_errors": de}))
    for p in pick(T):
        dE = torch.zeros_like(ctx.embeddings)
        dE[p] = -ctx.embeddings[p]
        out.append(("token", graph.token_node(p), p, {"delta_embed": dE}))
    return out


def oracle_max_error(ctx: AttributionContext, graph: Graph, **kw) -> tuple[float, float, int]:
    """(max abs difference, max abs edge, number of checked entries) over sampled sources.

    Targets: every selected feature's pre-activation and every logit target.
    """
    vecs = graph_targets(ctx, graph)
    pre0, lg0 = ctx.linear_forward(logit_vecs=vecs)
    sel = graph.selected_features
    A = graph.adjacency_matrix.to(ctx.dtype)
    k = graph.n_logits
    worst, scale, n = 0.0, 0.0, 0
    for _kind, col, _x, delta in sources(ctx, graph, **kw):
        pre1, lg1 = ctx.linear_forward(logit_vecs=vecs, **delta)
        measured = torch.cat([(pre1 - pre0)[sel.to(pre1.device)], lg1 - lg0]).cpu()
        predicted = -torch.cat([A[: graph.n_selected, col], A[-k:, col]])
        worst = max(worst, float((measured - predicted).abs().max()))
        scale = max(scale, float(predicted.abs().max()))
        n += measured.numel()
    return worst, scale, n
