"""Intervention jobs, custom logit-difference targets and the compare page, through the real
engine: a tiny random model and transcoders, traced and intervened on by an RQ worker."""

from __future__ import annotations

import pytest

from glassbox.testing import make_random_transcoders_dir, make_tiny_model_dir

PROMPT = "The capital of Texas is"


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    model_dir = make_tiny_model_dir(root / "model", "llama")
    return model_dir, make_random_transcoders_dir(root / "tc", model_dir)


@pytest.fixture
def stack(tiny_dirs, pg_url, redis_url, make_stack):
    model_dir, tc_dir = tiny_dirs
    s = make_stack(pg_url, redis_url, real_engine=True)
    s.register(s.client, "admin")
    s.login(s.client, "admin")
    s.seed_registry(s.client, n_layers=2, model=str(model_dir), tc=str(tc_dir))
    return s


def _trace(stack, prompt: str, slug: str, **params) -> dict:
    job = stack.submit(stack.client, prompt, params={"max_n_logits": 3, **params}, slug=slug)
    stack.process_jobs()
    done = stack.job(stack.client, job["id"])
    assert done["status"] == "done", done
    return stack.client.get(f"/api/graphs/{slug}/data").json()


def _feature_nodes(doc: dict) -> list[dict]:
    """Feature nodes as (layer, feature index, pos, activation); ids are layer_feature_pos."""
    out = []
    for n in doc["nodes"]:
        if n["feature_type"] == "cross layer transcoder":
            layer, feature, pos = (int(x) for x in n["node_id"].split("_"))
            out.append({"layer": layer, "feature": feature, "pos": pos, "activation": n["activation"]})
    return out


def _intervene(stack, slug: str, body: dict):
    return stack.client.post(f"/api/graphs/{slug}/interventions", json=body)


def test_ablation_job_returns_before_after_and_continuations(stack):
    doc = _trace(stack, PROMPT, "texas")
    features = _feature_nodes(doc)
    assert features, "the tiny graph has feature nodes"
    strongest = max(features, key=lambda f: abs(f["activation"] or 0.0))
    item = {k: strongest[k] for k in ("layer", "feature", "pos")} | {"mode": "ablate"}

    r = _intervene(stack, "texas", {"interventions": [item], "max_new_tokens": 5})
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["kind"] == "intervention" and job["status"] == "queued" and job["graph_slug"] == "texas"
    again = _intervene(stack, "texas", {"interventions": [item], "max_new_tokens": 5}).json()
    assert again["id"] == job["id"] and again["deduplicated"] is True

    stack.process_jobs()
    done = stack.job(stack.client, job["id"])
    assert done["status"] == "done", done
    result = done["result"]
    before, after = result["top_next"]["before"], result["top_next"]["after"]
    assert len(before) == len(after) == 10
    assert [t["prob_before"] for t in before] == sorted((t["prob_before"] for t in before), reverse=True)
    assert [t["prob_after"] for t in after] == sorted((t["prob_after"] for t in after), reverse=True)
    # the clean side is the plain model: the tokenizer preview's next-token probabilities
    preview = stack.client.post("/api/models/tiny/tokenize", json={"prompt": PROMPT, "top_k": 3}).json()
    assert before[0]["token"].strip() == preview["top_next"][0]["token"].strip()
    assert before[0]["prob_before"] == pytest.approx(preview["top_next"][0]["prob"], rel=1e-4)
    # an active feature was zeroed: the distribution moved
    assert max(abs(row["delta"]) for row in result["rows"]) > 1e-7
    assert {row["token_id"] for row in result["rows"]} >= {t["token_id"] for t in before}
    for side in ("continuation_before", "continuation_after"):
        assert 1 <= len(result[side]["new_ids"]) <= 5 and isinstance(result[side]["text"], str)

    # a no-op edit (scale by 1) leaves the tokens and the continuation as they were
    noop = {**item, "mode": "scale", "value": 1.0}
    job2 = _intervene(stack, "texas", {"interventions": [noop], "max_new_tokens": 5}).json()
    stack.process_jobs()
    same = stack.job(stack.client, job2["id"])["result"]
    assert max(abs(row["delta"]) for row in same["rows"]) < 1e-5
    assert same["continuation_after"]["new_ids"] == same["continuation_before"]["new_ids"]


