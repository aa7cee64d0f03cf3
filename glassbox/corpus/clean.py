"""Text cleaning for the corpus: whitespace and layout noise, reST markup, GCIDE notation.

Each function takes and returns plain `str` and does one job, so sources combine only what
they need. Paragraphs are blocks separated by a blank line; the builder deduplicates them.
"""

from __future__ import annotations

import hashlib
import re
import textwrap
import unicodedata
from collections.abc import Callable, Iterable, Iterator

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b\ufeff]")
_SPACES = re.compile(r"[\u00a0\u2000-\u200a\u202f\u205f\u3000]")
_RULE_LINE = re.compile(r"^\s*([-=_*~#+.^\"'`<>:|])(?:\s?\1){3,}\s*$")
_MANY_BLANKS = re.compile(r"\n{3,}")
_WS = re.compile(r"\s+")


# ---- generic ----------------------------------------------------------------------------------

def normalize_text(text: str) -> str:
    """NFC, Unix newlines, plain spaces (no tabs, no-break or other Unicode spaces), no control
    characters, trailing spaces or rule lines, at most one blank line in a row."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = _SPACES.sub(" ", _CONTROL.sub("", text.expandtabs(8)))
    lines = [line.rstrip() for line in text.split("\n")]
    text = "\n".join("" if _RULE_LINE.match(line) else line for line in lines)
    return _MANY_BLANKS.sub("\n\n", text).strip("\n")


def paragraphs(text: str) -> list[str]:
    """Blank-line separated blocks, each without leading/trailing blank lines."""
    return [p.strip("\n") for p in re.split(r"\n\s*\n", text) if p.strip()]


def dedent_paragraphs(text: str) -> str:
    """Remove each paragraph's common indentation (layout indentation, not structure)."""
    return "\n\n".join(textwrap.dedent(p) for p in paragraphs(text))


def collapse_spaces(text: str) -> str:
    """Collapse runs of spaces inside lines (justified text), keeping leading indentation."""
    out = []
    for line in text.split("\n"):
        body = line.lstrip(" ")
        out.append(line[: len(line) - len(body)] + re.sub(r" {2,}", " ", body))
    return "\n".join(out)


def unwrap(paragraph: str, *, keep_breaks: re.Pattern[str] | None = None) -> str:
    """Join hard-wrapped lines into one line; lines matching `keep_breaks` start a new line."""
    lines: list[str] = []
    for raw in paragraph.split("\n"):
        line = raw.strip()
        if not line:
            continue
        if lines and not (keep_breaks and keep_breaks.match(line)):
            lines[-1] = f"{lines[-1]} {line}"
        else:
            lines.append(line)
    return "\n".join(_WS.sub(" ", line) for line in lines)


def dedup_key(text: str) -> bytes:
    """Hash of a paragraph after case folding and whitespace collapsing (exact-duplicate key)."""
    norm = _WS.sub(" ", text.casefold()).strip()
    return hashlib.blake2b(norm.encode("utf-8"), digest_size=16).digest()


def normalized_length(text: str) -> int:
    return len(_WS.sub(" ", text).strip())


# ---- splitting long texts ---------------------------------------------------------------------

def split_long(text: str, max_chars: int) -> Iterator[str]:
    """Cut `text` into pieces of at most `max_chars`, at paragraph, then line, then space boundaries."""
    if len(text) <= max_chars:
        yield text
        return
    yield from _greedy(paragraphs(text), "\n\n", max_chars, _split_paragraph)


def _split_paragraph(paragraph: str, max_chars: int) -> Iterator[str]:
    yield from _greedy(paragraph.split("\n"), "\n", max_chars, _split_line)


def _split_line(line: str, max_chars: int) -> Iterator[str]:
    while len(line) > max_chars:
        cut = line.rfind(" ", 0, max_chars)
        cut = cut if cut > max_chars // 2 else max_chars
        yield line[:cut].rstrip()
        line = line[cut:].lstrip()
    if line:
        yield line


