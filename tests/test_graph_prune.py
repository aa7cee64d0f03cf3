"""Influence, pruning and scores against hand-worked answers and a dense reference."""

from __future__ import annotations

import math

import pytest
import torch
from graph_fixtures import (
    E01,
    E11,
    F0,
    F1,
    F2,
    F3,
    L0,
    L1,
    T0,
    T1,
    featureless_graph,
    hand_graph,
    random_graph,
)

from glassbox.errors import GlassboxError, GraphFormatError
from glassbox.graph import prune
from glassbox.graph.graph import Graph
from glassbox.graph.prune import (
    compute_graph_scores,
    compute_influence,
    cumulative_scores,
    find_threshold,
    logit_weights,
    node_influence,
    prune_graph,
)

# ---- the hand graph, worked out -----------------------------------------------------------
#
# Row-normalised |A| (A_hat), per target row:
#   L0: F2 3/4, E11 1/4      L1: F2 1/2, F1 1/2
#   F2: F0 2/4, F1 1/4, E01 1/4
#   F0: T1 1                 F1: T1 1/2, T0 1/2      F3: T0 1
# w = (L0 0.75, L1 0.25). Influence I = w A_hat + w A_hat^2 + ...:
#   step 1: F2 = .75*3/4 + .25*1/2 = .6875, E11 = .75*1/4 = .1875, F1 = .25*1/2 = .125
#   step 2: from F2: F0 += .6875/2 = .34375, F1 += .6875/4 = .171875, E01 += .171875
#           from F1: T1 += .125/2 = .0625, T0 += .0625
#   step 3: from F0: T1 += .34375; from F1 (.171875): T1 += .0859375, T0 += .0859375
# In 128ths: F0 44, F1 16+22 = 38, F2 88, E01 22, E11 24, T0 8+11 = 19, T1 8+44+11 = 63; total 298.
HAND_INFLUENCE_128 = {F0: 44, F1: 38, F2: 88, E01: 22, E11: 24, T0: 19, T1: 63}


def test_hand_graph_influence():
    expected = torch.zeros(12)
    for node, value in HAND_INFLUENCE_128.items():
        expected[node] = value / 128
    assert torch.allclose(node_influence(hand_graph()), expected, atol=1e-7)


def test_hand_graph_cumulative_scores():
    # Ranked: F2 88, T1 63, F0 44, F1 38, E11 24, E01 22, T0 19, then the zeros (F3, E00,
    # E10, L0, L1). Cumulative sums: 88, 151, 195, 233, 257, 279, 298 (of 298).
    expected = torch.full((12,), 1.0)
    for node, cum in {F2: 88, T1: 151, F0: 195, F1: 233, E11: 257, E01: 279, T0: 298}.items():
        expected[node] = cum / 298
    result = prune_graph(hand_graph())
    assert torch.allclose(result.cumulative_scores, expected, atol=1e-6)


def _edges(mask: torch.Tensor) -> set[tuple[int, int]]:
    return {tuple(e) for e in mask.nonzero().tolist()}


def _nodes(mask: torch.Tensor) -> set[int]:
    return set(mask.nonzero().squeeze(1).tolist())


def test_hand_graph_node_pruning_default_thresholds():
    # Node threshold 0.8: 0.8 * 298 = 238.4; the first cumulative sum >= 238.4 is 257 (E11), so
    # the cut-off is E11's 24/128: keep F2, T1, F0, F1, E11; drop E01 (22) and F3, E00, E10 (0).
    # Tokens and logits always stay.
    #
    # Edge scores on the kept subgraph. F2 loses its E01 input, so its row renormalises to
    # F0 2/3, F1 1/3. Influence there: F2 11/16, E11 3/16, F0 11/24, F1 1/8 + 11/48 = 17/48.
    # score = A_hat'[t, s] * (I'[t] + w[t]), in 96ths:
    #   L0<-F2 3/4*3/4 = 54   L0<-E11 1/4*3/4 = 18   L1<-F2 = L1<-F1 = 1/2*1/4 = 12
    #   F2<-F0 2/3*11/16 = 44  F2<-F1 1/3*11/16 = 22  F0<-T1 11/24 = 44
    #   F1<-T1 = F1<-T0 = 1/2*17/48 = 17                 total 240
    # Edge threshold 0.98: 235.2 is first reached by the full 240, so every edge stays.
    result = prune_graph(hand_graph(), 0.8, 0.98)
    assert _nodes(result.node_mask) == {F0, F1, F2, E11, T0, T1, L0, L1}
    assert _edges(result.edge_mask) == {
        (L0, F2), (L0, E11), (L1, F2), (L1, F1), (F2, F0), (F2, F1), (F0, T1), (F1, T1), (F1, T0)
    }


