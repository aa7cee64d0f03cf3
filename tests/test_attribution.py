"""Exactness of attribution on tiny random models of every family and transcoder kind."""

from __future__ import annotations

import pytest
import torch
from oracle import graph_targets, oracle_max_error

from glassbox.attribution import AttributionContext, attribute, logit_difference
from glassbox.attribution.targets import CustomTarget, resolve_targets
from glassbox.errors import GlassboxError
from glassbox.testing import FAMILIES, make_random_transcoders, make_tiny_model

PROMPT = "Fact : Michael Jordan plays the sport of"

# (kind, activation, skip, input hook, output hook)
TRANSCODER_KINDS = [
    ("plt", "relu", True, "mlp.hook_in", "hook_mlp_out"),
    ("plt", "jumprelu", False, "mlp.hook_in", "hook_mlp_out"),
    ("plt", "topk", True, "ln2.hook_normalized", "mlp.hook_out"),
    ("clt", "jumprelu", False, "hook_resid_mid", "hook_mlp_out"),
    ("clt", "relu", True, "mlp.hook_in", "hook_mlp_out"),
]


def setup(family: str, kind=TRANSCODER_KINDS[0], *, seed: int = 0):
    model = make_tiny_model(family, seed=seed, dtype=torch.float64)
    k, act, skip, ih, oh = kind
    tc = make_random_transcoders(model, kind=k, activation=act, skip=skip, input_hook=ih,
                                 output_hook=oh, seed=seed)
    return model, tc


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("kind", TRANSCODER_KINDS, ids=lambda k: f"{k[0]}-{k[1]}-{k[3]}")
def test_every_edge_equals_an_intervention(family, kind):
    model, tc = setup(family, kind)
    graph = attribute(PROMPT, model, tc, batch_size=7)
    ctx = AttributionContext(model, tc, graph.input_tokens.tolist())
    assert graph.n_selected == ctx.n_active > 20
    worst, scale, n = oracle_max_error(ctx, graph)
    assert scale > 0.1 and n > 1000
    assert worst < 1e-9 * max(1.0, scale), (worst, scale)


@pytest.mark.parametrize("family", ["llama", "gemma3"])
def test_frozen_model_at_the_prompt_is_the_real_model(family):
    model, tc = setup(family)
    ctx = AttributionContext(model, tc, model.tokenize(PROMPT))
    tg = resolve_targets(model, ctx.logits, None, max_n_logits=5, desired_logit_prob=1.0)
    pre, logit_vals = ctx.linear_forward(logit_vecs=tg.vectors)
    real_pre = torch.cat([
        ctx.pre_activations(l)[tuple(ctx.active_features[ctx.layer_slice(l)][:, 1:].T)]
        for l in range(ctx.n_layers)
    ])
    torch.testing.assert_close(pre, real_pre.to(pre.dtype), rtol=1e-5, atol=1e-6)
    final = model.decoder.norm(ctx.final_resid.view(1, 1, -1).to(model.dtype))[0, 0]
    torch.testing.assert_close(logit_vals, (tg.vectors.double() @ final.double()).to(logit_vals.dtype),
                               rtol=1e-5, atol=1e-6)


def test_frozen_model_is_linear_in_its_sources():
    model, tc = setup("gemma2", TRANSCODER_KINDS[3])
    ctx = AttributionContext(model, tc, model.tokenize(PROMPT))
    vecs = resolve_targets(model, ctx.logits, None, max_n_logits=3, desired_logit_prob=1.0).vectors
    gen = torch.Generator().manual_seed(3)
    d1 = {"delta_embed": torch.randn(ctx.embeddings.shape, generator=gen, dtype=torch.float64),
          "delta_acts": torch.randn(ctx.n_active, generator=gen, dtype=torch.float64)}
    d2 = {"delta_embed": torch.randn(ctx.embeddings.shape, generator=gen, dtype=torch.float64),
          "delta_errors": torch.randn(ctx.n_layers, ctx.n_pos, model.d_model, generator=gen,
                                      dtype=torch.float64)}
    base = torch.cat(ctx.linear_forward(logit_vecs=vecs))
    f1 = torch.cat(ctx.linear_forward(logit_vecs=vecs, **d1)) - base
    f2 = torch.cat(ctx.linear_forward(logit_vecs=vecs, **d2)) - base
    both = {"delta_embed": 2 * d1["delta_embed"] + d2["delta_embed"],
            "delta_acts": 2 * d1["delta_acts"], "delta_errors": d2["delta_errors"]}
    f12 = torch.cat(ctx.linear_forward(logit_vecs=vecs, **both)) - base
    assert f1.abs().max() > 1e-3
    torch.testing.assert_close(f12, 2 * f1 + f2, rtol=1e-9, atol=1e-9)


