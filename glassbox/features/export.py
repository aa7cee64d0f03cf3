"""Anthropic's feature-details format (glassbox/graph/schemas/feature-details-schema.json).

`FeatureStore.get` already returns a superset of the format; this keeps only its fields, as
Neuronpedia and circuit-tracer's viewer read them:

    index                Cantor pair of (layer, feature): the `feature` field of graph nodes
    transcoder_id        the transcoder set's name
    examples_quantiles   [{quantile_name, examples: [{tokens, tokens_acts_list,
                          train_token_ind, is_repeated_datapoint}]}], "Top activations" first
    top_logits, bottom_logits   decoded tokens, strongest first
    act_min, act_max, quantile_values, histogram (counts in log-spaced bins),
    activation_frequency (firings per non-special token)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EXAMPLE_KEYS = ("tokens", "tokens_acts_list", "train_token_ind", "is_repeated_datapoint")
TOP_KEYS = ("index", "transcoder_id", "top_logits", "bottom_logits", "act_min", "act_max",
            "quantile_values", "histogram", "activation_frequency")


def to_feature_details(dashboard: dict[str, Any]) -> dict[str, Any]:
    """The feature-details dict of one `FeatureStore.get` result."""
    out = {key: dashboard[key] for key in TOP_KEYS}
    out["examples_quantiles"] = [
        {"quantile_name": q["quantile_name"],
         "examples": [{key: ex[key] for key in EXAMPLE_KEYS} for ex in q["examples"]]}
        for q in dashboard["examples_quantiles"]
    ]
    return out


def write_feature_details(dashboard: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_feature_details(dashboard), separators=(",", ":"), ensure_ascii=False))
    return path
