"""Graph JSON export and import, and saving/loading graphs (Glassbox and circuit-tracer .pt)."""

from __future__ import annotations

import copy
import gzip
import hashlib
import json

import jsonschema
import pytest
import torch
from graph_fixtures import featureless_graph, hand_graph, random_graph, write_circuit_tracer_pt

from glassbox.errors import GlassboxError, GraphFormatError
from glassbox.graph import neuronpedia as nf
from glassbox.graph.export import dumps_graph_json, graph_to_json, round_significant, save_graph_json
from glassbox.graph.graph import Graph
from glassbox.graph.json_import import graph_from_json, json_roundtrip, load_graph_json
from glassbox.graph.prune import prune_graph
from glassbox.graph.schemas import load_schema, schema_path

# sha256 of the vendored Neuronpedia schemas (glassbox/graph/schemas/README.md): they stay unchanged
SCHEMA_SHA256 = {
    "graph": "115c418bc7f6ad2a982f638c2b3fa260913a8f23e6789293f4cc293d614e59c1",
    "feature-details": "0a69e60e8ae33403536f869f1b92f37572bf2aaf18c38be8806bf4a7be49547b",
}


@pytest.fixture(scope="module")
def validator(graph_schema: dict) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(graph_schema)


@pytest.mark.parametrize("name", sorted(SCHEMA_SHA256))
def test_vendored_schemas_are_the_unmodified_upstream_files(name):
    path = schema_path(name)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == SCHEMA_SHA256[name], path
    assert SCHEMA_SHA256[name] in (path.parent / "README.md").read_text()
    jsonschema.Draft7Validator.check_schema(load_schema(name))


def _by_id(data: dict) -> dict[str, dict]:
    return {n["node_id"]: n for n in data["nodes"]}


def _links(data: dict) -> dict[tuple[str, str], float]:
    return {(link["source"], link["target"]): link["weight"] for link in data["links"]}


# ---- ids and fields -----------------------------------------------------------------------


def test_cantor_pairing():
    assert nf.cantor_pair(0, 0) == 0
    assert nf.cantor_pair(1, 5) == (6 * 7) // 2 + 5 == 26
    assert nf.cantor_pair(25, 16383) == (16408 * 16409) // 2 + 16383
    for layer, feature in [(0, 7), (3, 0), (25, 1_000_000), (12, 2**40)]:
        assert nf.cantor_unpair(nf.cantor_pair(layer, feature)) == (layer, feature)
    with pytest.raises(ValueError):
        nf.cantor_pair(-1, 3)


def test_hand_graph_export_nodes():
    # Kept by pruning (see test_graph_prune): F0..F2, E11, both tokens, both logits.
    # F0 = active[1] = (layer 0, pos 1, feature 7), F1 = (0, 1, 3), F2 = (1, 1, 5).
    data = graph_to_json(hand_graph(), slug="hand", feature_labels={(1, 5): "says x"})
    nodes = data["nodes"]
    assert [n["node_id"] for n in nodes] == [
        "0_7_1", "0_3_1", "1_5_1", "1_-1_1", "E_2_0", "E_17_1", "3_40_1", "3_41_1"
    ]
    f0, f1, f2, err, t0, t1, l0, l1 = nodes
    assert (f0["feature"], f1["feature"], f2["feature"]) == (35, 9, 26)  # (l+f)(l+f+1)/2 + f
    assert f0["layer"] == "0" and f2["layer"] == "1" and f0["ctx_idx"] == 1
    assert f0["feature_type"] == "cross layer transcoder"
    assert f0["jsNodeId"] == "0_7-0"
    assert f0["activation"] == 1.5 and f2["activation"] == 3.5  # activation_values[selected]
    assert f2["clerp"] == "says x" and f0["clerp"] == ""
    assert f2["influence"] == pytest.approx(88 / 298) and f0["influence"] == pytest.approx(195 / 298)

    assert err["feature"] == -1 and err["layer"] == "1" and err["ctx_idx"] == 1
    assert err["feature_type"] == "mlp reconstruction error"
    assert err["influence"] == pytest.approx(257 / 298) and err["activation"] is None
    assert err["clerp"] == 'Err: mlp "b"'

    assert t0["layer"] == "E" and t0["feature"] == 0 and t1["feature"] == 1
    assert t0["clerp"] == 'Emb: "<s>"' and t1["jsNodeId"] == "E_17-1"
    assert t0["influence"] == pytest.approx(1.0) and t1["influence"] == pytest.approx(151 / 298)

    assert l0["layer"] == "3" and l0["feature"] == 40 and l0["ctx_idx"] == 1  # n_layers + 1
    assert l0["clerp"] == 'Output " x" (p=0.750)' and l0["token_prob"] == 0.75
    assert l0["is_target_logit"] and not l1["is_target_logit"]
    assert l1["jsNodeId"] == "L_41-1" and l0["influence"] is None


