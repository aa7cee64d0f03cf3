"""Automatic labels a person can read, from the words around a feature's strongest activations.

Method "glassbox-auto-v2" (stored with every label, in its provenance):

1. Evidence: for every stored example (top contexts and quantile samples) the tokens around its
   maximum, weighted by the activation there, and the tokens the decoder promotes most.
2. Words, not tokens: the activating token is merged with the pieces of its word (a piece that
   starts with a letter or digit continues the piece before it when that one ends with one; a
   leading space, a line break or punctuation starts a new word), and so are the words before
   and after it. Scripts written without spaces (Chinese, Japanese, Thai) are not merged.
3. Patterns, each explaining a share of the activation mass: the same word (one to three
   words; those after the first, and phrases, must be seen twice), the same two-word phrase,
   the same piece inside different words, the same word before or after, a class (numbers,
   years, punctuation, line breaks, line starts, the first token after BOS, indentation,
   capitalised or all-caps words, pieces of longer words) and the text around it (code, a script such
   as Chinese, a language such as French). A pattern scores its share times how specific it
   is; the best one is the label, and a kind of text that covers most of the mass is added in
   brackets: `"def" (code)`.
4. Output side: the promoted tokens, grouped by word (" York", "York" -> york), follow an arrow
   only when the examples agree: the top promoted word is the word that follows the activation
   in at least a fifth of the mass (and the label does not name it already).
5. Confidence: the share of the mass the label's pattern explains, scaled down when fewer than
   three examples carry it. Below LOW_CONFIDENCE the label ends with "?" and its details say
   `"low_confidence": true`.

`auto_label` is pure (evidence and vocabulary in, text and details out) and deterministic:
ties are broken on the text.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

METHOD = "glassbox-auto-v2"
BEFORE, AFTER = 12, 6  # tokens read around each example's maximum
WIDTH = BEFORE + 1 + AFTER
LOW_CONFIDENCE = 0.5  # below (less than half the mass explained): the label ends with "?"
MIN_SUPPORT = 3  # examples a pattern needs for full confidence
PART_CHARS = 24  # longest word shown
NEXT_SHARE = 0.2  # share of the mass the promoted word must follow the activation in
CONTEXT_SHARE = 0.6  # share of the mass a kind of text needs to be named in brackets
CODE_TOKENS = 3  # code-like tokens in a window that make it code
WINDOW_CACHE = 200_000  # windows whose words are kept for the next feature (~100 MB at most)

# how specific each pattern is (a pattern's score is share * this)
SPECIFIC = {"phrase": 1.05, "word": 1.0, "words2": 0.92, "words3": 0.84, "piece": 0.9, "after": 0.8,
            "line_start": 0.75, "before": 0.7, "class": 0.7, "context": 0.65}

NO_SPACE_SCRIPTS = frozenset({"han", "kana", "thai"})
SCRIPT_NAMES = {"han": "Chinese text", "kana": "Japanese text", "hangul": "Korean text",
                "cyrillic": "Cyrillic text", "greek": "Greek text", "arabic": "Arabic text",
                "hebrew": "Hebrew text", "devanagari": "Devanagari text", "thai": "Thai text"}
_SCRIPT_PREFIXES = (("CJK", "han"), ("HIRAGANA", "kana"), ("KATAKANA", "kana"), ("HANGUL", "hangul"),
                    ("CYRILLIC", "cyrillic"), ("GREEK", "greek"), ("ARABIC", "arabic"),
                    ("HEBREW", "hebrew"), ("DEVANAGARI", "devanagari"), ("THAI", "thai"),
                    ("LATIN", "latin"))
# Function words that tell one language from the others (shared ones such as "de", "la", and
# English words such as "die", "son", "per", "do", left out).
STOPWORDS = {
    "en": "the and of to is in that it for with was on are be this by at from which an were have",
    "fr": "le les des est une du et pas qui dans pour sur avec ce cette sont au aux nous vous il elle ils "
          "ne été être où très",
    "de": "der das und ist nicht ein eine mit auf den dem zu von sich auch für wird werden sind bei "
          "aus nach ich wir",
    "es": "el los las y por con una del se su sus como más pero está lo al muy también",
    "it": "di che è sono della delle degli nel nella gli anche ma questo questa più",
    "pt": "não os da dos das em ao pelo pela você são",
}
LANGUAGE_NAMES = {"fr": "French text", "de": "German text", "es": "Spanish text", "it": "Italian text",
                  "pt": "Portuguese text"}
_LANG_OF = {word: lang for lang, words in STOPWORDS.items() for word in words.split()}
CODE_WORDS = frozenset("def return import elif lambda self none null nullptr void const let var function "
                       "public private static struct printf println #include std async await".split())
_CODE_MARKS = ("{", "}", ";", "=", "::", "->", "=>", "__", "</", "/>", "&&", "||", "()", "):")
PUNCT_NAMES = {".": "full stops", ",": "commas", ":": "colons", ";": "semicolons", "?": "question marks",
               "!": "exclamation marks", "(": "opening brackets", ")": "closing brackets", '"': "quotes",
               "'": "apostrophes", "-": "hyphens", "/": "slashes", "，": "commas", "。": "full stops"}
_NUMBER = re.compile(r"^\d[\d,.]*$")
_YEAR = re.compile(r"^(1[5-9]|20)\d\d$")
NUMBER_CLASSES = ("years", "digits in numbers", "numbers")
PIECE_CLASSES = ("word beginnings", "middles of words", "word endings")  # of words split into tokens
SENTENCE_ENDS = frozenset({".", "!", "?", "。"})


@dataclass
class LabelEvidence:
    windows: np.ndarray  # (n, WIDTH) token ids, the maximum at column BEFORE; -1 outside the row
    acts: np.ndarray  # (n,) activation at each maximum: how much the example weighs
    top_logit_ids: np.ndarray  # (k,) promoted tokens, best first (-1: none)
    n_fires: int


class Tok(NamedTuple):
    """What the labeller needs to know about one token id."""

    text: str
    key: str  # stripped, lower case
    joins_left: bool  # may continue the word of the token before it
    joins_right: bool  # the token after it may continue its word
    kind: str  # word | number | punct | space | newline | other
    script: str | None  # of its first letter
    lang: str | None  # the language this function word belongs to
    code: bool  # looks like code


def _word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_" or unicodedata.category(ch).startswith("M")


def _script(core: str) -> str | None:
    for ch in core:
        if ch.isalpha():
            name = unicodedata.name(ch, "")
            return next((script for prefix, script in _SCRIPT_PREFIXES if name.startswith(prefix)), "other")
    return None


def _kind(text: str, core: str) -> str:
    if not text:
        return "other"
    if not core:
        return "newline" if "\n" in text or "\r" in text else "space"
    if core.isdigit():
        return "number"
    if all(unicodedata.category(ch)[0] in "PS" for ch in core):
        return "punct"
    return "word" if any(ch.isalpha() for ch in core) else "other"


class Vocab:
    """Decoded token strings and, per id, what the labeller reads off them (computed once).

    A vocabulary whose strings carry no leading spaces (some tokenizers strip them when a token
    is decoded on its own) gives no word boundaries, so its tokens are never merged.
    """

    def __init__(self, strings: Sequence[str], corpus_counts: np.ndarray | None = None) -> None:
        self.strings = strings
        self.counts = corpus_counts
        sample = strings[:: max(1, len(strings) // 5000)]
        self.spaced = sum(1 for s in sample if s[:1].isspace()) >= 0.02 * max(1, len(sample))
        self._cache: dict[int, Tok] = {}
        self._none = Tok("", "", False, False, "other", None, None, False)
        self.windows: dict[tuple, tuple] = {}  # window -> the words around its maximum

    def __len__(self) -> int:
        return len(self.strings)

    def tok(self, i: int) -> Tok:
        found = self._cache.get(i)
        if found is None:
            found = self._cache[i] = self._make(i) if 0 <= i < len(self.strings) else self._none
        return found

    def in_corpus(self, i: int) -> bool:
        return self.counts is None or (i < len(self.counts) and self.counts[i] > 0)

    def _make(self, i: int) -> Tok:
        text = self.strings[i]
        core = text.strip()
        key = core.lower()
        kind = _kind(text, core)
        script = _script(core)
        merges = self.spaced and script not in NO_SPACE_SCRIPTS
        code = key in CODE_WORDS or any(mark in core for mark in _CODE_MARKS) or (
            kind == "space" and len(text) >= 2 and text.startswith("  "))
        return Tok(text=text, key=key,
                   joins_left=merges and bool(text) and _word_char(text[0]),
                   joins_right=merges and bool(text) and _word_char(text[-1]),
                   kind=kind, script=script, lang=_LANG_OF.get(key) if kind == "word" else None, code=code)


@dataclass(slots=True)
class _Example:
    weight: float
    word: str  # the whole word holding the activating token, as written
    key: str  # ... lower case
    token: str  # the activating token, stripped
    token_key: str
    kind: str  # of the word: word | number | punct | space | newline | other
    piece: str | None  # start | middle | end when the token is part of a longer word
    prev: str | None  # the word before (line breaks count as words: "\n")
    next: str | None  # the word after
    line_start: bool
    text_start: bool  # the first token after BOS
    context: str | None  # code, a script or a language (see SCRIPT_NAMES, LANGUAGE_NAMES)


class _Reader:
    """Words around the maximum of one window."""

    def __init__(self, vocab: Vocab, ids: list[int]) -> None:
        self.v, self.ids = vocab, ids

    def toks(self, a: int, b: int) -> list[Tok]:
        return [self.v.tok(i) for i in self.ids[a:b]]

    def span(self, c: int) -> tuple[int, int]:
        """[a, b) of the word holding column c."""
        ids, tok = self.ids, self.v.tok
        a, b = c, c + 1
        while a > 0 and ids[a - 1] >= 0 and tok(ids[a]).joins_left and tok(ids[a - 1]).joins_right:
            a -= 1
        while b < len(ids) and ids[b] >= 0 and tok(ids[b]).joins_left and tok(ids[b - 1]).joins_right:
            b += 1
        return a, b

    def text(self, a: int, b: int) -> str:
        return "".join(t.text for t in self.toks(a, b)).strip()

    def neighbour(self, start: int, step: int) -> tuple[str | None, int]:
        """The word next to column `start` in direction `step`, skipping spaces; (None, -1) at an edge."""
        j = start
        while 0 <= j < len(self.ids) and self.ids[j] >= 0 and self.v.tok(self.ids[j]).kind == "space":
            j += step
        if not 0 <= j < len(self.ids) or self.ids[j] < 0:
            return None, -1
        t = self.v.tok(self.ids[j])
        if t.kind == "newline":
            return "\n", j
        a, b = self.span(j)
        return self.text(a, b), j

    def context(self, center: Tok) -> str | None:
        toks = [self.v.tok(i) for i in self.ids if i >= 0]
        if sum(t.code for t in toks) >= CODE_TOKENS:
            return "code"
        scripts: dict[str, int] = {}
        for t in toks:
            if t.script is not None:
                scripts[t.script] = scripts.get(t.script, 0) + 1
        if center.script is not None:
            scripts[center.script] = scripts.get(center.script, 0) + 2
        if scripts.get("kana", 0) >= 1 and scripts.get("han", 0) + scripts["kana"] >= 3:
            return "kana"
        best = max(sorted(scripts), key=lambda s: scripts[s], default=None)
        if best is not None and best not in ("latin", "other") and scripts[best] >= 3:
            return best
        langs: dict[str, int] = {}
        for t in toks:
            if t.lang is not None:
                langs[t.lang] = langs.get(t.lang, 0) + 1
        lang = max(sorted(langs), key=lambda g: langs[g], default=None)
        if lang not in (None, "en") and langs[lang] >= 2 and langs[lang] > langs.get("en", 0):
            return lang
        return None


def _words_around(ids: list[int], vocab: Vocab) -> tuple:
    """The fields of an _Example after its weight, for one window."""
    r = _Reader(vocab, ids)
    center = vocab.tok(ids[BEFORE])
    a, b = r.span(BEFORE)
    word = r.text(a, b)
    kind = center.kind
    if b - a > 1:
        kind = "number" if _NUMBER.match(word) else "word" if any(ch.isalpha() for ch in word) else kind
    piece = None if b - a == 1 else "start" if a == BEFORE else "end" if b == BEFORE + 1 else "middle"
    prev, _ = r.neighbour(a - 1, -1)
    nxt, _ = r.neighbour(b, 1)
    line_start = kind not in ("newline", "space") and (prev == "\n" or center.text[:1] == "\n")
    if kind in ("newline", "space"):
        word = center.text
    word = word[:PART_CHARS]
    return (word, word.lower(), center.text.strip(), center.key, kind, piece, prev, nxt, line_start,
            ids[BEFORE - 1] < 0, r.context(center))


def _read(ev: LabelEvidence, vocab: Vocab) -> list[_Example]:
    """The examples that fired, with the words around them (a window seen before is not read again:
    the same position is a top example of many features)."""
    out, seen = [], vocab.windows
    if len(seen) > WINDOW_CACHE:
        seen.clear()
    for ids, act in zip(ev.windows.tolist(), ev.acts.tolist(), strict=True):
        if ids[BEFORE] < 0 or not act > 0:
            continue
        key = tuple(ids)
        fields = seen.get(key)
        if fields is None:
            fields = seen[key] = _words_around(ids, vocab)
        out.append(_Example(float(act), *fields))
    return out


@dataclass
class _Pattern:
    kind: str  # a SPECIFIC key
    text: str
    share: float  # of the activation mass
    support: int  # examples it explains

    @property
    def score(self) -> float:
        return self.share * SPECIFIC[self.kind]


def _quoted(text: str) -> str:
    shown = text.replace("\n", "↵").replace("\t", "→").replace('"', "'")
    return '"' + (shown if shown.strip() else shown.replace(" ", "␣")) + '"'


def _masses(examples: list[_Example], key, total: float) -> list[tuple[float, str, list[_Example]]]:
    """[(share, group key, members)] of the examples grouped by key(ex) (None: left out), largest first."""
    groups: dict[str, tuple[list[float], list[_Example]]] = {}
    for ex in examples:
        k = key(ex)
        if k is not None:
            group = groups.get(k)
            if group is None:
                groups[k] = ([ex.weight], [ex])
            else:
                group[0][0] += ex.weight
                group[1].append(ex)
    ranked = [(mass[0] / total, k, members) for k, (mass, members) in groups.items()]
    ranked.sort(key=lambda g: (-g[0], g[1]))
    return ranked


_Groups = list[tuple[float, str, list[_Example]]]


def _not_blank(groups: _Groups) -> _Groups:
    """Groups of words that are not spaces or line breaks."""
    return [g for g in groups if g[1] != "\n" and g[2][0].kind not in ("space", "newline")]


def _shown(members: Iterable[_Example], attr: str = "word") -> str:
    """The most weighty way a group's members write it."""
    forms: dict[str, float] = {}
    for ex in members:
        forms[getattr(ex, attr)] = forms.get(getattr(ex, attr), 0.0) + ex.weight
    return min(forms, key=lambda f: (-forms[f], f))


