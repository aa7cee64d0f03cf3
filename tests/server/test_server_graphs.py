"""Graphs: import (circuit-tracer / Neuronpedia JSON), fetch, list and search, visibility,
comments and saved subgraphs."""

from __future__ import annotations

import gzip
import json

import pytest
from gbx_fakes import fake_graph_json


def _import(client, doc, **params):
    body = json.dumps(doc).encode()
    return client.post(
        "/api/graphs/import", content=body, params=params, headers={"Content-Type": "application/json"}
    )


def test_import_plain_and_gzip_then_fetch(pg_stack):
    stack = pg_stack
    doc = fake_graph_json("The capital of Texas is", "ignored-slug", scan="tiny")
    r = _import(stack.client, doc, slug="texas")
    assert r.status_code == 201, r.text
    meta = r.json()
    assert meta["slug"] == "texas" and meta["source"] == "import" and meta["model"] == "tiny"
    assert meta["node_count"] == len(doc["nodes"]) and meta["link_count"] == len(doc["links"])

    gz = gzip.compress(json.dumps(fake_graph_json("Other prompt", "x", scan="unknown-model")).encode())
    r = stack.client.post("/api/graphs/import", content=gz, headers={"Content-Type": "application/gzip"})
    assert r.status_code == 201 and r.json()["model"] is None and r.json()["scan"] == "unknown-model"

    data = stack.client.get("/api/graphs/texas/data").json()
    assert data["metadata"]["slug"] == "texas"
    assert data["nodes"] == doc["nodes"] and data["links"] == doc["links"]
    assert _import(stack.client, doc, slug="texas").status_code == 409


def test_list_search_and_visibility(pg_stack):
    stack = pg_stack
    for prompt, visibility in [
        ("Dallas is in Texas", "public"),
        ("Paris is in France", "public"),
        ("secret Texas plan", "private"),
        ("unlisted Texas note", "unlisted"),
    ]:
        assert _import(stack.client, fake_graph_json(prompt, "s"), visibility=visibility).status_code == 201

    anon = stack.new_client()
    page = anon.get("/api/graphs").json()
    assert page["total"] == 2 and [g["prompt"] for g in page["items"]] == [
        "Paris is in France",
        "Dallas is in Texas",
    ]
    assert [g["prompt"] for g in anon.get("/api/graphs", params={"q": "texas"}).json()["items"]] == [
        "Dallas is in Texas"
    ]
    assert anon.get("/api/graphs", params={"q": "100%_"}).json()["total"] == 0  # wildcards are literal
    assert stack.client.get("/api/graphs", params={"q": "texas"}).json()["total"] == 3  # owner sees own
    assert stack.client.get("/api/graphs", params={"mine": True}).json()["total"] == 4
    assert anon.get("/api/graphs", params={"owner": "admin"}).json()["total"] == 2
    assert anon.get("/api/graphs", params={"limit": 1, "offset": 1}).json()["items"][0]["prompt"] == (
        "Dallas is in Texas"
    )

    mine = stack.client.get("/api/graphs", params={"mine": True}).json()["items"]
    private = next(g for g in mine if g["visibility"] == "private")
    unlisted = next(g for g in mine if g["visibility"] == "unlisted")
    assert anon.get(f"/api/graphs/{private['slug']}").status_code == 404
    assert anon.get(f"/api/graphs/{private['slug']}/data").status_code == 404
    assert anon.get(f"/api/graphs/{unlisted['slug']}").status_code == 200
    other = stack.user_client("olga")
    assert other.get(f"/api/graphs/{private['slug']}").status_code == 404
    assert other.patch(f"/api/graphs/{unlisted['slug']}", json={"visibility": "public"}).status_code == 403
    assert (
        stack.client.patch(f"/api/graphs/{private['slug']}", json={"visibility": "public"}).status_code == 200
    )
    assert anon.get(f"/api/graphs/{private['slug']}").status_code == 200
    assert other.delete(f"/api/graphs/{private['slug']}").status_code == 403
    assert stack.client.delete(f"/api/graphs/{private['slug']}").status_code == 204
    assert anon.get(f"/api/graphs/{private['slug']}").status_code == 404


META = {"slug": "s", "scan": "tiny", "prompt": "x", "prompt_tokens": ["x"]}
BAD_UPLOADS = [
    (b"{not json", 422, "not valid JSON"),
    (b"[1, 2]", 422, "must be an object"),
    (b'{"nodes": [], "links": []}', 422, "lacks metadata"),
    (
        json.dumps(
            {"metadata": META | {"prompt_tokens": "x"}, "qParams": {}, "nodes": [], "links": []}
        ).encode(),
        422,
        "prompt_tokens",
    ),
    (
        json.dumps({"metadata": META, "qParams": {}, "nodes": [{"node_id": "a"}], "links": []}).encode(),
        422,
        "nodes[0]",
    ),
    (
        json.dumps(
            {
                "metadata": META,
                "qParams": {},
                "nodes": [],
                "links": [{"source": "a", "target": "b", "weight": 1}],
            }
        ).encode(),
        422,
        "is not a node of the graph",
    ),
    (
        b'{"metadata": {"prompt": "x", "prompt_tokens": []}, "nodes": [], "links": [], "v": NaN}',
        422,
        "not valid JSON",
    ),
    (b"\x1f\x8bnot really gzip", 422, "cannot decompress"),
    (b"[" * 100_000 + b"]" * 100_000, 422, "not valid JSON"),
]