def test_hand_graph_export_links_are_raw_signed_weights():
    data = graph_to_json(hand_graph(), slug="hand")
    assert _links(data) == {
        ("E_17_1", "0_7_1"): 4.0, ("E_2_0", "0_3_1"): -1.0, ("E_17_1", "0_3_1"): 1.0,
        ("0_7_1", "1_5_1"): 2.0, ("0_3_1", "1_5_1"): -1.0,
        ("1_5_1", "3_40_1"): 3.0, ("1_-1_1", "3_40_1"): -1.0,
        ("0_3_1", "3_41_1"): 1.0, ("1_5_1", "3_41_1"): -1.0,
    }
    # Row-major over (target, source), like circuit-tracer.
    assert [link["target"] for link in data["links"]][:3] == ["0_7_1", "0_3_1", "0_3_1"]


def test_export_follows_thresholds():
    data = graph_to_json(hand_graph(), slug="hand", node_threshold=0.8, edge_threshold=0.7)
    assert set(_by_id(data)) == {"0_7_1", "1_5_1", "1_-1_1", "E_2_0", "E_17_1", "3_40_1", "3_41_1"}
    assert set(_links(data)) == {("E_17_1", "0_7_1"), ("0_7_1", "1_5_1"), ("1_5_1", "3_40_1"),
                                 ("1_-1_1", "3_40_1")}
    assert data["metadata"]["pruning_settings"] == {"node_threshold": 0.8, "edge_threshold": 0.7}


def test_export_metadata():
    data = graph_to_json(hand_graph(), slug="hand", scan="gemma-3-270m",
                         extra_metadata={"info": {"creator_name": "me"},
                                         "feature_details": {"neuronpedia_source_set": "plt-2k"}})
    meta = data["metadata"]
    assert meta["slug"] == "hand" and meta["scan"] == "gemma-3-270m"
    assert meta["prompt"] == "ab" and meta["prompt_tokens"] == ["<s>", "b"]
    assert meta["node_threshold"] == 0.8 and meta["schema_version"] == 1
    version = meta["info"]["generator"]["version"]
    assert meta["info"] == {"generator": {"name": "glassbox", "version": version},
                            "creator_name": "me"}  # merged, not replaced
    assert meta["feature_details"] == {"neuronpedia_source_set": "plt-2k"}
    # None values (max_feature_nodes) are left out; other metadata is not generation settings.
    assert meta["generation_settings"] == {"max_n_logits": 10, "desired_logit_prob": 0.95,
                                           "batch_size": 256}
    section = meta["glassbox"]
    assert section["n_layers"] == 2 and section["vocab_size"] == 50 and section["input_tokens"] == [2, 17]
    assert section["replacement_score"] == pytest.approx(82 / 128)
    assert section["completeness_score"] == pytest.approx(380 / 426)
    assert data["qParams"] == {"pinnedIds": [], "supernodes": [], "linkType": "both", "clickedId": "",
                               "sg_pos": ""}
    assert graph_to_json(hand_graph(), slug="hand")["metadata"]["scan"] == "tiny-model"