def _word_patterns(examples: list[_Example], all_words: _Groups, total: float) -> list[_Pattern]:
    words = _not_blank(all_words)
    out = []
    for n in (1, 2, 3):
        chosen = words[:n]
        if len(chosen) < n or (n > 1 and (chosen[-1][0] < 0.1 or len(chosen[-1][2]) < 2)):
            break
        names = [_shown(m) for _, _, m in chosen]
        text = " / ".join(_quoted(w) for w in names)
        if n == 1 and chosen[0][1] in PUNCT_NAMES:
            text += f" ({PUNCT_NAMES[chosen[0][1]]})"
        out.append(_Pattern("word" if n == 1 else f"words{n}", text, sum(s for s, _, _ in chosen),
                            sum(len(m) for _, _, m in chosen)))
    phrase = _masses(examples, lambda e: f"{e.prev}\x00{e.key}" if e.prev not in (None, "\n")
                     and e.kind not in ("space", "newline") else None, total)
    if phrase and len(phrase[0][2]) >= 2:
        share, _, members = phrase[0]
        first, second = _shown(members, "prev"), _shown(members)
        glue = "" if members[0].kind == "punct" or members[0].context in NO_SPACE_SCRIPTS else " "
        out.append(_Pattern("phrase", _quoted(first + glue + second), share, len(members)))
    # a piece shared by different words ("ing" in making / running); digits are left to the classes
    pieces = _masses(examples, lambda e: e.token_key if e.piece and e.kind != "number" else None, total)
    if pieces:
        share, key, members = pieces[0]
        inside = _masses(members, lambda e: e.key, 1.0)
        if len(inside) >= 2:
            shown = " / ".join(_quoted(_shown(m)) for _, _, m in inside[:2])
            piece = _quoted(_shown(members, "token"))
            out.append(_Pattern("piece", f"{piece} in {shown}", share, len(members)))
    return out