def test_interventions_are_validated(stack, pg_url):
    doc = _trace(stack, PROMPT, "texas-v")
    f = _feature_nodes(doc)[0]
    ok = {"layer": f["layer"], "feature": f["feature"], "pos": f["pos"], "mode": "ablate"}

    def error(body, status=422):
        r = _intervene(stack, "texas-v", body)
        assert r.status_code == status, r.text
        return r.json()["error"]["message"]

    assert "layers 0 to 1" in error({"interventions": [{**ok, "layer": 2}]})
    assert "positions 0 to 5" in error({"interventions": [{**ok, "pos": 6}]})
    assert "no features" in error({"interventions": [{**ok, "pos": 0}]})
    assert error({"interventions": [{**ok, "feature": -1}]})
    assert error({"interventions": [{**ok, "mode": "double"}]})
    assert error({"interventions": []})
    assert error({"interventions": [ok], "max_new_tokens": 1000})
    assert _intervene(stack, "no-such-graph", {"interventions": [ok]}).status_code == 404
    anonymous = stack.new_client()
    denied = anonymous.post("/api/graphs/texas-v/interventions", json={"interventions": [ok]})
    assert denied.status_code == 401
    # a cookie write without the CSRF header is refused like every other write
    no_csrf = stack.client.post(
        "/api/graphs/texas-v/interventions", json={"interventions": [ok]}, headers={"X-CSRF-Token": ""}
    )
    assert no_csrf.status_code == 403

    # a feature index past the transcoder width fails the job with the engine's message
    job = _intervene(stack, "texas-v", {"interventions": [{**ok, "feature": 10_000_000}]}).json()
    stack.process_jobs()
    failed = stack.job(stack.client, job["id"])
    assert failed["status"] == "failed" and "feature" in failed["error"].lower(), failed


def test_trace_to_a_logit_difference(stack):
    doc = _trace(stack, PROMPT, "texas-diff", logit_diff={"plus": "Austin", "minus": "Dallas"})
    logits = [n for n in doc["nodes"] if n["feature_type"] == "logit"]
    assert len(logits) == 1 and "Austin" in logits[0]["clerp"] and "Dallas" in logits[0]["clerp"]
    bad = stack.client.post(
        "/api/traces", json={"model": "tiny", "prompt": PROMPT, "params": {"logit_diff": {"plus": ""}}}
    )
    assert bad.status_code == 422


def test_compare_page_and_json_twin(stack):
    doc_a = _trace(stack, PROMPT, "cmp-a")
    _trace(stack, "The capital of France is", "cmp-b")
    same = stack.client.get("/compare", params={"a": "cmp-a", "b": "cmp-a", "format": "json"})
    assert same.status_code == 200, same.text
    data = same.json()
    n_features = len({(f["layer"], f["feature"]) for f in _feature_nodes(doc_a)})
    assert data["comparison"]["n_shared"] == n_features > 0
    assert data["comparison"]["n_only_a"] == data["comparison"]["n_only_b"] == 0
    assert all(c["in_both"] for c in data["column_a"])

    both = stack.client.get("/compare", params={"a": "cmp-a", "b": "cmp-b", "format": "json"}).json()
    c = both["comparison"]
    assert both["a"]["slug"] == "cmp-a" and both["b"]["slug"] == "cmp-b"
    assert c["n_shared"] + c["n_only_a"] == n_features
    shared = {(x["layer"], x["feature"]) for x in c["shared"]}
    assert {(x["layer"], x["feature"]) for x in both["column_a"] if x["in_both"]} <= shared

    page = stack.client.get("/compare", params={"a": "cmp-a", "b": "cmp-b"})
    assert page.status_code == 200 and "Compare graphs" in page.text
    assert page.text.count('class="gb-shared"') == 2 * min(c["n_shared"], 200)
    assert stack.client.get("/compare", params={"a": "cmp-a", "b": "missing"}).status_code == 404
