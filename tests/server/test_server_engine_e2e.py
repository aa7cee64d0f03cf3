"""The real engine behind the server: a tiny random model and transcoders traced by an RQ
worker process (`python -m worker`, as `glassbox worker`) and by the embedded worker thread."""

from __future__ import annotations

import pytest

from glassbox.testing import make_random_transcoders_dir, make_tiny_model_dir


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    model_dir = make_tiny_model_dir(root / "model", "llama")
    return model_dir, make_random_transcoders_dir(root / "tc", model_dir)


def _run(stack, tiny_dirs, *, in_worker_process: bool):
    model_dir, tc_dir = tiny_dirs
    stack.register(stack.client, "admin")
    stack.login(stack.client, "admin")
    stack.seed_registry(stack.client, n_layers=2, model=str(model_dir), tc=str(tc_dir))

    preview = stack.client.post(
        "/api/models/tiny/tokenize", json={"prompt": "The capital of Texas is", "top_k": 3}
    )
    assert preview.status_code == 200, preview.text
    assert preview.json()["tokens"] == ["<bos>", "The", "capital", "of", "Texas", "is"]
    assert len(preview.json()["top_next"]) == 3
    too_long = stack.client.post("/api/traces", json={"model": "tiny", "prompt": " ".join(["cat"] * 20)})
    assert too_long.status_code == 422 and "tokens long" in too_long.json()["error"]["message"]

    job = stack.submit(stack.client, "The capital of Texas is", params={"max_n_logits": 3}, slug="texas-e2e")
    if in_worker_process:
        stack.start_worker_process(real_engine=True)
    done = stack.wait_for_status(stack.client, job["id"], "done", timeout_s=90)
    assert done["graph_slug"] == "texas-e2e"
    meta = stack.client.get("/api/graphs/texas-e2e").json()
    assert meta["tokens"] == preview.json()["tokens"] and meta["scan"] == "tiny"
    assert 0 < meta["replacement_score"] <= 1 and 0 < meta["completeness_score"] <= 1
    doc = stack.client.get("/api/graphs/texas-e2e/data").json()
    assert doc["metadata"]["slug"] == "texas-e2e" and doc["metadata"]["prompt"] == "The capital of Texas is"
    kinds = {n["feature_type"] for n in doc["nodes"]}
    assert {"embedding", "logit"} <= kinds and len(doc["links"]) == meta["link_count"] > 0


def test_worker_process_traces_the_tiny_model(tiny_dirs, pg_url, redis_url, make_stack):
    _run(make_stack(pg_url, redis_url, real_engine=True), tiny_dirs, in_worker_process=True)


def test_embedded_worker_thread_traces_the_tiny_model(tiny_dirs, sqlite_url, make_stack):
    _run(make_stack(sqlite_url, real_engine=True, device="cpu"), tiny_dirs, in_worker_process=False)