def _class_of(ex: _Example) -> str | None:
    if ex.kind == "number":
        return "years" if _YEAR.match(ex.word) else "digits in numbers" if ex.piece else "numbers"
    if ex.kind == "punct":
        return "punctuation"
    if ex.kind == "newline":
        return "line breaks"
    if ex.kind == "space":
        return "spaces / indentation"
    if ex.piece in ("middle", "end"):  # inside a word, its capitals do not matter
        return "word endings" if ex.piece == "end" else "middles of words"
    letters = [ch for ch in ex.word if ch.isalpha()]
    if len(letters) >= 2 and all(ch.isupper() for ch in letters):
        return "all-caps words"
    if letters and ex.word[:1].isupper():
        return "capitalised words"
    return "word beginnings" if ex.piece == "start" else None


def _class_patterns(examples: list[_Example], prevs: _Groups, nexts: _Groups, total: float) -> list[_Pattern]:
    out = []
    classes = _masses(examples, _class_of, total)
    for family, general in ((NUMBER_CLASSES, "numbers"), (PIECE_CLASSES, "pieces of longer words")):
        members = [(s, n, m) for s, n, m in classes if n in family]
        if members:  # years are numbers too, word endings pieces: one pattern, named by its majority
            share = sum(s for s, _, _ in members)
            name = members[0][1] if members[0][0] >= 0.7 * share else general
            out.append(_Pattern("class", name, share, sum(len(m) for _, _, m in members)))
    others = [(s, n, m) for s, n, m in classes if n not in NUMBER_CLASSES + PIECE_CLASSES]
    if others:
        share, name, members = others[0]
        out.append(_Pattern("class", name, share, len(members)))
    for name, starts in (("first word of a line", [e for e in examples if e.line_start]),
                         ("first token of the text", [e for e in examples if e.text_start])):
        if starts:
            out.append(_Pattern("line_start", name, sum(e.weight for e in starts) / total, len(starts)))
    after = _not_blank(prevs)
    if after:
        share, key, members = after[0]
        numbers = sum(e.weight for e in members if e.kind == "number") / max(1e-12, share * total)
        what = "number" if numbers >= 0.7 else "word"
        text = f"first {what} of a sentence" if key in SENTENCE_ENDS else \
            f"{what} after {_quoted(_shown(members, 'prev'))}"
        out.append(_Pattern("after", text, share, len(members)))
    before = _not_blank(nexts)
    if before:
        share, key, members = before[0]
        text = "last word of a sentence" if key in SENTENCE_ENDS else \
            f"word before {_quoted(_shown(members, 'next'))}"
        out.append(_Pattern("before", text, share, len(members)))
    return out


