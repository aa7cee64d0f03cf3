"""Feature interventions, steering and generation on tiny random models of every family.

* constrained: an edit changes every target exactly as the graph's edges say;
* free: equals an independent reference built from forward hooks on the HF modules;
* generation: equals HF's greedy `generate` and a full recompute at every step.
"""

from __future__ import annotations

import pytest
import torch

from glassbox.attribution import AttributionContext, attribute
from glassbox.errors import GlassboxError
from glassbox.interventions import FeatureEdit, InterventionError, Steering, ablate, scale, steer
from glassbox.replacement import ReplacementModel, pick_token
from glassbox.testing import FAMILIES, make_random_transcoders, make_tiny_model

PROMPT = "Fact : Michael Jordan plays the sport of"

# (kind, activation, skip, input hook, output hook)
KINDS = {
    "plt-relu": ("plt", "relu", True, "mlp.hook_in", "hook_mlp_out"),
    "plt-topk-hookout": ("plt", "topk", True, "ln2.hook_normalized", "mlp.hook_out"),
    "plt-jumprelu": ("plt", "jumprelu", False, "mlp.hook_in", "hook_mlp_out"),
    "clt-relu": ("clt", "relu", True, "mlp.hook_in", "hook_mlp_out"),
    "clt-jumprelu-resid": ("clt", "jumprelu", False, "hook_resid_mid", "hook_mlp_out"),
    "clt-relu-hookout": ("clt", "relu", False, "mlp.hook_in", "mlp.hook_out"),
}


def setup(family: str, kind: str = "plt-relu", *, seed: int = 0):
    model = make_tiny_model(family, seed=seed, dtype=torch.float64)
    k, act, skip, ih, oh = KINDS[kind]
    tc = make_random_transcoders(model, kind=k, activation=act, skip=skip, input_hook=ih,
                                 output_hook=oh, seed=seed)
    return model, tc, ReplacementModel(model, tc)


def demeaned(logits: torch.Tensor, ids: list[int]) -> torch.Tensor:
    """Logit minus the mean logit: what a graph's logit node measures (pre soft-cap)."""
    return logits[ids] - logits.mean()


def active_triples(acts: torch.Tensor) -> torch.Tensor:
    """(n, 3) layer, pos, feature of the non-zero activations."""
    return acts.nonzero()


# ---- constrained: exactly the graph's edges ---------------------------------------------------


def _targets(graph, res) -> torch.Tensor:
    """Pre-activations of the graph's feature nodes and its demeaned logits, one vector."""
    sel = graph.selected_feature_triples()
    pre = res.activations[sel[:, 0], sel[:, 1], sel[:, 2]]
    return torch.cat([pre, demeaned(res.logits[-1], graph.logit_tokens.tolist())])


def random_edits(ctx: AttributionContext, n: int, *, seed: int) -> tuple[torch.Tensor, list[tuple]]:
    """`n` active features moved by random amounts: the change per feature, and the edits."""
    gen = torch.Generator().manual_seed(seed)
    pick = torch.randperm(ctx.n_active, generator=gen)[:n]
    delta = torch.zeros(ctx.n_active, dtype=torch.float64)
    delta[pick] = torch.randn(n, generator=gen, dtype=torch.float64)
    edits = [(l, p, f, float(ctx.activation_values[i] + delta[i]))
             for i, (l, p, f) in zip(pick.tolist(), ctx.active_features[pick].tolist(), strict=True)]
    return delta, edits


EDGE_CASES = ([(f, "plt-topk-hookout") for f in FAMILIES] + [(f, "clt-jumprelu-resid") for f in FAMILIES]
              + [("llama", "plt-relu"), ("gemma3", "clt-relu"), ("gemma2", "clt-relu-hookout")])