def test_hand_graph_edge_pruning_cascades():
    # Edge threshold 0.7: sorted scores 54, 44, 44, 22, 18, 17, 17, 12, 12 sum to
    # 54, 98, 142, 164, 182, ...; 0.7 * 240 = 168 is first reached at 182 (L0<-E11, 18), so the
    # 17s and 12s go. F1 then has no incoming edge, so F1 goes, and with it F2<-F1.
    result = prune_graph(hand_graph(), 0.8, 0.7)
    assert _nodes(result.node_mask) == {F0, F2, E11, T0, T1, L0, L1}
    assert _edges(result.edge_mask) == {(L0, F2), (L0, E11), (F2, F0), (F0, T1)}


def test_hand_graph_scores():
    # replacement = (T0 + T1) / (T0 + T1 + E01 + E11) = 82 / (82 + 46) = 82/128.
    # completeness: error share of each row's input is 1/4 for L0 (E11) and F2 (E01), else 0.
    # I + w in 128ths: I's total 298 plus L0 96 and L1 32 = 426; the error part is
    # 1/4 * 96 (L0) + 1/4 * 88 (F2) = 46, so completeness = 380/426.
    replacement, completeness = compute_graph_scores(hand_graph())
    assert replacement == pytest.approx(82 / 128, abs=1e-6)
    assert completeness == pytest.approx(380 / 426, abs=1e-6)


def test_thresholds_move_the_answer():
    graph = hand_graph()
    # 0.6 * 298 = 178.8 is first reached at F0 (195): F2, T1, F0 stay. F2's row keeps F0 only.
    result = prune_graph(graph, 0.6, 1.0)
    assert _nodes(result.node_mask) == {F0, F2, T0, T1, L0, L1}
    assert _edges(result.edge_mask) == {(L0, F2), (L1, F2), (F2, F0), (F0, T1)}
    # 0.5 * 298 = 149 is reached at T1: F0 and F1 go, so F2 has no input left and goes too.
    assert _nodes(prune_graph(graph, 0.5, 1.0).node_mask) == {T0, T1, L0, L1}
    assert _nodes(prune_graph(graph, 1.0, 1.0).node_mask) == {F0, F1, F2, E01, E11, T0, T1, L0, L1}


# ---- influence against the dense inverse --------------------------------------------------


