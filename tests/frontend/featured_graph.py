"""A featured-like graph for the viewer's browser tests, built deterministically from a seed.

Shaped like the graphs the engine exports for the demo model (measured on "Fact: Michael Jordan
plays the sport of", gemma-3-270m, 1000 feature nodes: 381 nodes, 22k links): 18 layers, a
9-token prompt, ~300 features and ~60 error nodes whose cumulative influence runs up to the
export threshold 0.8 (so the export threshold alone hides nothing), ten outputs with long
tokens, heavy-tailed signed weights and the engine's scores in metadata.glassbox. Links run
from lower to higher layers and from earlier to later positions, as attribution's do.
`feature_details` gives dashboards (feature-details format) for the most influential features.
"""

from __future__ import annotations

import math
import random
from typing import Any

N_LAYERS = 18
PROMPT = ["<bos>", "Fact", ":", " Michael", " Jordan", " plays", " the", " sport", " of"]
TOKEN_IDS = [2, 27711, 236787, 8972, 18305, 10772, 506, 7932, 529]
OUTPUTS = [
    (" basketball", 0.611), (" his", 0.123), (" the", 0.065), (" professional basketball", 0.016),
    (" football", 0.016), (" hoops", 0.011), (" hockey", 0.007), (" NBA", 0.006),
    (" baseball", 0.006), (" Basketball", 0.005),
]
EXPORT_THRESHOLD = 0.8
FEATURE, ERROR = "cross layer transcoder", "mlp reconstruction error"
TOPICS = ["sports", "names", "ball games", "say a sport"]


def cantor(layer: int, index: int) -> int:
    return (layer + index) * (layer + index + 1) // 2 + index


def _base(node_id: str, feature: int, layer: str, pos: int, kind: str, clerp: str) -> dict[str, Any]:
    return {
        "node_id": node_id, "feature": feature, "layer": layer, "ctx_idx": pos, "feature_type": kind,
        "token_prob": 0.0, "is_target_logit": False, "run_idx": 0, "reverse_ctx_idx": 0,
        "jsNodeId": node_id, "clerp": clerp, "influence": None, "activation": None,
    }


def _influences(rng: random.Random, n_kept: int) -> list[float]:
    """Cumulative influence fractions of the top `n_kept` of 3x as many nodes, up to ~0.8."""
    shares = sorted((rng.lognormvariate(0, 1.1) for _ in range(3 * n_kept)), reverse=True)
    total = sum(shares)
    cumulative, running = [], 0.0
    for share in shares:
        running += share
        cumulative.append(running / total)
    scale = EXPORT_THRESHOLD / cumulative[n_kept - 1]  # the last kept node sits at the threshold
    return [min(EXPORT_THRESHOLD, c * scale) for c in cumulative[:n_kept]]


def _inner_nodes(rng: random.Random, n_features: int, n_errors: int) -> list[dict[str, Any]]:
    influences = _influences(rng, n_features + n_errors + len(PROMPT))
    rng.shuffle(influences)
    nodes, used = [], set()
    for i in range(n_features):
        layer = min(N_LAYERS - 1, int(rng.triangular(0, N_LAYERS, 0)))
        pos = rng.choice([1, 3, 4, 4, 5, 7, 8, 8, 8])
        index = rng.randrange(2048)
        while (layer, index, pos) in used:
            index = rng.randrange(2048)
        used.add((layer, index, pos))
        node = _base(f"{layer}_{index}_{pos}", cantor(layer, index), str(layer), pos, FEATURE, "")
        node["clerp"] = "" if i % 3 else f"feature {index}: {rng.choice(TOPICS)}"
        node["activation"] = round(rng.uniform(0.5, 12.0), 3)
        node["influence"] = influences[i]
        nodes.append(node)
    errors = set()
    while len(errors) < n_errors:
        errors.add((rng.randrange(N_LAYERS), rng.choice([1, 3, 4, 5, 7, 8])))
    for k, (layer, pos) in enumerate(sorted(errors)):
        node = _base(f"{layer}_-1_{pos}", -1, str(layer), pos, ERROR, f'Err: mlp "{PROMPT[pos]}"')
        node["influence"] = influences[n_features + k]
        nodes.append(node)
    for pos, (token, token_id) in enumerate(zip(PROMPT, TOKEN_IDS, strict=True)):
        node = _base(f"E_{token_id}_{pos}", pos, "E", pos, "embedding", f'Emb: "{token}"')
        node["influence"] = influences[n_features + n_errors + pos]
        nodes.append(node)
    return nodes


