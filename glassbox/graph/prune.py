"""Influence, pruning and graph scores, with circuit-tracer's definitions.

Notation (N nodes, adjacency `A[target, source]`, rows are targets):

    A_hat = |A| with each row divided by its sum (clamped at 1e-10)
    w     = logit probabilities on the logit nodes, 0 elsewhere          (N,)
    I     = w^T (A_hat + A_hat^2 + ...) = w^T ((1 - A_hat)^-1 - 1)         (N,)

`I[j]` is how much of the (probability-weighted) output flows through node j. The graph is a
DAG, so `A_hat` is nilpotent and the series ends: we sum it by repeated vector-matrix
products (at most depth-many), never forming an inverse. Large graphs are read in row blocks,
skipping blocks where the running vector is zero, so no N x N temporary is made; small ones
keep one |A| copy for speed. Edge scores and the dangling-node sweep work on the kept
subgraph only (K x K), not on N x N.

Pruning (`prune_graph`) keeps the nodes that carry `node_threshold` of the total influence
(tokens and logits always stay), renormalises the rows of that subgraph, scores every edge as
`A_hat'[t, s] * (I'[t] + w[t])`, keeps the edges that carry `edge_threshold` of the total edge
score, and then drops features and errors left without outgoing edges and features left
without incoming edges, until nothing changes.

One deliberate difference from circuit-tracer: when a threshold would select a zero score
(every score zero, or float rounding at threshold 1.0), circuit-tracer keeps every entry,
including node pairs with no edge; we never keep a zero-score edge.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

import torch

from glassbox.errors import GlassboxError, GraphFormatError
from glassbox.graph.graph import Graph

logger = logging.getLogger(__name__)

ROW_SUM_EPS = 1e-10  # circuit-tracer's clamp on row sums
MAX_ITER = 1000  # longest path we accept; graphs of real models are n_layers + 2 deep
BLOCK_ELEMENTS = 1 << 24  # rows per block * N: bounds the temporary of one product (64 MB)
ABS_COPY_ELEMENTS = 1 << 24  # up to this size (N ~ 4k) keep one |A| copy instead of blocks


class PruneResult(NamedTuple):
    node_mask: torch.Tensor  # (N,) bool: nodes to keep
    edge_mask: torch.Tensor  # (N, N) bool, [target, source]: edges to keep
    cumulative_scores: torch.Tensor  # (N,) cumulative influence fraction at each node's rank


# ---- influence ----------------------------------------------------------------------------


def logit_weights(graph: Graph) -> torch.Tensor:
    """(N,) float32: the logit probabilities on the logit nodes, zero elsewhere."""
    if graph.n_logits == 0:
        raise GraphFormatError("graph has no logit targets, so nothing to measure influence on")
    adjacency = graph.adjacency_matrix
    if tuple(adjacency.shape) != (graph.n_nodes, graph.n_nodes):
        raise GraphFormatError(
            f"adjacency is {tuple(adjacency.shape)} but the graph has {graph.n_nodes} nodes "
            f"({graph.n_selected} features, {graph.n_errors} errors, {graph.n_pos} tokens, "
            f"{graph.n_logits} logits)"
        )
    weights = torch.zeros(adjacency.shape[0], dtype=torch.float32, device=adjacency.device)
    weights[graph.logit_node(0):] = graph.logit_probabilities.to(weights)
    return weights


def _as_supported(adjacency: torch.Tensor) -> torch.Tensor:
    """Dense float32, or sparse COO float32 (CSR and friends become COO)."""
    if adjacency.dim() != 2 or adjacency.shape[0] != adjacency.shape[1]:
        raise GraphFormatError(f"adjacency must be square, got shape {tuple(adjacency.shape)}")
    if adjacency.layout == torch.strided:
        return adjacency.float()
    return adjacency.to_sparse_coo().coalesce().float()


def _rows_per_block(n_cols: int) -> int:
    return max(1, BLOCK_ELEMENTS // max(n_cols, 1))


def row_abs_sums(adjacency: torch.Tensor) -> torch.Tensor:
    """(N,) sum_j |A[i, j]|, read in row blocks (no N x N temporary)."""
    adjacency = _as_supported(adjacency)
    if adjacency.is_sparse:
        return torch.sparse.sum(adjacency.abs(), dim=1).to_dense().reshape(-1)
    step = _rows_per_block(adjacency.shape[1])
    return torch.cat([adjacency[i : i + step].abs().sum(dim=1) for i in range(0, adjacency.shape[0], step)])


def _abs_copy(adjacency: torch.Tensor) -> torch.Tensor | None:
    """|A| when it is cheap to hold (sparse, or dense up to ABS_COPY_ELEMENTS), else None."""
    if adjacency.is_sparse or adjacency.numel() <= ABS_COPY_ELEMENTS:
        return adjacency.abs()
    return None


def _abs_vecmat(x: torch.Tensor, adjacency: torch.Tensor, adjacency_abs: torch.Tensor | None) -> torch.Tensor:
    """x @ |A|: one product with the |A| copy, else row blocks of A where x is non-zero."""
    if adjacency_abs is not None and adjacency_abs.is_sparse:
        return torch.sparse.mm(adjacency_abs.t(), x.unsqueeze(1)).squeeze(1)
    if adjacency_abs is not None:
        return x @ adjacency_abs
    out = torch.zeros(adjacency.shape[1], dtype=x.dtype, device=x.device)
    step = _rows_per_block(adjacency.shape[1])
    for start in range(0, adjacency.shape[0], step):
        block = x[start : start + step]  # (rows,)
        if block.any():
            out += block @ adjacency[start : start + step].abs()  # (rows,) @ (rows, N)
    return out


def compute_influence(
    adjacency: torch.Tensor, weights: torch.Tensor, *, max_iter: int = MAX_ITER
) -> torch.Tensor:
    """I = w^T (A_hat + A_hat^2 + ...) for a DAG adjacency `A[target, source]`.

    |A| is kept as one copy when that is cheap (`_abs_copy`); larger dense graphs are read
    in row blocks at every step instead. Raises GraphFormatError when the series does not
    end (the adjacency has a cycle) or is not finite.
    """
    adjacency = _as_supported(adjacency)
    adjacency_abs = _abs_copy(adjacency)
    inv_rows = 1.0 / row_abs_sums(adjacency).clamp(min=ROW_SUM_EPS)  # (N,)
    current = _abs_vecmat(weights.float() * inv_rows, adjacency, adjacency_abs)  # w^T A_hat
    total = current.clone()
    for _ in range(max_iter):
        if not torch.isfinite(current).all():
            raise GraphFormatError("influence is not finite: the adjacency holds NaN or inf")
        if not current.any():
            return total
        current = _abs_vecmat(current * inv_rows, adjacency, adjacency_abs)
        total += current
    raise GraphFormatError(f"influence did not converge in {max_iter} steps: the adjacency has a cycle")


def node_influence(graph: Graph) -> torch.Tensor:
    """(N,) influence of every node on the logits (0 for the logits themselves)."""
    return compute_influence(graph.adjacency_matrix, logit_weights(graph))


def influence_shares(graph: Graph, influence: torch.Tensor | None = None) -> dict[str, float]:
    """Shares of the total node influence on the logits held by features, error nodes, the BOS
    token and the other tokens: a graph whose influence sits in error nodes shows the limits of
    its transcoders more than the model's computation."""
    infl = (node_influence(graph) if influence is None else influence).double()
    s, e, t = graph.n_selected, graph.n_errors, graph.n_pos
    total = float(infl[: s + e + t].sum()) or 1.0
    tokens = infl[s + e: s + e + t]
    return {"features": float(infl[:s].sum()) / total, "errors": float(infl[s: s + e].sum()) / total,
            "bos": float(tokens[0]) / total, "other tokens": float(tokens[1:].sum()) / total}