def test_bos_position_has_no_features_or_errors():
    model, tc = setup("llama")
    graph = attribute(PROMPT, model, tc)
    assert graph.input_tokens[0] == model.tokenizer.bos_token_id
    assert (graph.active_features[:, 1] > 0).all()
    err_cols = [graph.error_node(l, 0) for l in range(graph.n_layers)]
    assert graph.adjacency_matrix[:, err_cols].abs().max() == 0
    # the BOS token itself is a source
    assert graph.adjacency_matrix[:, graph.token_node(0)].abs().max() > 0


def test_bos_mlp_output_is_a_constant():
    """No edge may pass through the BOS position's MLP: its frozen post-MLP norm scale is
    1/rms of a near-zero vector in real Gemma, so a live BOS skip path swamps the graph."""
    model, tc = setup("gemma3", TRANSCODER_KINDS[2])  # skip, written before the post-MLP norm
    ctx = AttributionContext(model, tc, model.tokenize(PROMPT))
    assert ctx.held == 1 and all(fl.skip is not None and fl.tc_out is not None for fl in ctx.layers)
    L, T = ctx.n_layers, ctx.n_pos
    rows = (torch.tensor([L, L, 1, 2]), torch.tensor([T - 1, T - 2, T - 1, 3]),
            torch.randn(4, model.d_model, generator=torch.Generator().manual_seed(0), dtype=torch.float64))
    before = ctx.backward_rows(*rows)
    for fl in ctx.layers:
        fl.tc_out[0] *= 1e4  # what a near-zero BOS MLP output does to the frozen scale
        fl.tc_in[0] *= 1e2
    after = ctx.backward_rows(*rows)
    assert before[:, ctx.token_col(0)].abs().max() > 1e-3  # BOS still reaches them by attention
    torch.testing.assert_close(after, before, rtol=1e-9, atol=1e-12)
    dE = torch.zeros_like(ctx.embeddings)
    dE[0] = 1.0
    pre0, _ = ctx.linear_forward()
    pre1, _ = ctx.linear_forward(delta_embed=dE)
    ctx.layers[-1].tc_out[0] *= 1e3  # moves the constant, not the BOS embedding's effect
    base2, _ = ctx.linear_forward()
    pre2, _ = ctx.linear_forward(delta_embed=dE)
    assert (pre1 - pre0).abs().max() > 1e-3
    torch.testing.assert_close(pre2 - base2, pre1 - pre0, rtol=1e-7, atol=1e-9)


def test_bos_is_not_duplicated():
    model, _ = setup("llama")
    ids = model.tokenize("<bos> Fact : Michael")
    assert ids.count(model.tokenizer.bos_token_id) == 1 and ids[0] == model.tokenizer.bos_token_id


def test_max_feature_nodes_selects_most_influential_with_exact_rows():
    model, tc = setup("qwen3")
    full = attribute(PROMPT, model, tc, batch_size=8)
    part = attribute(PROMPT, model, tc, batch_size=8, max_feature_nodes=30, update_interval=1)
    assert part.n_selected == 30
    assert torch.equal(part.active_features, full.active_features)
    # the selected rows are the same exact rows as in the full graph (restricted columns)
    sel = part.selected_features
    keep_cols = torch.cat([sel, torch.arange(full.n_selected, full.n_nodes - full.n_logits)])
    torch.testing.assert_close(part.adjacency_matrix[:30, : part.n_nodes - part.n_logits],
                               full.adjacency_matrix[sel][:, keep_cols])
    torch.testing.assert_close(part.adjacency_matrix[-part.n_logits:, : part.n_nodes - part.n_logits],
                               full.adjacency_matrix[-full.n_logits:][:, keep_cols])
    # selection favours influence: the chosen features carry more direct logit weight than
    # the same number of features chosen at random
    direct = full.adjacency_matrix[-full.n_logits:, : full.n_selected].abs().sum(0)
    assert direct[sel].mean() > direct.mean()


def test_logit_targets_follow_cumulative_probability():
    model, tc = setup("llama")
    ctx = AttributionContext(model, tc, model.tokenize(PROMPT))
    probs = torch.softmax(ctx.logits, -1)
    graph = attribute(PROMPT, model, tc, max_n_logits=10, desired_logit_prob=0.5)
    p = graph.logit_probabilities
    assert p.tolist() == sorted(p.tolist(), reverse=True)
    assert p.sum() >= 0.5 or len(p) == 10
    assert p[:-1].sum() < 0.5  # stops at the first token that reaches the goal
    assert graph.logit_targets[0].vocab_idx == int(probs.argmax())
    torch.testing.assert_close(p[0], probs.max().cpu())