def test_export_is_deterministic():
    graph = random_graph(2)
    first, second = (dumps_graph_json(graph_to_json(graph, slug="a")) for _ in range(2))
    assert first == second


def test_export_rejects_empty_slug():
    with pytest.raises(GlassboxError):
        graph_to_json(hand_graph(), slug=" ")


# ---- schema -------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [hand_graph, lambda: random_graph(1, n_features=60, n_pos=6)])
def test_export_validates_against_schema(validator, make):
    data = json.loads(dumps_graph_json(graph_to_json(make(), slug="s", extra_metadata={"info": {}})))
    validator.validate(data)
    assert data["links"], "an empty export would prove little"


def test_export_of_graph_without_token_strings_validates(validator):
    graph = hand_graph()
    graph.token_strings = []
    graph.metadata = {}
    data = graph_to_json(graph, slug="bare", include_scores=False)
    validator.validate(json.loads(dumps_graph_json(data)))
    assert data["metadata"]["prompt_tokens"] == ["2", "17"]
    assert "replacement_score" not in data["metadata"]["glassbox"]


def test_export_of_graph_without_features(validator):
    # nodes: E00 0, E01 1, T0 2, T1 3, L 4; L <- T1 3, E01 -1 (see test_graph_prune)
    data = graph_to_json(featureless_graph({4: {3: 3.0, 1: -1.0}}), slug="nofeat")
    validator.validate(json.loads(dumps_graph_json(data)))
    assert [n["node_id"] for n in data["nodes"]] == ["0_-1_1", "E_1_0", "E_2_1", "2_3_1"]
    assert _links(data) == {("E_2_1", "2_3_1"): 3.0, ("0_-1_1", "2_3_1"): -1.0}
    empty = graph_to_json(featureless_graph({}), slug="empty")
    assert [n["feature_type"] for n in empty["nodes"]] == ["embedding", "embedding", "logit"]
    assert empty["links"] == [] and empty["metadata"]["glassbox"]["replacement_score"] is None
    validator.validate(json.loads(dumps_graph_json(empty)))


def test_export_of_sparse_adjacency_matches_dense():
    graph = random_graph(9, n_features=50, n_pos=5)
    dense = graph_to_json(graph, slug="s")
    graph.adjacency_matrix = graph.adjacency_matrix.to_sparse()
    sparse = graph_to_json(graph, slug="s")
    assert [n["node_id"] for n in sparse["nodes"]] == [n["node_id"] for n in dense["nodes"]]
    assert _links(sparse) == _links(dense)
    for score in ("replacement_score", "completeness_score"):
        assert sparse["metadata"]["glassbox"][score] == pytest.approx(dense["metadata"]["glassbox"][score])


# ---- weights ------------------------------------------------------------------------------


def test_round_significant():
    values = torch.tensor([1.23456789, -0.000123456789, 98765.4321, 0.0, 3.0e-20, -7.5e12])
    rounded = round_significant(values, 6)
    assert rounded[:4] == [1.23457, -0.000123457, 98765.4, 0.0]
    for original, short in zip(values.double().tolist(), rounded, strict=True):
        assert abs(short - original) <= 5e-6 * abs(original)
        assert len(repr(short).lstrip("-").replace(".", "").split("e")[0].strip("0")) <= 6
    assert round_significant(values, None) == values.double().tolist()


def test_rounded_weights_stay_within_relative_tolerance():
    graph = random_graph(4, n_features=80, n_pos=6)
    result = prune_graph(graph)
    imported = json_roundtrip(graph, slug="w")
    ids = imported.links()
    assert len(ids) == int(result.edge_mask.sum())
    original = graph_to_json(graph, slug="w", weight_digits=None)
    for key, weight in _links(original).items():
        assert ids[key] == pytest.approx(weight, rel=1e-5)


# ---- import: round trips ------------------------------------------------------------------


