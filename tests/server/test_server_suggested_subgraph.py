"""GET /api/graphs/{slug}/suggested-subgraph: the engine's suggestion (glassbox/graph/guide.py)
for a stored graph, with the database's feature labels, under the graph's visibility."""

from __future__ import annotations

import json

from gbx_fakes import fake_graph_json


def test_a_traced_graph_gets_a_suggestion_that_names_features_by_their_labels(pg_stack):
    stack = pg_stack
    job = stack.submit(stack.client, "The capital of Texas is", visibility="private")
    stack.process_jobs()
    slug = stack.wait_for_status(stack.client, job["id"], "done")["graph_slug"]
    url = f"/api/graphs/{slug}/suggested-subgraph"

    r = stack.client.get(url)
    assert r.status_code == 200, r.text
    guide = r.json()
    last = len("The capital of Texas is".split())  # the fake graph: tokens -> feature 0_7 -> logit
    assert guide["target"] == f"3_42_{last}" and guide["token"] == " x"
    assert guide["prob"] == 0.5  # no token_prob in this file: the clerp's p=0.500
    assert guide["pinned_ids"][-1] == guide["target"] and f"0_7_{last}" in guide["pinned_ids"]
    assert [(c["node_id"], c["direct"]) for c in guide["carriers"]] == [(f"0_7_{last}", 1.5)]
    assert "L0 #7" in guide["note"][1] and "Texas cities" not in guide["note"][1]

    r = stack.client.put("/api/features/tiny/tc/0/7/label", json={"text": "Texas cities", "base_version": 0})
    assert r.status_code == 200, r.text
    labelled = stack.client.get(url).json()
    assert labelled["carriers"][0]["label"].startswith("Texas cities (L0 #7 at")
    assert "Texas cities" in labelled["note"][1]
    assert labelled["pinned_ids"] == guide["pinned_ids"]

    assert stack.new_client().get(url).status_code == 404  # a private graph stays hidden


def test_a_graph_without_outputs_has_nothing_to_suggest(pg_stack):
    doc = fake_graph_json("no outputs here", "x")
    doc["nodes"] = [n for n in doc["nodes"] if n["feature_type"] != "logit"]
    doc["links"] = [link for link in doc["links"] if not link["target"].startswith("3_42_")]
    r = pg_stack.client.post("/api/graphs/import", content=json.dumps(doc).encode(), params={"slug": "mute"},
                             headers={"Content-Type": "application/json"})
    assert r.status_code == 201, r.text
    r = pg_stack.client.get("/api/graphs/mute/suggested-subgraph")
    assert r.status_code == 422 and "no logit node" in r.text
