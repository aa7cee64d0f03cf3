"""The suggested subgraph and its note (glassbox/graph/guide.py) on a hand-made graph whose
influence numbers are worked out below, and on an exported graph (the result is valid JSON of
the schema and the viewer's starting state)."""

from __future__ import annotations

import copy

import jsonschema
import pytest
from graph_fixtures import random_graph

from glassbox.errors import GraphFormatError
from glassbox.graph.export import graph_to_json
from glassbox.graph.guide import apply_guide, suggest_subgraph, target_logit

FEATURE, ERROR, TOKEN, LOGIT = "cross layer transcoder", "mlp reconstruction error", "embedding", "logit"


def node(node_id: str, kind: str, layer: str, pos: int, clerp: str = "", prob: float = 0.0) -> dict:
    return {"node_id": node_id, "feature_type": kind, "layer": layer, "ctx_idx": pos, "clerp": clerp,
            "token_prob": prob}


# Tokens E1 " Michael", E2 " Jordan", E3 " plays"; features F15, F27 (at " Jordan"), F31 (at
# " Michael"), F83, F94, F96 (at " plays"); an error node R; target T " basketball" (p 0.6).
# A_hat (|weight| over each node's inputs):
#   T:   F94 4/10, F83 1/10, F96 2/10 (weight -2), R 1/10 (-1), E3 2/10
#   F94: F83 3/4, E3 1/4        F83: F27 2/4, E3 1/4, F31 1/4      F96: F27 1/2, E3 1/2
#   F27: E2 1/2, F15 1/2        F15: E2 1                          F31: E1 1
# Influence on T (sum over paths of the product of A_hat):
#   F94 .4, F96 .2, F83 .1 + .4*3/4 = .4, F27 .4*1/2 + .2*1/2 = .3, F31 .4/4 = .1, F15 .3/2 = .15,
#   R .1, E3 .2 + .4/4 + .4/4 + .2/2 = .5, E2 .3/2 + .15 = .3, E1 .1: the sources sum to 1;
#   errors 10%, tokens 90%. Direct input: features 70%, errors 10%, tokens 20%.
HAND = {
    "metadata": {"prompt_tokens": ["<bos>", " Michael", " Jordan", " plays"], "glassbox": {"n_layers": 10}},
    "qParams": {"pinnedIds": [], "supernodes": []},
    "nodes": [
        node("E_10_1", TOKEN, "E", 1), node("E_11_2", TOKEN, "E", 2), node("E_12_3", TOKEN, "E", 3),
        node("1_5_2", FEATURE, "1", 2), node("2_7_2", FEATURE, "2", 2, '"Jordan" name'),
        node("3_1_1", FEATURE, "3", 1, "Michael"), node("8_3_3", FEATURE, "8", 3, "sport: basketball"),
        node("9_4_3", FEATURE, "9", 3, "basketball"), node("9_6_3", FEATURE, "9", 3, "football"),
        node("9_-1_3", ERROR, "9", 3, 'Err: mlp " plays"'),
        node("11_100_3", LOGIT, "11", 3, 'Output " basketball" (p=0.600)', 0.6),
        node("11_200_3", LOGIT, "11", 3, 'Output " football" (p=0.100)', 0.1),
    ],
    "links": [
        {"source": s, "target": t, "weight": w}
        for s, t, w in [
            ("E_11_2", "1_5_2", 2.0), ("E_11_2", "2_7_2", 1.0), ("1_5_2", "2_7_2", 1.0),
            ("E_10_1", "3_1_1", 1.0),
            ("2_7_2", "8_3_3", 2.0), ("E_12_3", "8_3_3", 1.0), ("3_1_1", "8_3_3", -1.0),
            ("8_3_3", "9_4_3", 3.0), ("E_12_3", "9_4_3", 1.0),
            ("2_7_2", "9_6_3", 1.0), ("E_12_3", "9_6_3", 1.0),
            ("9_4_3", "11_100_3", 4.0), ("8_3_3", "11_100_3", 1.0), ("9_6_3", "11_100_3", -2.0),
            ("9_-1_3", "11_100_3", -1.0), ("E_12_3", "11_100_3", 2.0),
            ("9_6_3", "11_200_3", 3.0),
        ]
    ],
}


def test_the_target_is_the_most_likely_output():
    assert target_logit(HAND) == "11_100_3"
    doc = copy.deepcopy(HAND)
    doc["nodes"][-1]["token_prob"] = 0.7
    assert target_logit(doc) == "11_200_3"
    with pytest.raises(GraphFormatError, match="no logit node"):
        target_logit({"nodes": HAND["nodes"][:-2], "links": []})


def test_pins_follow_influence_and_direct_effects_and_the_tokens_their_paths_start_from():
    # First the strongest direct edges: F94 (+4), F83 (+1), F96 (-2); then by influence F27 (.3).
    # Tokens with direct edges into pinned nodes: E3 (into T, F94, F83, F96: .2 + .1 + .1 + .1)
    # and E2 (into F27: .3 / 2); E1 only feeds F31, which is not pinned.
    three = suggest_subgraph(HAND, max_features=3).pinned_ids
    assert three == ["E_12_3", "8_3_3", "9_4_3", "9_6_3", "11_100_3"]
    guide = suggest_subgraph(HAND, max_features=4)
    assert guide.pinned_ids == ["E_11_2", "E_12_3", "2_7_2", "8_3_3", "9_4_3", "9_6_3", "11_100_3"]
    assert [c.node_id for c in guide.carriers] == ["9_4_3", "8_3_3"]
    assert [(c.node_id, c.direct) for c in guide.against] == [("9_6_3", -2.0)]
    assert guide.carriers[0].influence == pytest.approx(0.4)
    assert guide.against[0].influence == pytest.approx(0.2)
    assert guide.shares == pytest.approx({"tokens": 0.9, "errors": 0.1, "unexplained_features": 0.0,
                                          "direct_features": 0.7, "direct_errors": 0.1, "direct_tokens": 0.2})