def test_roundtrip_preserves_nodes_links_and_values():
    graph = random_graph(6, n_features=60, n_pos=6)
    exported = graph_to_json(graph, slug="rt", feature_labels={})
    imported = json_roundtrip(graph, slug="rt")
    assert [n.node_id for n in imported.nodes] == [n["node_id"] for n in exported["nodes"]]
    for node, raw in zip(imported.nodes, exported["nodes"], strict=True):
        assert node.influence == raw["influence"]
        assert node.activation == raw["activation"]
        assert node.clerp == raw["clerp"]
    kinds = [n.kind for n in imported.nodes]
    assert kinds.count("feature") > 0 and kinds.count("token") == graph.n_pos
    assert kinds.count("logit") == graph.n_logits
    assert imported.links() == pytest.approx(_links(exported), rel=1e-6)
    assert imported.metadata == exported["metadata"]
    assert imported.qparams == exported["qParams"]


def test_imported_graph_becomes_a_graph_that_exports_the_same():
    graph = random_graph(7, n_features=60, n_pos=6)
    first = graph_to_json(graph, slug="g", weight_digits=None)
    rebuilt = graph_from_json(json.loads(dumps_graph_json(first))).to_graph()
    assert rebuilt.n_layers == graph.n_layers and rebuilt.n_pos == graph.n_pos
    assert torch.equal(rebuilt.input_tokens, graph.input_tokens)
    assert rebuilt.logit_targets == graph.logit_targets
    assert torch.allclose(rebuilt.logit_probabilities, graph.logit_probabilities)

    # Every kept edge sits at the same (layer, pos, feature) coordinates with the same weight.
    result = prune_graph(graph)
    old = _node_keys(graph)
    new = {key: i for i, key in enumerate(_node_keys(rebuilt))}
    for target, source in result.edge_mask.nonzero().tolist():
        weight = rebuilt.adjacency_matrix[new[old[target]], new[old[source]]]
        assert weight == graph.adjacency_matrix[target, source]
    assert int((rebuilt.adjacency_matrix != 0).sum()) == int(result.edge_mask.sum())

    # The pruned graph, exported with nothing left to prune, gives the same nodes and links.
    second = graph_to_json(rebuilt, slug="g", node_threshold=1.0, edge_threshold=1.0, weight_digits=None)
    assert set(_by_id(second)) == set(_by_id(first))
    assert _links(second) == _links(first)


def _node_keys(graph: Graph) -> list[tuple]:
    """A position-independent name for every node: ('f', layer, pos, feature), ('e', l, p)..."""
    keys: list[tuple] = [("f", *t) for t in graph.selected_feature_triples().tolist()]
    keys += [("e", layer, pos) for layer in range(graph.n_layers) for pos in range(graph.n_pos)]
    keys += [("t", pos) for pos in range(graph.n_pos)]
    keys += [("l", t.vocab_idx) for t in graph.logit_targets]
    return keys


def test_save_and_load_json_file(tmp_path):
    graph = hand_graph()
    for name in ("g.json", "g.json.gz"):
        path = save_graph_json(graph, tmp_path / name, slug="file")
        imported = load_graph_json(path)
        assert imported.slug == "file" and len(imported.nodes) == 8
    assert gzip.decompress((tmp_path / "g.json.gz").read_bytes()) == (tmp_path / "g.json").read_bytes()


# ---- import: foreign JSON -----------------------------------------------------------------


