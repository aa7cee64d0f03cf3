"""The layer-by-layer forward equals the Hugging Face model; loading gives clear errors."""

from __future__ import annotations

import pytest
import torch

from glassbox.errors import ModelNotAvailableError, UnsupportedArchitectureError
from glassbox.models import load_model, supported_architectures
from glassbox.models.arch import arch_spec_from_config
from glassbox.testing import FAMILIES, make_tiny_model, make_tiny_model_dir

PROMPT = "Fact : Michael Jordan plays the sport of basketball . The capital of Texas is Austin"


@pytest.mark.parametrize("family", FAMILIES)
def test_forward_matches_hugging_face(family):
    model = make_tiny_model(family, dtype=torch.float64)
    ids = model.tokenize(PROMPT)
    assert len(ids) > 3 * (model.spec.sliding_window or 0)
    ours = model.forward(ids).logits
    ref = model.hf_model(torch.tensor([ids])).logits
    # HF computes norms (and Gemma-2's eager softmax) in float32 even for a float64 model
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    assert ref.std() > 0.1  # not a degenerate model


@pytest.mark.parametrize("family", ["gemma2", "gemma3"])
def test_sliding_window_layers_really_mask(family):
    model = make_tiny_model(family)
    out = model.forward(model.tokenize(PROMPT))
    window = model.spec.sliding_window
    sliding = out.layers[0].pattern[0]  # layer 0 is a sliding layer in the tiny configs
    full = out.layers[1].pattern[0]
    T = sliding.shape[-1]
    assert sliding[:, T - 1, : T - window].abs().max() == 0
    assert full[:, T - 1, : T - window].abs().max() > 0


def test_gemma_embeddings_are_scaled():
    model = make_tiny_model("gemma3")
    ids = model.tokenize("Fact")
    out = model.forward(ids)
    raw = model.decoder.embed_tokens.weight[ids]
    torch.testing.assert_close(out.embeddings[0], raw * model.d_model**0.5)


def test_last_position_logits_only():
    model = make_tiny_model("llama")
    ids = model.tokenize(PROMPT)
    full = model.forward(ids).logits
    last = model.forward(ids, logits_at="last").logits
    torch.testing.assert_close(last[0, 0], full[0, -1])


def test_unsupported_architecture_lists_supported_ones():
    from transformers import GPT2Config

    with pytest.raises(UnsupportedArchitectureError) as err:
        arch_spec_from_config(GPT2Config())
    assert "gpt2" in str(err.value)
    for name in ("llama", "gemma2", "gemma3_text", "qwen3"):
        assert name in supported_architectures() and name in str(err.value)


def test_load_model_from_folder(tmp_path):
    folder = make_tiny_model_dir(tmp_path / "tiny", "qwen3")
    model = load_model(folder, device="cpu")
    assert model.spec.family == "qwen3" and model.n_layers == 2
    assert model.name == "tiny"
    top = model.top_next_tokens("Fact : Michael", k=3)
    assert len(top) == 3 and all(0 <= p <= 1 for _, p in top)
    assert top[0][1] >= top[1][1] >= top[2][1]


def test_load_model_missing_folder_gives_clear_error(tmp_path):
    with pytest.raises(ModelNotAvailableError):
        load_model(tmp_path / "nope" / "model")


def test_load_model_unsupported_folder(tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=8, n_head=2, vocab_size=50)).save_pretrained(tmp_path)
    with pytest.raises(UnsupportedArchitectureError, match="supported"):
        load_model(tmp_path)


def test_dtype_names_are_checked():
    from glassbox.errors import GlassboxError
    from glassbox.models.loaded import parse_dtype

    assert parse_dtype("bf16") == torch.bfloat16
    with pytest.raises(GlassboxError, match="unknown dtype"):
        parse_dtype("int3")
