"""LLM explanations through the API, against a fake OpenAI-compatible endpoint on 127.0.0.1:
one feature now (stored with its provenance; a human label still wins), a graph's features as a
job, the explainer's failures as 503s that say what to fix, rate limits, and the API key kept out
of every answer."""

from __future__ import annotations

import pytest
from _fake_explainer import FakeExplainer
from sqlalchemy import func, select

from glassbox.features.explain import PROMPT_VERSION
from persistence.tables import FeatureExplanation
from worker.explain import graph_features

FEATURE = "/api/features/tiny/tc/0/7"
KEY = "sk-test-never-shown"


def _dashboard(word: str, n: int = 12) -> dict:
    examples = [{"tokens": [f" line{i}", " the", f" {word}", " here"],
                 "tokens_acts_list": [0, 0, 2.0 + i, 0.1], "train_token_ind": i} for i in range(n)]
    return {"top_logits": [" meow"], "activation_frequency": 0.01,
            "examples_quantiles": [{"quantile_name": "Top activations", "examples": examples}]}


def _seed_dashboards(client, *, cat_feature: str = FEATURE) -> None:
    body = {"dashboard": _dashboard("cat"), "auto_label": '"cat" (auto)'}
    r = client.put(cat_feature + "/dashboard", json=body)
    assert r.status_code == 200, r.text
    for i, word in enumerate(["dog", "sun", "rain", "car", "tree", "boat", "milk", "road"]):
        r = client.put(f"/api/features/tiny/tc/1/{i}/dashboard", json={"dashboard": _dashboard(word, 3)})
        assert r.status_code == 200, r.text


@pytest.fixture
def fake():
    with FakeExplainer(api_key=KEY) as server:
        yield server


@pytest.fixture
def explaining_stack(fake, any_stack):
    """Embedded (SQLite, job threads) and production (Postgres, Redis, RQ) stacks."""
    stack = any_stack(explainer_url=fake.url, explainer_model="fake-7b", explainer_api_key=KEY)
    stack.register(stack.client, "admin")
    stack.login(stack.client, "admin")
    stack.seed_registry(stack.client)
    _seed_dashboards(stack.client)
    return stack


def test_explain_one_feature_keeps_it_with_its_provenance(explaining_stack, fake):
    stack = explaining_stack
    assert stack.new_client().post(FEATURE + "/explain").status_code == 401  # logged-in users only
    ada = stack.user_client("ada")
    r = ada.post(FEATURE + "/explain")
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["text"] == "fires on cat" and got["score"] == 1.0 and got["n_scored"] == 10
    assert got["explainer_model"] == "fake-7b" and got["prompt_version"] == PROMPT_VERSION
    assert got["requested_by"] == "ada" and got["created_at"]
    assert all(req["headers"]["Authorization"] == f"Bearer {KEY}" for req in fake.requests)
    score_prompt = fake.requests[1]["body"]["messages"][1]["content"]
    assert " dog " in score_prompt or " sun " in score_prompt or " rain " in score_prompt  # other features

    anon = stack.new_client()
    assert anon.get(FEATURE).json()["explanation"] == got
    batch = anon.post("/api/features/tiny/tc/batch", json={"features": [{"layer": 0, "index": 7},
                                                                          {"layer": 1, "index": 0}],
                                                             "include_dashboards": False}).json()
    assert batch[0]["explanation"]["text"] == "fires on cat" and batch[1]["explanation"] is None

    # precedence on the feature page: explanation over the auto label, a human label over both
    page = anon.get("/features/tiny/tc/0/7").text
    assert '<h1 id="feature-title">fires on cat</h1>' in page and "fake-7b" in page and PROMPT_VERSION in page
    r = ada.put(FEATURE + "/label", json={"text": "cats, by a person", "base_version": 0})
    assert r.status_code == 200
    page = anon.get("/features/tiny/tc/0/7").text
    assert '<h1 id="feature-title">cats, by a person</h1>' in page and "fires on cat" in page
    twin = anon.get("/features/tiny/tc/0/7", params={"format": "json"}).json()
    assert twin["feature"]["label"] == "cats, by a person"
    assert twin["feature"]["explanation"]["text"] == "fires on cat"
    assert twin["explainer"]["configured"] is True and twin["explainer"]["model"] == "fake-7b"

    # a new explanation is added (the label and its history stay), and it is the one shown
    assert ada.post(FEATURE + "/explain").status_code == 200
    with stack.services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(FeatureExplanation)) == 2
    assert [h["text"] for h in anon.get(FEATURE + "/labels").json()] == ["cats, by a person"]
    assert anon.get(FEATURE).json()["label"] == "cats, by a person"
    for text in (page, str(twin), r.text, anon.get(FEATURE).text):
        assert KEY not in text


def test_explainer_failures_are_503s_that_say_what_to_fix(explaining_stack, fake):
    stack = explaining_stack
    fake.fail_next("status", 401)
    r = stack.client.post(FEATURE + "/explain")
    assert r.status_code == 503 and "API key" in r.json()["error"]["message"]
    assert KEY not in r.text
    fake.fail_next("raw", b"<html>not an API</html>")
    r = stack.client.post(FEATURE + "/explain")
    assert r.status_code == 503 and "chat completion" in r.json()["error"]["message"]

    r = stack.client.post("/api/features/tiny/tc/2/5/explain")  # no dashboard
    assert r.status_code == 422 and "no dashboard" in r.json()["error"]["message"]
    dead = {"examples_quantiles": [], "top_logits": []}
    stack.client.put("/api/features/tiny/tc/2/6/dashboard", json={"dashboard": dead})
    r = stack.client.post("/api/features/tiny/tc/2/6/explain")
    assert r.status_code == 422 and "no activating contexts" in r.json()["error"]["message"]
    assert stack.client.post("/api/features/tiny/tc/9/1/explain").status_code == 422  # layer out of range
    assert stack.client.post("/api/features/tiny/nope/0/1/explain").status_code == 404