def _dense_influence(adjacency: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """w^T ((1 - A_hat)^-1 - 1) in float64, the textbook formula."""
    a = adjacency.double().abs()
    a = a / a.sum(dim=1, keepdim=True).clamp(min=1e-10)
    eye = torch.eye(a.shape[0], dtype=torch.float64)
    return weights.double() @ (torch.linalg.inv(eye - a) - eye)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_power_iteration_equals_dense_inverse(seed):
    graph = random_graph(seed, n_layers=4, n_pos=5, n_features=40)
    weights = logit_weights(graph)
    expected = _dense_influence(graph.adjacency_matrix, weights)
    assert expected.abs().sum() > 0
    assert torch.allclose(node_influence(graph).double(), expected, rtol=1e-5, atol=1e-7)


def test_influence_in_row_blocks_and_sparse(monkeypatch):
    graph = random_graph(3, n_layers=4, n_pos=5, n_features=40)
    weights = logit_weights(graph)
    whole = compute_influence(graph.adjacency_matrix, weights)
    sparse = compute_influence(graph.adjacency_matrix.to_sparse(), weights)
    monkeypatch.setattr(prune, "ABS_COPY_ELEMENTS", 0)  # no |A| copy: read in row blocks
    monkeypatch.setattr(prune, "BLOCK_ELEMENTS", 7 * graph.n_nodes)  # seven rows per block
    blocked = compute_influence(graph.adjacency_matrix, weights)
    monkeypatch.setattr(prune, "BLOCK_ELEMENTS", 1)  # one row per block
    row_by_row = compute_influence(graph.adjacency_matrix, weights)
    assert torch.allclose(sparse, whole, rtol=1e-6, atol=1e-8)
    assert torch.allclose(blocked, whole, rtol=1e-6, atol=1e-8)
    assert torch.allclose(row_by_row, whole, rtol=1e-6, atol=1e-8)


def test_cycle_is_reported():
    adjacency = torch.zeros(3, 3)
    adjacency[0, 1] = adjacency[1, 0] = 1.0
    adjacency[2, 0] = 1.0
    with pytest.raises(GraphFormatError, match="cycle"):
        compute_influence(adjacency, torch.tensor([0.0, 0.0, 1.0]))


def test_nan_adjacency_is_reported():
    graph = hand_graph()
    graph.adjacency_matrix[F2, F0] = float("nan")
    with pytest.raises(GraphFormatError, match="NaN"):
        node_influence(graph)


# ---- pruning against a dense re-statement of the definition -------------------------------


def _reference_prune(graph: Graph, node_threshold: float, edge_threshold: float):
    """The definition on full N x N matrices, written plainly (slow, for comparison)."""
    n_inner, f = graph.n_selected + graph.n_errors, graph.n_selected
    w = logit_weights(graph).double()
    a = graph.adjacency_matrix.double()
    influence = _dense_influence(a, w)

    def threshold(scores, fraction):
        s = torch.sort(scores.flatten(), descending=True).values
        s = s[s > 0]
        cum = torch.cumsum(s, 0) / s.sum()
        return s[min(int((cum < fraction).sum()), len(s) - 1)]

    node_mask = influence >= threshold(influence, node_threshold)
    node_mask[n_inner:] = True
    pruned = a.clone()
    pruned[~node_mask] = 0
    pruned[:, ~node_mask] = 0
    a_hat = pruned.abs() / pruned.abs().sum(1, keepdim=True).clamp(min=1e-10)
    scores = a_hat * (_dense_influence(pruned, w) + w)[:, None]
    edge_mask = (scores >= threshold(scores, edge_threshold)) & (scores > 0)
    changed = True
    while changed:
        before = node_mask.clone()
        node_mask[:n_inner] &= edge_mask[:, :n_inner].any(0)
        node_mask[:f] &= edge_mask[:f].any(1)
        edge_mask[~node_mask] = False
        edge_mask[:, ~node_mask] = False
        changed = not torch.equal(before, node_mask)
    return node_mask, edge_mask


@pytest.mark.parametrize(("seed", "node_threshold", "edge_threshold"),
                         [(0, 0.8, 0.98), (1, 0.6, 0.9), (2, 0.9, 0.5), (4, 0.3, 0.3)])
def test_prune_matches_dense_definition(seed, node_threshold, edge_threshold):
    graph = random_graph(seed, n_layers=4, n_pos=5, n_features=40, density=0.3)
    result = prune_graph(graph, node_threshold, edge_threshold)
    node_mask, edge_mask = _reference_prune(graph, node_threshold, edge_threshold)
    assert torch.equal(result.node_mask, node_mask)
    assert torch.equal(result.edge_mask, edge_mask)
    assert 0 < int(result.edge_mask.sum()) < int((graph.adjacency_matrix != 0).sum())


def test_pruned_graph_invariants():
    graph = random_graph(5, n_layers=4, n_pos=6, n_features=60, density=0.3)
    result = prune_graph(graph, 0.7, 0.9)
    nodes, edges = result.node_mask, result.edge_mask
    n_inner = graph.n_selected + graph.n_errors
    assert nodes[n_inner:].all()  # tokens and logits
    assert not edges[~nodes].any() and not edges[:, ~nodes].any()  # edges join kept nodes
    assert (graph.adjacency_matrix[edges] != 0).all()  # only real edges
    kept_inner = nodes[:n_inner]
    assert edges[:, :n_inner].any(0)[kept_inner].all()  # features/errors feed something
    assert edges[: graph.n_selected].any(1)[nodes[: graph.n_selected]].all()  # features are fed


# ---- thresholds ---------------------------------------------------------------------------


def test_find_threshold_semantics():
    scores = torch.tensor([0.0, 4.0, 1.0, 3.0, 2.0])  # cumulative: .4, .7, .9, 1.0
    assert find_threshold(scores, 0.4) == 4.0  # reached exactly at the first score
    assert find_threshold(scores, 0.41) == 3.0
    assert find_threshold(scores, 0.9) == 2.0
    assert find_threshold(scores, 1.0) == 1.0  # never the zero
    assert find_threshold(scores, 0.0) == 4.0
    assert find_threshold(torch.zeros(4), 0.8) == 0.0


def test_cumulative_scores_ties_and_zero_total():
    scores = cumulative_scores(torch.tensor([1.0, 3.0, 1.0, 0.0]))
    assert scores.tolist() == pytest.approx([0.8, 0.6, 1.0, 1.0])  # ties keep node order
    assert cumulative_scores(torch.zeros(3)).tolist() == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_thresholds_outside_unit_interval(bad):
    with pytest.raises(GlassboxError):
        prune_graph(hand_graph(), node_threshold=bad)
    with pytest.raises(GlassboxError):
        prune_graph(hand_graph(), edge_threshold=bad)


# ---- degenerate graphs --------------------------------------------------------------------


def test_graph_without_features():
    # nodes: E00 0, E01 1, T0 2, T1 3, L 4. L <- T1 (3), E01 (1): influence T1 .5*3/4, E01 .5*1/4.
    graph = featureless_graph({4: {3: 3.0, 1: -1.0}})
    influence = node_influence(graph)
    assert influence.tolist() == pytest.approx([0, 0.125, 0, 0.375, 0])
    result = prune_graph(graph)
    # 0.8 of 0.5 needs both T1 (.375) and E01 (.125).
    assert _nodes(result.node_mask) == {1, 2, 3, 4}
    assert _edges(result.edge_mask) == {(4, 3), (4, 1)}
    replacement, completeness = compute_graph_scores(graph)
    assert replacement == pytest.approx(0.375 / 0.5)
    # completeness: L's input is 1/4 error; I + w = (0, .125, 0, .375, .5), total 1.
    assert completeness == pytest.approx(1 - 0.25 * 0.5)


def test_graph_with_all_zero_rows():
    graph = featureless_graph({})
    assert not node_influence(graph).any()
    result = prune_graph(graph)
    assert _nodes(result.node_mask) == {2, 3, 4}  # tokens and logits only
    assert not result.edge_mask.any()  # circuit-tracer would keep every (non-)edge here
    assert not result.cumulative_scores.any()
    replacement, completeness = compute_graph_scores(graph)
    assert math.isnan(replacement)  # 0 / 0, as in circuit-tracer
    assert completeness == pytest.approx(1.0)


def test_feature_without_outputs_is_always_dropped():
    # F3 has an input but no output: influence 0, never kept, whatever the threshold.
    result = prune_graph(hand_graph(), 1.0, 1.0)
    assert not result.node_mask[F3]
    assert not result.edge_mask[F3].any()
    assert result.edge_mask[L1, F1]


def test_graph_without_logits_is_rejected():
    graph = featureless_graph({})
    graph.logit_targets = []
    graph.logit_probabilities = torch.zeros(0)
    graph.adjacency_matrix = graph.adjacency_matrix[:-1, :-1]
    with pytest.raises(GraphFormatError, match="no logit"):
        prune_graph(graph)


def test_adjacency_of_the_wrong_size_is_rejected():
    graph = hand_graph()
    graph.adjacency_matrix = graph.adjacency_matrix[:-1, :-1]
    with pytest.raises(GraphFormatError, match="12 nodes"):
        prune_graph(graph)