def _output_nodes() -> list[dict[str, Any]]:
    nodes = []
    for i, (token, prob) in enumerate(OUTPUTS):
        node = _base(f"{N_LAYERS + 1}_{1000 + i}_{len(PROMPT) - 1}", 1000 + i, str(N_LAYERS + 1),
                     len(PROMPT) - 1, "logit", f'Output "{token}" (p={prob:.3f})')
        node["token_prob"] = prob
        node["is_target_logit"] = i == 0
        nodes.append(node)
    return nodes


def _row(node: dict[str, Any]) -> int:
    if node["feature_type"] == "embedding":
        return -1
    if node["feature_type"] == "logit":
        return N_LAYERS
    return int(node["layer"])


def _links(rng: random.Random, nodes: list[dict[str, Any]], per_target: int) -> list[dict[str, Any]]:
    links = []
    for target in nodes:
        if target["feature_type"] in ("embedding", "mlp reconstruction error"):
            continue
        sources = [s for s in nodes if _row(s) < _row(target) and s["ctx_idx"] <= target["ctx_idx"]]
        count = min(len(sources), per_target * (4 if target["feature_type"] == "logit" else 1))
        for source in rng.sample(sources, count):
            magnitude = rng.lognormvariate(-2.0, 1.2) * (3 if source["ctx_idx"] == target["ctx_idx"] else 1)
            sign = 1 if rng.random() < 0.72 else -1
            links.append({"source": source["node_id"], "target": target["node_id"],
                          "weight": float(f"{sign * magnitude:.6g}")})
    return links


def featured_like_graph(
    seed: int = 7, *, n_features: int = 300, n_errors: int = 60, per_target: int = 24
) -> dict[str, Any]:
    """The graph JSON (graph-schema.json) of a featured-like graph."""
    rng = random.Random(seed)
    nodes = _inner_nodes(rng, n_features, n_errors) + _output_nodes()
    return {
        "metadata": {
            "slug": f"featured-like-{seed}",
            "scan": "gemma-3-270m",
            "prompt_tokens": PROMPT,
            "prompt": "".join(PROMPT[1:]),
            "node_threshold": EXPORT_THRESHOLD,
            "schema_version": 1,
            "info": {
                "creator_name": "glassbox tests",
                "generator": {"name": "featured_graph.py", "version": "1"},
            },
            "pruning_settings": {"node_threshold": EXPORT_THRESHOLD, "edge_threshold": 0.98},
            "glassbox": {"n_layers": N_LAYERS, "replacement_score": 0.648, "completeness_score": 0.9},
        },
        "qParams": {"pinnedIds": [], "supernodes": [], "linkType": "both", "clickedId": "", "sg_pos": ""},
        "nodes": nodes,
        "links": _links(rng, nodes, per_target),
    }


def _example(rng: random.Random, peak_token: str) -> dict[str, Any]:
    words = ["The", " game", " of", " the", " season", " was", " played", " in", " Chicago", " by", " the",
             " Bulls", " and", " their", " star", " player", " who", " scored", " forty", " points"]
    start = rng.randrange(0, 6)
    tokens = words[start:start + 14]
    peak = rng.randrange(6, len(tokens))
    tokens[peak] = peak_token
    acts = [
        0.0 if i != peak and rng.random() < 0.6 else round(rng.uniform(0, 2), 3) for i in range(len(tokens))
    ]
    acts[peak] = round(rng.uniform(6, 12), 3)
    return {"tokens": tokens, "tokens_acts_list": acts, "max_index": peak}


def feature_details(graph: dict[str, Any], *, count: int = 40, seed: int = 11) -> dict[str, dict[str, Any]]:
    """Dashboards for the `count` most influential feature nodes, keyed by node id."""
    rng = random.Random(seed)
    features = sorted((n for n in graph["nodes"] if n["feature_type"] == "cross layer transcoder"),
                      key=lambda n: n["influence"])[:count]
    out = {}
    for node in features:
        peak_token = rng.choice([" basketball", " NBA", " hoops", " court", " dunk"])
        out[node["node_id"]] = {
            "index": node["feature"],
            "activation_frequency": round(math.exp(rng.uniform(-9, -3)), 6),
            "top_logits": [" basketball", " NBA", " hoops", " court", " dunk", " Lakers", " playoffs"],
            "top_logits_values": [2.5, 2.1, 1.8, 1.2, 1.1, 0.9, 0.7],
            "bottom_logits": [" piano", " violin"],
            "examples_quantiles": [
                {"quantile_name": name, "examples": [_example(rng, peak_token) for _ in range(count)]}
                for name, count in [("Top activations", 6), ("Quantile 90-99%", 3)]
            ],
        }
    return out
