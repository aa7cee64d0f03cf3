"""The compare page's fallback for graphs that exist only as JSON: each feature's own share of
influence, recovered from the JSON's cumulative `influence` field."""

from __future__ import annotations

import pytest
from graph_fixtures import random_graph

from glassbox.graph.json_import import json_roundtrip
from glassbox.graph.prune import node_influence, prune_graph
from server.services.compare import own_influence


def _expected(graph, imported):
    """{position in imported.nodes: the engine's share} for every feature node."""
    influence = node_influence(graph).double()
    total = float(influence.sum())
    triples = {tuple(t): i for i, t in enumerate(graph.selected_feature_triples().tolist())}
    return {i: float(influence[triples[(n.layer, n.pos, n.index)]]) / total
            for i, n in enumerate(imported.nodes) if n.kind == "feature"}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_own_influence_is_exact_where_the_next_higher_rank_was_kept(seed):
    graph = random_graph(seed, n_features=30, density=0.9)
    imported = json_roundtrip(graph, slug="g", node_threshold=0.95)
    own, expected = own_influence(imported.nodes), _expected(graph, imported)
    influence = node_influence(graph)
    kept = prune_graph(graph, 0.95, 0.98).node_mask
    triples = graph.selected_feature_triples().tolist()
    ranked = influence.argsort(descending=True).tolist()
    before = {node: (ranked[r - 1] if r else None) for r, node in enumerate(ranked)}
    exact = 0
    for i, share in expected.items():
        n = imported.nodes[i]
        prev = before[triples.index([n.layer, n.pos, n.index])]
        if prev is None or bool(kept[prev]):
            assert own[i] == pytest.approx(share, abs=1e-4)
            exact += 1
    assert exact > 5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_own_influence_bounds_the_share_after_pruning(seed):
    graph = random_graph(seed, n_features=30)
    imported = json_roundtrip(graph, slug="g", node_threshold=0.8)
    own, expected = own_influence(imported.nodes), _expected(graph, imported)
    assert expected and all(own[i] >= share - 1e-4 for i, share in expected.items())
    assert sum(own.values()) <= 1.0 + 1e-6
    # the raw field is cumulative: summed over features it is no share at all
    assert sum(n.influence for n in imported.nodes if n.kind == "feature") > sum(own[i] for i in expected)
