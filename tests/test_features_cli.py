"""`glassbox features build|info|show|export` on a tiny model saved to disk."""

from __future__ import annotations

import json

import jsonschema
import pytest
import torch
from test_features import write_corpus
from typer.testing import CliRunner

from glassbox.cli import app
from glassbox.graph.schemas import load_schema
from glassbox.testing import make_random_transcoders_dir, make_tiny_model_dir
from glassbox.transcoders import LayerWeights, TranscoderSet, save_transcoders
from glassbox.transcoders.lazy import DenseRows

SCHEMA = load_schema("feature-details")
SMALL = ["--seq-len", "16", "--batch-size", "4", "--top-k", "4", "--dtype", "float32", "-q"]


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tinycli")
    model = make_tiny_model_dir(root / "model", "llama")
    tcs = make_random_transcoders_dir(root / "tcs", model, activation="topk", k=5)
    corpus = write_corpus(root / "corpus.txt", n_docs=40)
    return model, tcs, corpus


@pytest.fixture(scope="module")
def store_dir(tiny_dirs, tmp_path_factory):
    model, tcs, corpus = tiny_dirs
    out = tmp_path_factory.mktemp("cli") / "store"
    res = CliRunner().invoke(app, ["features", "build", "-m", str(model), "-t", str(tcs), "-c", str(corpus),
                                   "-n", "300", "-o", str(out), "--split", "all", *SMALL])
    assert res.exit_code == 0, res.output
    assert f"built {out}" in res.output
    return out


def test_build_info_show_export(store_dir, tmp_path):
    runner = CliRunner()
    info = runner.invoke(app, ["features", "info", str(store_dir)])
    assert info.exit_code == 0, info.output
    assert "2 layers x 24 features" in info.output and "DEAD" in info.output
    show = runner.invoke(app, ["features", "show", str(store_dir), "1", "5"])
    assert show.exit_code == 0, show.output
    assert show.output.startswith("layer 1 feature 5: ") and "top logits:" in show.output
    one = tmp_path / "one.json"
    res = runner.invoke(app, ["features", "export", str(store_dir), "1", "5", "-o", str(one)])
    assert res.exit_code == 0, res.output
    details = json.loads(one.read_text())
    jsonschema.validate(details, SCHEMA)
    assert details["index"] == (1 + 5) * (1 + 5 + 1) // 2 + 5
    res = runner.invoke(app, ["features", "export", str(store_dir), "--all", "-o", str(tmp_path / "all")])
    assert res.exit_code == 0, res.output
    files = sorted((tmp_path / "all").glob("*.json"))
    assert len(files) == 2 * 24
    for path in files[:5]:
        jsonschema.validate(json.loads(path.read_text()), SCHEMA)


def test_rebuilding_a_finished_store_needs_overwrite(tiny_dirs, store_dir):
    model, tcs, corpus = tiny_dirs
    args = ["features", "build", "-m", str(model), "-t", str(tcs), "-c", str(corpus), "-n", "300",
            "-o", str(store_dir), "--split", "all", *SMALL]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2
    assert "already holds a finished feature store" in res.output and "--overwrite" in res.output


def test_missing_corpus_is_one_clear_line(tiny_dirs, tmp_path):
    model, tcs, _ = tiny_dirs
    res = CliRunner().invoke(app, ["features", "build", "-m", str(model), "-t", str(tcs), "-c",
                                   str(tmp_path / "nope.txt"), "-n", "100", "-o", str(tmp_path / "s"),
                                   *SMALL])
    assert res.exit_code == 2
    assert "error:" in res.output and "nope.txt" in res.output
    assert not (tmp_path / "s").exists()


def test_transcoders_for_another_model_are_refused(tiny_dirs, tmp_path):
    model, _, corpus = tiny_dirs
    d, d_tc = 8, 12  # the tiny model has d_model 16
    layers = [LayerWeights(W_enc=torch.randn(d_tc, d), b_enc=torch.zeros(d_tc),
                           W_dec=DenseRows(torch.randn(d_tc, d)), b_dec=torch.zeros(d)) for _ in range(2)]
    narrow = TranscoderSet(layers, kind="plt", activation="relu", name="narrow")
    other = save_transcoders(narrow, tmp_path / "narrow")
    res = CliRunner().invoke(app, ["features", "build", "-m", str(model), "-t", str(other), "-c", str(corpus),
                                   "-n", "100", "-o", str(tmp_path / "s"), *SMALL])
    assert res.exit_code == 2
    assert "width 8" in res.output and "d_model 16" in res.output


@pytest.mark.parametrize("args,message", [
    (["--layers", "0-9"], "layers must be in 0-1"),
    (["--layers", "x"], "--layers takes numbers"),
    (["--seq-len", "1"], "seq_len"),
])
def test_bad_options_are_one_clear_line(tiny_dirs, tmp_path, args, message):
    model, tcs, corpus = tiny_dirs
    res = CliRunner().invoke(app, ["features", "build", "-m", str(model), "-t", str(tcs), "-c", str(corpus),
                                   "-n", "100", "-o", str(tmp_path / "s"), *SMALL, *args])
    assert res.exit_code == 2, res.output
    assert message in res.output


def test_show_on_a_folder_that_is_not_a_store(tmp_path):
    res = CliRunner().invoke(app, ["features", "show", str(tmp_path), "0", "0"])
    assert res.exit_code == 2
    assert "is not a feature store" in res.output
