"""What keeps submit-to-graph short by default: a trace request visits 1,000 feature nodes
unless it says otherwise (null: every active feature; never more than
GLASSBOX_MAX_FEATURE_NODES_LIMIT), and on the embedded default the model a preview loaded is
the one the trace runs on."""

from __future__ import annotations

import pytest
from gbx_fakes import FakeTracer

from glassbox.testing import make_random_transcoders_dir, make_tiny_model_dir
from server.schemas import DEFAULT_MAX_FEATURE_NODES
from worker.cache import ModelCache


def _traced_params(stack, **extra) -> dict:
    job = stack.submit(stack.client, f"The capital of Texas is {len(stack.tracer.calls)}", **extra)
    stack.process_jobs()
    stack.wait_for_status(stack.client, job["id"], "done")
    return stack.tracer.calls[-1].params


def _ready(stack):
    stack.register(stack.client, "admin")
    stack.login(stack.client, "admin")
    stack.seed_registry(stack.client)
    return stack


def test_default_is_1000_feature_nodes_and_null_still_means_every_feature(sqlite_url, make_stack):
    stack = _ready(make_stack(sqlite_url, tracer=FakeTracer(steps=1)))
    assert DEFAULT_MAX_FEATURE_NODES == 1000
    assert _traced_params(stack)["max_feature_nodes"] == 1000
    assert _traced_params(stack, params={"max_feature_nodes": None})["max_feature_nodes"] is None
    assert _traced_params(stack, params={"max_feature_nodes": 50})["max_feature_nodes"] == 50


def test_default_stays_within_a_lower_limit_but_an_explicit_value_does_not(sqlite_url, make_stack):
    stack = _ready(make_stack(sqlite_url, tracer=FakeTracer(steps=1), max_feature_nodes_limit=300))
    assert _traced_params(stack)["max_feature_nodes"] == 300
    refused = stack.client.post(
        "/api/traces", json={"model": "tiny", "prompt": "hi there", "params": {"max_feature_nodes": 500}}
    )
    assert refused.status_code == 422 and "at most 300" in refused.text
    form = stack.client.get("/new?format=json").json()
    assert form["defaults"]["max_feature_nodes"] == 300  # the form starts within the limit too


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    model_dir = make_tiny_model_dir(root / "model", "llama")
    return model_dir, make_random_transcoders_dir(root / "tc", model_dir)


def test_embedded_preview_and_trace_load_the_model_once(tiny_dirs, sqlite_url, make_stack, monkeypatch):
    loads: list[str] = []
    load = ModelCache._load_model

    def counted(self: ModelCache, source: str):
        loads.append(source)
        return load(self, source)

    monkeypatch.setattr(ModelCache, "_load_model", counted)
    model_dir, tc_dir = tiny_dirs
    stack = make_stack(sqlite_url, real_engine=True, device="cpu")
    stack.register(stack.client, "admin")
    stack.login(stack.client, "admin")
    stack.seed_registry(stack.client, n_layers=2, model=str(model_dir), tc=str(tc_dir))
    preview = stack.client.post("/api/models/tiny/tokenize", json={"prompt": "The capital of Texas is"})
    assert preview.status_code == 200, preview.text
    job = stack.submit(stack.client, "The capital of Texas is")
    assert stack.wait_for_status(stack.client, job["id"], "done", timeout_s=90)["graph_slug"]
    assert loads == [str(model_dir)]
