"""The hook table (glassbox.models.hooks) on every family and every hook, against the HF modules.

The reference reads the tensors straight off the Hugging Face modules with forward hooks,
naming each family's modules itself, so it shares nothing with the table it checks.
"""

from __future__ import annotations

from functools import cache

import pytest
import torch

from glassbox.errors import TranscoderError
from glassbox.models.hooks import (
    BLOCK_OUT,
    INPUT_HOOKS,
    LN2_NORMALIZED,
    MLP_IN,
    MLP_OUT,
    OUTPUT_HOOKS,
    LayerHooks,
    hooks_at,
    layer_hooks,
    normalize_hook,
    read_input,
)
from glassbox.models.norms import inv_rms
from glassbox.testing import FAMILIES, make_tiny_model

PROMPT = "Fact : Michael Jordan plays the sport of basketball"
CLOSE = dict(rtol=1e-5, atol=1e-6)  # HF runs its norms in float32 even in a float64 model


@cache
def tiny(family: str):
    """A float64 tiny model, our layer records of the prompt, and the HF modules' own tensors."""
    model = make_tiny_model(family, dtype=torch.float64)
    ids = model.tokenize(PROMPT)
    records = model.forward(ids, keep_layers=True, logits_at="none").layers
    return model, records, hf_tensors(model, ids)


def hf_tensors(model, ids: list[int]) -> list[dict[str, torch.Tensor]]:
    """Per layer: the pre-MLP norm's input and the MLP's input, output and block output."""
    gemma = model.spec.family.startswith("gemma")
    seen: list[dict[str, torch.Tensor]] = [{} for _ in range(model.n_layers)]
    handles = []

    def grab(layer: int, name: str, *, out: bool):
        def hook(mod, args, output=None):
            seen[layer][name] = (output if out else args[0])[0].detach()
        return hook

    for layer, blk in enumerate(model.hf_model.model.layers):
        pre_norm = blk.pre_feedforward_layernorm if gemma else blk.post_attention_layernorm
        handles.append(pre_norm.register_forward_pre_hook(grab(layer, "resid_mid", out=False)))
        handles.append(blk.mlp.register_forward_pre_hook(grab(layer, "mlp_in", out=False)))
        handles.append(blk.mlp.register_forward_hook(grab(layer, "mlp_out", out=True)))
        block = blk.post_feedforward_layernorm if gemma else blk.mlp
        handles.append(block.register_forward_hook(grab(layer, "block_out", out=True)))
    try:
        with torch.no_grad():
            model.hf_model(torch.tensor([ids], device=model.device))
    finally:
        for h in handles:
            h.remove()
    return seen


def hf_input(hook: str, seen: dict[str, torch.Tensor], eps: float) -> torch.Tensor:
    """What a transcoder with this input hook reads, from the HF tensors."""
    resid_mid = seen["resid_mid"]
    if hook == MLP_IN:
        return seen["mlp_in"]
    if hook == LN2_NORMALIZED:
        return resid_mid / resid_mid.pow(2).mean(-1, keepdim=True).add(eps).sqrt()
    return resid_mid


# ---- reading ---------------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("hook", INPUT_HOOKS)
def test_input_hook_reads_the_named_tensor(family, hook):
    model, records, seen = tiny(family)
    for layer, (hooks, rec) in enumerate(zip(layer_hooks(model, hook, BLOCK_OUT), records, strict=True)):
        want = hf_input(hook, seen[layer], model.spec.norm_eps)
        x = hooks.read_record(rec)[0]
        torch.testing.assert_close(x.double(), want.double(), **CLOSE)
        # from live values alone, the MLP input and the norm's scale recomputed
        torch.testing.assert_close(hooks.read(rec.resid_mid)[0], x, rtol=1e-12, atol=1e-12)
        # under a frozen pre-MLP norm the input is scale * resid_mid, equal at the prompt
        s = hooks.read_scale(rec.mlp_in_inv_rms[0])
        torch.testing.assert_close((s * rec.resid_mid[0]).double(), x.double(), **CLOSE)


@pytest.mark.parametrize("hook", INPUT_HOOKS)
def test_read_input_is_the_same_rule_for_records_and_overrides(hook):
    model, records, _ = tiny("gemma3")
    rec = records[0]
    from_record = read_input(hook, rec.resid_mid, mlp_in=rec.mlp_in, mlp_in_inv_rms=rec.mlp_in_inv_rms)
    from_override = read_input(hook, rec.resid_mid, mlp_in=rec.mlp_in, eps=model.spec.norm_eps)
    assert torch.equal(from_record, from_override)
    assert torch.equal(from_record, hooks_at(model, 0, hook, BLOCK_OUT).read_record(rec))