def _neuronpedia_style() -> dict:
    """A graph as circuit-tracer's exporter writes it (error id '0_{layer}_{pos}', jsNodeId
    '{layer}_{pos}-0', empty clerps), with an extra node type from another backend."""

    def node(node_id, feature, layer, ctx, ftype, js, **extra):
        return {"node_id": node_id, "feature": feature, "layer": layer, "ctx_idx": ctx,
                "feature_type": ftype, "jsNodeId": js, "clerp": "", **extra}

    return {
        "metadata": {"slug": "capital", "scan": "gemma-2-2b", "prompt_tokens": ["<bos>", "Texas", " is"],
                     "prompt": "<bos>Texas is", "node_threshold": 0.8, "schema_version": 1,
                     "transcoder_list": []},
        "qParams": {"pinnedIds": ["1_9_2"], "supernodes": [["capital", "1_9_2"]], "linkType": "both",
                    "clickedId": "", "sg_pos": ""},
        "nodes": [
            node("0_4_1", nf.cantor_pair(0, 4), "0", 1, "cross layer transcoder", "0_4-0",
                 influence=0.4, activation=2.0),
            node("1_9_2", nf.cantor_pair(1, 9), "1", 2, "cross layer transcoder", "1_9-0",
                 influence=0.2, activation=5.5),
            node("0_1_2", -1, "1", 2, "mlp reconstruction error", "1_2-0", influence=0.6),
            node("E_2_0", 0, "E", 0, "embedding", "E_2-0", influence=1.0),
            node("E_1000_1", 1, "E", 1, "embedding", "E_1000-1", influence=0.7),
            node("E_318_2", 2, "E", 2, "embedding", "E_318-2", influence=0.9),
            node("27_5_2", 5, "27", 2, "logit", "L_5-2", clerp='Output " Austin" (p=0.612)',
                 token_prob=0.612, is_target_logit=True),
        ],
        "links": [
            {"source": "E_1000_1", "target": "0_4_1", "weight": 3.5},
            {"source": "0_4_1", "target": "1_9_2", "weight": 1.25},
            {"source": "E_318_2", "target": "1_9_2", "weight": -0.5},
            {"source": "1_9_2", "target": "27_5_2", "weight": 7.0},
            {"source": "0_1_2", "target": "27_5_2", "weight": -2.0},
        ],
    }


def test_import_neuronpedia_style_json(validator):
    data = _neuronpedia_style()
    validator.validate(data)
    imported = graph_from_json(json.dumps(data))
    kinds = {n.node_id: (n.kind, n.layer, n.pos, n.index) for n in imported.nodes}
    assert kinds["0_4_1"] == ("feature", 0, 1, 4)
    assert kinds["1_9_2"] == ("feature", 1, 2, 9)
    assert kinds["0_1_2"] == ("error", 1, 2, None)  # kind from feature_type, not from the id
    assert kinds["E_1000_1"] == ("token", None, 1, 1000)
    logit = imported.nodes[imported.position("27_5_2")]
    assert (logit.kind, logit.index, logit.token_str, logit.token_prob) == ("logit", 5, " Austin", 0.612)
    assert imported.links()[("0_1_2", "27_5_2")] == -2.0
    assert imported.qparams["supernodes"] == [["capital", "1_9_2"]]

    graph = imported.to_graph()
    # n_layers: logits sit at n_layers + 1 = 27, so 26 layers; 3 positions.
    assert graph.n_layers == 26 and graph.n_pos == 3 and graph.n_selected == 2
    assert graph.input_tokens.tolist() == [2, 1000, 318]
    assert graph.selected_feature_triples().tolist() == [[0, 1, 4], [1, 2, 9]]
    assert graph.activation_values.tolist() == [2.0, 5.5]
    assert graph.logit_targets[0].token_str == " Austin" and graph.logit_targets[0].vocab_idx == 5
    assert graph.adjacency_matrix[graph.logit_node(0), graph.error_node(1, 2)] == -2.0
    assert graph.adjacency_matrix[1, graph.token_node(2)] == -0.5
    assert int((graph.adjacency_matrix != 0).sum()) == 5
    assert graph.token_strings == ["<bos>", "Texas", " is"]


def test_import_of_other_node_types_stops_at_to_graph():
    data = _neuronpedia_style()
    data["nodes"].append({"node_id": "3_lor_12_2", "feature": nf.cantor_pair(3, 12), "layer": 3,
                          "ctx_idx": 2, "feature_type": "lorsa", "jsNodeId": "x", "clerp": "F"})
    imported = graph_from_json(data)
    assert imported.nodes[-1].kind == "other"
    with pytest.raises(GraphFormatError, match="lorsa"):
        imported.to_graph()


