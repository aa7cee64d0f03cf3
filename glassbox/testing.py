"""Tiny random models and transcoders, for tests and for trying Glassbox without downloads.

Every supported family gets a 2-layer model with a word-level tokenizer, random weights
(norm gains included) and large enough activations that attention is not uniform.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from glassbox.models.hooks import BLOCK_OUT, MLP_IN
from glassbox.models.loaded import LoadedModel
from glassbox.transcoders.base import LayerWeights, TranscoderSet
from glassbox.transcoders.io import save_transcoders
from glassbox.transcoders.lazy import DenseRows

FAMILIES = ("llama", "qwen2", "qwen3", "gemma2", "gemma3")

WORDS = (
    "Fact : Michael Jordan plays the sport of basketball football soccer tennis . The capital "
    "state containing Dallas is Austin Texas opposite small large big hot cold in French "
    "Chinese a cat sat on mat hat 36 + 59 = 95 how gratitude work and to be not you we I it"
).split()
SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>"]


def tiny_tokenizer():
    """A word-level fast tokenizer over WORDS (ids 0-3 are pad, eos, bos, unk)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(SPECIALS + list(dict.fromkeys(WORDS)))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>",
                                   pad_token="<pad>", unk_token="<unk>")


def tiny_config(family: str, vocab_size: int):
    """A 2-layer config with GQA, and each family's quirks switched on."""
    from transformers import Gemma2Config, Gemma3TextConfig, LlamaConfig, Qwen2Config, Qwen3Config

    common = dict(vocab_size=vocab_size, hidden_size=16, intermediate_size=32,
                  num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                  max_position_embeddings=64, rms_norm_eps=1e-6, initializer_range=0.3,
                  bos_token_id=2, eos_token_id=1, pad_token_id=0)
    if family == "llama":
        return LlamaConfig(**common, tie_word_embeddings=False)
    if family == "qwen2":
        return Qwen2Config(**common, tie_word_embeddings=False)
    if family == "qwen3":
        return Qwen3Config(**common, tie_word_embeddings=True)
    if family == "gemma2":
        return Gemma2Config(**common, query_pre_attn_scalar=8, attn_logit_softcapping=5.0,
                            final_logit_softcapping=3.0, sliding_window=3,
                            layer_types=["sliding_attention", "full_attention"])
    if family == "gemma3":
        return Gemma3TextConfig(**common, query_pre_attn_scalar=8, sliding_window=3,
                                layer_types=["sliding_attention", "full_attention"])
    raise ValueError(f"unknown family {family!r}; choose from {FAMILIES}")


def make_tiny_hf_model(family: str = "llama", *, seed: int = 0, dtype: torch.dtype = torch.float32):
    from transformers import AutoModelForCausalLM

    tok = tiny_tokenizer()
    torch.manual_seed(seed)
    # eager: the reference implementation on every device (CUDA's default kernels skip Gemma 2's
    # attention soft-cap)
    hf = AutoModelForCausalLM.from_config(tiny_config(family, len(tok)), attn_implementation="eager")
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in hf.named_parameters():
            if "norm" in name:  # random gains so that folding them in is tested
                p.copy_(torch.rand(p.shape, generator=gen) * 0.8 + (0.2 if "gemma" not in family else -0.4))
            elif p.dim() == 1:  # biases (qwen2)
                p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
    return hf.to(dtype).eval(), tok


def tiny_device() -> torch.device:
    """Where tiny models live: GLASSBOX_TEST_DEVICE (default cpu), so that the same exactness
    and training tests run on a GPU host with GLASSBOX_TEST_DEVICE=cuda."""
    return torch.device(os.environ.get("GLASSBOX_TEST_DEVICE", "cpu"))


def make_tiny_model(family: str = "llama", *, seed: int = 0,
                    dtype: torch.dtype = torch.float32) -> LoadedModel:
    hf, tok = make_tiny_hf_model(family, seed=seed, dtype=dtype)
    return LoadedModel(hf.to(tiny_device()), tok, name=f"tiny-{family}")


def make_tiny_model_dir(path: str | Path, arch: str = "llama", *, seed: int = 0) -> Path:
    """Save a tiny random model and its tokenizer as an HF folder (for CLI/server tests)."""
    path = Path(path)
    hf, tok = make_tiny_hf_model(arch, seed=seed)
    hf.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def make_random_transcoders(
    model: LoadedModel,
    *,
    kind: str = "plt",
    activation: str = "relu",
    k: int = 6,
    d_transcoder: int = 24,
    skip: bool = True,
    input_hook: str = MLP_IN,
    output_hook: str = BLOCK_OUT,
    seed: int = 0,
) -> TranscoderSet:
    """Random transcoders whose features fire on a good fraction of positions."""
    gen = torch.Generator().manual_seed(seed)
    L, d = model.n_layers, model.d_model
    dtype = model.dtype

    def rnd(*shape: int, scale: float) -> torch.Tensor:
        return (torch.randn(*shape, generator=gen) * scale).to(dtype)

    layers = []
    for layer in range(L):
        n_out = 1 if kind == "plt" else L - layer
        dec_shape = (d_transcoder, d) if kind == "plt" else (d_transcoder, n_out, d)
        layers.append(LayerWeights(
            W_enc=rnd(d_transcoder, d, scale=0.5),
            b_enc=rnd(d_transcoder, scale=0.2),
            W_dec=DenseRows(rnd(*dec_shape, scale=0.3)),
            b_dec=rnd(d, scale=0.1),
            threshold=(torch.rand(d_transcoder, generator=gen) * 0.3).to(dtype)
            if activation == "jumprelu" else None,
            skip=rnd(d, d, scale=0.1) if skip else None,
        ))
    tset = TranscoderSet(layers, kind=kind, activation=activation, k=k if activation == "topk" else None,
                         input_hook=input_hook, output_hook=output_hook,
                         name=f"random-{kind}-{activation}", model_name=model.name)
    return tset.to(device=model.device)


def make_random_transcoders_dir(path: str | Path, model_dir: str | Path, *, kind: str = "plt",
                                seed: int = 0, **kwargs) -> Path:
    """Random transcoders for the model saved in model_dir, written in circuit-tracer's layout."""
    from glassbox.models import load_model

    model = load_model(model_dir, device="cpu")
    tset = make_random_transcoders(model, kind=kind, seed=seed, **kwargs)
    tset.model_name = model.name
    return save_transcoders(tset, path)
