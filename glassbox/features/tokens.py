"""The token stream a build reads: rows of [BOS] + seq_len - 1 tokens of one document.

Tokenised once, up front, into `tokens.npy` (int32, (rows, seq_len)). The streaming pass reads
it in batches, a resumed build reads the same rows, and the store keeps it to show the text
around every example (a window is just a row and a position).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from glassbox.features.errors import FeatureBuildError

log = logging.getLogger(__name__)


def tokenize_corpus(corpus: str | Path, tokenizer: Any, *, n_tokens: int, seq_len: int,
                    split: str = "train", seed: int = 0) -> np.ndarray:
    """(rows, seq_len) int32: ceil(n_tokens / seq_len) rows, fewer if the corpus is shorter."""
    from glassbox.corpus import iter_texts, token_batches

    if n_tokens < 1:
        raise FeatureBuildError(f"--tokens must be >= 1, got {n_tokens}")
    want = math.ceil(n_tokens / seq_len)
    rows: list[np.ndarray] = []
    have = 0
    texts = iter_texts(corpus, split=split, seed=seed)
    for batch in token_batches(texts, tokenizer, seq_len, 64, drop_last=False, seed=seed):
        rows.append(batch.numpy().astype(np.int32)[: want - have])
        have += rows[-1].shape[0]
        if have >= want:
            break
    if have == 0:
        raise FeatureBuildError(
            f"corpus {str(corpus)!r} ({split} split) has no document of at least {seq_len - 1} tokens; "
            "use a larger corpus or a smaller --seq-len")
    if have < want:
        log.warning("corpus %s has only %d rows of %d tokens (%d tokens), fewer than the %d asked for",
                    corpus, have, seq_len, have * seq_len, n_tokens)
    return np.concatenate(rows, axis=0)


def save_tokens(path: Path, tokens: np.ndarray) -> None:
    """Write atomically, so a killed build never leaves half a token file behind."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        np.save(fh, tokens)
    tmp.replace(path)


def load_tokens(path: Path) -> np.ndarray:
    return np.load(path, mmap_mode="r")