@pytest.mark.parametrize("family,kind", EDGE_CASES)
def test_constrained_edit_moves_every_target_by_its_edge(family, kind):
    model, tc, rm = setup(family, kind)
    graph = attribute(PROMPT, model, tc)
    ids = graph.input_tokens.tolist()
    run = dict(constrained=True, return_activations=True, apply_activation_function=False, softcap=False)
    base = _targets(graph, rm.feature_intervention(ids, **run))
    acts = rm.feature_intervention(ids, return_activations=True).activations  # the clean activations
    A = graph.adjacency_matrix
    n_sel = graph.n_selected
    rows = list(range(n_sel)) + list(range(graph.n_nodes - graph.n_logits, graph.n_nodes))
    sel = graph.selected_feature_triples()
    gen = torch.Generator().manual_seed(0)
    checked, worst_f, worst_l, biggest = 0, 0.0, 0.0, 0.0
    for s in torch.randperm(n_sel, generator=gen)[:5].tolist():
        l, p, f = sel[s].tolist()
        a = float(acts[l, p, f])
        for edit, factor in ((scale(l, p, f, 1.37), 0.37), ((l, p, f, 2.5), (2.5 - a) / a),
                             (ablate(l, p, f), -1.0)):
            moved = _targets(graph, rm.feature_intervention(ids, [edit], **run)) - base
            error = (moved.cpu() - factor * A[rows, s]).abs()
            worst_f = max(worst_f, float(error[:n_sel].max()))
            worst_l = max(worst_l, float(error[n_sel:].max()))
            biggest = max(biggest, float((factor * A[rows, s]).abs().max()))
            checked += 1
    assert checked == 15 and biggest > 0.05
    assert worst_f < 1e-9 * max(1.0, biggest), (worst_f, biggest)
    # logit edges use float32 unembedding rows (attribution/targets.py), hence 1e-7
    assert worst_l < 1e-7 * max(1.0, biggest), (worst_l, biggest)


@pytest.mark.parametrize("family,kind", [("llama", "plt-relu"), ("gemma2", "clt-relu"),
                                         ("gemma3", "plt-topk-hookout"), ("qwen3", "clt-relu-hookout")])