def test_feature_index_from_cantor_value_when_the_id_has_another_shape():
    data = _neuronpedia_style()
    data["nodes"][1]["node_id"] = "1_cro_9_2"  # Neuronpedia's lm-saes backend
    data["links"][1]["target"] = data["links"][2]["target"] = data["links"][3]["source"] = "1_cro_9_2"
    imported = graph_from_json(data)
    assert imported.nodes[1].index == 9


# ---- import: malformed input --------------------------------------------------------------


def _mutations():
    def drop(*path):
        def f(d):
            *head, last = path
            target = d
            for key in head:
                target = target[key]
            del target[last]
        return f

    def put(value, *path):
        def f(d):
            *head, last = path
            target = d
            for key in head:
                target = target[key]
            target[last] = value
        return f

    # (name, mutation, does the schema itself reject it?)
    return [
        ("no metadata", drop("metadata"), True),
        ("no links", drop("links"), True),
        ("no qParams", drop("qParams"), True),
        ("no slug", drop("metadata", "slug"), True),
        ("tokens not strings", put([1, 2, 3], "metadata", "prompt_tokens"), True),
        ("threshold a string", put("0.8", "metadata", "node_threshold"), True),
        ("nodes an object", put({}, "nodes"), True),
        ("node without node_id", drop("nodes", 0, "node_id"), True),
        ("node without clerp", drop("nodes", 0, "clerp"), True),
        ("float ctx_idx", put(1.5, "nodes", 0, "ctx_idx"), True),
        ("boolean feature", put(True, "nodes", 0, "feature"), True),
        ("list layer", put([0], "nodes", 0, "layer"), True),
        ("string influence", put("high", "nodes", 0, "influence"), True),
        ("link without weight", drop("links", 0, "weight"), True),
        ("string weight", put("1.0", "links", 0, "weight"), True),
        ("numeric source", put(3, "links", 0, "source"), True),
        ("pinnedIds not strings", put([1], "qParams", "pinnedIds"), True),
        # Beyond the schema:
        ("duplicate node id", put("E_2_0", "nodes", 0, "node_id"), False),
        ("link to unknown node", put("9_9_9", "links", 0, "target"), False),
        ("link not an object", put(["a", "b", 1.0], "links", 0), True),
    ]


@pytest.mark.parametrize(("name", "mutate", "schema_rejects"), _mutations(), ids=lambda v: v
                         if isinstance(v, str) else "")
def test_malformed_json_is_rejected(validator, name, mutate, schema_rejects):
    data = copy.deepcopy(_neuronpedia_style())
    mutate(data)
    assert (not validator.is_valid(data)) == schema_rejects, name
    with pytest.raises(GraphFormatError) as caught:
        graph_from_json(data)
    expected = {"duplicate node id": "appears twice", "link to unknown node": "'9_9_9' is not a node"}
    assert expected.get(name, "") in str(caught.value)


@pytest.mark.parametrize("text", [b"{", b"[]", b'"graph"', b"\xff\xfe", b'{"metadata": NaN}'])
def test_unparseable_text_is_rejected(text):
    with pytest.raises(GraphFormatError):
        graph_from_json(text)


def test_nonfinite_weight_is_rejected():
    text = json.dumps(_neuronpedia_style()).replace('"weight": 7.0', '"weight": Infinity')
    with pytest.raises(GraphFormatError, match="not valid JSON"):
        graph_from_json(text)
    data = _neuronpedia_style()
    data["links"][0]["weight"] = float("nan")
    with pytest.raises(GraphFormatError, match="finite"):
        graph_from_json(data)


def test_positions_outside_the_prompt_are_rejected_by_to_graph():
    data = _neuronpedia_style()
    data["nodes"][0]["ctx_idx"] = 3
    with pytest.raises(GraphFormatError, match="outside the prompt"):
        graph_from_json(data).to_graph()


