"""Token batches for training and evaluation, in an order fixed by the seed.

Batch number s of a run is always the same tokens, so a resumed run replays the stream up to
its checkpoint (tokenising is cheap next to the model forward) and continues exactly where the
killed run stopped. When the corpus runs out, the stream starts over with the next epoch's seed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import torch

from glassbox.corpus import iter_texts, token_batches
from glassbox.errors import GlassboxError

log = logging.getLogger(__name__)

SHUFFLE_ROWS = 1024  # windows of different documents mixed in a batch


def train_batches(corpus: str, tokenizer: Any, *, seq_len: int, batch_size: int, seed: int,
                  start: int = 0) -> Iterator[torch.Tensor]:
    """Endless (batch_size, seq_len) batches of the train split; the first `start` are skipped."""
    epoch, produced = 0, 0
    while True:
        texts = iter_texts(corpus, split="train", seed=seed + 1000 * epoch)
        batches = token_batches(texts, tokenizer, seq_len, batch_size, shuffle_buffer=SHUFFLE_ROWS,
                                seed=seed + 1000 * epoch)
        got_any = False
        for batch in batches:
            got_any = True
            if produced >= start:
                yield batch
            produced += 1
        if not got_any:
            raise GlassboxError(f"corpus {corpus!r} has no training text long enough for {seq_len}-token "
                                f"windows in batches of {batch_size}")
        epoch += 1
        log.info("corpus %s exhausted after %d batches; starting epoch %d", corpus, produced, epoch)


def eval_batches(corpus: str, tokenizer: Any, *, seq_len: int, batch_size: int, n_tokens: int,
                 seed: int = 12345, split: str = "test") -> list[torch.Tensor]:
    """Held-out batches (the test split) with about n_tokens tokens in all, BOS excluded."""
    texts = iter_texts(corpus, split=split, seed=seed)
    out: list[torch.Tensor] = []
    total = 0
    for batch in token_batches(texts, tokenizer, seq_len, batch_size, shuffle_buffer=SHUFFLE_ROWS,
                               seed=seed, drop_last=False):
        out.append(batch)
        total += batch.shape[0] * (seq_len - 1)
        if total >= n_tokens:
            break
    if not out:
        raise GlassboxError(f"corpus {corpus!r} has no held-out (test split) text for evaluation; "
                            "give a larger corpus or another one for evaluation")
    return out
