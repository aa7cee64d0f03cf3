"""Automatic feature labels: words merged from their pieces, each pattern, confidence, relabelling."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import torch
from test_features import CFG, N_TOKENS, write_corpus
from typer.testing import CliRunner

from glassbox.cli import app
from glassbox.features import FeatureStore, build_features
from glassbox.features.labels import AFTER, BEFORE, METHOD, WIDTH, LabelEvidence, Vocab, auto_label
from glassbox.features.relabel import relabel_store
from glassbox.testing import make_random_transcoders, make_tiny_model

FILLER = [" the", " a", " of", "\n", " and", ".", ","]  # a vocabulary with spaces, as Gemma's decodes


def _evidence(contexts: list[str], *, logits: tuple[str, ...] = (), acts: list[float] | None = None,
              extra: tuple[str, ...] = ()) -> tuple[LabelEvidence, Vocab]:
    """Evidence from contexts written as tokens split by "|", the activating one marked with ">":
    "He| played|> basketball|." fires on " basketball"."""
    split = [c.split("|") for c in contexts]
    strings = ["<bos>", *dict.fromkeys(FILLER + [t.removeprefix(">") for s in split for t in s] + list(logits)
                                       + list(extra))]
    ids = {t: i for i, t in enumerate(strings)}
    windows = np.full((len(split), WIDTH), -1, dtype=np.int64)
    for row, toks in enumerate(split):
        at = next(i for i, t in enumerate(toks) if t.startswith(">"))
        for i, t in enumerate(toks):
            col = BEFORE + i - at
            if 0 <= col < WIDTH:
                windows[row, col] = ids[t.removeprefix(">")]
    ev = LabelEvidence(windows=windows, acts=np.array(acts or [1.0] * len(split), dtype=np.float64),
                       top_logit_ids=np.array([ids[t] for t in logits], dtype=np.int64), n_fires=len(split))
    return ev, Vocab(strings)


def label(contexts: list[str], **kwargs) -> str:
    ev, vocab = _evidence(contexts, **kwargs)
    return auto_label(ev, vocab, n_tokens=1000)[0]


def details(contexts: list[str], **kwargs) -> dict:
    ev, vocab = _evidence(contexts, **kwargs)
    return auto_label(ev, vocab, n_tokens=1000)[1]


# ---- words from pieces --------------------------------------------------------------------------

def test_pieces_are_merged_into_the_word_they_belong_to():
    contexts = ["The|> Inter|national|ization| team", "an| Inter|>national|ization| effort",
                "this| Inter|national|>ization| work"]
    assert label(contexts) == '"Internationalization"'
    # the words around are whole words too
    d = details(["the| bas|ket|ball|> play|ers| win", "a| bas|ket|ball|> play|ers| lost",
                 "the| bas|ket|ball|> play|ers| ran"])
    assert d["preceding"] == [["basketball", 1.0]]
    assert sorted(w for w, _ in d["following"]) == ["lost", "ran", "win"]
    assert d["words"] == [["players", 1.0]]


def test_a_vocabulary_without_leading_spaces_is_not_merged():
    # tokens decoded without their leading space give no word boundaries: each token is a word
    strings = ["<bos>", "Inter", "national", "ization", "team", "the", "a", "of", "and", "is"]
    vocab = Vocab(strings)
    assert not vocab.spaced
    windows = np.full((3, WIDTH), -1)
    windows[:, BEFORE - 1: BEFORE + 2] = [strings.index("Inter"), strings.index("national"),
                                          strings.index("ization")]
    ev = LabelEvidence(windows, np.ones(3), np.array([], dtype=np.int64), 3)
    assert auto_label(ev, vocab, n_tokens=100)[1]["words"] == [["national", 1.0]]


# ---- each pattern ---------------------------------------------------------------------------------

def test_one_word_two_words_and_a_phrase():
    ball = ["He| played|> basketball| today", "the|> basketball| court", "a| fine|> basketball| game"]
    assert label(ball) == '"basketball"'
    names = ["said|> Jordan| today", "and|> Michael| said", "then|> Jordan| ran", "with|> Michael| who"]
    assert label(names) == '"Jordan" / "Michael"'
    full = ["said| Michael|> Jordan| today", "and| Michael|> Jordan| ran", "the| Michael|> Jordan| who"]
    assert label(full) == '"Michael Jordan"'


def test_a_piece_shared_by_different_words():
    text = label(["the| mak|>ing| of", "a| tak|>ing| part", "of| runn|>ing| and", "the| sing|>ing| bird"])
    assert text == '"ing" in "making" / "running"'
    # different pieces inside different (rare) words: the position in the word is what they share
    middles = ["see| D|>iph|thong|.", "an| ext|>emp|ore| piece", "the| remon|>str|ance| of",
               "an| anticonv|>uls|ant|\n"]
    assert label(middles) == "middles of words"
    mixed = middles[:2] + ["the| abom|in|>ation|.", "an| Ab|>om|ination| and", "Ciudad| Bol|>ivar|\n"]
    assert label(mixed) == "pieces of longer words"


def test_the_word_before_or_after():
    assert label(["in|> the| dog", "on|> the| cat", "by|> the| car", "at|> the| box"]) == '"the"'
    after = label(["the|> dog| ran", "the|> cat| sat", "the|> car| went", "the|> box| fell"])
    assert after == 'word after "the"'
    before = label(["big|> dog| of", "red|> cat| of", "old|> car| of", "new|> box| of"])
    assert before == 'word before "of"'
    assert label(["a| big|> dog|.", "the| red|> cat|.| The", "an| old|> car|.", "my| new|> box|."]) == \
        "last word of a sentence"
    assert label(["cat|.|> The| dog", "ran|.|> A| cat", "sat|.|> My| car", "fell|.|> Her| box"]) == \
        "first word of a sentence"


def test_numbers_digits_and_years():
    years = ["in| |1|>9|8|7| he", "in| |2|0|>2|4| we", "by| |1|>9|9|9| it", "of| |2|0|>1|0| so"]
    assert label(years) == "years"
    nines = ["in| |1|>9|8|7| he", "in| |1|>9|9|5| we", "by| |1|>9|9|9| it", "of| |1|>9|9|0| so"]
    assert label(nines) == "years"  # not '"9" in "1987" / "1990"': a digit is not a word piece
    digits = ["pay| |>3|4|5| now", "has| |1|>2| cats", "is| |7|>7|7|7|1| big", "of| |5|>0|0| us"]
    assert label(digits) == "digits in numbers"


def test_punctuation_line_breaks_and_line_starts():
    assert label(["dog|>,| cat", "one|>,| two", "red|>,| blue"]) == '"," (commas)'
    assert label(["dog|>\n", "cat|>\n| the", "red|>\n| a"]) == "line breaks"
    starts = ["end|\n|> Dogs| bark", "end|\n|> Cats| mew", "end|\n|> Rain| fell", "end|\n|> Wind| blew"]
    assert label(starts) == "first word of a line"
    marks = ["the| dog|>!| ran", "a| cat|>?| sat", "of| car|>;| went", "an| ox|>:| fell"]
    assert label(marks) == "punctuation"


def test_capitalised_and_all_caps_words():
    names = ["met|> Anna| here", "saw|> Boris| there", "told|> Chen| so", "asked|> Dora| why"]
    assert label(names) == "capitalised words"
    acronyms = ["the|> NASA| team", "a|> IBM| box", "the|> BBC| news", "our|> USA| trip"]
    assert label(acronyms) == "all-caps words"


def test_kinds_of_text_code_scripts_and_languages():
    code = ["\n|    |def| foo|(|x|):|\n|    |> return| x", "\n|  |if| x| ==| 1|:|\n|    |> return| y",
            "{|\n|    |x| =| 2|;|\n|    |> return| x|;"]
    assert label(code) == '"return" (code)'
    chinese = ["我们|的|>中文|很好", "这是|>中文|的书", "学习|>中文|的人"]
    assert label(chinese) == '"中文" (Chinese text)'
    french = ["Le| chat|> est| noir| et| le| chien", "Il|> est| dans| la| maison| avec| les",
              "Elle|> est| très| contente| pour| le"]
    assert label(french) == '"est" (French text)'
    d = details(french)
    assert d["context"] == ["French text", 1.0]
    # many different words, all in Chinese: the kind of text is the label
    mixed = ["我们|的|>书|很好", "这是|>人|的书", "学习|>水|的人", "他|>山|的人"]
    assert label(mixed) == "Chinese text"


# ---- output side, confidence ----------------------------------------------------------------------

def test_promoted_words_are_added_only_when_the_examples_agree():
    york = ["in|> New| York| city", "to|> New| York| now", "of|> New| York| and"]
    assert label(york, logits=(" York", "York", " Jersey")) == '"New" → "York"'
    assert label(york, logits=(" Library", " Jersey"), extra=(" Library",)) == '"New"'


def test_low_confidence_labels_end_with_a_question_mark():
    diverse = ["the|> dog| ran", "a|> cat| sat", "of|> car| went", "an|> box| fell", "and|> tree| grew",
               "big|> sun| shone", "red|> hat| fit"]
    d = details(diverse)
    text = label(diverse)
    assert text.endswith("?") and d["low_confidence"] is True and d["confidence"] < 0.5
    # one example is too little to be sure of anything
    one = details(["He| played|> basketball| today"])
    assert one["confidence"] == pytest.approx(1 / 3, abs=1e-3) and one["low_confidence"]
    assert label(["He| played|> basketball| today"]) == '"basketball"?'
    # confidence is the share of the activation mass the pattern explains
    weighted = details(["He| played|> basketball| today", "the|> basketball| court", "a|> basketball| net",
                        "the|> dog| ran"], acts=[3.0, 3.0, 3.0, 1.0])
    assert weighted["confidence"] == pytest.approx(0.9) and not weighted["low_confidence"]


def test_dead_features_and_the_method_name():
    none = np.zeros((0, WIDTH), dtype=np.int64)
    text, d = auto_label(LabelEvidence(none, np.zeros(0), np.zeros(0, dtype=np.int64), 0), Vocab(["a"]),
                         n_tokens=1000)
    assert text == "dead (never fired in 1,000 tokens)" and d["confidence"] == 1.0
    assert METHOD == "glassbox-auto-v2" and AFTER >= 1


# ---- relabelling a store ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory) -> Path:
    model = make_tiny_model("gemma3", dtype=torch.float64)
    tc = make_random_transcoders(model, activation="topk", k=6, d_transcoder=24)
    root = tmp_path_factory.mktemp("labels")
    corpus = write_corpus(root / "corpus.txt")
    return build_features(model, tc, corpus, n_tokens=N_TOKENS, output_dir=root / "store", config=CFG,
                          split="all")


def _labels(folder: Path) -> list[tuple[int, str, str]]:
    with sqlite3.connect(folder / "features.sqlite") as db:
        return db.execute("SELECT id, text, provenance FROM labels ORDER BY id").fetchall()


def test_the_build_stores_labels_with_confidence(tiny_store):
    store = FeatureStore.open(tiny_store)
    keys = [(layer, f) for layer in store.layers for f in range(store.d_transcoder)]
    labels = store.auto_labels(keys)
    assert len(labels) == len(keys) and all(text and len(text) < 80 for text in labels.values())
    for layer, f in keys:
        prov = store.label_provenance(layer, f)
        assert prov["kind"] == "auto" and prov["method"] == METHOD
        assert 0.0 <= prov["confidence"] <= 1.0 and prov["low_confidence"] == (prov["confidence"] < 0.5)
        assert labels[(layer, f)].endswith("?") == prov["low_confidence"]
    assert store.manifest["label_method"] == METHOD


def test_relabel_replaces_old_labels_in_place(tiny_store, tmp_path):
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(tiny_store, folder)
    want = _labels(folder)
    with sqlite3.connect(folder / "features.sqlite") as db:
        db.execute("""UPDATE labels SET text = '"." -> "Library"', provenance = '{"method": "v1"}'""")
    manifest = json.loads((folder / "manifest.json").read_text())
    del manifest["label_method"]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    result = CliRunner().invoke(app, ["features", "relabel", str(folder), "-q"])
    assert result.exit_code == 0, result.output
    assert f"labelled {len(want)} features" in result.output
    assert _labels(folder) == want
    assert json.loads((folder / "manifest.json").read_text())["label_method"] == METHOD
    assert relabel_store(folder) == len(want)  # again: the same labels (deterministic)
    assert _labels(folder) == want
    bad = CliRunner().invoke(app, ["features", "relabel", str(tmp_path / "nothing")])
    assert bad.exit_code != 0 and "not a feature store" in bad.output


# ---- the demo model's tokenizer (slow) -------------------------------------------------------------

@pytest.mark.slow
def test_labels_on_the_demo_model_tokenizer(demo_model_dir: Path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(demo_model_dir))
    strings = tok.batch_decode([[i] for i in range(len(tok))], clean_up_tokenization_spaces=False)
    vocab = Vocab(strings)
    assert vocab.spaced

    def evidence(texts: list[str], at: str) -> LabelEvidence:
        """Windows around the first token of each text that `at` (stripped, lower case) names."""
        windows = np.full((len(texts), WIDTH), -1, dtype=np.int64)
        for row, text in enumerate(texts):
            ids = tok(text, add_special_tokens=False)["input_ids"]
            c = next(i for i, t in enumerate(ids) if strings[t].strip().lower() == at)
            for i, t in enumerate(ids):
                if 0 <= BEFORE + i - c < WIDTH:
                    windows[row, BEFORE + i - c] = t
        return LabelEvidence(windows, np.ones(len(texts)), np.zeros(0, dtype=np.int64), len(texts))

    def text(texts: list[str], at: str) -> str:
        return auto_label(evidence(texts, at), vocab, n_tokens=1000)[0]

    # " Internationalization" is several tokens; the label is the whole word
    pieces = tok.convert_ids_to_tokens(tok(" Internationalization", add_special_tokens=False)["input_ids"])
    assert len(pieces) > 1
    last = strings[tok.convert_tokens_to_ids(pieces[-1])].strip().lower()
    words = ["The Internationalization team met.", "Our Internationalization work is done.",
             "An Internationalization effort began."]
    assert text(words, last) == '"Internationalization"'
    # Gemma writes numbers digit by digit: the digits merge into the year
    years = ["It was in 1987 that", "Back in 1995 we", "By 1999 it was", "Since 1990 they"]
    assert text(years, "9") == "years"
    assert text(["我们的中文很好", "这是中文的书", "他学习中文的人"], "中文") == '"中文" (Chinese text)'
    assert text(["Le chat est noir et le chien dort.", "Il est dans la maison avec les enfants.",
                 "Elle est très contente pour le moment."], "est") == '"est" (French text)'


def test_glassbox_relabel_reaches_the_database(tiny_store, tmp_path, monkeypatch):
    """The setup copied the store's dashboards and old labels into the database; `glassbox
    relabel` relabels the store and replaces them there (dashboards included), keeping human labels."""
    import gzip
    import shutil

    import typer

    from firststart.relabel import relabel_command
    from firststart.store import ensure_model, ensure_transcoder_set, store_dashboards
    from persistence.db import make_engine, make_sessionmaker
    from persistence.migrate import upgrade
    from persistence.tables import Feature

    folder = tmp_path / "store"
    shutil.copytree(tiny_store, folder)
    with sqlite3.connect(folder / "features.sqlite") as db:
        db.execute("""UPDATE labels SET text = '"." -> "Library"', provenance = '{"method": "v1"}'""")
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    engine = make_engine(url)
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    fs = FeatureStore.open(folder)
    with sessions() as session:
        model = ensure_model(session, name="tiny", source="tiny", display_name="tiny")
        tset = ensure_transcoder_set(session, model, name="tc", source="tc", n_layers=len(fs.layers),
                                     description="test")
        keys = [(layer, f) for layer in fs.layers for f in range(fs.d_transcoder)]
        stored = store_dashboards(session, tset, (d for d in fs.get_many(keys) if d["n_fires"] > 0))
        human = session.query(Feature).filter_by(layer=0).first()
        human.label, human.label_version = "my own label", 1
        session.commit()
    fs.close()
    assert stored > 0

    monkeypatch.setenv("GLASSBOX_DATABASE_URL", url)
    cli = typer.Typer()
    cli.command("relabel")(relabel_command)
    cli.command("other")(lambda: None)  # two commands: `relabel` is named on the command line
    args = ["relabel", "--store", str(folder), "--model", "tiny", "--transcoders"]
    result = CliRunner().invoke(cli, [*args, "tc"])
    assert result.exit_code == 0, result.output
    assert f"updated the auto labels of {stored} features of tiny/tc" in result.output
    fs = FeatureStore.open(folder)
    with sessions() as session:
        rows = session.query(Feature).all()
        assert len(rows) == stored
        for row in rows:
            text, provenance = fs.labels_with_provenance(row.layer)[row.index]
            assert row.auto_label == text != '"." -> "Library"'
            dashboard = json.loads(gzip.decompress(row.dashboard_gz))
            assert dashboard["auto_label"] == text and dashboard["auto_label_provenance"] == provenance
            assert provenance["method"] == METHOD and "confidence" in provenance
        assert session.query(Feature).filter_by(label="my own label").count() == 1
    missing = CliRunner().invoke(cli, [*args, "x"])
    assert missing.exit_code == 1 and "only the store was relabelled" in missing.output
    engine.dispose()