@pytest.mark.parametrize(("body", "status", "message"), BAD_UPLOADS)
def test_bad_uploads_get_clear_4xx(shared_pg_stack, body, status, message):
    r = shared_pg_stack.client.post("/api/graphs/import", content=body)
    assert r.status_code == status, r.text
    assert message in r.json()["error"]["message"]


def test_oversized_uploads_and_gzip_bombs_are_refused(pg_url, redis_url, make_stack):
    stack = make_stack(pg_url, redis_url, max_upload_bytes=4096, max_graph_bytes=100_000)
    stack.register(stack.client, "admin")
    stack.login(stack.client, "admin")
    r = stack.client.post("/api/graphs/import", content=b" " * 5000)
    assert r.status_code == 413 and "limit is 4096" in r.json()["error"]["message"]

    def chunks():
        for _ in range(5):
            yield b" " * 1000

    r = stack.client.post("/api/graphs/import", content=chunks())  # no Content-Length
    assert r.status_code == 413
    bomb = gzip.compress(b" " * 3_000_000)
    assert len(bomb) < 4096
    r = stack.client.post("/api/graphs/import", content=bomb)
    assert r.status_code == 413 and "decompressed" in r.json()["error"]["message"]


def test_graph_comments(pg_stack):
    stack = pg_stack
    slug = _import(stack.client, fake_graph_json("comment on me", "s")).json()["slug"]
    r = stack.client.post(f"/api/graphs/{slug}/comments", json={"text": "nice circuit"})
    assert r.status_code == 201 and r.json()["author"] == "admin"
    comment_id = r.json()["id"]
    anon = stack.new_client()
    assert [c["text"] for c in anon.get(f"/api/graphs/{slug}/comments").json()] == ["nice circuit"]
    assert anon.post(f"/api/graphs/{slug}/comments", json={"text": "x"}).status_code == 401
    other = stack.user_client("pete")
    assert other.delete(f"/api/comments/{comment_id}").status_code == 403
    assert stack.client.delete(f"/api/comments/{comment_id}").status_code == 204
    assert anon.get(f"/api/graphs/{slug}/comments").json() == []
    assert stack.client.delete(f"/api/comments/{comment_id}").status_code == 404


def test_subgraphs_have_their_own_share_slug(pg_stack):
    stack = pg_stack
    slug = _import(stack.client, fake_graph_json("subgraph me", "s")).json()["slug"]
    state = {
        "title": "the path",
        "pinned_ids": ["E_0_0", "0_7_2"],
        "supernodes": [["Texas", "0_7_2", "E_1_1"]],
        "label_overrides": {"0_7_2": "capital"},
        "pruning_threshold": 0.6,
        "density_threshold": 0.99,
    }
    r = stack.client.post(f"/api/graphs/{slug}/subgraphs", json=state)
    assert r.status_code == 201, r.text
    saved = r.json()
    assert saved["graph_slug"] == slug and saved["slug"] != slug
    anon = stack.new_client()
    fetched = anon.get(f"/api/subgraphs/{saved['slug']}").json()
    assert {k: fetched[k] for k in state} == state
    assert [s["slug"] for s in anon.get(f"/api/graphs/{slug}/subgraphs").json()] == [saved["slug"]]

    r = stack.client.patch(
        f"/api/subgraphs/{saved['slug']}", json={"pinned_ids": ["E_0_0"], "title": "short"}
    )
    assert r.json()["pinned_ids"] == ["E_0_0"] and r.json()["supernodes"] == state["supernodes"]
    r = stack.client.patch(f"/api/subgraphs/{saved['slug']}", json={"title": None})
    assert r.status_code == 422 and "title cannot be null" in r.json()["error"]["message"]
    assert (
        stack.user_client("quinn").patch(f"/api/subgraphs/{saved['slug']}", json={"title": "x"}).status_code
        == 403
    )
    r = stack.client.post(f"/api/graphs/{slug}/subgraphs", json={"supernodes": [["only a label"]]})
    assert r.status_code == 422
    r = stack.client.post(f"/api/graphs/{slug}/subgraphs", json={"pruning_threshold": 2})
    assert r.status_code == 422
    assert stack.client.delete(f"/api/subgraphs/{saved['slug']}").status_code == 204
    assert anon.get(f"/api/subgraphs/{saved['slug']}").status_code == 404
