"""Readers shared by several corpus sources: dictd dictionaries, HTML manuals, plain-text manuals.

Each returns cleaned text units (see sources.py); none knows which package it reads.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Callable, Iterable, Iterator
from html.parser import HTMLParser
from pathlib import Path

from glassbox.corpus import clean
from glassbox.corpus.errors import SourceUnavailableError

_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def require(path: Path) -> Path:
    if not path.exists():
        raise SourceUnavailableError(f"expected file not found: {path}")
    return path


# ---- dictd dictionaries (GCIDE, FOLDOC, Jargon File) -------------------------------------------

def dictd_number(text: str) -> int:
    """dictd index numbers are base64 digits, most significant first."""
    value = 0
    for char in text:
        value = value * 64 + _B64.index(char)
    return value


def dictd_entries(folder: Path, name: str) -> Iterator[str]:
    """Every entry of dictionary `name` once, in file order, located through its index."""
    data = gzip.decompress(require(folder / f"{name}.dict.dz").read_bytes())
    spans = set()
    for line in require(folder / f"{name}.index").read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and not parts[0].startswith("00-database"):
            spans.add((dictd_number(parts[1]), dictd_number(parts[2])))
    for offset, length in sorted(spans):
        yield data[offset: offset + length].decode("utf-8", errors="replace")


def clean_dictd_entry(entry: str) -> str:
    """A FOLDOC / Jargon File entry as prose: cross-reference braces dropped, paragraphs unwrapped
    (indented blocks such as code or verse keep their lines)."""
    text = re.sub(r"\{\s*([^{}]*?)\s*\}", r"\1", clean.normalize_text(entry))
    out = []
    for block in clean.paragraphs(text):
        block = clean.dedent_paragraphs(block)
        indented = all(line.startswith("    ") or not line.strip() for line in block.split("\n")[1:])
        out.append(block if indented and "\n" in block and block.startswith("    ") else clean.unwrap(block))
    return "\n\n".join(p for p in out if p.strip())


# ---- HTML manuals (DocBook and Sphinx output) --------------------------------------------------

_BLOCK_TAGS = {"p", "div", "br", "li", "dt", "dd", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre",
               "blockquote", "table", "section", "article", "ul", "ol", "dl", "figure", "title"}
_SKIP_TAGS = {"script", "style", "head", "nav", "noscript", "svg", "button", "form"}
_SKIP_CLASSES = re.compile(r"\b(navheader|navfooter|toc|breadcrumbs?|sphinxsidebar|related|footer|"
                           r"headerlink|docnav|legalnotice)\b")


class _TextExtractor(HTMLParser):
    """Visible text with paragraph breaks at block elements; navigation and tables of contents dropped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip_depth = 0  # > 0 inside an element whose text is dropped
        self.stack: list[tuple[str, bool]] = []  # (tag, started a skip)
        self.pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("br", "img", "meta", "link", "hr", "input", "wbr"):
            if tag in ("br", "hr"):
                self.parts.append("\n")
            return
        cls = " ".join(v or "" for k, v in attrs if k in ("class", "id"))
        skipping = tag in _SKIP_TAGS or bool(_SKIP_CLASSES.search(cls))
        self.stack.append((tag, skipping))
        self.skip_depth += skipping
        if tag == "pre":
            self.pre += 1
        if tag in _BLOCK_TAGS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            open_tag, skipping = self.stack.pop()
            self.skip_depth -= skipping
            if open_tag == "pre":
                self.pre -= 1
            if open_tag == tag:
                break
        if tag in _BLOCK_TAGS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if self.skip_depth:
            return
        self.parts.append(data if self.pre else re.sub(r"\s+", " ", data))

    def text(self) -> str:
        raw = "".join(self.parts)
        lines = [line.strip() if not line.startswith("  ") else line.rstrip() for line in raw.split("\n")]
        return clean.normalize_text("\n".join(lines))


def html_text(markup: str) -> str:
    """The readable text of one HTML page."""
    parser = _TextExtractor()
    parser.feed(markup)
    parser.close()
    return parser.text()


def html_units(files: Iterable[Path], *, min_chars: int = 200) -> Iterator[str]:
    """One unit per HTML page with at least `min_chars` of text."""
    for path in files:
        text = html_text(path.read_text(encoding="utf-8", errors="replace"))
        if len(text) >= min_chars:
            yield text


# ---- plain-text manuals ------------------------------------------------------------------------

def read_text(path: Path) -> str:
    """A text file, gunzipped when its name ends in .gz."""
    raw = require(path).read_bytes()
    return (gzip.decompress(raw) if path.suffix == ".gz" else raw).decode("utf-8", errors="replace")


def sections(text: str, is_heading: Callable[[str], bool], *, min_chars: int = 80) -> Iterator[str]:
    """Cut a manual into sections at heading lines; each section is dedented and cleaned, and
    tables of contents (sections made mostly of numbered entries) are dropped."""
    section: list[str] = []

    def flush() -> Iterator[str]:
        body = clean.dedent_paragraphs(clean.collapse_spaces(clean.normalize_text("\n".join(section))))
        if len(body) >= min_chars and not looks_like_contents(body):
            yield "\n\n".join(unwrap_prose(p) for p in clean.paragraphs(body))

    for line in clean.normalize_text(text).split("\n"):
        if is_heading(line) and section:
            yield from flush()
            section = []
        section.append(line)
    yield from flush()


_WIDE = re.compile(r"[\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f"
                   r"\uff00-\uff60\uffe0-\uffe6]")
WRAP_COLUMNS = 55  # a line at least this wide (in display columns) was wrapped by the formatter


def display_width(line: str) -> int:
    """Columns on a terminal: CJK characters take two."""
    return len(line) + len(_WIDE.findall(line))


def unwrap_prose(paragraph: str) -> str:
    """Join a paragraph that a text formatter hard-wrapped (every line but the last nearly full) into
    one line: with a space between words, with nothing between CJK characters. Code, lists and
    tables, whose lines are of uneven width, stay as they are."""
    lines = paragraph.split("\n")
    if len(lines) < 2 or any(display_width(line) < WRAP_COLUMNS for line in lines[:-1]) \
            or any(line.startswith((" ", "*", "-", "$", "#", "|")) for line in lines[1:]):
        return paragraph
    out = lines[0].strip()
    for line in lines[1:]:
        line = line.strip()
        joiner = "" if out and line and _WIDE.match(out[-1]) and _WIDE.match(line[0]) else " "
        out += joiner + line
    return out


NUMBERED_HEADING = re.compile(r"^(Chapter \d+\.|Appendix [A-Z]\.|第\s*\d+\s*章|\d+(\.\d+)*\.?\s+\S|"
                              r"[A-Z](\.\d+)+\.?\s)")
_CONTENTS_ENTRY = re.compile(r"^\s*(\d+(\.\d+)*\.?|[A-Z](\.\d+)*\.|Chapter \d+\.|Appendix [A-Z]\.|"
                             r"第\s*\d+\s*章)\s")


def looks_like_contents(body: str) -> bool:
    """True for a table of contents: most lines are numbered entries."""
    lines = [line for line in body.split("\n") if line.strip()]
    return len(lines) >= 3 and sum(bool(_CONTENTS_ENTRY.match(line)) for line in lines) >= 0.6 * len(lines)


def numbered_sections(path: Path) -> Iterator[str]:
    """Sections of a text manual with numbered headings ("1.", "2.3.", "Chapter 4.", "第 5 章")."""
    yield from sections(read_text(path), lambda line: bool(NUMBERED_HEADING.match(line)) and len(line) < 100)
