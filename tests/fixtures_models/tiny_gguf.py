"""Write a tiny random Llama GGUF (2 layers, d=64, byte-level vocabulary) for conversion tests.

The file has what transformers needs to rebuild both the model and a byte-level BPE tokenizer,
so the whole pull -> convert -> reload path runs in a second without a download.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

N_LAYERS = 2
D_MODEL = 64
D_MLP = 128
N_HEADS = 4
N_KV_HEADS = 2
MERGES = ["h e", "Ġ t"]
SPECIAL = ["<|endoftext|>", "<|bos|>"]


def _byte_tokens() -> list[str]:
    """The 256 GPT-2 byte-level symbols, so every text can be tokenized without merges."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    return list(bytes_to_unicode().values())


def write_tiny_llama_gguf(path: Path, *, seed: int = 0, quantize: bool = True) -> Path:
    """Write the GGUF to `path`; weight matrices are Q8_0 when `quantize` (as real demo files are)."""
    import gguf

    rng = np.random.default_rng(seed)
    merged = [m.replace(" ", "") for m in MERGES]
    tokens = _byte_tokens() + merged + SPECIAL
    vocab = len(tokens)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny-llama-test")
    writer.add_context_length(128)
    writer.add_embedding_length(D_MODEL)
    writer.add_block_count(N_LAYERS)
    writer.add_feed_forward_length(D_MLP)
    writer.add_head_count(N_HEADS)
    writer.add_head_count_kv(N_KV_HEADS)
    writer.add_rope_dimension_count(D_MODEL // N_HEADS)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(vocab)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(tokens)
    writer.add_token_types([1] * (256 + len(merged)) + [3] * len(SPECIAL))
    writer.add_token_merges(MERGES)
    writer.add_bos_token_id(vocab - 1)
    writer.add_eos_token_id(vocab - 2)

    def matrix(name: str, rows: int, cols: int) -> None:
        data = (rng.standard_normal((rows, cols)) * 0.05).astype(np.float32)
        if quantize:
            qtype = gguf.GGMLQuantizationType.Q8_0
            writer.add_tensor(name, gguf.quants.quantize(data, qtype), raw_dtype=qtype)
        else:
            writer.add_tensor(name, data)

    def vector(name: str, n: int) -> None:
        writer.add_tensor(name, (1.0 + 0.1 * rng.standard_normal(n)).astype(np.float32))

    kv_dim = D_MODEL // N_HEADS * N_KV_HEADS
    matrix("token_embd.weight", vocab, D_MODEL)
    for i in range(N_LAYERS):
        vector(f"blk.{i}.attn_norm.weight", D_MODEL)
        matrix(f"blk.{i}.attn_q.weight", D_MODEL, D_MODEL)
        matrix(f"blk.{i}.attn_k.weight", kv_dim, D_MODEL)
        matrix(f"blk.{i}.attn_v.weight", kv_dim, D_MODEL)
        matrix(f"blk.{i}.attn_output.weight", D_MODEL, D_MODEL)
        vector(f"blk.{i}.ffn_norm.weight", D_MODEL)
        matrix(f"blk.{i}.ffn_gate.weight", D_MLP, D_MODEL)
        matrix(f"blk.{i}.ffn_up.weight", D_MLP, D_MODEL)
        matrix(f"blk.{i}.ffn_down.weight", D_MODEL, D_MLP)
    vector("output_norm.weight", D_MODEL)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
