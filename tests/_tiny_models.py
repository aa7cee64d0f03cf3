"""A second tiny model whose tokenizer differs from glassbox.testing's: for comparing one prompt
traced on two models (token positions that do not line up one to one).

glassbox.testing's tiny models all share one word-level tokenizer (one token per word). This
one cuts every word into pieces of at most three characters ("Texas" -> "Tex", "as"), the way a
subword tokenizer splits rare words, so its positions pair with the word-level ones one to many.
Used by tests/server (compare page) and tests/browser (compare page in Chromium).
"""

from __future__ import annotations

from pathlib import Path

CHUNK = 3


def chunked_tokenizer():
    """Word pieces of at most CHUNK characters over glassbox.testing's words (ids 0-3: pad,
    eos, bos, unk, as in the word-level tokenizer)."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from glassbox.testing import SPECIALS, WORDS

    pieces = [w[k : k + CHUNK] for w in WORDS for k in range(0, len(w), CHUNK)]
    vocab = {tok: i for i, tok in enumerate(SPECIALS + list(dict.fromkeys(pieces)))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.WhitespaceSplit(),
        pre_tokenizers.Split(Regex(f".{{1,{CHUNK}}}"), behavior="isolated"),
    ])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>",
                                   pad_token="<pad>", unk_token="<unk>")


def make_chunked_model_dir(path: str | Path, family: str = "gemma3", *, seed: int = 1) -> Path:
    """A tiny random model of `family` with the chunked tokenizer, saved as an HF folder.

    Not qwen2: transformers maps its model type to Qwen2Tokenizer, which rebuilds a byte-level
    BPE and drops this tokenizer's pre-tokenizer on loading.
    """
    from glassbox.testing import make_tiny_hf_model

    path = Path(path)
    tok = chunked_tokenizer()
    hf, _ = make_tiny_hf_model(family, seed=seed)
    hf.resize_token_embeddings(len(tok), mean_resizing=False)
    hf.save_pretrained(path)
    tok.save_pretrained(path)
    return path