def test_constrained_equals_linear_forward(family, kind):
    model, tc, rm = setup(family, kind)
    ids = model.tokenize(PROMPT)
    ctx = AttributionContext(model, tc, ids)
    delta, edits = random_edits(ctx, 6, seed=1)
    W_U = model.unembedding.double()
    pres, logit_vals = ctx.linear_forward(delta_acts=delta, logit_vecs=W_U)
    res = rm.feature_intervention(ids, edits, constrained=True, return_activations=True,
                                  apply_activation_function=False, softcap=False)
    af = ctx.active_features
    torch.testing.assert_close(res.activations[af[:, 0], af[:, 1], af[:, 2]], pres, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(res.logits[-1], logit_vals, rtol=1e-10, atol=1e-10)
    assert (logit_vals - ctx.linear_forward(logit_vecs=W_U)[1]).abs().max() > 1e-3


@pytest.mark.parametrize("family", ["llama", "gemma3"])
def test_constrained_steering_equals_an_error_change(family):
    model, tc, rm = setup(family, "clt-relu")
    ids = model.tokenize(PROMPT)
    ctx = AttributionContext(model, tc, ids)
    vec = torch.randn(model.d_model, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    de = torch.zeros(ctx.n_layers, ctx.n_pos, model.d_model, dtype=torch.float64)
    de[0, 4] = 0.5 * vec
    pres, logit_vals = ctx.linear_forward(delta_errors=de, logit_vecs=model.unembedding.double())
    res = rm.feature_intervention(ids, [steer(0, vec, 4, coefficient=0.5)], constrained=True,
                                  return_activations=True, apply_activation_function=False, softcap=False)
    af = ctx.active_features
    torch.testing.assert_close(res.activations[af[:, 0], af[:, 1], af[:, 2]], pres, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(res.logits[-1], logit_vals, rtol=1e-10, atol=1e-10)


# ---- free mode: an independent reference with hooks on the HF modules -------------------------


class HookReference:
    """Free-mode interventions written as forward hooks on the HF modules (not our forward).

    Transcoder input: the MLP's input (mlp.hook_in) or the pre-MLP norm's input
    (hook_resid_mid). Output: the MLP's output (mlp.hook_out, and hook_mlp_out off Gemma) or
    Gemma's post-MLP norm output (hook_mlp_out). `frozen_rows` query rows of every attention
    use the clean prompt's pattern (HF eager attention weights).
    """

    def __init__(self, model, tc):
        self.model, self.tc = model, tc
        self.hf = model.hf_model
        self.gemma = model.spec.family.startswith("gemma")

    def _modules(self, layer):
        blk = self.hf.model.layers[layer]
        pre_norm = blk.pre_feedforward_layernorm if self.gemma else blk.post_attention_layernorm
        inp = blk.mlp if self.tc.input_hook == "mlp.hook_in" else pre_norm
        if self.tc.output_hook == "hook_mlp_out" and self.gemma:
            out = blk.post_feedforward_layernorm
        else:
            out = blk.mlp
        return inp, out

    def clean_patterns(self, ids):
        self.hf.set_attn_implementation("eager")
        out = self.hf(torch.tensor([ids], device=self.model.device), output_attentions=True)
        return [a.detach() for a in out.attentions]

    def run(self, ids, edits, *, frozen=None):
        """Logits (T, V) and activations (L, T, d_tc). edits: (layer, pos|None, feat, mode, value)."""
        T, L = len(ids), self.model.n_layers
        pending = [torch.zeros(T, self.model.d_model, dtype=self.model.dtype, device=self.model.device)
                   for _ in range(L)]
        acts_seen = [None] * L
        handles = []

        def on_input(layer):
            def hook(mod, args):
                acts = self.tc.activate(layer, self.tc.encode(layer, args[0][0]))
                acts[0] = 0  # BOS
                acts_seen[layer] = acts
                for el, pos, feat, mode, value in edits:
                    if el != layer:
                        continue
                    positions = range(1, T) if pos is None else [pos] if pos < T else []
                    for p in positions:
                        cur = acts[p, feat]
                        new = value * cur if mode == "scale" else value
                        dec = self.tc.layers[layer].W_dec.tensor[feat]  # (d,) or (n_out, d)
                        dec = dec[None] if dec.dim() == 1 else dec
                        for j in range(dec.shape[0]):
                            pending[layer + j][p] += (new - cur) * dec[j].to(pending[0].device)
            return hook

        def on_output(layer):
            def hook(mod, args, output):
                return output + pending[layer][None]
            return hook

        def on_attention(layer, pattern):
            def hook(mod, args, kwargs, output):
                h = kwargs["hidden_states"]
                spec = self.model.spec
                T0 = pattern.shape[-1]
                v = mod.v_proj(h[:, :T0]).view(1, T0, spec.n_kv_heads, spec.head_dim).transpose(1, 2)
                v = v.repeat_interleave(spec.n_heads // spec.n_kv_heads, dim=1)  # (1, H, T0, hd)
                z = (pattern @ v).transpose(1, 2).reshape(1, T0, -1)
                out = output[0].clone()
                out[:, :T0] = mod.o_proj(z)
                return (out, *output[1:])
            return hook

        try:
            for layer in range(L):
                inp, out = self._modules(layer)
                handles.append(inp.register_forward_pre_hook(on_input(layer)))
                handles.append(out.register_forward_hook(on_output(layer)))
                if frozen is not None:
                    attn = self.hf.model.layers[layer].self_attn
                    handles.append(attn.register_forward_hook(on_attention(layer, frozen[layer]),
                                                              with_kwargs=True))
            with torch.no_grad():
                logits = self.hf(torch.tensor([ids], device=self.model.device)).logits[0]
        finally:
            for h in handles:
                h.remove()
        return logits, torch.stack(acts_seen)


def _free_edits(rm, ids):
    """A mix of set / ablate / scale / inactive-set / every-position edits at several layers."""
    acts = rm.feature_intervention(ids, return_activations=True).activations
    act = active_triples(acts)
    l0 = act[act[:, 0] == 0]
    l1 = act[act[:, 0] == 1]
    a, b, c = l0[3].tolist(), l0[-1].tolist(), l1[2].tolist()
    inactive = (acts[0, 5] == 0).nonzero()[0, 0].item()
    ours = [(a[0], a[1], a[2], 3.0 * float(acts[tuple(a)])), ablate(*b), scale(*c, 0.5),
            (0, 5, inactive, 2.0), FeatureEdit(1, None, int(l1[0, 2]), 1.5)]
    ref = [(a[0], a[1], a[2], "set", 3.0 * float(acts[tuple(a)])), (b[0], b[1], b[2], "set", 0.0),
           (c[0], c[1], c[2], "scale", 0.5), (0, 5, inactive, "set", 2.0),
           (1, None, int(l1[0, 2]), "set", 1.5)]
    return ours, ref


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("kind", ["plt-relu", "clt-relu-hookout", "clt-jumprelu-resid"])
@pytest.mark.parametrize("freeze", [False, True], ids=["free-attn", "frozen-attn"])
def test_free_mode_matches_hook_reference(family, kind, freeze):
    model, tc, rm = setup(family, kind)
    ids = model.tokenize(PROMPT)
    ours, ref_edits = _free_edits(rm, ids)
    ref = HookReference(model, tc)
    frozen = ref.clean_patterns(ids) if freeze else None
    ref_logits, ref_acts = ref.run(ids, ref_edits, frozen=frozen)
    res = rm.feature_intervention(ids, ours, freeze_attention=freeze, return_activations=True)
    clean = model.forward(ids).logits[0]
    assert (ref_logits - clean).abs().max() > 1e-2  # the edits matter
    torch.testing.assert_close(res.logits, ref_logits, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(res.activations, ref_acts, rtol=1e-5, atol=1e-5)


def test_frozen_and_free_attention_differ_downstream():
    model, tc, rm = setup("llama")
    ids = model.tokenize(PROMPT)
    ours, _ = _free_edits(rm, ids)
    a = rm.feature_intervention(ids, ours, freeze_attention=True).logits
    b = rm.feature_intervention(ids, ours, freeze_attention=False).logits
    assert (a - b).abs().max() > 1e-4


@pytest.mark.parametrize("family", ["llama", "gemma2"])
def test_no_intervention_is_the_real_model(family):
    model, tc, rm = setup(family)
    ids = model.tokenize(PROMPT)
    hf_logits = model.hf_model(torch.tensor([ids], device=model.device)).logits[0]
    for constrained in (False, True):
        res = rm.feature_intervention(ids, constrained=constrained)
        torch.testing.assert_close(res.logits, hf_logits, rtol=1e-5, atol=1e-5)


def test_scale_one_and_set_to_current_change_nothing():
    model, tc, rm = setup("qwen3")
    ids = model.tokenize(PROMPT)
    acts = rm.feature_intervention(ids, return_activations=True).activations
    l, p, f = active_triples(acts)[4].tolist()
    base = rm.feature_intervention(ids).logits
    for edit in (scale(l, p, f, 1.0), (l, p, f, float(acts[l, p, f]))):
        torch.testing.assert_close(rm.feature_intervention(ids, [edit]).logits, base, rtol=1e-12, atol=1e-12)


def test_free_steering_adds_to_the_residual_after_the_layer():
    """A steering vector at the last layer moves the logits by W_U (norm recomputed)."""
    model, tc, rm = setup("llama")
    ids = model.tokenize(PROMPT)
    vec = torch.randn(model.d_model, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    res = rm.feature_intervention(ids, [steer(1, vec, 3)])
    fwd = model.forward(ids)
    resid = fwd.final_resid.clone()
    resid[0, 3] += vec.to(resid.device)
    expected = model.hf_model.lm_head(model.decoder.norm(resid))[0]
    torch.testing.assert_close(res.logits, expected, rtol=1e-10, atol=1e-10)


# ---- persistent interventions and generation ---------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_greedy_generation_equals_hf_generate_and_full_forward(family):
    model, tc, rm = setup(family, seed=1)
    ids = model.tokenize("The capital state containing Dallas is")
    out = rm.generate(ids, max_new_tokens=12)
    hf = model.hf_model.generate(torch.tensor([ids], device=model.device), max_new_tokens=12, do_sample=False)
    assert out.new_ids == hf[0, len(ids):].tolist()
    seq = list(ids)
    for _ in range(len(out.new_ids)):
        seq.append(int(model.forward(seq).logits[0, -1].argmax()))
    assert out.ids == seq
    assert out.text == model.tokenizer.decode(out.new_ids, skip_special_tokens=True)


def _reference_generation(model, tc, ids, ref_edits, n, *, freeze):
    ref = HookReference(model, tc)
    frozen = ref.clean_patterns(ids) if freeze else None
    seq = list(ids)
    for _ in range(n):
        logits, _ = ref.run(seq, ref_edits, frozen=frozen)
        seq.append(int(logits[-1].argmax()))
    return seq[len(ids):]


@pytest.mark.parametrize("family,kind", [("llama", "plt-relu"), ("gemma3", "clt-relu-hookout"),
                                         ("qwen2", "clt-jumprelu-resid")])
@pytest.mark.parametrize("freeze", [False, True], ids=["free-attn", "frozen-attn"])
def test_generation_with_persistent_edits_equals_full_recompute(family, kind, freeze):
    model, tc, rm = setup(family, kind, seed=2)
    ids = model.tokenize("The capital state containing Dallas is")
    clean = rm.generate(ids, max_new_tokens=10, stop_at_eos=False)
    acts = rm.feature_intervention(ids, return_activations=True).activations
    f0 = int(active_triples(acts[0])[-1, 1])
    rm.set_feature(0, f0, 25.0)  # every position, generated ones too
    rm.scale_feature(1, int(active_triples(acts[1])[0, 1]), 0.0, pos=len(ids) + 2)  # a generated position
    out = rm.generate(ids, max_new_tokens=10, stop_at_eos=False, freeze_attention=freeze)
    ref_edits = [(0, None, f0, "set", 25.0),
                 (1, len(ids) + 2, int(active_triples(acts[1])[0, 1]), "scale", 0.0)]
    assert out.new_ids == _reference_generation(model, tc, ids, ref_edits, 10, freeze=freeze)
    assert out.new_ids != clean.new_ids
    rm.clear_interventions()
    assert rm.interventions == ()
    assert rm.generate(ids, max_new_tokens=10, stop_at_eos=False).new_ids == clean.new_ids


def test_first_generated_token_follows_feature_intervention():
    model, tc, rm = setup("gemma2")
    ids = model.tokenize(PROMPT)
    edits = [(1, len(ids) - 1, 3, 9.0)]
    for freeze in (False, True):
        # negative positions count from the end of the prompt, in generation too
        out = rm.generate(ids, max_new_tokens=1, interventions=[(1, -1, 3, 9.0)], freeze_attention=freeze)
        res = rm.feature_intervention(ids, edits, freeze_attention=freeze)
        assert out.new_ids == [int(res.last_logits.argmax())]
        assert torch.equal(res.logits, rm.feature_intervention(ids, [(1, -1, 3, 9.0)],
                                                               freeze_attention=freeze).logits)


def test_generation_stops_at_eos():
    model, tc, rm = setup("llama")
    eos = model.tokenizer.eos_token_id
    rm.add_steering(1, 50.0 * model.unembedding[eos].clone())  # eos becomes the argmax
    out = rm.generate(PROMPT, max_new_tokens=8)
    assert out.new_ids == [eos] and out.stop_reason == "eos"
    assert rm.generate(PROMPT, max_new_tokens=3, stop_at_eos=False).new_ids == [eos] * 3


def test_sampling_is_seeded_and_top_p_narrows_it():
    model, tc, rm = setup("qwen3")
    a = rm.generate(PROMPT, max_new_tokens=8, temperature=3.0, seed=7)
    b = rm.generate(PROMPT, max_new_tokens=8, temperature=3.0, seed=7)
    assert a.new_ids == b.new_ids and a.stop_reason in ("eos", "length")
    others = {tuple(rm.generate(PROMPT, max_new_tokens=8, temperature=3.0, seed=s).new_ids) for s in range(5)}
    assert len(others) > 1
    greedy = rm.generate(PROMPT, max_new_tokens=8)
    nucleus_of_one = rm.generate(PROMPT, max_new_tokens=8, temperature=3.0, top_p=1e-9, seed=3)
    assert nucleus_of_one.new_ids == greedy.new_ids


def test_top_p_keeps_the_smallest_nucleus():
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    gen = torch.Generator().manual_seed(0)
    seen = {pick_token(logits, temperature=1.0, top_p=0.8, generator=gen) for _ in range(300)}
    assert seen == {0, 1}


def test_generate_before_after_runs_clean_and_intervened():
    model, tc, rm = setup("llama", seed=2)
    ids = model.tokenize("The capital state containing Dallas is")
    before, after = rm.generate_before_after(ids, [FeatureEdit(0, None, 5, 40.0)], max_new_tokens=6,
                                             stop_at_eos=False)
    assert before.new_ids == rm.generate(ids, max_new_tokens=6, stop_at_eos=False).new_ids
    assert after.new_ids == rm.generate(ids, max_new_tokens=6, stop_at_eos=False,
                                        interventions=[FeatureEdit(0, None, 5, 40.0)]).new_ids
    assert before.new_ids != after.new_ids


def test_top_next_tokens_before_after():
    model, tc, rm = setup("gemma3")
    ids = model.tokenize(PROMPT)
    acts = rm.feature_intervention(ids, return_activations=True).activations
    l, p, f = active_triples(acts[:, -1:])[0].tolist()
    edit = ablate(l, len(ids) - 1, f)
    table = rm.top_next_tokens_before_after(ids, [edit], k=5)
    clean = model.top_next_tokens(PROMPT, k=5)
    assert [t.token for t in table.before] == [s for s, _ in clean]
    torch.testing.assert_close(torch.tensor([t.prob_before for t in table.before]),
                               torch.tensor([q for _, q in clean]), rtol=1e-6, atol=1e-7)
    after = torch.softmax(rm.feature_intervention(ids, [edit]).last_logits.double(), -1)
    top = after.topk(5)
    assert [t.token_id for t in table.after] == top.indices.tolist()
    probs_after = torch.tensor([t.prob_after for t in table.after], dtype=torch.float64)
    torch.testing.assert_close(probs_after, top.values.cpu())
    assert any(abs(t.prob_after - t.prob_before) > 1e-6 for t in table.after)
    assert set(table.to_dict()) == {"before", "after"}


# ---- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize("interventions,message", [
    ([(2, 3, 0, 1.0)], "layer 2 does not exist"),
    ([(-1, 3, 0, 1.0)], "layer -1 does not exist"),
    ([(0, 3, 24, 1.0)], "feature 24 does not exist"),
    ([(0, 3, -1, 1.0)], "feature -1 does not exist"),
    ([(0, 9, 0, 1.0)], "position 9 is outside"),
    ([(0, -10, 0, 1.0)], "position -10 is before the start"),
    ([(0, -9, 0, 1.0)], "BOS"),
    ([(0, 0, 0, 1.0)], "BOS"),
    ([(0, 3, 0, float("nan"))], "finite"),
    ([(0, 3, 0, "big")], "number"),
    ([(0.5, 3, 0, 1.0)], "integer"),
    ([(0, 3, 0)], "is \\(layer, pos, feature, value\\)"),
    ((0, 3, 0, 1.0), "must be a list"),
    ([scale(0, 3, 0, float("inf"))], "scale factor must be finite"),
    ([FeatureEdit(0, 3, 0, 1.0, "double")], "unknown intervention mode"),
    ([Steering(0, torch.zeros(5))], "shape \\(16,\\)"),
    ([Steering(0, torch.full((16,), float("nan")))], "NaN"),
    (["ablate"], "not an intervention"),
])
def test_bad_interventions_raise_clear_errors(interventions, message):
    _, _, rm = setup("llama")
    with pytest.raises(InterventionError, match=message):
        rm.feature_intervention(PROMPT, interventions)


def test_bad_persistent_and_generation_arguments():
    model, _, rm = setup("llama")
    with pytest.raises(InterventionError, match="absolute position"):
        rm.set_feature(0, 1, 2.0, pos=-1)
    with pytest.raises(InterventionError, match="feature 99"):
        rm.set_feature(0, 99, 2.0)
    with pytest.raises(InterventionError, match="layer 5"):
        rm.add_steering(5, torch.zeros(model.d_model))
    assert rm.interventions == ()
    rm.set_feature(0, 1, 2.0, pos=0)
    with pytest.raises(InterventionError, match="BOS"):
        rm.generate(PROMPT, max_new_tokens=2)
    rm.clear_interventions()
    for kwargs, message in [({"max_new_tokens": 0}, "max_new_tokens"), ({"temperature": -1.0}, "temperature"),
                            ({"top_p": 0.0}, "top_p"), ({"top_p": 1.5}, "top_p")]:
        with pytest.raises(GlassboxError, match=message):
            rm.generate(PROMPT, **kwargs)
    with pytest.raises(InterventionError, match="never|outside"):
        rm.generate(PROMPT, max_new_tokens=2, interventions=[(0, 12, 0, 1.0)])
    with pytest.raises(GlassboxError, match="no tokens"):
        rm.feature_intervention([])
    with pytest.raises(GlassboxError, match="vocabulary"):
        rm.feature_intervention([2, 10_000])
    with pytest.raises(GlassboxError, match="k must be"):
        rm.top_next_tokens_before_after(PROMPT, [], k=0)


def test_transcoders_for_another_model_are_refused():
    model, tc, _ = setup("llama")
    tc.layers = tc.layers[:1]
    with pytest.raises(GlassboxError, match="1 layers"):
        ReplacementModel(model, tc)


def test_logits_at_last_is_the_last_row():
    model, tc, rm = setup("gemma2")
    edits = [(1, 4, 3, 2.0)]
    full = rm.feature_intervention(PROMPT, edits, constrained=True)
    last = rm.feature_intervention(PROMPT, edits, constrained=True, logits_at="last")
    assert last.logits.shape == (1, model.vocab_size)
    torch.testing.assert_close(last.logits[0], full.logits[-1], rtol=1e-12, atol=1e-12)
    with pytest.raises(GlassboxError, match="logits_at"):
        rm.feature_intervention(PROMPT, edits, logits_at="first")


# ---- acceptance on the real demo model (slow) ---------------------------------------------------

JORDAN = "Fact: Michael Jordan plays the sport of"


@pytest.fixture(scope="module")
def jordan_graph(gemma_model, demo_transcoders):
    return attribute(JORDAN, gemma_model, demo_transcoders, max_feature_nodes=300)


@pytest.mark.slow
def test_ablating_the_top_logits_strongest_feature_moves_it_as_the_graph_says(
        jordan_graph, gemma_model, demo_transcoders):
    import json
    from pathlib import Path

    g = jordan_graph
    assert g.logit_targets[0].token_str == " basketball"
    edges = g.adjacency_matrix[g.logit_node(0), : g.n_selected]  # direct edges into the top logit
    s = int(edges.argmax())
    edge = float(edges[s])
    layer, pos, feat = g.selected_feature_triples()[s].tolist()
    assert edge > 0
    rm = ReplacementModel(gemma_model, demo_transcoders)
    ids, v, edit = g.input_tokens.tolist(), g.logit_targets[0].vocab_idx, ablate(layer, pos, feat)

    def top_logit(**kw):
        run = dict(softcap=False, logits_at="last", **kw)
        clean = rm.feature_intervention(ids, **run).last_logits.double()
        return clean, rm.feature_intervention(ids, [edit], **run).last_logits.double()

    clean, after = top_logit(constrained=True)
    demeaned_change = float((after[v] - after.mean()) - (clean[v] - clean.mean()))
    # constrained: the change is exactly minus the edge (float32), and the logit falls
    assert demeaned_change == pytest.approx(-edge, rel=2e-3, abs=2e-4)
    assert float(after[v] - clean[v]) < 0
    report = {"prompt": JORDAN, "feature": {"layer": layer, "pos": pos, "feature": feat,
                                            "activation": float(g.activation_values[g.selected_features[s]])},
              "edge_to_top_logit": edge, "constrained": {"demeaned_logit_change": demeaned_change,
                                                         "logit_change": float(after[v] - clean[v])}}
    for name, kw in (("free_frozen_attention", {}), ("free", {"freeze_attention": False})):
        clean, after = top_logit(**kw)
        report[name] = {"logit_change": float(after[v] - clean[v]),
                        "prob_before": float(torch.softmax(clean, -1)[v]),
                        "prob_after": float(torch.softmax(after, -1)[v])}
    table = rm.top_next_tokens_before_after(ids, [edit], k=5)
    assert table.before[0].token == " basketball"
    report["top5_after"] = [(t.token, round(t.prob_after, 4)) for t in table.after]
    artifacts = Path(__file__).resolve().parents[1] / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "gemma_jordan_ablation.json").write_text(json.dumps(report, indent=1))
    print("\nGemma 3 270M ablation of the strongest feature into ' basketball':", json.dumps(report))


def test_a_chat_sets_template_prefix_is_held_in_interventions_as_in_graphs():
    """With a chat set (GemmaScope-2 -it), constrained runs hold the whole template prefix
    constant exactly as attribution does, and edits inside it are refused."""
    model, tc, _ = setup("gemma3", "plt-topk-hookout")
    ids = model.tokenize(PROMPT)
    tc.ignored_prefix = tuple(ids[:3])
    rm = ReplacementModel(model, tc)
    ctx = AttributionContext(model, tc, ids)
    assert ctx.held == 3 and (ctx.active_features[:, 1] >= 3).all()
    delta, edits = random_edits(ctx, 5, seed=2)
    W_U = model.unembedding.double()
    pres, logit_vals = ctx.linear_forward(delta_acts=delta, logit_vecs=W_U)
    res = rm.feature_intervention(ids, edits, constrained=True, return_activations=True,
                                  apply_activation_function=False, softcap=False)
    assert res.activations[:, :3].abs().max() == 0
    af = ctx.active_features
    torch.testing.assert_close(res.activations[af[:, 0], af[:, 1], af[:, 2]], pres, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(res.logits[-1], logit_vals, rtol=1e-10, atol=1e-10)
    with pytest.raises(InterventionError, match="position 2 is held constant"):
        rm.feature_intervention(ids, [(0, 2, 0, 1.0)], constrained=True)