def test_ln2_normalized_is_computed_in_at_least_float32():
    resid = torch.randn(2, 3, 8, dtype=torch.bfloat16)
    x = read_input(LN2_NORMALIZED, resid, mlp_in=None, eps=1e-6)
    assert x.dtype == torch.float32
    torch.testing.assert_close(x, resid.float() * inv_rms(resid, 1e-6))


# ---- writing ---------------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("hook", OUTPUT_HOOKS)
def test_output_hook_target_and_write(family, hook):
    model, records, seen = tiny(family)
    gemma = family.startswith("gemma")
    before_norm = hook == MLP_OUT and gemma
    gen = torch.Generator().manual_seed(0)
    for layer, (hooks, rec) in enumerate(zip(layer_hooks(model, MLP_IN, hook), records, strict=True)):
        assert (hooks.post_norm is not None) == before_norm
        y = hooks.target(rec)[0]
        want = seen[layer]["mlp_out"] if hook == MLP_OUT else seen[layer]["block_out"]
        torch.testing.assert_close(y.double(), want.double(), **CLOSE)
        # the target, written back, is what the block adds to the residual stream
        torch.testing.assert_close(hooks.write(y).double(), seen[layer]["block_out"].double(), **CLOSE)
        torch.testing.assert_close(hooks.block_out(rec.mlp_in)[0], rec.mlp_out[0], rtol=1e-12, atol=1e-12)
        # a change at the hook lands where the hook is: before or after the post-MLP norm
        delta = torch.randn(y.shape, generator=gen, dtype=y.dtype)
        torch.testing.assert_close(hooks.block_out(rec.mlp_in[0], delta), hooks.write(y + delta),
                                   rtol=1e-12, atol=1e-12)
        scale = hooks.write_scale(None if rec.mlp_out_inv_rms is None else rec.mlp_out_inv_rms[0])
        gain = hooks.write_gain()
        if before_norm:  # the frozen post-norm: 1/RMS of the prompt's MLP output times (1 + w)
            norm = model.hf_model.model.layers[layer].post_feedforward_layernorm
            torch.testing.assert_close(gain, 1.0 + norm.weight.float())
            torch.testing.assert_close((scale * y).double(), rec.mlp_out[0].double(), **CLOSE)
        else:
            assert scale is None and gain is None


@pytest.mark.parametrize("family", ["llama", "qwen2", "qwen3"])
def test_without_a_post_mlp_norm_both_output_hooks_are_one_tensor(family):
    model, records, _ = tiny(family)
    for layer, rec in enumerate(records):
        a, b = (hooks_at(model, layer, MLP_IN, hook).target(rec) for hook in OUTPUT_HOOKS)
        assert torch.equal(a, b)


# ---- names -----------------------------------------------------------------------------------


def test_names_with_a_layer_prefix_are_accepted():
    assert normalize_hook("blocks.{layer}.ln2.hook_normalized", INPUT_HOOKS, "input") == LN2_NORMALIZED
    assert normalize_hook(" blocks.7.mlp.hook_out", OUTPUT_HOOKS, "output") == MLP_OUT


@pytest.mark.parametrize("call", [
    lambda: normalize_hook("hook_resid_pre", INPUT_HOOKS, "input"),
    lambda: normalize_hook("mlp.hook_in", OUTPUT_HOOKS, "output"),
    lambda: read_input("mlp.hook_post", torch.zeros(2), mlp_in=None),
])
def test_unknown_hooks_raise_and_list_the_supported_ones(call):
    with pytest.raises(TranscoderError, match="supported"):
        call()


def test_missing_inputs_and_bad_layer_hooks_raise_clear_errors():
    model, _, _ = tiny("llama")
    with pytest.raises(TranscoderError, match="MLP's input"):
        read_input(MLP_IN, torch.zeros(3), mlp_in=None)
    with pytest.raises(TranscoderError, match="scale or eps"):
        read_input(LN2_NORMALIZED, torch.zeros(3), mlp_in=None)
    with pytest.raises(TranscoderError, match="output hook 'hook_mlp_in'"):
        LayerHooks(MLP_IN, "hook_mlp_in", model.layer_mods[0], model.spec)
    with pytest.raises(TranscoderError, match="input hook"):
        hooks_at(model, 0, BLOCK_OUT, BLOCK_OUT)