def cumulative_scores(influence: torch.Tensor) -> torch.Tensor:
    """(N,) each node's cumulative influence fraction at its rank (smaller = more important)."""
    ordered, order = torch.sort(influence, descending=True, stable=True)
    total = ordered.sum()
    out = torch.zeros_like(influence)
    if total > 0:
        out[order] = torch.cumsum(ordered, dim=0) / total
    return out


# ---- thresholds and pruning ---------------------------------------------------------------


def find_threshold(scores: torch.Tensor, fraction: float) -> float:
    """Smallest score among the fewest top scores whose sum reaches `fraction` of the total.

    Like circuit-tracer's: the cut-off is the score at the first rank where the cumulative
    fraction is >= `fraction`. It never falls on a zero score while a non-zero one exists;
    it is 0.0 only when every score is zero.
    """
    positive = scores[scores > 0]
    if positive.numel() == 0:
        return 0.0
    ordered = torch.sort(positive, descending=True).values
    cumulative = torch.cumsum(ordered, dim=0) / ordered.sum()
    index = int(torch.searchsorted(cumulative, torch.tensor(float(fraction)).to(cumulative)))
    return float(ordered[min(index, ordered.numel() - 1)])


def _check_fraction(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise GlassboxError(f"{name} must be between 0.0 and 1.0, got {value}")


def _submatrix(adjacency: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Dense A[index][:, index] (K x K), for a dense or sparse adjacency."""
    adjacency = _as_supported(adjacency)
    sub = adjacency.index_select(0, index).index_select(1, index)
    return sub.to_dense() if sub.is_sparse else sub


def edge_scores(adjacency: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """(N, N) A_hat[t, s] * (I[t] + w[t]) for a (small, dense) adjacency."""
    normalized = adjacency.abs()
    normalized /= normalized.sum(dim=1, keepdim=True).clamp(min=ROW_SUM_EPS)
    influence = compute_influence(adjacency, weights) + weights
    return normalized * influence[:, None]


def _drop_dangling(
    node_mask: torch.Tensor, edge_mask: torch.Tensor, *, n_features: int, n_inner: int
) -> None:
    """In place: features/errors need an outgoing edge, features an incoming one; repeat.

    The first `n_features` nodes are features, the first `n_inner` features or errors.
    """
    while True:
        before = node_mask.clone()
        node_mask[:n_inner] &= edge_mask[:, :n_inner].any(dim=0)
        node_mask[:n_features] &= edge_mask[:n_features].any(dim=1)
        edge_mask[~node_mask] = False
        edge_mask[:, ~node_mask] = False
        if torch.equal(node_mask, before):
            return


def prune_graph(
    graph: Graph,
    node_threshold: float = 0.8,
    edge_threshold: float = 0.98,
    *,
    influence: torch.Tensor | None = None,
) -> PruneResult:
    """Keep the nodes and edges that carry most of the influence on the logits.

    Returns masks over the full node order ([features | errors | tokens | logits]) and each
    node's cumulative influence fraction (the JSON `influence` field). `influence` may pass
    in `node_influence(graph)` when the caller already has it.
    """
    _check_fraction("node_threshold", node_threshold)
    _check_fraction("edge_threshold", edge_threshold)
    weights = logit_weights(graph)
    if influence is None:
        influence = compute_influence(graph.adjacency_matrix, weights)
    n_nodes = influence.shape[0]
    n_inner = graph.n_selected + graph.n_errors

    node_mask = influence >= find_threshold(influence, node_threshold)
    node_mask[n_inner:] = True  # tokens and logits always stay

    # Everything below lives on the kept subgraph (K x K): pruned rows and columns score zero.
    kept = node_mask.nonzero().squeeze(1)  # (K,) ascending, so node kinds stay in order
    scores = edge_scores(_submatrix(graph.adjacency_matrix, kept), weights[kept])  # (K, K)
    cutoff = find_threshold(scores.flatten(), edge_threshold)
    sub_edges = (scores >= cutoff) & (scores > 0)
    sub_nodes = torch.ones(kept.numel(), dtype=torch.bool, device=kept.device)
    _drop_dangling(sub_nodes, sub_edges, n_features=int((kept < graph.n_selected).sum()),
                   n_inner=int((kept < n_inner).sum()))

    node_mask = torch.zeros(n_nodes, dtype=torch.bool, device=influence.device)
    node_mask[kept[sub_nodes]] = True
    edge_mask = torch.zeros(n_nodes, n_nodes, dtype=torch.bool, device=influence.device)
    targets, sources = sub_edges.nonzero(as_tuple=True)
    edge_mask[kept[targets], kept[sources]] = True
    logger.debug("pruned graph: %d of %d nodes, %d edges", int(node_mask.sum()), n_nodes, targets.numel())
    return PruneResult(node_mask, edge_mask, cumulative_scores(influence))


# ---- scores -------------------------------------------------------------------------------


def compute_graph_scores(graph: Graph, *, influence: torch.Tensor | None = None) -> tuple[float, float]:
    """(replacement_score, completeness_score) of an unpruned graph.

    replacement  = sum I_tokens / (sum I_tokens + sum I_errors): of the influence that enters
                   the graph (tokens and error nodes have no inputs), the share from tokens.
    completeness = sum_i (1 - error share of node i's input) (I_i + w_i) / sum_i (I_i + w_i):
                   partial credit per node, weighted by its influence.
    replacement is NaN when no influence reaches the tokens or errors (0 / 0), as in
    circuit-tracer.
    """
    weights = logit_weights(graph)
    if influence is None:
        influence = compute_influence(graph.adjacency_matrix, weights)
    errors = torch.arange(graph.n_selected, graph.n_selected + graph.n_errors, device=weights.device)
    tokens = torch.arange(graph.token_node(0), graph.logit_node(0), device=weights.device)

    token_influence = influence[tokens].sum()
    error_influence = influence[errors].sum()
    replacement = token_influence / (token_influence + error_influence)

    adjacency = _as_supported(graph.adjacency_matrix)
    error_inputs = adjacency.index_select(1, errors).abs()
    error_inputs = error_inputs.to_dense() if error_inputs.is_sparse else error_inputs
    row_sums = row_abs_sums(adjacency).clamp(min=ROW_SUM_EPS)
    non_error_share = 1 - error_inputs.sum(dim=1) / row_sums  # (N,)
    output_influence = influence + weights
    completeness = (non_error_share * output_influence).sum() / output_influence.sum()
    return float(replacement), float(completeness)
