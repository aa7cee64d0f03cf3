"""Integration on the real Gemma 3 270M with its demo transcoders (slow; runs in CI).

`demo_transcoders` is the reference set when it is there, else a small set the tests train once
(tests/conftest.py): nothing here depends on how good the set is.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import torch
from oracle import oracle_max_error

from glassbox.attribution import AttributionContext
from glassbox.tracing import trace

pytestmark = pytest.mark.slow
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


@pytest.fixture(scope="module")
def jordan(gemma_model, demo_transcoders):
    return trace("Fact: Michael Jordan plays the sport of", model=gemma_model,
                 transcoders=demo_transcoders, max_feature_nodes=300)


def test_basketball_is_the_top_logit_node(jordan):
    g = jordan.graph
    assert g.logit_targets[0].token_str == " basketball"
    assert g.logit_probabilities[0] > 0.4
    data = jordan.to_json()
    logit_nodes = [n for n in data["nodes"] if n["feature_type"] == "logit"]
    top = max(logit_nodes, key=lambda n: n["token_prob"])
    assert "basketball" in top["clerp"]


def test_real_edges_equal_interventions(jordan, gemma_model, demo_transcoders):
    g = jordan.graph
    ctx = AttributionContext(gemma_model, demo_transcoders, g.input_tokens.tolist())
    assert ctx.n_active == g.metadata["n_active_features"]
    worst, scale, n = oracle_max_error(ctx, g, max_per_kind=12, seed=0)
    assert n > 5000
    # float32 end to end: agreement to ~1e-4 of the largest edge
    assert worst < 2e-4 * scale, (worst, scale)


def test_scores_are_reported_and_json_is_valid(jordan, graph_schema):
    data = jordan.to_json()
    jsonschema.validate(data, graph_schema)
    assert 0 < jordan.replacement_score <= 1 and 0 < jordan.completeness_score <= 1
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "gemma_jordan_scores.json").write_text(json.dumps(jordan.scores, indent=1))
    print(f"\nGemma 3 270M + demo transcoders, Michael Jordan: {jordan.summary()}")


def test_bf16_model_traces_with_the_same_top_logit(gemma_model, demo_transcoders):
    from glassbox.models import load_model

    bf16 = load_model("gemma-3-270m", dtype=torch.bfloat16, device="cpu")
    assert bf16.dtype == torch.bfloat16
    result = trace("Fact: Michael Jordan plays the sport of", model=bf16,
                   transcoders=demo_transcoders, max_feature_nodes=50)
    assert result.graph.logit_targets[0].token_str == " basketball"
    assert result.graph.metadata["model_dtype"] == "bfloat16"
