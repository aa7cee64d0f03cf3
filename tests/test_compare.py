"""Graph comparison on hand-made graphs whose influences are worked out by hand."""

from __future__ import annotations

import json

import pytest
import torch

from glassbox.compare import align_graph_positions, align_tokens, compare_graphs, feature_stats, token_spans
from glassbox.errors import GlassboxError
from glassbox.graph.graph import Graph, LogitTarget


def make_graph(features: list[tuple[int, int, int]], edges: dict[tuple[str, str], float], *,
               prompt: str = "ab", tokens: list[str] | None = None, model: str = "m",
               transcoders: str = "t", acts: list[float] | None = None) -> Graph:
    """One layer, two positions, one logit (p = 1). Node names: F<i>, E<pos>, T<pos>, L."""
    n_f, n_pos = len(features), 2
    index = {f"F{i}": i for i in range(n_f)}
    index.update({f"E{p}": n_f + p for p in range(n_pos)})
    index.update({f"T{p}": n_f + n_pos + p for p in range(n_pos)})
    index["L"] = n_f + 2 * n_pos
    adjacency = torch.zeros(index["L"] + 1, index["L"] + 1)
    for (target, source), w in edges.items():
        adjacency[index[target], index[source]] = w
    return Graph(
        input_string=prompt, input_tokens=torch.tensor([2, 17]),
        active_features=torch.tensor(features), activation_values=torch.tensor(acts or [1.0] * n_f),
        selected_features=torch.arange(n_f), adjacency_matrix=adjacency,
        logit_targets=[LogitTarget(" x", 40)], logit_probabilities=torch.tensor([1.0]),
        n_layers=1, vocab_size=50, model_name=model, transcoder_name=transcoders,
        token_strings=tokens or ["<bos>", "b"],
    )


# Graph A. L <- F0 (+3), F1 (-1): I(F0) = 3/4, I(F1) = 1/4.
# F0 <- T1 (2): I(T1) += 3/4. F1 <- T1 (1), T0 (1): I(T1) += 1/8, I(T0) = 1/8.
# Total influence 2: shares F0 = 0.375, F1 = 0.125.
GRAPH_A = dict(features=[(0, 1, 5), (0, 1, 7)],
               edges={("L", "F0"): 3.0, ("L", "F1"): -1.0, ("F0", "T1"): 2.0,
                      ("F1", "T1"): 1.0, ("F1", "T0"): 1.0},
               acts=[2.0, 0.5])
# Graph B. Feature 5 now at position 0 and a new feature 9: L <- F0 (1), F1 (1): I = 1/2 each;
# F0 <- T1, F1 <- T0: I(T1) = I(T0) = 1/2. Total 2: shares 0.25 each.
GRAPH_B = dict(features=[(0, 0, 5), (0, 1, 9)],
               edges={("L", "F0"): 1.0, ("L", "F1"): 1.0, ("F0", "T1"): 1.0, ("F1", "T0"): 4.0},
               acts=[1.5, 3.0])


def test_feature_stats_by_hand():
    stats = feature_stats(make_graph(**GRAPH_A))
    assert set(stats) == {(0, 5), (0, 7)}
    assert stats[(0, 5)].influence == pytest.approx(0.75) and stats[(0, 5)].share == pytest.approx(0.375)
    assert stats[(0, 7)].share == pytest.approx(0.125)
    assert stats[(0, 5)].positions == (1,) and stats[(0, 5)].max_activation == 2.0


def test_shared_only_and_difference_view():
    cmp = compare_graphs(make_graph(**GRAPH_A), make_graph(**GRAPH_B))
    assert [(c.layer, c.feature) for c in cmp.shared] == [(0, 5)]
    assert [(c.layer, c.feature) for c in cmp.only_a] == [(0, 7)]
    assert [(c.layer, c.feature) for c in cmp.only_b] == [(0, 9)]
    shared = cmp.shared[0]
    assert shared.in_both and shared.a.positions == (1,) and shared.b.positions == (0,)  # any position
    assert shared.share_a == pytest.approx(0.375) and shared.share_b == pytest.approx(0.25)
    assert shared.change == pytest.approx(-0.125)
    assert cmp.only_b[0].change == pytest.approx(0.25) and cmp.only_a[0].change == pytest.approx(-0.125)
    # difference view: by |change|; ties by layer, feature
    diffs = [(c.feature, round(c.change, 6)) for c in cmp.differences()]
    assert diffs == [(9, 0.25), (5, -0.125), (7, -0.125)]
    assert cmp.shared_share_a == pytest.approx(0.375) and cmp.shared_share_b == pytest.approx(0.25)
    # overlap: min/max summed over features 5, 7, 9
    assert cmp.weighted_overlap == pytest.approx(0.25 / (0.375 + 0.125 + 0.25))
    data = json.loads(json.dumps(cmp.to_dict()))
    assert data["n_shared"] == 1 and data["shared"][0]["a"]["positions"] == [1]