def test_logit_difference_row_is_difference_of_token_rows():
    model, tc = setup("gemma3")
    ctx = AttributionContext(model, tc, model.tokenize(PROMPT))
    diff = logit_difference(model, ctx.logits, "basketball", "football")
    g_diff = attribute(PROMPT, model, tc, targets=[diff])
    g_tok = attribute(PROMPT, model, tc, targets=["basketball", "football"])
    assert g_diff.logit_targets[0].vocab_idx >= model.vocab_size
    assert g_diff.logit_targets[0].token_str == "basketball - football"
    n_src = g_diff.n_nodes - 1  # features, errors, tokens: same in both graphs
    row = g_diff.adjacency_matrix[-1, :n_src]
    tok = g_tok.adjacency_matrix[:, :n_src]
    torch.testing.assert_close(row, tok[-2] - tok[-1])


def test_custom_target_direction_matches_oracle():
    model, tc = setup("llama")
    ctx = AttributionContext(model, tc, model.tokenize(PROMPT))
    vec = torch.randn(model.d_model, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    graph = attribute(PROMPT, model, tc, targets=[CustomTarget("random", 1.0, vec)])
    dE = torch.zeros_like(ctx.embeddings)
    dE[3] = -ctx.embeddings[3]
    _, v0 = ctx.linear_forward(logit_vecs=vec[None])
    _, v1 = ctx.linear_forward(logit_vecs=vec[None], delta_embed=dE)
    torch.testing.assert_close((v1 - v0).cpu(), -graph.adjacency_matrix[-1:, graph.token_node(3)])


def test_graph_targets_helper_uses_graph_tokens():
    model, tc = setup("llama")
    graph = attribute(PROMPT, model, tc, max_n_logits=3, desired_logit_prob=0.99)
    ctx = AttributionContext(model, tc, graph.input_tokens.tolist())
    assert graph_targets(ctx, graph).shape == (graph.n_logits, model.d_model)


@pytest.mark.parametrize("kwargs,message", [
    ({"batch_size": 0}, "batch_size"),
    ({"max_feature_nodes": -1}, "max_feature_nodes"),
    ({"max_n_logits": 0}, "max_n_logits"),
    ({"desired_logit_prob": 1.5}, "desired_logit_prob"),
    ({"targets": ["Michael Jordan"]}, "exactly one token"),
    ({"targets": []}, "empty"),
    ({"max_tokens": 3}, "limit"),
])
def test_bad_arguments_raise_clear_errors(kwargs, message):
    model, tc = setup("llama")
    with pytest.raises(GlassboxError, match=message):
        attribute(PROMPT, model, tc, **kwargs)


def test_empty_prompt_is_refused():
    model, tc = setup("llama")
    with pytest.raises(GlassboxError, match="empty"):
        attribute("", model, tc)


def test_transcoders_with_too_few_layers_are_refused():
    model, _ = setup("llama")
    small = make_random_transcoders(model)
    small.layers = small.layers[:1]
    with pytest.raises(GlassboxError, match="layers"):
        attribute(PROMPT, model, small)


def test_a_chat_sets_whole_template_prefix_is_held_constant():
    """Instruction-tuned sets (GemmaScope-2 -it) hold every position of the chat template's
    opening constant, as circuit-tracer does; the graph stays exact on the rest."""
    model, tc = setup("gemma3", TRANSCODER_KINDS[2])
    ids = model.tokenize(PROMPT)
    tc.ignored_prefix = tuple(ids[:3])
    ctx = AttributionContext(model, tc, ids)
    assert ctx.held == 3
    graph = attribute(PROMPT, model, tc, batch_size=7)
    assert (graph.active_features[:, 1] >= 3).all()
    err_cols = [graph.error_node(l, p) for l in range(graph.n_layers) for p in range(3)]
    assert graph.adjacency_matrix[:, err_cols].abs().max() == 0
    max_err, scale, checked = oracle_max_error(ctx, graph)
    assert checked > 0 and max_err <= 1e-8 * max(scale, 1.0)
    tc.ignored_prefix = (ids[1], ids[0])
    with pytest.raises(GlassboxError, match="chat model"):
        attribute(PROMPT, model, tc)