def _greedy(parts: Iterable[str], joiner: str, max_chars: int,
            split_part: Callable[[str, int], Iterator[str]]) -> Iterator[str]:
    buf: list[str] = []
    size = 0
    for part in parts:
        pieces = [part] if len(part) <= max_chars else list(split_part(part, max_chars))
        for piece in pieces:
            extra = len(piece) + (len(joiner) if buf else 0)
            if buf and size + extra > max_chars:
                yield joiner.join(buf)
                buf, size, extra = [], 0, len(piece)
            buf.append(piece)
            size += extra
    if buf:
        yield joiner.join(buf)


def pack(units: Iterable[str], *, max_chars: int, joiner: str = "\n\n") -> Iterator[str]:
    """Group consecutive short units (and pieces of long ones) into documents of <= max_chars."""
    yield from _greedy(units, joiner, max_chars, split_long)


# ---- reStructuredText (Python docs sources) ---------------------------------------------------

_DIRECTIVE = re.compile(r"^\.\.\s+([\w:-]+)::\s*(.*)$")
_OPTION = re.compile(r"^:[\w -]+:(\s|$)")
_UNDERLINE = re.compile(r"^([=\-~^\"'`#*+<>_.:])\1{2,}$")
_DROP = {
    "index", "toctree", "testsetup", "testcleanup", "highlight", "sectionauthor", "moduleauthor",
    "currentmodule", "module", "tabularcolumns", "include", "literalinclude", "productionlist", "raw",
    "image", "figure", "only", "program", "audit-event", "audit-event-table", "c:namespace", "ifconfig",
    "contents", "default-role", "role", "limited-api-list",
}
_LITERAL = {"code-block", "sourcecode", "doctest", "testcode", "testoutput", "code"}
_ADMONITION = {
    "note": "Note", "warning": "Warning", "seealso": "See also",
    "impl-detail": "CPython implementation detail",
    "availability": "Availability", "tip": "Tip", "important": "Important", "caution": "Caution",
    "attention": "Attention", "hint": "Hint", "danger": "Danger", "error": "Error",
}
_VERSION = {
    "versionadded": "New in version", "versionchanged": "Changed in version",
    "deprecated": "Deprecated since version",
}
_ROLE = re.compile(r":[\w:+.-]+:`([^`]+)`")
_LINK = re.compile(r"`([^`<]+?)\s*<[^`>]+>`__?")
_REF = re.compile(r"`([^`]+)`__?")
_LITERAL_INLINE = re.compile(r"``(.+?)``")
_STRONG = re.compile(r"\*\*(\S(?:.*?\S)?)\*\*")
_EMPH = re.compile(r"(?<![\w*\\])\*(\S(?:[^*\n]*?\S)?)\*(?![\w*])")


def _role_text(match: re.Match[str]) -> str:
    text = match.group(1)
    target = re.match(r"^(.*?)\s*<[^>]+>$", text)
    if target:
        return target.group(1)
    text = text.lstrip("!")
    if text.startswith("~"):
        return text[1:].split(".")[-1]
    return text


def rst_inline(line: str) -> str:
    """Inline markup to plain text: roles, links, ``literals``, **strong**, *emphasis*."""
    line = _ROLE.sub(_role_text, line)
    line = _LINK.sub(r"\1", line)
    line = _LITERAL_INLINE.sub(r"\1", line)
    line = _REF.sub(r"\1", line)
    line = _STRONG.sub(r"\1", line)
    return _EMPH.sub(r"\1", line)


def clean_rst(text: str) -> str:
    """reStructuredText to readable plain text: directives become plain lines or disappear,
    code blocks are kept verbatim, inline markup is stripped."""
    out: list[str] = []
    drop_indent: int | None = None  # inside a dropped block: skip lines indented deeper
    literal_indent: int | None = None  # inside a code block: keep lines indented deeper verbatim
    in_options = False
    for line in text.split("\n"):
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if drop_indent is not None:
            if not stripped or indent > drop_indent:
                continue
            drop_indent = None
        if in_options and _OPTION.match(stripped):
            continue
        in_options = False
        if literal_indent is not None:
            if not stripped or indent > literal_indent:
                out.append(line)
                continue
            literal_indent = None
        if stripped.startswith(".."):
            emitted, drop_indent, literal_indent, in_options = _directive(stripped, indent)
            out.extend(emitted)
            continue
        if _UNDERLINE.match(stripped):
            continue
        if stripped.startswith(">>>") or stripped.startswith("... "):
            out.append(line)
            continue
        if stripped.endswith("::"):
            literal_indent = indent
            line = line.rstrip()[:-2].rstrip()
            line = line + ":" if line.strip() else ""
        out.append(rst_inline(line))
    text = "\n".join(out)
    text = _LINK.sub(r"\1", _ROLE.sub(_role_text, text))  # markup wrapped over two lines
    return normalize_text(text)