def test_supernodes_group_features_at_one_position_within_a_layer_band():
    guide = suggest_subgraph(HAND, max_features=5)  # F15 (.15, after F96's .2) joins F27 at " Jordan"
    assert guide.pinned_ids == ["E_11_2", "E_12_3", "1_5_2", "2_7_2", "8_3_3", "9_4_3", "9_6_3", "11_100_3"]
    # F15 and F27 sit at " Jordan" in the early band (layers 0-3 of 10), F83 and F94 at " plays"
    # in the late band (7-9); F96 pushes against the output and stays a node of its own.
    assert guide.supernodes == [
        ["\u201c Jordan\u201d L1\u20132", "1_5_2", "2_7_2"],
        ["\u201c plays\u201d L8\u20139", "8_3_3", "9_4_3"],
    ]


def test_features_apart_group_by_equal_label_then_by_a_shared_word_within_a_band():
    # Every feature sits alone at its position and band (6 layers: bands 0-1, 2-3, 4-5).
    features = [("0_69_1", "0", 1, "full stops"), ("0_69_3", "0", 3, "full stops"), ("1_3_2", "1", 2, ""),
                ("4_1_1", "4", 1, "sport names"), ("5_2_2", "5", 2, "a sport word")]
    doc = {
        "metadata": {"prompt_tokens": ["<bos>", ":", " b", ":"], "glassbox": {"n_layers": 6}},
        "nodes": [node(f"E_{i}_{i}", TOKEN, "E", i) for i in (1, 2, 3)]
        + [node(n, FEATURE, layer, pos, clerp) for n, layer, pos, clerp in features]
        + [node("7_9_3", LOGIT, "7", 3, 'Output " x" (p=0.900)', 0.9)],
        "links": [{"source": f"E_{pos}_{pos}", "target": n, "weight": 1.0} for n, _, pos, _ in features]
        + [{"source": f[0], "target": "7_9_3", "weight": w}
           for f, w in zip(features, (1, 1, 0.5, 2, 2), strict=True)],
    }
    guide = suggest_subgraph(doc)
    assert guide.supernodes == [["full stops \u00d72", "0_69_1", "0_69_3"],
                                ["\u201csport\u201d L4\u20135", "4_1_1", "5_2_2"]]
    note = " ".join(guide.note)
    assert "sport names (L4 #1 at \u201c:\u201d (1st of 2)) +2.00" in note  # ":" comes twice
    assert "full stops (L0 #69 at \u201c:\u201d (last)) +1.00" in note
    assert "Nothing in the pruned graph pushes it down directly." in note


def test_the_note_names_the_support_the_opposition_and_the_error_share():
    lines = suggest_subgraph(HAND, max_features=4).note
    note = " ".join(lines)
    assert "Why \u201c basketball\u201d (p = 0.60)? Pinned: the 4 features" in note
    up = "Pushing it up (direct effect on its logit): basketball (L9 #4 at \u201c plays\u201d) +4.00; "
    assert lines[1].startswith(up)
    assert "Pushing it down: football (L9 #6 at \u201c plays\u201d) \u22122.00." in note
    assert "10% of its influence traces back to error nodes" in note and "90% to the prompt's tokens" in note
    assert "its direct input is 70% features, 10% errors, 20% tokens" in note
    assert "stronger than any feature" not in note  # the error node (-1) is weaker than the feature (-2)


def test_an_error_node_stronger_than_every_negative_feature_is_named_and_a_large_error_share_warned():
    doc = copy.deepcopy(HAND)
    for link in doc["links"]:
        if link["source"] == "9_-1_3":
            link["weight"] = -13.0  # T's inputs: 4 + 1 + 2 + 13 + 2 = 22
    guide = suggest_subgraph(doc, max_features=3)
    note = " ".join(guide.note)
    assert "stronger than any feature, the layer-9 error node at \u201c plays\u201d \u221213.00" in note
    assert guide.shares["errors"] == pytest.approx(13 / 22)
    assert "59% of its influence traces back to error nodes" in note
    assert "More than half is unexplained" in note
    assert "9_-1_3" not in guide.pinned_ids  # error nodes are described, not pinned


def test_an_exported_graph_gets_a_connected_default_view_that_stays_valid(graph_schema):
    doc = graph_to_json(random_graph(3, n_layers=3, n_pos=5, n_features=40), slug="guided")
    guide = suggest_subgraph(doc)
    ids = {n["node_id"]: n for n in doc["nodes"]}
    assert set(guide.pinned_ids) <= set(ids) and guide.pinned_ids[-1] == guide.target
    assert 2 <= len(guide.pinned_ids) <= 20
    pinned = set(guide.pinned_ids)
    linked = {(link["source"], link["target"]) for link in doc["links"]}
    for node_id in pinned - {guide.target}:  # every pinned node has a pinned neighbour
        assert any((node_id, other) in linked or (other, node_id) in linked for other in pinned), node_id
    apply_guide(doc, guide)
    assert doc["qParams"]["pinnedIds"] == guide.pinned_ids
    assert doc["qParams"]["supernodes"] == guide.supernodes
    assert doc["metadata"]["glassbox"]["guide"]["note"] == guide.note
    jsonschema.validate(doc, graph_schema)
