"""`glassbox trace` end to end on a tiny model saved to disk, and the short Python API."""

from __future__ import annotations

import json

import jsonschema
import pytest
from typer.testing import CliRunner

import glassbox
from glassbox.cli import app
from glassbox.graph import Graph
from glassbox.testing import make_random_transcoders_dir, make_tiny_model_dir


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    model = make_tiny_model_dir(root / "model", "gemma3")
    tcs = make_random_transcoders_dir(root / "tcs", model)
    return model, tcs


def test_trace_command_writes_valid_json_and_summary(tiny_dirs, tmp_path, graph_schema):
    model, tcs = tiny_dirs
    out = tmp_path / "g.json"
    res = CliRunner().invoke(app, ["trace", "Fact : Michael Jordan plays the sport of", "-m", str(model),
                                   "-t", str(tcs), "-o", str(out), "--save-pt", str(tmp_path / "g.pt"),
                                   "--max-feature-nodes", "40"])
    assert res.exit_code == 0, res.output
    assert "40 selected" in res.output and "replacement" in res.output and "completeness" in res.output
    data = json.loads(out.read_text())
    jsonschema.validate(data, graph_schema)
    graph = Graph.load(tmp_path / "g.pt")
    assert graph.n_selected == 40
    assert data["metadata"]["prompt"] == "Fact : Michael Jordan plays the sport of"


def test_trace_command_with_logit_difference(tiny_dirs, tmp_path):
    model, tcs = tiny_dirs
    out = tmp_path / "d.json.gz"
    res = CliRunner().invoke(app, ["trace", "The capital of Texas is", "-m", str(model), "-t", str(tcs),
                                   "-o", str(out), "--logit-diff", "Austin", "Dallas"])
    assert res.exit_code == 0, res.output
    assert out.read_bytes()[:2] == b"\x1f\x8b"  # gzip


@pytest.mark.parametrize("args,message", [
    (["-t", "/nonexistent/tcs"], "transcoder folder not found"),
    (["--max-n-logits", "0"], "max_n_logits"),
    (["--target", "Michael Jordan"], "exactly one token"),
])
def test_trace_command_bad_input_is_one_clear_line(tiny_dirs, tmp_path, args, message):
    model, tcs = tiny_dirs
    base = ["trace", "Fact : Michael", "-m", str(model), "-t", str(tcs), "-o", str(tmp_path / "x.json")]
    res = CliRunner().invoke(app, base + args)
    assert res.exit_code == 2
    assert "error:" in res.output and message in res.output
    assert "Traceback" not in res.output


def test_python_short_api(tiny_dirs, graph_schema):
    model, tcs = tiny_dirs
    result = glassbox.trace("Fact : Michael Jordan", model=str(model), transcoders=str(tcs))
    data = result.to_json(slug="jordan")
    jsonschema.validate(data, graph_schema)
    assert data["metadata"]["slug"] == "jordan"
    assert 0 <= result.scores["replacement"] <= 1


def test_to_json_reuses_the_traces_pruning_and_equals_a_fresh_export(tiny_dirs, monkeypatch):
    from glassbox.graph import export

    model, tcs = tiny_dirs
    result = glassbox.trace("Fact : Michael Jordan", model=str(model), transcoders=str(tcs))
    fresh = export.graph_to_json(result.graph, slug="j")  # the trace's thresholds are the defaults
    influence = export.node_influence
    calls = []
    monkeypatch.setattr(export, "node_influence", lambda g: calls.append(g) or influence(g))
    assert result.to_json(slug="j") == fresh and calls == []  # nothing computed a second time
    other = result.to_json(slug="j", node_threshold=0.5)  # other thresholds: pruned again
    assert len(calls) == 1 and other == export.graph_to_json(result.graph, slug="j", node_threshold=0.5)
