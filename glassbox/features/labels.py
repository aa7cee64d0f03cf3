"""Automatic short labels, read off a feature's evidence, so a fresh graph is readable.

Method "glassbox-auto-v1" (stored with every label as its provenance):
1. Evidence: the token at the maximum of every stored example (top contexts and quantile
   samples) and the token just before it.
2. Tokens are grouped by their stripped, lower-cased text; a group scores
   count_in_examples * log((N + 1) / (count_in_corpus + 1)) over the build's N tokens, so a
   feature that fires on " basketball" beats one that fires on "the" everywhere.
3. The label names the best one or two groups; when no token covers a quarter of the examples
   but one preceding token covers 40%, it says `after "X"` instead.
4. The token its decoder promotes most follows an arrow: the highest of its top demeaned
   logits that is not blank and occurs in the build corpus (a large multilingual vocabulary
   otherwise often puts a rare foreign sub-word first); no arrow if none qualifies.
   Example: "basketball / sport" -> " basketball".
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

METHOD = "glassbox-auto-v1"
PART_CHARS = 24
SECOND_SCORE = 0.5  # a second token is named when it scores at least this share of the best
DIVERSE_SHARE = 0.25  # below this share for the best token, look at the preceding token
PREV_SHARE = 0.4


@dataclass
class LabelEvidence:
    act_ids: np.ndarray  # (n,) token id at each example's maximum
    prev_ids: np.ndarray  # (n,) the token before it, -1 at the start of a row
    top_logit_ids: np.ndarray  # (n,) best first
    n_fires: int


def readable(token: str) -> str:
    """A token as a person reads it: stripped, whitespace shown as escapes, capped in length."""
    text = token.strip() or token.encode("unicode_escape").decode("ascii").replace(" ", "␣")
    return text[:PART_CHARS] if text else "∅"


def _quoted(text: str) -> str:
    return '"' + text.replace('"', "'") + '"'


def _groups(ids: np.ndarray, vocab: Sequence[str]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for i in ids.tolist():
        if 0 <= i < len(vocab):
            groups.setdefault(readable(vocab[i]).lower(), []).append(i)
    return groups


def _scored(ids: np.ndarray, vocab: Sequence[str], corpus_counts: np.ndarray, n_corpus: int) -> list[tuple]:
    """[(score, share, shown_text, key)] best first."""
    groups = _groups(ids, vocab)
    total = max(1, len(ids))
    scored = []
    for key, members in groups.items():
        in_corpus = int(sum(corpus_counts[i] for i in set(members) if i < len(corpus_counts)))
        idf = math.log((n_corpus + 1) / (in_corpus + 1)) + 1e-3
        shown = Counter(readable(vocab[i]) for i in members).most_common(1)[0][0]
        scored.append((len(members) * idf, len(members) / total, shown, key))
    scored.sort(key=lambda s: (-s[0], s[3]))
    return scored


def _readable_logit(ids: np.ndarray, vocab: Sequence[str], corpus_counts: np.ndarray) -> str | None:
    for i in ids.tolist():
        if 0 <= i < len(vocab) and i < len(corpus_counts) and corpus_counts[i] > 0 and vocab[i].strip():
            return vocab[i]
    return None


def auto_label(ev: LabelEvidence, *, vocab: Sequence[str], corpus_counts: np.ndarray,
               n_corpus: int) -> tuple[str, dict]:
    """(label text, evidence summary for the provenance)."""
    if ev.n_fires == 0 or len(ev.act_ids) == 0:
        empty: dict = {"activating": [], "preceding": [], "top_logits": []}
        return f"dead (never fired in {n_corpus:,} tokens)", empty
    acts = _scored(ev.act_ids, vocab, corpus_counts, n_corpus)
    prev = _scored(ev.prev_ids[ev.prev_ids >= 0], vocab, corpus_counts, n_corpus)
    if acts[0][1] < DIVERSE_SHARE and prev and prev[0][1] >= PREV_SHARE:
        head = f"after {_quoted(prev[0][2])}"
    else:
        names = [acts[0][2]] + [s[2] for s in acts[1:2] if s[0] >= SECOND_SCORE * acts[0][0]]
        head = _quoted(" / ".join(names))
    logit = _readable_logit(ev.top_logit_ids, vocab, corpus_counts)
    shown = None if logit is None else logit[:PART_CHARS].replace("\n", "\\n")
    text = head if shown is None else f"{head} -> {_quoted(shown)}"
    evidence = {
        "activating": [[s[2], round(s[1], 3)] for s in acts[:5]],
        "preceding": [[s[2], round(s[1], 3)] for s in prev[:3]],
        "top_logits": [vocab[i] for i in ev.top_logit_ids[:3].tolist() if 0 <= i < len(vocab)],
    }
    return text, evidence