def test_single_explanations_are_rate_limited(fake, pg_url, redis_url, make_stack):
    stack = make_stack(pg_url, redis_url, explainer_url=fake.url, explainer_api_key=KEY,
                       explainer_rate_limit_per_user=1)
    stack.register(stack.client, "admin")
    stack.login(stack.client, "admin")
    stack.seed_registry(stack.client)
    _seed_dashboards(stack.client)
    assert stack.client.post(FEATURE + "/explain").status_code == 200
    r = stack.client.post(FEATURE + "/explain")
    assert r.status_code == 429 and "feature explanations" in r.json()["error"]["message"]
    assert r.headers["Retry-After"]


def test_without_an_endpoint_the_api_and_pages_say_how_to_configure_one(pg_stack):
    stack = pg_stack
    _seed_dashboards(stack.client)
    r = stack.client.post(FEATURE + "/explain")
    assert r.status_code == 409 and "GLASSBOX_EXPLAINER_URL" in r.json()["error"]["message"]
    job = stack.submit(stack.client, "the cat sat")
    stack.process_jobs()
    slug = stack.job(stack.client, job["id"])["graph_slug"]
    r = stack.client.post(f"/api/graphs/{slug}/explain")
    assert r.status_code == 409 and "GLASSBOX_EXPLAINER_URL" in r.text
    page = stack.client.get("/features/tiny/tc/0/7").text
    assert "GLASSBOX_EXPLAINER_URL" in page and "Explain with LLM" not in page
    assert "GLASSBOX_EXPLAINER_URL" in stack.client.get(f"/graph/{slug}").text


def test_a_graph_job_explains_the_features_without_an_explanation(explaining_stack, fake):
    stack = explaining_stack
    job = stack.submit(stack.client, "the cat sat")
    stack.process_jobs()
    slug = stack.job(stack.client, job["id"])["graph_slug"]
    assert "Explain features" in stack.client.get(f"/graph/{slug}").text
    assert stack.new_client().post(f"/api/graphs/{slug}/explain").status_code == 401

    r = stack.client.post(f"/api/graphs/{slug}/explain")
    assert r.status_code == 202, r.text
    queued = r.json()
    assert queued["kind"] == "explain" and queued["graph_slug"] == slug
    if stack.uses_redis:  # queued until process_jobs (threads may already have run it)
        again = stack.client.post(f"/api/graphs/{slug}/explain").json()  # the same active job
        assert again["id"] == queued["id"] and again["deduplicated"] is True
    stack.process_jobs()
    done = stack.job(stack.client, queued["id"])
    assert done["status"] == "done", done
    assert done["result"]["explained"] == 1 and done["result"]["features"] == 1
    explanation = stack.client.get(FEATURE).json()["explanation"]
    assert explanation["text"] == "fires on cat" and explanation["requested_by"] == "admin"

    second = stack.client.post(f"/api/graphs/{slug}/explain").json()  # nothing left to explain
    assert second["id"] != queued["id"]
    stack.process_jobs()
    result = stack.job(stack.client, second["id"])["result"]
    assert result["explained"] == 0 and result["already_explained"] == 1


def test_a_worker_without_the_explainer_settings_fails_the_job_clearly(fake, pg_url, redis_url, make_stack):
    """RQ runs the job only when process_jobs asks (the embedded threads would race the change)."""
    stack = make_stack(pg_url, redis_url, explainer_url=fake.url, explainer_api_key=KEY)
    stack.register(stack.client, "admin")
    stack.login(stack.client, "admin")
    stack.seed_registry(stack.client)
    _seed_dashboards(stack.client)
    job = stack.submit(stack.client, "the cat sat")
    stack.process_jobs()
    slug = stack.job(stack.client, job["id"])["graph_slug"]
    queued = stack.client.post(f"/api/graphs/{slug}/explain").json()
    stack.settings.explainer_url = None  # the burst worker below runs with these settings
    stack.process_jobs()
    failed = stack.job(stack.client, queued["id"])
    assert failed["status"] == "failed" and "GLASSBOX_EXPLAINER_URL" in failed["error"]


def test_graph_features_are_the_feature_nodes_most_influential_first():
    doc = {"nodes": [
        {"node_id": "E_5_0", "feature_type": "embedding"},
        {"node_id": "1_9_2", "feature_type": "cross layer transcoder", "influence": 0.6},
        {"node_id": "0_3_1", "feature_type": "cross layer transcoder", "influence": 0.2},
        {"node_id": "1_9_3", "feature_type": "cross layer transcoder", "influence": 0.1},
        {"node_id": "0_-1_1", "feature_type": "mlp reconstruction error", "influence": 0.05},
        {"node_id": "3_42_3", "feature_type": "logit"},
        {"node_id": "2_4_1", "feature_type": "cross layer transcoder"},
    ]}
    assert graph_features(doc) == [(1, 9), (0, 3), (2, 4)]