def test_a_feature_at_several_positions_sums_its_influence():
    g = make_graph(features=[(0, 0, 5), (0, 1, 5)],
                   edges={("L", "F0"): 1.0, ("L", "F1"): 3.0, ("F0", "T0"): 1.0, ("F1", "T1"): 1.0},
                   acts=[0.5, 4.0])
    stats = feature_stats(g)
    assert list(stats) == [(0, 5)]
    assert stats[(0, 5)].positions == (0, 1)
    assert stats[(0, 5)].influence == pytest.approx(1.0) and stats[(0, 5)].share == pytest.approx(0.5)
    assert stats[(0, 5)].max_activation == 4.0


def test_node_threshold_keeps_the_pruned_graphs_features():
    # influences in A: T1 0.875, F0 0.75, F1 0.25, T0 0.125 (total 2): half is reached at F0
    a = make_graph(**GRAPH_A)
    assert set(feature_stats(a, node_threshold=0.5)) == {(0, 5)}
    cmp = compare_graphs(a, make_graph(**GRAPH_B), node_threshold=0.5)
    assert [c.feature for c in cmp.only_a] == [] and [c.feature for c in cmp.shared] == [5]
    with pytest.raises(GlassboxError, match="node_threshold"):
        compare_graphs(a, a, node_threshold=1.5)


def test_graphs_of_different_models_are_refused():
    a = make_graph(**GRAPH_A)
    with pytest.raises(GlassboxError, match="different models"):
        compare_graphs(a, make_graph(**GRAPH_B, model="other"))
    with pytest.raises(GlassboxError, match="different transcoder sets"):
        compare_graphs(a, make_graph(**GRAPH_B, transcoders="clt"))


def test_identical_graphs_overlap_fully():
    a = make_graph(**GRAPH_A)
    cmp = compare_graphs(a, a)
    assert not cmp.only_a and not cmp.only_b and cmp.weighted_overlap == pytest.approx(1.0)
    assert all(c.change == 0 for c in cmp.differences())


# ---- token positions of one prompt on two models -------------------------------------------------


def test_token_spans_cover_the_text():
    text = "Fact: Michael Jordan"
    assert token_spans(text, ["<bos>", "Fact", ":", " Michael", " Jordan"]) == [
        (0, 0), (0, 4), (4, 5), (5, 13), (13, 20)]
    # a SentencePiece token decoded alone may lose its leading space
    assert token_spans("Michael Jordan", ["<s>", "Michael", "Jordan"]) == [(0, 0), (0, 7), (7, 14)]
    # bytes of one character decode to U+FFFD each: they share the character
    assert token_spans("猫 sat", ["<bos>", "\ufffd", "\ufffd", " sat"]) == [(0, 0), (0, 1), (0, 1), (1, 5)]


def test_align_tokens_pairs_overlaps_and_equal_ends():
    text = "Fact: Michael Jordan"
    al = align_tokens(text, ["<bos>", "Fact", ":", " Michael", " Jordan"],
                      ["<s>", "Fa", "ct:", " Mich", "ael Jordan"])
    assert al.pairs == [(0, 0), (1, 1), (1, 2), (2, 2), (3, 3), (3, 4), (4, 4)]
    assert al.same_end == [(0, 0), (2, 2), (4, 4)]  # BOS; "Fact:"; the whole prompt
    assert al.positions_in_b(3) == [3, 4]
    assert json.loads(json.dumps(al.to_dict()))["same_end"] == [[0, 0], [2, 2], [4, 4]]


def test_align_multibyte_split_against_whole_character():
    al = align_tokens("猫 sat", ["<bos>", "\ufffd", "\ufffd", " sat"], ["<s>", "猫", " sat"])
    assert al.pairs == [(0, 0), (1, 1), (2, 1), (3, 2)]
    assert al.same_end == [(0, 0), (1, 1), (2, 1), (3, 2)]


def test_align_graph_positions_needs_the_same_prompt():
    a = make_graph(**GRAPH_A, prompt="ab", tokens=["<bos>", "ab"])
    b = make_graph(**GRAPH_B, prompt="ab", tokens=["<s>", "ab"], model="other")
    al = align_graph_positions(a, b)
    assert al.pairs == [(0, 0), (1, 1)]
    with pytest.raises(GlassboxError, match="same prompt"):
        align_graph_positions(a, make_graph(**GRAPH_B, prompt="abc", tokens=["<s>", "abc"]))
