"""What a graph's owner does with it: rename (PATCH title) and delete (with everything that hangs
on it), and who else may; the checks a trace request gets before it is queued: chat messages
only for a model with a chat template, custom targets of one token each; and the compare page
naming features by their labels."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from glassbox.testing import make_random_transcoders_dir, make_tiny_model_dir
from persistence.tables import (
    Comment,
    Feature,
    FeatureExplanation,
    GraphBlob,
    GraphRecord,
    Job,
    JobStatus,
    Subgraph,
)

CHAT_TEMPLATE = "{{ bos_token }}{% for m in messages %}{{ m['role'] }} : {{ m['content'] }} {% endfor %}"


def _traced(stack, client, prompt: str) -> tuple[str, str]:
    """(job id, graph slug) of a trace of `prompt` run to the end by the fake engine."""
    job = stack.submit(client, prompt)
    stack.process_jobs()
    done = stack.job(client, job["id"])
    assert done["status"] == "done", done
    return job["id"], done["graph_slug"]


def test_owner_renames_a_graph_others_may_not(pg_stack):
    stack = pg_stack
    ada = stack.user_client("ada")
    _, slug = _traced(stack, ada, "The capital of Texas is")

    r = ada.patch(f"/api/graphs/{slug}", json={"title": "  Texas capital  "})
    assert r.status_code == 200, r.text
    assert r.json()["title"] == "Texas capital" and "title" not in r.json()["parameters"]
    anon = stack.new_client()
    assert anon.get(f"/api/graphs/{slug}").json()["title"] == "Texas capital"
    listed = anon.get("/api/graphs", params={"owner": "ada"}).json()["items"]
    assert [(g["slug"], g["title"]) for g in listed] == [(slug, "Texas capital")]
    assert "Texas capital" in anon.get(f"/graph/{slug}").text

    r = ada.patch(f"/api/graphs/{slug}", json={"visibility": "unlisted"})  # the title stays
    assert r.json()["visibility"] == "unlisted" and r.json()["title"] == "Texas capital"
    assert ada.patch(f"/api/graphs/{slug}", json={}).status_code == 422
    assert ada.patch(f"/api/graphs/{slug}", json={"title": "x" * 201}).status_code == 422

    grace = stack.user_client("grace")
    assert grace.patch(f"/api/graphs/{slug}", json={"title": "mine now"}).status_code == 403
    assert anon.patch(f"/api/graphs/{slug}", json={"title": "anyone"}).status_code == 401
    assert ada.patch("/api/graphs/no-such-graph", json={"title": "x"}).status_code == 404
    r = stack.client.patch(f"/api/graphs/{slug}", json={"title": "named by an admin"})  # administrators may
    assert r.status_code == 200 and r.json()["title"] == "named by an admin"

    r = ada.patch(f"/api/graphs/{slug}", json={"title": ""})  # empty: no title, the prompt is shown
    assert r.status_code == 200 and r.json()["title"] is None


def test_deleting_a_graph_removes_what_hangs_on_it(pg_stack):
    stack = pg_stack
    ada = stack.user_client("ada")
    job_id, slug = _traced(stack, ada, "a cat sat on the mat")
    _, kept = _traced(stack, ada, "another graph stays")
    assert ada.post(f"/api/graphs/{slug}/comments", json={"text": "nice"}).status_code == 201
    view = ada.post(f"/api/graphs/{slug}/subgraphs", json={"title": "a view", "pinned_ids": ["E_0_0"]})
    assert view.status_code == 201
    with stack.services.sessions() as session:
        graph_id = session.scalar(select(GraphRecord.id).where(GraphRecord.slug == slug))

    grace = stack.user_client("grace")
    assert grace.delete(f"/api/graphs/{slug}").status_code == 403
    assert stack.new_client().delete(f"/api/graphs/{slug}").status_code == 401
    assert ada.delete("/api/graphs/no-such-graph").status_code == 404
    assert ada.delete(f"/api/graphs/{slug}").status_code == 204
    assert ada.get(f"/api/graphs/{slug}").status_code == 404
    assert ada.delete(f"/api/graphs/{slug}").status_code == 404
    assert ada.get(f"/api/subgraphs/{view.json()['slug']}").status_code == 404

    with stack.services.sessions() as session:
        for table, column in (
            (GraphBlob, GraphBlob.graph_id),
            (Subgraph, Subgraph.graph_id),
            (Comment, Comment.graph_id),
        ):
            count = session.scalar(select(func.count()).select_from(table).where(column == graph_id))
            assert count == 0, f"{table.__tablename__} still holds rows of the deleted graph"
        job = session.get(Job, job_id)
        assert job is not None and job.graph_id is None  # the job stays, unlinked
    assert ada.get(f"/api/graphs/{kept}").status_code == 200

    again = stack.submit(ada, "a cat sat on the mat")  # the same request makes a new graph
    assert again["id"] != job_id and not again["deduplicated"]

    # an administrator may delete anyone's graph
    assert stack.client.delete(f"/api/graphs/{kept}").status_code == 204


def test_a_bad_custom_target_is_refused_before_queueing(pg_stack):
    stack = pg_stack
    before = stack.count_jobs(*JobStatus)
    r = stack.client.post(
        "/api/traces",
        json={
            "model": "tiny",
            "prompt": "a cat sat",
            "params": {"logit_diff": {"plus": "cat sat", "minus": "dog"}},
        },
    )
    assert r.status_code == 422, r.text
    message = r.json()["error"]["message"]
    assert "logit_diff.plus" in message and "2 tokens" in message and "must be one token" in message
    assert stack.count_jobs(*JobStatus) == before

    r = stack.client.post("/api/models/tiny/tokenize-target", json={"text": "cat sat"})
    assert r.status_code == 200 and r.json()["n_tokens"] == 2 and "must be one token" in r.json()["problem"]
    r = stack.client.post("/api/models/tiny/tokenize-target", json={"text": "cat"})
    assert r.json()["n_tokens"] == 1 and r.json()["problem"] is None
    assert stack.client.post("/api/models/nope/tokenize-target", json={"text": "cat"}).status_code == 404
    ok = {"model": "tiny", "prompt": "a cat sat", "params": {"logit_diff": {"plus": "cat", "minus": "dog"}}}
    assert stack.client.post("/api/traces", json=ok).status_code == 202


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("chat-models")
    plain = make_tiny_model_dir(root / "plain", "llama")
    chat = make_tiny_model_dir(root / "chat", "llama")
    (chat / "chat_template.jinja").write_text(CHAT_TEMPLATE)
    return {"plain": plain, "chat": chat, "tc": make_random_transcoders_dir(root / "tc", plain)}


def test_chat_messages_only_for_a_model_with_a_chat_template(tiny_models, pg_url, redis_url, make_stack):
    stack = make_stack(pg_url, redis_url, real_engine=True)
    stack.register(stack.client, "admin")
    stack.login(stack.client, "admin")
    for name in ("plain", "chat"):
        model = {"name": name, "source": str(tiny_models[name])}
        assert stack.client.post("/api/models", json=model).status_code == 201
        body = {"name": "tc", "source": str(tiny_models["tc"]), "is_default": True, "n_layers": 2}
        assert stack.client.post(f"/api/models/{name}/transcoder-sets", json=body).status_code == 201

    listed = {m["name"]: m["chat_template"] for m in stack.client.get("/api/models").json()}
    assert listed == {"plain": False, "chat": True}  # from the files: no model loaded for it
    page = stack.client.get("/new", params={"format": "json"}).json()
    assert {m["name"]: m["chat_template"] for m in page["models"]} == listed

    messages = [{"role": "system", "content": "Fact"}, {"role": "user", "content": "a cat sat"}]
    r = stack.client.post("/api/traces", json={"model": "plain", "messages": messages})
    assert r.status_code == 422 and "'plain' has no chat template" in r.json()["error"]["message"]
    assert stack.count_jobs(*JobStatus) == 0
    both = {"model": "chat", "prompt": "a cat", "messages": messages}
    assert stack.client.post("/api/traces", json=both).status_code == 422

    r = stack.client.post("/api/traces", json={"model": "chat", "messages": messages})
    assert r.status_code == 202, r.text
    assert r.json()["prompt"] == "<bos>system : Fact user : a cat sat "
    again = stack.client.post("/api/traces", json={"model": "chat", "messages": messages})
    assert again.json()["deduplicated"] and again.json()["id"] == r.json()["id"]


def test_the_compare_page_names_features_by_their_best_label(pg_stack):
    """A person's label, else the newest LLM explanation, else the automatic label; with the
    tokens each feature is active on."""
    stack = pg_stack
    _, a = _traced(stack, stack.client, "The capital of Texas is")
    _, b = _traced(stack, stack.client, "The capital of France is")

    def labels() -> dict[str, str]:
        r = stack.client.get("/compare", params={"a": a, "b": b, "format": "json"})
        assert r.status_code == 200, r.text
        return r.json()["comparison"]["labels_a"]

    assert labels() == {}  # the fake engine's graphs carry no labels
    with stack.services.sessions() as session:
        tset_id = session.scalar(select(GraphRecord.transcoder_set_id).where(GraphRecord.slug == a))
        feature = Feature(transcoder_set_id=tset_id, layer=0, index=7, auto_label="auto: place")
        session.add(feature)
        session.commit()
        feature_id = feature.id
    assert labels() == {"0/7": "auto: place"}
    with stack.services.sessions() as session:
        for text in ("older explanation", "explained: place"):
            session.add(
                FeatureExplanation(feature_id=feature_id, text=text, explainer_model="m", prompt_version="v")
            )
            session.commit()
    assert labels() == {"0/7": "explained: place"}
    r = stack.client.put(
        "/api/features/tiny/tc/0/7/label", json={"text": "capital <b>city</b>", "base_version": 0}
    )
    assert r.status_code == 200, r.text
    assert labels() == {"0/7": "capital <b>city</b>"}

    page = stack.client.get("/compare", params={"a": a, "b": b}).text
    assert "capital &lt;b&gt;city&lt;/b&gt;</a>" in page and "#7</span>" in page
    assert '<span class="gb-pos">5</span>is</span>' in page  # the fake feature sits on the last token