def _context_pattern(examples: list[_Example], total: float) -> _Pattern | None:
    contexts = _masses(examples, lambda e: e.context, total)
    if not contexts:
        return None
    share, name, members = contexts[0]
    text = "code" if name == "code" else SCRIPT_NAMES.get(name) or LANGUAGE_NAMES.get(name, name)
    return _Pattern("context", text, share, len(members))


def _outputs(ev: LabelEvidence, vocab: Vocab) -> list[str]:
    """Promoted words, best first: tokens that occur in the corpus, grouped by stripped lower case."""
    scores: dict[str, float] = {}
    shown: dict[str, str] = {}
    for rank, i in enumerate(ev.top_logit_ids.tolist()):
        t = vocab.tok(int(i))
        if i < 0 or t.kind in ("space", "newline", "other") or not vocab.in_corpus(int(i)):
            continue
        scores[t.key] = scores.get(t.key, 0.0) + 1.0 / (rank + 1)
        shown.setdefault(t.key, t.text.strip()[:PART_CHARS])
    return [shown[k] for k in sorted(scores, key=lambda k: (-scores[k], k))]


def auto_label(ev: LabelEvidence, vocab: Vocab, *, n_tokens: int) -> tuple[str, dict]:
    """(label text, details: pattern, confidence, low_confidence and a summary of the evidence)."""
    if ev.n_fires == 0:
        return f"dead (never fired in {n_tokens:,} tokens)", {
            "pattern": "dead", "confidence": 1.0, "low_confidence": False}
    examples = _read(ev, vocab)
    total = sum(e.weight for e in examples)
    if not examples or total <= 0:
        return "no readable examples?", {"pattern": "none", "confidence": 0.0, "low_confidence": True}
    words = _masses(examples, lambda e: e.key, total)
    prevs = _masses(examples, lambda e: e.prev.lower() if e.prev else None, total)
    nexts = _masses(examples, lambda e: e.next.lower() if e.next else None, total)
    patterns = _word_patterns(examples, words, total) + _class_patterns(examples, prevs, nexts, total)
    context = _context_pattern(examples, total)
    best = max(patterns + ([context] if context else []), key=lambda p: (p.score, p.text))
    text = best.text
    if best is not context and context is not None and context.share >= CONTEXT_SHARE:
        text += f" ({context.text})"
    outputs = _outputs(ev, vocab)
    agrees = False
    if outputs and best.kind != "before":
        out_key = outputs[0].lower()
        follows = sum(e.weight for e in examples if e.next is not None and e.next.lower() == out_key) / total
        agrees = follows >= NEXT_SHARE and _quoted(outputs[0]).lower() not in text.lower()
        if agrees:
            text += f" → {_quoted(outputs[0])}"
    confidence = round(min(1.0, best.share) * min(1.0, best.support / MIN_SUPPORT), 3)
    low = confidence < LOW_CONFIDENCE
    if low:
        text += "?"

    def top(groups: _Groups, attr: str, n: int) -> list[list]:
        return [[_shown(m, attr), round(s, 3)] for s, _, m in groups[:n]]

    details = {
        "pattern": best.kind, "confidence": confidence, "low_confidence": low,
        "words": top(words, "word", 5), "preceding": top(prevs, "prev", 3),
        "following": top(nexts, "next", 3),
        "context": [context.text, round(context.share, 3)] if context else None,
        "output": outputs[:3], "output_agrees": agrees,
    }
    return text, details