def _directive(stripped: str, indent: int) -> tuple[list[str], int | None, int | None, bool]:
    """One `.. name:: arg` line -> (lines to emit, drop_indent, literal_indent, options follow)."""
    pad = " " * indent
    match = _DIRECTIVE.match(stripped)
    if not match:
        footnote = re.match(r"^\.\.\s+\[[^\]]+\]\s+(.*)$", stripped)
        if footnote:
            return [pad + rst_inline(footnote.group(1))], None, None, False
        return [], indent, None, False  # comment, target or substitution: drop with its body
    kind, arg = match.group(1), rst_inline(match.group(2).strip())
    if kind in _DROP:
        return [], indent, None, False
    if kind in _LITERAL:
        return [], None, indent, True
    if kind in _ADMONITION:
        return [f"{pad}{_ADMONITION[kind]}: {arg}".rstrip()], None, None, True
    if kind == "deprecated-removed":
        version, _, removed = arg.partition(" ")
        line = f"{pad}Deprecated since version {version}, will be removed in version {removed}."
        return [line], None, None, True
    if kind in _VERSION:
        version, _, rest = arg.partition(" ")
        return [f"{pad}{_VERSION[kind]} {version}. {rest}".rstrip()], None, None, True
    return ([pad + arg] if arg else []), None, None, True


# ---- GCIDE (Webster 1913 + WordNet dictionary) ------------------------------------------------

_GCIDE_SOURCE = re.compile(r"\[[^\]\n]*(?:Webster|WordNet|PJC|Century|Chambers|Source)[^\]\n]*\]")
_GCIDE_PRON = re.compile(r"\\[^\\\n]{0,80}\\")
_GCIDE_ACCENT_BEFORE = re.compile(r"\[[=\-'\"~`.,]([A-Za-z]{1,2})\]")
_GCIDE_ACCENT_AFTER = re.compile(r"\[([A-Za-z]{1,2})[\^~`'\"]\]")
_GCIDE_NAMED = {"imac": "i", "aum": "a", "eth": "th", "thorn": "th", "asl": "a", "root": "",
                "add": "", "ae": "ae", "oe": "oe", "AE": "AE", "OE": "OE"}
_GCIDE_NAMED_RE = re.compile(r"\[(" + "|".join(_GCIDE_NAMED) + r")\]")
_GCIDE_BREAKS = re.compile(r"^(\d+\.|\([a-z]\)|Syn\.|Syn:|Note:|--)")


def _unbrace(text: str) -> str:
    """Remove {cross reference} braces, nested ones included."""
    while True:
        text, count = re.subn(r"\{([^{}]*)\}", r"\1", text)
        if not count:
            return text


def clean_gcide_entry(entry: str) -> str:
    """A GCIDE entry as plain prose: no source tags, pronunciations or syllable marks."""
    text = _GCIDE_SOURCE.sub("", entry)
    text = _GCIDE_PRON.sub("", text)
    text = _GCIDE_ACCENT_BEFORE.sub(r"\1", text)
    text = _GCIDE_ACCENT_AFTER.sub(r"\1", text)
    text = _GCIDE_NAMED_RE.sub(lambda m: _GCIDE_NAMED[m.group(1)], text)
    text = _unbrace(text)  # cross references
    text = re.sub(r"(?<=\w)[*\"`](?=\w)", "", text)  # syllable and accent marks inside words
    text = re.sub(r" +,", ",", text)
    return "\n\n".join(unwrap(p, keep_breaks=_GCIDE_BREAKS) for p in paragraphs(normalize_text(text)))