def test_duplicate_links_are_rejected_by_to_graph():
    data = _neuronpedia_style()
    data["links"].append(dict(data["links"][0], weight=1.0))
    imported = graph_from_json(data)
    with pytest.raises(GraphFormatError, match="twice"):
        imported.to_graph()


def test_cantor_value_must_match_the_id():
    data = _neuronpedia_style()
    data["nodes"][0]["feature"] = nf.cantor_pair(0, 5)
    with pytest.raises(GraphFormatError, match="cantor"):
        graph_from_json(data)


def test_size_limits(tmp_path):
    data = _neuronpedia_style()
    with pytest.raises(GraphFormatError, match="nodes"):
        graph_from_json(data, max_nodes=6)
    with pytest.raises(GraphFormatError, match="links"):
        graph_from_json(data, max_links=4)
    graph_from_json(data, max_nodes=7, max_links=5)
    with pytest.raises(GraphFormatError, match="dense limit"):
        graph_from_json(data).to_graph(max_nodes=50)
    path = tmp_path / "g.json"
    path.write_text(json.dumps(data))
    with pytest.raises(GraphFormatError, match="limit"):
        load_graph_json(path, max_bytes=100)
    packed = tmp_path / "g.json.gz"
    packed.write_bytes(gzip.compress(json.dumps(data).encode() + b" " * 5000))
    with pytest.raises(GraphFormatError, match="decompressed"):
        load_graph_json(packed, max_bytes=4000)
    with pytest.raises(GraphFormatError, match="not found"):
        load_graph_json(tmp_path / "missing.json")


# ---- Graph.save / Graph.load --------------------------------------------------------------


def _assert_same_graph(a: Graph, b: Graph, *, strings: bool = True) -> None:
    for name in ("input_tokens", "active_features", "activation_values", "selected_features",
                 "adjacency_matrix", "logit_probabilities"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert (a.n_layers, a.vocab_size, a.input_string) == (b.n_layers, b.vocab_size, b.input_string)
    assert [t.vocab_idx for t in a.logit_targets] == [t.vocab_idx for t in b.logit_targets]
    if strings:
        assert a.logit_targets == b.logit_targets


def test_glassbox_save_load_roundtrip(tmp_path):
    graph = hand_graph()
    graph.save(tmp_path / "g.pt")
    loaded = Graph.load(tmp_path / "g.pt")
    _assert_same_graph(graph, loaded)
    assert loaded.token_strings == graph.token_strings and loaded.metadata == graph.metadata
    assert (loaded.model_name, loaded.transcoder_name) == ("tiny-model", "tiny-plt")
    assert graph_to_json(loaded, slug="s") == graph_to_json(graph, slug="s")


def test_load_circuit_tracer_pt(tmp_path):
    graph = random_graph(8)
    write_circuit_tracer_pt(tmp_path / "ct.pt", graph)
    loaded = Graph.load(tmp_path / "ct.pt")
    _assert_same_graph(graph, loaded)
    assert loaded.model_name == "random-model"
    assert loaded.metadata["imported_from"] == "circuit-tracer"
    assert prune_graph(loaded).edge_mask.equal(prune_graph(graph).edge_mask)


def test_load_legacy_circuit_tracer_pt(tmp_path):
    graph = hand_graph()
    write_circuit_tracer_pt(tmp_path / "old.pt", graph, legacy=True)
    loaded = Graph.load(tmp_path / "old.pt")
    _assert_same_graph(graph, loaded, strings=False)  # old files kept no token strings
    assert loaded.transcoder_name == "tiny-plt"


def test_load_rejects_non_graphs(tmp_path):
    torch.save({"input_tokens": torch.zeros(2)}, tmp_path / "bad.pt")
    with pytest.raises(GraphFormatError, match="missing"):
        Graph.load(tmp_path / "bad.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a pickle")
    with pytest.raises(GraphFormatError):
        Graph.load(tmp_path / "junk.pt")
